"""One reuse key for every step, derived from what can change its result.

key = sha256 of
  - the step's name,
  - every config field whose role is ``result`` (volatile fields, such as the device or the
    checkpoint cadence, and upstream fields, which the inputs stand for, are left out),
    each as the string MLflow would log,
  - each input's run id and data hash,
  - the fingerprint of external data the step reads (prepare's input files),
  - the code fingerprint: a hash of the package's source files as they are on disk.

A finished run whose ``reuse_key`` tag equals a node's key is that node's result; any other
difference, a source edit included, makes a new run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import mlflow

from glioma.config import result_fields
from glioma.names import lineage_tag, param_text
from glioma.pipeline.graph import Node


@dataclass(frozen=True)
class NodeResult:
    """What a finished node hands on: its run, and the tags later steps read."""

    step: str
    run_id: str
    tags: dict[str, str]
    reused: bool = False
    # What the run logged, so a step reads its inputs' results instead of asking MLflow again.
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    artifact_uri: str = ""

    @property
    def data_hash(self) -> str:
        return self.tags.get("data_hash", "")

    def input_run(self, name: str) -> str:
        """The run that fed this result's input ``name`` (its lineage tag), or ''."""
        return self.tags.get(lineage_tag(name), "")

    @classmethod
    def of(cls, run: mlflow.entities.Run, *, reused: bool) -> NodeResult:
        tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
        return cls(
            tags.get("step", ""),
            run.info.run_id,
            tags,
            reused,
            params=dict(run.data.params),
            metrics=dict(run.data.metrics),
            artifact_uri=run.info.artifact_uri,
        )


def reuse_key(node: Node, inputs: dict[str, NodeResult], code: str) -> str:
    """The key of ``node`` with these input results under this code (module docstring)."""
    payload = {
        "step": node.step,
        "config": {k: param_text(v) for k, v in result_fields(node.config).items()},
        "inputs": {name: [r.run_id, r.data_hash] for name, r in sorted(inputs.items())},
        "data": node.data,
        "code": code,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]
