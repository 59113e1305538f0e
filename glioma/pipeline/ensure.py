"""``ensure``: the one get-or-run. Reuse, running, nesting, counting and the console line.

For a node whose inputs are done: compute its reuse key (``glioma.pipeline.keys``); if a
FINISHED run of the step has that key, reuse it ("reusing ... (run id)"); otherwise open the
step's run under the study run ("running ..."), tag it with the key, the code, the process and
its lineage (``<input>_run`` per input), and let the step compute and log in it. A failing step
ends its run FAILED and raises ``StepFailed`` with the step and the one-line reason.
"""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass, field

import mlflow
import torch

from glioma.config import as_params
from glioma.errors import GliomaError
from glioma.names import lineage_tag
from glioma.pipeline.graph import Node
from glioma.pipeline.keys import NodeResult, reuse_key
from glioma.pipeline.spec import StepSpec
from glioma.pipeline.steps import spec_of
from glioma.tracking import code_fingerprint, git_commit, open_run
from glioma.tracking.reuse import find_finished_run
from glioma.tracking.runs import (
    CODE_FINGERPRINT,
    GIT_COMMIT,
    RAY_NODE,
    REUSE_KEY,
    TORCH_THREADS,
    one_line,
)


class StepFailed(GliomaError):
    """A step's run failed; ``label`` names the step, the message says why on one line."""

    def __init__(self, label: str, reason: str):
        super().__init__(label, reason)  # both in args: Ray pickles it to the driver
        self.label, self.reason = label, reason

    def __str__(self) -> str:
        return f"{self.label}: {self.reason}"


@dataclass(frozen=True)
class RunContext:
    """Where one node's run goes: the study's experiment, under ``parent_run_id`` (when there is
    one), or carried on in ``adopt_run_id``, the run ``mlflow run`` created (so ``mlflow run -e
    prepare`` gives one prepare run). The entry decides it per node (``Placement``)."""

    experiment_id: str | None = None
    parent_run_id: str | None = None
    adopt_run_id: str | None = None
    prefix: str = "glioma"
    commit: str = field(default_factory=git_commit)  # the driver's: a Ray worker's has none
    ray_node: str = ""


def ensure(node: Node, inputs: dict[str, NodeResult], context: RunContext) -> NodeResult:
    """The result of ``node`` given its inputs' results: reused when possible, else run."""
    spec = spec_of(node.step)
    code = code_fingerprint()
    key = reuse_key(node, inputs, code)
    found = find_finished_run(node.step, key)
    if found is not None:
        print(f"{context.prefix}: reusing {node.label} ({found.info.run_id})", flush=True)
        result = NodeResult.of(found, reused=True)
    else:
        print(f"{context.prefix}: running {node.label}", flush=True)
        result = run_node(node, spec, inputs, context, key=key, code=code)
    if spec.publish is not None:
        spec.publish(node.config, result)
    return result


def run_node(
    node: Node,
    spec: StepSpec,
    inputs: dict[str, NodeResult],
    context: RunContext,
    *,
    key: str,
    code: str,
) -> NodeResult:
    tags = dict(node.tags)
    tags |= {lineage_tag(name): result.run_id for name, result in inputs.items()}
    tags |= {REUSE_KEY: key, CODE_FINGERPRINT: code, GIT_COMMIT: context.commit or git_commit()}
    # Not in the key (results are the same within training noise) but it changes the rounding:
    # a serial and a Ray study agree on the graph, not on every digit.
    tags[TORCH_THREADS] = torch.get_num_threads()
    if context.ray_node:
        tags[RAY_NODE] = context.ray_node
    try:
        record = spec.inputs.read(inputs, node.config)  # checked before a run opens
        with open_run(
            node.step,
            as_params(node.config),
            tags,
            experiment_id=context.experiment_id,
            parent_run_id=context.parent_run_id,
            adopt_run_id=context.adopt_run_id,
            system_metrics=spec.trains,
        ) as run:
            spec.run(node.config, record)
    except Exception as exc:
        if not isinstance(exc, GliomaError):  # a bug, not bad input: show where
            traceback.print_exc(file=sys.stderr)
        raise StepFailed(node.label, one_line(exc)) from exc
    return NodeResult.of(mlflow.get_run(run.info.run_id), reused=False)
