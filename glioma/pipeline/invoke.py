"""Running a declared graph: three small entries, one executor call.

- ``run_entry``: a single entry point's one target. Under ``mlflow run`` it carries on in the
  run ``mlflow run`` created when it has to run (its inputs nest under it); when it is reused,
  that run is marked ``step = invocation`` with a ``reused_run`` tag.
- ``run_group``: several targets (``main``, ``train_ddpm`` of both grades): a group run that
  every node nests under (itself the ``mlflow run`` run, when there is one).
- ``run_under``: under a run that is open already (``tune``), some nodes under another run
  (a trial's steps, its trial run).

Each decides where every node's run goes (``Placement``) and hands the graph and that one
function to an executor: serial here, or Ray; with Ray and a local file store, a tracking server
on loopback serves the store to the workers and to this process (``glioma.tracking.server``).
Runs that a killed process left RUNNING on this host are marked KILLED first; failures end the
entry with ``StudyFailed`` listing what failed and what did not start.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

from glioma.config import ExecutorConfig, StepConfig, as_params
from glioma.errors import GliomaError
from glioma.pipeline.ensure import RunContext
from glioma.pipeline.executors import Outcome, Placement, run_serial
from glioma.pipeline.graph import Graph, Node
from glioma.pipeline.keys import NodeResult
from glioma.pipeline.ray_executor import run_ray
from glioma.tracking import configure_tracking, open_run
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
    """The tracking URI of this run's executor; with Ray on a local file store, a loopback
    server, which this process uses too while it runs (one writer to the database file)."""
    uri = configure_tracking()
    if settings.executor == "serial" or not is_local_store(uri):
        yield uri
        return
    with loopback_server(uri) as server:
        print(f"tracking server for the parallel steps: {server} (store {uri})")
        mlflow.set_tracking_uri(server)
        try:
            yield server
        finally:
            mlflow.set_tracking_uri(uri)


def take_project_run() -> str | None:
    """The run ``mlflow run`` created (``MLFLOW_RUN_ID``), taken once by the entry.

    MLflow's ``start_run`` resumes that run on its first call, whatever run that call meant to
    start; taken here, only the node placed in it (``RunContext.adopt_run_id``) carries on in it.
    """
    return os.environ.pop("MLFLOW_RUN_ID", None)


def header(graph: Graph, prefix: str) -> None:
    counts = ", ".join(f"{n} {step}" for step, n in graph.steps().items())
    print(f"{prefix}: {len(graph)} step(s) in the graph ({counts})")


def execute(graph: Graph, place: Placement, settings: ExecutorConfig) -> Outcome:
    """Run every node of ``graph`` where ``place`` says, serially or on Ray."""
    with parallel_store(settings) as uri:
        if settings.executor == "ray":
            return run_ray(graph, place, settings=settings, tracking_uri=uri)
        return run_serial(graph, place)


def run_entry(graph: Graph, config: StepConfig) -> Invocation:
    """A single entry point's graph, its one target carrying on in the ``mlflow run`` run."""
    (target,) = graph.targets
    configure_tracking()
    sweep_orphans(config.step)
    header(graph, config.step)
    project_run = take_project_run()
    here = RunContext(experiment_id(), parent_run_id=project_run, prefix=config.step)
    adopting = replace(here, parent_run_id=None, adopt_run_id=project_run)

    def place(node: Node) -> RunContext:
        return adopting if node == target and project_run else here

    outcome = execute(graph, place, SERIAL)
    close_project_run(project_run, target, outcome)
    return finish(Invocation(project_run, outcome))


def run_target(target: Node, config: StepConfig) -> NodeResult:
    """A single entry point's one target (and what it needs): ``run_entry`` of its graph."""
    return run_entry(Graph([target]), config).result(target)


def run_group(
    graph: Graph,
    config: StepConfig,
    *,
    settings: ExecutorConfig = SERIAL,
    summarise: Callable[[Outcome], Any] | None = None,
) -> Invocation:
    """Several targets under one group run of ``config``'s step; ``summarise`` (main's tables and
    figures) runs in it when every node finished."""
    configure_tracking()
    sweep_orphans(config.step)
    header(graph, config.step)
    project_run = take_project_run()
    tags = {"profile": config.profile}
    with open_run(config.step, as_params(config), tags, adopt_run_id=project_run) as run:
        context = RunContext(experiment_id(), parent_run_id=run.info.run_id, prefix=config.step)
        outcome = execute(graph, lambda node: context, settings)
        mlflow.log_metrics({"steps_run": outcome.ran, "steps_reused": outcome.reused})
        complete = not outcome.failures and not outcome.not_started
        summary = summarise(outcome) if summarise is not None and complete else None
        invocation = Invocation(run.info.run_id, outcome, summary)
        if outcome.failures:
            raise StudyFailed(outcome)
    return invocation


def run_under(
    graph: Graph,
    config: StepConfig,
    parent_run_id: str,
    *,
    settings: ExecutorConfig = SERIAL,
    nests: Mapping[Node, str] | None = None,
) -> Invocation:
    """Under ``parent_run_id``, a run open already (tune's); ``nests``: nodes that go under
    another run instead (a trial's steps, its trial run)."""
    header(graph, config.step)
    context = RunContext(experiment_id(), parent_run_id=parent_run_id, prefix=config.step)
    runs = {node: replace(context, parent_run_id=run) for node, run in (nests or {}).items()}
    outcome = execute(graph, lambda node: runs.get(node, context), settings)
    return finish(Invocation(parent_run_id, outcome))


def close_project_run(project_run: str | None, target: Node, outcome: Outcome) -> None:
    """When the target was reused, the run ``mlflow run`` made says so and ends FINISHED."""
    result = outcome.results.get(target)
    if not project_run or result is None or result.run_id == project_run:
        return
    client = MlflowClient()
    if client.get_run(project_run).info.status != "RUNNING":
        return
    client.set_tag(project_run, "step", "invocation")
    client.set_tag(project_run, REUSED_RUN, result.run_id)
    client.set_terminated(project_run, "FINISHED")


def finish(invocation: Invocation) -> Invocation:
    if invocation.outcome.failures:
        raise StudyFailed(invocation.outcome)
    return invocation
