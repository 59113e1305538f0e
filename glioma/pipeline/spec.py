"""What the graph machinery knows about a step: its inputs, how to run it, what to publish.

Each step module under ``glioma.pipeline.steps`` defines one ``StepSpec``. A step's inputs are
a typed record (a ``StepInputs``): its node builder fills it with upstream nodes, ``flat`` names
each one (those names are the reuse key's and the lineage tags': ``<name>_run``), and ``read``
rebuilds the record from the finished results under those names, checking that every input
the step's config needs is there and is what it claims (grade, site, variant), so a renamed or
missing input stops the step with one line instead of changing what it computes. ``run``
computes and logs inside the run that ``ensure`` opened; ``publish`` points registry aliases at
a result, after a run and after a reuse alike, so an alias always names what the last command
used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from glioma.errors import DataError
from glioma.pipeline.keys import NodeResult

T = TypeVar("T")  # an upstream: a declared Node, or the NodeResult it finished as


class StepInputs:
    """A step's inputs: a frozen dataclass whose fields are upstream nodes (at declaration) or
    their results (when the step runs)."""

    def flat(self) -> dict[str, Any]:
        """Each upstream under its input name."""
        return {name: value for name, value in vars(self).items() if value is not None}

    @classmethod
    def read(cls, flat: Mapping[str, NodeResult], config: Any) -> StepInputs:
        """The record of ``flat`` (input name -> result), checked against ``config``."""
        return cls(**{name: needed(flat, name, cls.__name__) for name in cls.__dataclass_fields__})


def needed(flat: Mapping[str, Any], name: str, where: str) -> Any:
    """``flat[name]``, or one line naming what is missing and where."""
    if name not in flat:
        raise DataError(f"{where}: input {name!r} is missing (given: {', '.join(sorted(flat))})")
    return flat[name]


def tags_of(upstream: Any) -> dict[str, str]:
    """The display tags of a declared node or a finished run."""
    tags = upstream.tags
    return dict(tags) if isinstance(tags, tuple) else tags


@dataclass(frozen=True)
class NoInputs(StepInputs):
    """A step that reads no run (prepare: files on disk)."""


@dataclass(frozen=True)
class SyntheticSet(Generic[T]):
    """One grade's samples and the DDPM that drew them."""

    sample: T
    ddpm: T

    def check(self, *, grade: str, site: str, variant: str, where: str) -> None:
        """The set is of ``grade``, ``site`` and ``variant``: one line naming the mismatch."""
        wanted = {"grade": grade, "site": site, "variant": variant}
        for role, upstream in (("sample", self.sample), ("DDPM", self.ddpm)):
            tags = tags_of(upstream)
            for key, value in wanted.items():
                found = tags.get(key, "")
                if found != value and (role == "sample" or found):  # a conditional DDPM: no grade
                    raise DataError(
                        f"{where}: the {grade} synthetic set's {role} is {key} {found or '(none)'}"
                        f", not {value}"
                    )


@dataclass(frozen=True)
class StepSpec:
    name: str
    run: Callable[[Any, Any], None]
    inputs: type[StepInputs] = NoInputs
    publish: Callable[[Any, NodeResult], None] | None = None
    uses_torch: bool = True  # a GPU helps it: on a cluster with GPUs, Ray gives it one
    trains: bool = False  # it trains networks: its run records MLflow's system metrics
