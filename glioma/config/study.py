"""The whole study's config (``main``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from glioma.config.classify import (
    DDPM_MI_WEIGHT_HELP,
    DDPM_SCOPE_HELP,
    scope_groups,
    setup_list,
)
from glioma.config.executor import ExecutorConfig
from glioma.config.fields import UPSTREAM, VOLATILE, StepConfig, check, param
from glioma.config.plan import StudyPlan, study_plan


@dataclass(frozen=True, kw_only=True)
class MainConfig(ExecutorConfig, StepConfig):
    """The whole study: both sites prepared, four setups trained per site, both directions."""

    step: ClassVar[str] = "main"
    renamed: ClassVar[dict[str, str]] = {"mi_weight": "ddpm_mi_weight"}

    site_a: str = param("phantom-a", "the first site's name")
    data_a: str = param(
        "phantom", "what prepare reads for site_a: phantom, a BraTS root or a CSV", role=UPSTREAM
    )
    site_b: str = param("phantom-b", "the second site's name")
    data_b: str = param("phantom", "what prepare reads for site_b", role=UPSTREAM)
    directions: str = param(
        "both",
        "both; a-to-b (train on site_a, evaluate on site_b, which may be evaluation-only); b-to-a",
        choices=("both", "a-to-b", "b-to-a"),
    )
    setups: str = param("baseline,augment,ddpm,ddpm_mi", "the setups compared")
    ddpm_mi_weight: float = param(
        0.0, "0: the profile's (0.1, the paper's, in both); " + DDPM_MI_WEIGHT_HELP
    )
    synthetic_ratio: float = param(1.0, "synthetic images per real training image, per grade")
    ddpm_scope: str = param("", "'': the profile's (quick site, paper fold); " + DDPM_SCOPE_HELP)
    seeds: str = param(
        "",
        "training seeds, e.g. 0,1,2: DDPMs, samples, classifiers and evaluations once per seed "
        "(prepare and the splits, made with seed, are shared); '': seed alone",
    )
    n_boot: int = param(1000, "bootstrap resamples of subjects for the 95 % intervals")
    workers: int = param(2, "worker processes of prepare", role=VOLATILE)
    phantom_scale: float = param(0.0, "0: the profile's value (quick 0.25, paper 1.0)")
    imagenet_weights: str = param(
        "",
        "the classifiers' start: '' the profile's (quick: hub cache if there, else random; "
        "paper: required, main stops without them); 'none': random; or a weights file",
    )

    def plan(self) -> StudyPlan:
        """What the study decides about its synthetic images (its DDPMs, their MI weight, the
        share of synthetic images), with the profile's scope and weight where none is given."""
        return study_plan(
            profile=self.profile,
            seed=self.seed,
            ddpm_scope=self.ddpm_scope,
            mi_weight=self.ddpm_mi_weight,
            synthetic_ratio=self.synthetic_ratio,
        )

    def training_seeds(self) -> tuple[int, ...]:
        """The seeds the study trains with (``seeds``, else ``seed``); ``seed`` alone makes the
        data's splits."""
        if not self.seeds.strip():
            return (self.seed,)
        parts = [p.strip() for p in self.seeds.split(",")]
        check(
            all(p.isdigit() for p in parts),
            f"seeds: expected comma-separated non-negative integers, got {self.seeds!r}",
        )
        found = tuple(int(p) for p in parts)
        check(len(set(found)) == len(found), f"seeds: {self.seeds!r} names a seed twice")
        return found

    def directions_sites(self) -> list[tuple[str, str]]:
        """(source, target) site pairs of the directions asked for."""
        pairs = {"a-to-b": (self.site_a, self.site_b), "b-to-a": (self.site_b, self.site_a)}
        return list(pairs.values()) if self.directions == "both" else [pairs[self.directions]]

    def check(self) -> None:
        self.check_executor()
        setup_list(self.setups)
        if self.ddpm_scope:
            scope_groups(self.ddpm_scope)
        check(self.site_a != self.site_b, f"site_b: must differ from site_a {self.site_a!r}")
        check(
            0.0 <= self.ddpm_mi_weight < 1.0,
            f"ddpm_mi_weight: must be in [0, 1) (0: the profile's), got {self.ddpm_mi_weight}",
        )
        check(
            0.0 < self.synthetic_ratio <= 10.0,
            f"synthetic_ratio: must be in (0, 10], got {self.synthetic_ratio}",
        )
        self.training_seeds()
        check(self.n_boot >= 100, f"n_boot: must be >= 100, got {self.n_boot}")
        check(1 <= self.workers <= 64, f"workers: must be 1..64, got {self.workers}")
        check(
            0.0 <= self.phantom_scale <= 4.0,
            f"phantom_scale: must be in [0, 4], got {self.phantom_scale}",
        )
