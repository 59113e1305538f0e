"""What the study decides about its synthetic images, declared and checked once.

Which DDPM serves a classifier fold (``ddpm_scope``), how many synthetic images join each real
one (``synthetic_ratio``) and the MI weight of the ``mi`` variant's DDPMs (``ddpm_mi_weight``)
are fields of ``main``, of ``train_cls`` and of the ``StudyPlan`` that declares the DDPMs behind
them. Each is declared here once, with its help and its check, and each is chosen by the
profile's ``plan`` section (quick: one DDPM per site; paper: one per fold), whichever config
holds it; a step's own section cannot set one (``glioma.config.build.check_profile_keys``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from glioma.config.fields import param
from glioma.config.profiles import profile_defaults
from glioma.errors import ConfigError, check
from glioma.names import N_FOLDS, PAPER_MI_WEIGHT

PLAN_SECTION = "plan"

DDPM_SCOPE_HELP = (
    "the DDPMs behind the ddpm setups: fold (one per fold, never saw it; the paper's), "
    "fold_groups:K (one per group of K groups of folds, never saw the group), or site (one per "
    "site: it saw the folds' validation subjects, never the test split)"
)


def scope_groups(scope: str) -> list[tuple[int, ...]]:
    """The fold groups of a ``ddpm_scope``: one DDPM per group, trained without its folds.

    ``fold`` -> [(0,), (1,), ...]; ``fold_groups:2`` -> [(0, 1, 2), (3, 4)]; ``site`` -> [()].
    """
    if scope == "site":
        return [()]
    if scope == "fold":
        return [(k,) for k in range(N_FOLDS)]
    name, _, count = scope.partition(":")
    check(
        name == "fold_groups" and count.isdigit() and 2 <= int(count) <= N_FOLDS,
        f"ddpm_scope: expected fold, fold_groups:K (K = 2..{N_FOLDS}) or site, got {scope!r}",
    )
    k, extra = divmod(N_FOLDS, int(count))
    sizes = [k + (i < extra) for i in range(int(count))]
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    return [tuple(range(a, a + n)) for a, n in zip(starts, sizes)]


def held_out_for(scope: str, fold: int) -> tuple[int, ...]:
    """The folds that the DDPM serving classifier fold ``fold`` never saw, under ``scope``."""
    return next(group for group in scope_groups(scope) if fold in group or not group)


def guarded_folds(scope: str, fold: int) -> tuple[int, ...]:
    """The folds whose subjects the leakage guard refuses in fold ``fold``'s DDPMs (besides the
    test split, which it always refuses): fold ``fold`` itself, except under ``site``."""
    return () if scope == "site" else (fold,)


@dataclass(frozen=True, kw_only=True)
class SyntheticShare:
    """What a classifier fold takes from the DDPMs: which ones serve it, and how many images."""

    ddpm_scope: str = param("fold", DDPM_SCOPE_HELP, section=PLAN_SECTION)
    synthetic_ratio: float = param(
        1.0, "synthetic images per real training image, per grade", section=PLAN_SECTION
    )

    def check_share(self) -> None:
        scope_groups(self.ddpm_scope)
        check(
            0.0 < self.synthetic_ratio <= 10.0,
            f"synthetic_ratio: must be in (0, 10], got {self.synthetic_ratio}",
        )


@dataclass(frozen=True, kw_only=True)
class PlanFields(SyntheticShare):
    """The share, and the MI weight of the DDPMs behind setup ``ddpm_mi``."""

    names: ClassVar[tuple[str, ...]] = ("ddpm_scope", "synthetic_ratio", "ddpm_mi_weight")

    ddpm_mi_weight: float = param(
        PAPER_MI_WEIGHT,
        "the MI weight of the DDPMs behind setup ddpm_mi (0.1: the paper's)",
        section=PLAN_SECTION,
    )

    def check_plan(self) -> None:
        self.check_share()
        check(
            0.0 < self.ddpm_mi_weight < 1.0,
            f"ddpm_mi_weight: must be in (0, 1), got {self.ddpm_mi_weight}",
        )

    def plan_values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.names}


def plan_defaults(profile: str) -> dict[str, Any]:
    """The plan fields under ``profile``: the declared defaults <- its ``plan`` section."""
    chosen = profile_defaults(profile, PLAN_SECTION)
    unknown = sorted(set(chosen) - set(PlanFields.names))
    if unknown:
        known = ", ".join(PlanFields.names)
        raise ConfigError(
            f"profile {profile!r}: {PLAN_SECTION}.{unknown[0]}: not a plan field; known: {known}"
        )
    declared = {f.name: f.default for f in dataclasses.fields(PlanFields)}
    return declared | chosen
