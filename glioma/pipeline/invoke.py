"""Running an entry point's graph: the one path from a declared graph to finished runs.

1. Runs that a killed process left RUNNING on this host are marked KILLED.
2. The invocation's run: ``main`` (and any graph with several targets) opens a group run that
   every node nests under; a one-target entry under ``mlflow run`` carries on in the run that
   ``mlflow run`` created when the target has to run (its inputs nest under it), and marks it
   ``step = invocation`` with a ``reused_run`` tag when the target is reused.
3. The executor: serial here, or Ray; with Ray and a local file store, a tracking server on
   loopback serves the store to the workers (``glioma.tracking.server``).
4. Failures: the entry ends with ``StudyFailed`` listing what failed and what did not start.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

from glioma.config import ExecutorConfig, StepConfig, as_params
from glioma.errors import GliomaError
from glioma.pipeline.ensure import RunContext
from glioma.pipeline.executors import Outcome, run_serial
from glioma.pipeline.graph import Graph, Node
from glioma.pipeline.keys import NodeResult
from glioma.pipeline.ray_executor import run_ray
from glioma.tracking import configure_tracking, git_commit, open_run
from glioma.tracking.liveness import mark_orphans_killed
from glioma.tracking.runs import REUSED_RUN
from glioma.tracking.server import is_local_store, loopback_server
from glioma.tracking.store import experiment_id

SERIAL = ExecutorConfig()


class StudyFailed(GliomaError):
    """Some steps failed; the message lists them (and what they kept from starting).

    ``outcome``: what did finish, for a caller that carries on (tune's other trials)."""

    def __init__(self, outcome: Outcome):
        super().__init__(outcome.failure_report())
        self.outcome = outcome


@dataclass(frozen=True)
class Invocation:
    """A finished entry: its group run (if any), and the outcome of every node."""

    run_id: str | None
    outcome: Outcome
    summary: Any = None  # what ``summarise`` returned (main: the study's results)

    def result(self, target) -> NodeResult:
        return self.outcome.results[target]


def sweep_orphans(prefix: str) -> None:
    killed = mark_orphans_killed()
    if killed:
        print(
            f"{prefix}: marked {len(killed)} run(s) KILLED: their process on this host is gone "
            f"({', '.join(killed[:5])}{' ...' if len(killed) > 5 else ''})"
        )


@contextmanager
def parallel_store(settings: ExecutorConfig) -> Iterator[str]:
    """The tracking URI the workers use; a loopback server when the store is a local file."""
    uri = configure_tracking()
    if settings.executor == "serial" or not is_local_store(uri):
        yield uri
        return
    with loopback_server(uri) as server:
        print(f"tracking server for the parallel steps: {server} (store {uri})")
        previous = os.environ.get("MLFLOW_TRACKING_URI")
        os.environ["MLFLOW_TRACKING_URI"] = server
        os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"  # a server of minutes
        try:
            configure_tracking()
            yield server
        finally:
            if previous is None:
                os.environ.pop("MLFLOW_TRACKING_URI", None)
            else:
                os.environ["MLFLOW_TRACKING_URI"] = previous
            configure_tracking()


@contextmanager
def project_run_id() -> Iterator[str | None]:
    """The run ``mlflow run`` created, taken out of the environment while the graph runs.

    MLflow's ``start_run`` resumes ``MLFLOW_RUN_ID`` on its first call, whatever run that call
    meant to start; here only the node meant to carry on in it does (``adopt_run_id``).
    """
    run_id = os.environ.pop("MLFLOW_RUN_ID", None)
    try:
        yield run_id
    finally:
        if run_id is not None:
            os.environ["MLFLOW_RUN_ID"] = run_id


def execute(graph: Graph, context: RunContext, *, settings: ExecutorConfig, uri: str, adopt):
    if settings.executor == "ray":
        return run_ray(graph, context, settings=settings, tracking_uri=uri)
    return run_serial(graph, context, adopt=adopt)


def run_graph(
    graph: Graph,
    config: StepConfig,
    *,
    settings: ExecutorConfig = SERIAL,
    group: bool = False,
    summarise: Callable[[Outcome], Any] | None = None,
    within: str | None = None,
    nests: Mapping[Node, str] | None = None,
) -> Invocation:
    """Run ``graph`` for the entry point of ``config``; see the module docstring.

    ``within``: the run (open already: tune's) that the nodes go under instead of a group run
    of their own; ``nests``: nodes that go under another run (a trial's steps, its trial run).
    """
    prefix = config.step
    configure_tracking()
    if within is None:
        sweep_orphans(prefix)
    counts = ", ".join(f"{n} {step}" for step, n in graph.steps().items())
    print(f"{prefix}: {len(graph)} step(s) in the graph ({counts})")
    single = len(graph.targets) == 1 and not group
    with project_run_id() as project_run, parallel_store(settings) as uri:
        experiment = experiment_id()
        if within is not None:
            context = RunContext(
                experiment, within, None, prefix, commit=git_commit(), nests=nests or {}
            )
            outcome = execute(graph, context, settings=settings, uri=uri, adopt=None)
            return finish(Invocation(within, outcome))
        if single:
            context = RunContext(experiment, project_run, project_run, prefix, commit=git_commit())
            outcome = execute(graph, context, settings=settings, uri=uri, adopt=graph.targets[0])
            close_project_run(project_run, graph, outcome)
            return finish(Invocation(project_run, outcome))
        step = config.step if group else "invocation"
        tags = {"profile": config.profile}
        with open_run(step, as_params(config), tags, adopt_run_id=project_run) as run:
            context = RunContext(experiment, run.info.run_id, None, prefix, commit=git_commit())
            outcome = execute(graph, context, settings=settings, uri=uri, adopt=None)
            mlflow.log_metrics({"steps_run": outcome.ran, "steps_reused": outcome.reused})
            complete = not outcome.failures and not outcome.not_started
            summary = summarise(outcome) if summarise is not None and complete else None
            invocation = Invocation(run.info.run_id, outcome, summary)
            if outcome.failures:
                raise StudyFailed(outcome)
        return invocation


def close_project_run(project_run: str | None, graph: Graph, outcome: Outcome) -> None:
    """When the target was reused, the run ``mlflow run`` made says so and ends FINISHED."""
    target = outcome.results.get(graph.targets[0])
    if not project_run or target is None or target.run_id == project_run:
        return
    client = MlflowClient()
    if client.get_run(project_run).info.status != "RUNNING":
        return
    client.set_tag(project_run, "step", "invocation")
    client.set_tag(project_run, REUSED_RUN, target.run_id)
    client.set_terminated(project_run, "FINISHED")


def finish(invocation: Invocation) -> Invocation:
    if invocation.outcome.failures:
        raise StudyFailed(invocation.outcome)
    return invocation
