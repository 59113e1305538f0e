"""The study as a declared graph: a node is (step name, typed config, named upstream nodes).

Nodes are values: two declarations of the same step with the same config and inputs are one
node, so a sample that both a classifier fold and a score step need is drawn once. A graph is
the set of nodes its targets need, in an order where every node follows its inputs; what runs
them (one at a time, or as Ray tasks) is an executor's business (``glioma.pipeline.executors``).

A ``given`` node stands for a finished run the user named (``--prepare_run ID``): it has no
config to run. ``glioma.pipeline.given`` checks the run when the node is declared, and the
graph hands its result on (``Graph.given``): executors and ``ensure`` never see one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from glioma.tracking.runs import run_label

GIVEN = "given"


@dataclass(frozen=True)
class GivenRun:
    """The config of a ``given`` node: an existing run, the step it is a run of, and its
    result, read once when the node is declared (``glioma.pipeline.given``)."""

    run_id: str
    step: str
    result: Any = field(default=None, compare=False)  # its NodeResult


@dataclass(frozen=True)
class Node:
    """One step to ensure: ``step`` with ``config`` on the results of ``inputs``.

    ``data`` fingerprints external data the step reads (prepare's input files): it joins the
    reuse key, so edited data is read again.
    """

    step: str
    config: Any
    inputs: tuple[tuple[str, Node], ...] = ()
    data: str = ""
    tags: tuple[tuple[str, Any], ...] = ()

    @property
    def upstream(self) -> dict[str, Node]:
        return dict(self.inputs)

    @property
    def label(self) -> str:
        """``train_ddpm-phantom-a-HGG-mi-fold3``: what the console and the run name say."""
        if self.step == GIVEN:
            return f"{self.config.step} {self.config.run_id}"
        return run_label(self.step, dict(self.tags))


def node(
    step: str,
    config: Any,
    inputs: Any = None,
    *,
    tags: dict[str, Any] | None = None,
    data: str = "",
) -> Node:
    """Declare a node on ``inputs``, its step's typed record of upstream nodes (a
    ``glioma.pipeline.spec.StepInputs``; none for a step that reads no run); ``tags`` are the
    run's display tags (site, grade, ...)."""
    shown = tuple(sorted((k, v) for k, v in (tags or {}).items() if v not in (None, "")))
    named = inputs.flat() if inputs is not None else {}
    return Node(step, config, tuple(sorted(named.items())), data, shown)


def tagged(targets: Iterable[Node], name: str, value: Any, *, shared: Iterable[Node]) -> list[Node]:
    """``targets`` and everything they need with the display tag ``name=value``, except the
    ``shared`` nodes (and what they need): a copy of a study's part under one training seed,
    whose labels then differ from the other copies'. Tags are not in a reuse key."""
    kept = set(Graph(shared).nodes)
    done: dict[Node, Node] = {}

    def retag(current: Node) -> Node:
        if current in kept:
            return current
        if current not in done:
            inputs = tuple((k, retag(upstream)) for k, upstream in current.inputs)
            tags = tuple(sorted({**dict(current.tags), name: value}.items()))
            done[current] = Node(current.step, current.config, inputs, current.data, tags)
        return done[current]

    return [retag(target) for target in targets]


class Graph:
    """The nodes that ``targets`` need, each once, every node after its inputs."""

    def __init__(self, targets: Iterable[Node]):
        self.targets: tuple[Node, ...] = tuple(dict.fromkeys(targets))
        order: dict[Node, None] = {}
        for target in self.targets:
            self._visit(target, order, set())
        self.nodes: tuple[Node, ...] = tuple(order)

    def _visit(self, current: Node, order: dict[Node, None], path: set[Node]) -> None:
        if current in order:
            return
        if current in path:
            raise ValueError(f"graph: {current.label} depends on itself")
        path.add(current)
        for _, upstream in current.inputs:
            self._visit(upstream, order, path)
        path.discard(current)
        order[current] = None

    def __len__(self) -> int:
        return len(self.nodes)

    @property
    def given(self) -> dict[Node, Any]:
        """The given nodes and their results, known before anything runs."""
        return {n: n.config.result for n in self.nodes if n.step == GIVEN}

    def steps(self) -> dict[str, int]:
        """How many nodes of each step: what the console says before it starts."""
        counts: dict[str, int] = {}
        for item in self.nodes:
            counts[item.step] = counts.get(item.step, 0) + 1
        return counts
