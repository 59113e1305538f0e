"""The study plan: what the study decides about its synthetic images, written once.

Which DDPM serves a classifier fold (``ddpm_scope``), the MI weight of the ``mi`` variant, how
many images per real one (``synthetic_ratio``), and any further DDPM, sampler or scoring
settings (tune's suggested point, its unregistered DDPMs) are one frozen value. Every
train_ddpm -> sample -> score_gen chain (``main``, the single entry points, ``tune``) builds its
configs from one, so no classifier config is ever built to declare a DDPM, a sample or a score.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from glioma.config.build import build_config, profile_values
from glioma.config.classify import TrainClsConfig, held_out_for, scope_groups
from glioma.config.ddpm import SampleConfig, TrainDDPMConfig, ddpm_config_for
from glioma.config.fields import check
from glioma.config.profiles import DEFAULT_PROFILE
from glioma.config.scoring import ScoreGenConfig

Settings = Mapping[str, Any]


def _frozen(values: Settings | None) -> Settings:
    return MappingProxyType(dict(values or {}))


@dataclass(frozen=True, kw_only=True)
class StudyPlan:
    """The synthetic side of a study (module docstring); checks itself at construction."""

    profile: str = DEFAULT_PROFILE
    seed: int = 0
    ddpm_scope: str = "fold"
    mi_weight: float = 0.1  # of the ``mi`` variant's DDPMs; ``std`` ones have none
    synthetic_ratio: float = 1.0  # synthetic images per real subject, per grade
    ddpm: Settings = field(default_factory=dict)  # further train_ddpm settings (tune's point)
    sample: Settings = field(default_factory=dict)  # sampler settings (sampler, steps, out_dir)
    score: Settings = field(default_factory=dict)  # score_gen settings (tune: no TSTR)

    def __post_init__(self) -> None:
        for name in ("ddpm", "sample", "score"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        scope_groups(self.ddpm_scope)
        check(0.0 < self.mi_weight < 1.0, f"mi_weight: must be in (0, 1), got {self.mi_weight}")
        check(
            0.0 < self.synthetic_ratio <= 10.0,
            f"synthetic_ratio: must be in (0, 10], got {self.synthetic_ratio}",
        )

    @property
    def common(self) -> dict[str, Any]:
        return {"profile": self.profile, "seed": self.seed}

    def held_out(self, fold: int) -> tuple[int, ...]:
        """The folds that the DDPMs serving classifier fold ``fold`` never saw."""
        return held_out_for(self.ddpm_scope, fold)

    def ddpm_config(
        self, site: str, grade: str, variant: str, *, held_out: tuple[int, ...] = ()
    ) -> TrainDDPMConfig:
        """The DDPM that draws ``grade`` of ``site`` in ``variant`` (the conditional one of both
        grades where the profile says so)."""
        overrides = {"site": site, "mi_weight": self.mi_weight if variant == "mi" else 0.0}
        overrides |= {"held_out": ",".join(map(str, held_out)), **self.common, **self.ddpm}
        return ddpm_config_for(grade, overrides)

    def sample_config(self, site: str, grade: str, variant: str) -> SampleConfig:
        overrides = {"site": site, "grade": grade, "variant": variant, **self.common}
        overrides |= {"n_per_subject": self.synthetic_ratio, **self.sample}
        return build_config(SampleConfig, overrides)

    def score_config(self, site: str, grade: str, variant: str) -> ScoreGenConfig:
        overrides = {"site": site, "grade": grade, "variant": variant, **self.common}
        return build_config(ScoreGenConfig, overrides | dict(self.score))


def study_plan(
    *,
    profile: str = DEFAULT_PROFILE,
    seed: int = 0,
    ddpm_scope: str = "",
    mi_weight: float = 0.0,
    synthetic_ratio: float = 1.0,
    **settings: Settings,
) -> StudyPlan:
    """The plan under ``profile``: an empty scope or a zero MI weight take the profile's."""
    chosen = profile_values(TrainClsConfig, profile)
    fields = TrainClsConfig.__dataclass_fields__
    scope = ddpm_scope or chosen.get("ddpm_scope", fields["ddpm_scope"].default)
    weight = mi_weight or chosen.get("ddpm_mi_weight", fields["ddpm_mi_weight"].default)
    return StudyPlan(
        profile=profile,
        seed=seed,
        ddpm_scope=scope,
        mi_weight=float(weight),
        synthetic_ratio=synthetic_ratio,
        **settings,
    )


def plan_of(config: TrainClsConfig) -> StudyPlan:
    """The plan a ``train_cls`` run stands on: its ddpm setups' DDPMs and samples."""
    return StudyPlan(
        profile=config.profile,
        seed=config.seed,
        ddpm_scope=config.ddpm_scope,
        mi_weight=config.ddpm_mi_weight,
        synthetic_ratio=config.synthetic_ratio,
    )
