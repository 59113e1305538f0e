"""The Ray executor: every node a Ray task, its inputs' results passed as object refs.

Ray is the scheduler: a task starts when the tasks it depends on have finished and the
resources it declares are free (``cpus_per_task`` threads; a GPU for torch steps when the
cluster has GPUs and the step may use CUDA). When a task fails, Ray does not start the tasks
that depend on it and hands them the failure, which is how ``Outcome`` tells a failed node
from one that was not started. Without an address the study starts a local Ray on this
machine, one CPU slot per core; ``auto`` or ``ray://host:10001`` joins an existing cluster.
The package travels to the workers with the tasks (``runtime_env`` ``py_modules``), so every
worker runs the driver's code and the code fingerprint in the reuse keys is the driver's.
Ray itself is imported when a study runs on it, not with this module: every step's process
imports the executors, and most never start Ray (0.7 s of each one's start-up).
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

from glioma.config import ExecutorConfig
from glioma.packaging import PACKAGE_DIR
from glioma.pipeline.ensure import RunContext, StepFailed, ensure
from glioma.pipeline.executors import Outcome, Placement
from glioma.pipeline.graph import Graph, Node
from glioma.pipeline.keys import NodeResult
from glioma.pipeline.steps import spec_of

if TYPE_CHECKING:
    import ray

# What the workers need from the driver's environment, besides the tracking URI.
PASSED_ON = ("GLIOMA_HOME", "GLIOMA_PROFILES", "TORCH_HOME", "MLFLOW_EXPERIMENT_NAME")


def ensure_task(node: Node, context: RunContext, threads: int, names, *results) -> NodeResult:
    """One node on a Ray worker (``ray.remote`` of it): the same ``ensure`` as the serial
    executor."""
    os.environ.pop("MLFLOW_RUN_ID", None)  # the driver's project run is not this task's
    torch.set_num_threads(threads)
    import ray

    here = replace(context, ray_node=ray.get_runtime_context().get_node_id())
    return ensure(node, dict(zip(names, results)), here)


def worker_env(tracking_uri: str) -> dict[str, str]:
    """Workers: the study's store, no progress bars (they would interleave), no run links."""
    env = {k: os.environ[k] for k in PASSED_ON if k in os.environ}
    env |= {"MLFLOW_TRACKING_URI": tracking_uri, "TQDM_DISABLE": "1"}
    return env | {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}


def start_ray(settings: ExecutorConfig, tracking_uri: str) -> None:
    import ray

    os.environ.setdefault("RAY_DEDUP_LOGS", "0")  # every step's console line, not "repeated 9x"
    runtime_env = {"env_vars": worker_env(tracking_uri), "py_modules": [str(PACKAGE_DIR)]}
    if settings.ray_address:
        ray.init(address=settings.ray_address, runtime_env=runtime_env)
    else:
        ray.init(
            address="local",  # a Ray of its own, even where `ray start` runs one already
            num_cpus=os.cpu_count(),
            include_dashboard=False,
            object_store_memory=256 * 1024**2,  # results are run ids: little to store
            runtime_env=runtime_env,
        )


def task_options(item: Node, settings: ExecutorConfig, cluster_gpus: float) -> dict:
    """The resources a node declares: CPU threads, and a GPU share for torch steps."""
    options = {"num_cpus": settings.cpus_per_task, "name": item.label}
    device = getattr(item.config, "device", "cpu")
    if spec_of(item.step).uses_torch and device != "cpu" and cluster_gpus > 0:
        options["num_gpus"] = settings.gpus_per_task
    return options


def collect(refs: dict[Node, ray.ObjectRef], outcome: Outcome) -> None:
    """Wait for every task; sort each into a result, a failure, or not started."""
    import ray
    from ray.exceptions import RayError, RayTaskError

    by_ref = {ref: item for item, ref in refs.items()}
    pending = list(by_ref)
    with tqdm(total=len(pending), desc="study", unit="step") as bar:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            item = by_ref[done[0]]
            bar.update()
            try:
                outcome.results[item] = ray.get(done[0])
            except RayTaskError as error:
                cause = error.cause
                if isinstance(cause, StepFailed) and cause.label != item.label:
                    failed = next(n for n in refs if n.label == cause.label)
                    outcome.not_started[item] = outcome.not_started.get(failed, failed)
                else:
                    reason = cause.reason if isinstance(cause, StepFailed) else str(cause)
                    outcome.failures[item] = reason
                    print(f"FAILED {item.label}: {reason}", flush=True)
            except RayError as error:  # the worker itself died (killed, out of memory)
                outcome.failures[item] = f"{type(error).__name__}: {str(error).splitlines()[0]}"


def run_ray(
    graph: Graph, place: Placement, *, settings: ExecutorConfig, tracking_uri: str
) -> Outcome:
    """Submit every node as a task (inputs as refs), each run where ``place`` says; collect."""
    import ray

    start_ray(settings, tracking_uri)
    remote = ray.remote(max_retries=0)(ensure_task)
    try:
        gpus = float(ray.cluster_resources().get("GPU", 0))
        nodes, workers = len(ray.nodes()), ray.cluster_resources().get("CPU", 0)
        prefix = place(graph.nodes[-1]).prefix
        print(f"{prefix}: Ray with {nodes} node(s), {workers:g} CPU(s), {gpus:g} GPU(s)")
        refs: dict[Node, ray.ObjectRef] = {}
        outcome = Outcome(graph)  # holds the given runs' results already
        for item in graph.nodes:
            if item in outcome.results:
                continue
            names = [name for name, _ in item.inputs]
            upstream = [refs[up] if up in refs else outcome.results[up] for _, up in item.inputs]
            task = remote.options(**task_options(item, settings, gpus))
            here = place(item)
            refs[item] = task.remote(item, here, settings.cpus_per_task, names, *upstream)
        collect(refs, outcome)
        return outcome
    finally:
        ray.shutdown()
