"""The whole study's config (``main``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from glioma.config.classify import setup_list
from glioma.config.executor import ExecutorConfig
from glioma.config.fields import UPSTREAM, VOLATILE, StepConfig, check, param
from glioma.config.synthetic import PlanFields


@dataclass(frozen=True, kw_only=True)
class MainConfig(ExecutorConfig, StepConfig, PlanFields):
    """The whole study: both sites prepared, four setups trained per site, both directions (the
    plan's fields, ``ddpm_scope``, ``synthetic_ratio`` and ``ddpm_mi_weight``, are
    ``glioma.config.synthetic``'s)."""

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
    seeds: str = param(
        "",
        "training seeds, e.g. 0,1,2: DDPMs, samples, classifiers and evaluations once per seed "
        "(prepare and the splits, made with seed, are shared); '': seed alone",
    )
    n_boot: int = param(1000, "bootstrap resamples of subjects for the 95 % intervals")
    workers: int = param(2, "worker processes of prepare", role=VOLATILE)
    phantom_scale: float = param(
        0.25, "fraction of the study's cohort sizes for the phantom", section="prepare"
    )
    imagenet_weights: str = param(
        "",
        "the classifiers' start: '' torch's hub cache if there, else random; 'required': the "
        "hub cache's, else stop (the paper profile's); 'none': random; or a weights file",
        section="train_cls",
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

    def site_data(self) -> dict[str, str]:
        """What prepare reads for each site: {site_a: data_a, site_b: data_b}."""
        return {self.site_a: self.data_a, self.site_b: self.data_b}

    def directions_sites(self) -> list[tuple[str, str]]:
        """(source, target) site pairs of the directions asked for."""
        pairs = {"a-to-b": (self.site_a, self.site_b), "b-to-a": (self.site_b, self.site_a)}
        return list(pairs.values()) if self.directions == "both" else [pairs[self.directions]]

    def check(self) -> None:
        self.check_executor()
        setup_list(self.setups)
        self.check_plan()
        check(self.site_a != self.site_b, f"site_b: must differ from site_a {self.site_a!r}")
        self.training_seeds()
        check(self.n_boot >= 100, f"n_boot: must be >= 100, got {self.n_boot}")
        check(1 <= self.workers <= 64, f"workers: must be 1..64, got {self.workers}")
        check(
            0.0 < self.phantom_scale <= 4.0,
            f"phantom_scale: must be in (0, 4], got {self.phantom_scale}",
        )
