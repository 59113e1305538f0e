"""Executors: run a graph's nodes one at a time in this process, or as Ray tasks.

Both hand each node the results of its inputs and call ``ensure``; both give the same
``Outcome``: a result per finished node, the reason per failed node, and the nodes that were
not started because an input failed (independent nodes still finish).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from glioma.pipeline.ensure import RunContext, StepFailed, ensure
from glioma.pipeline.graph import Graph, Node
from glioma.pipeline.keys import NodeResult

# Where each node's run goes (its parent, or the run it carries on in): the entry decides.
Placement = Callable[[Node], RunContext]


@dataclass
class Outcome:
    graph: Graph
    results: dict[Node, NodeResult] = field(default_factory=dict)
    failures: dict[Node, str] = field(default_factory=dict)  # node -> one-line reason
    not_started: dict[Node, Node] = field(default_factory=dict)  # node -> the failed input

    def __post_init__(self) -> None:
        self.results = {**self.graph.given, **self.results}  # given runs: known already

    def in_order(self, step: str) -> list[tuple[Node, NodeResult]]:
        """The finished nodes of ``step`` in graph order (executors finish them in any order)."""
        return [
            (n, self.results[n]) for n in self.graph.nodes if n.step == step and n in self.results
        ]

    @property
    def ran(self) -> int:
        given = self.graph.given
        return sum(not r.reused for n, r in self.results.items() if n not in given)

    @property
    def reused(self) -> int:
        given = self.graph.given
        return sum(r.reused for n, r in self.results.items() if n not in given)

    def blocked_by(self, item: Node) -> Node | None:
        """The first input of ``item`` that failed (or could not start), if any."""
        for _, upstream in item.inputs:
            if upstream in self.failures:
                return upstream
            if upstream in self.not_started:
                return self.not_started[upstream]
        return None

    def failure_report(self) -> str:
        """What failed, what did not start, and that a rerun continues from what finished.

        One line when a single step failed and nothing else was at stake (a one-step entry).
        """
        by_reason: dict[str, list[str]] = {}
        for node, reason in self.failures.items():
            by_reason.setdefault(reason, []).append(node.label)
        failed = [
            f"{labels[0]}{f' (and {len(labels) - 1} more: {labels[-1]} ...)' if labels[1:] else ''}"
            f": {reason}"
            for reason, labels in by_reason.items()
        ]  # one line per reason: five folds refused for one cause say it once
        if len(self.failures) == 1 and not self.not_started and not self.ran + self.reused:
            return failed[0]
        lines = [f"{len(self.failures)} step(s) failed:", *(f"  {line}" for line in failed)]
        if self.not_started:
            lines.append(f"{len(self.not_started)} step(s) not started (an input failed):")
            lines += [f"  {n.label} (needs {u.label})" for n, u in self.not_started.items()]
        lines.append(
            f"{self.ran} ran and {self.reused} were reused; run the same command again to "
            "continue: what finished is reused"
        )
        return "\n".join(lines)


def run_serial(graph: Graph, place: Placement) -> Outcome:
    """Every node in graph order, in this process, each run where ``place`` says."""
    outcome = Outcome(graph)
    for item in graph.nodes:
        if item in outcome.results:
            continue  # a given run
        blocker = outcome.blocked_by(item)
        if blocker is not None:
            outcome.not_started[item] = blocker
            continue
        inputs = {name: outcome.results[up] for name, up in item.inputs}
        context = place(item)
        try:
            outcome.results[item] = ensure(item, inputs, context)
        except StepFailed as failed:
            seen = failed.reason in outcome.failures.values()
            shown = f"{item.label} (the same reason)" if seen else failed
            print(f"{context.prefix}: FAILED {shown}", flush=True)
            outcome.failures[item] = failed.reason
    return outcome
