"""The study plan: the DDPMs, samples and scores behind the study's synthetic images, as one
frozen value built one way (``plan_for``).

Which DDPM serves a classifier fold, the MI weight of the ``mi`` variant and how many images
per real one are the plan fields (``glioma.config.synthetic``); any further DDPM, sampler or
scoring settings (tune's suggested point, its unregistered DDPMs) ride along. Every
train_ddpm -> sample -> score_gen chain (``main``, the single entry points, ``tune``) builds its
configs from one, so no classifier config is ever built to declare a DDPM, a sample or a score.
A chain's configs travel down as one value (``ChainConfigs``): the graph builders wire nodes
from them and never ask the plan again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from glioma.config.build import build_config
from glioma.config.classify import TrainClsConfig
from glioma.config.ddpm import SampleConfig, TrainDDPMConfig, ddpm_config_for
from glioma.config.fields import StepConfig
from glioma.config.profiles import DEFAULT_PROFILE
from glioma.config.scoring import ScoreGenConfig
from glioma.config.synthetic import PlanFields, held_out_for, plan_defaults
from glioma.names import GRADES, N_FOLDS, SETUP_VARIANT

Settings = Mapping[str, Any]


def _frozen(values: Settings | None) -> Settings:
    return MappingProxyType(dict(values or {}))


@dataclass(frozen=True)
class ChainConfigs:
    """One train_ddpm -> sample chain: the DDPM's config, its sampler's, and the classifier
    folds the DDPM never saw (its samples' ``fold`` tag)."""

    ddpm: TrainDDPMConfig
    sample: SampleConfig
    held_out: tuple[int, ...] = ()


FoldChains = Mapping[str, ChainConfigs]  # a classifier fold's chains, per grade


@dataclass(frozen=True, kw_only=True)
class StudyPlan(PlanFields):
    """The synthetic side of a study (module docstring); checks itself at construction."""

    profile: str = DEFAULT_PROFILE
    seed: int = 0
    ddpm: Settings = field(default_factory=dict)  # further train_ddpm settings (tune's point)
    sample: Settings = field(default_factory=dict)  # sampler settings (sampler, steps, out_dir)
    score: Settings = field(default_factory=dict)  # score_gen settings (tune: no TSTR)

    def __post_init__(self) -> None:
        for name in ("ddpm", "sample", "score"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        self.check_plan()

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
        weight = self.ddpm_mi_weight if variant == "mi" else 0.0
        overrides = {"site": site, "mi_weight": weight, "held_out": ",".join(map(str, held_out))}
        return ddpm_config_for(grade, overrides | self.common | dict(self.ddpm))

    def sample_config(self, site: str, grade: str, variant: str) -> SampleConfig:
        overrides = {"site": site, "grade": grade, "variant": variant, **self.common}
        overrides |= {"n_per_subject": self.synthetic_ratio, **self.sample}
        return build_config(SampleConfig, overrides)

    def score_config(self, site: str, grade: str, variant: str) -> ScoreGenConfig:
        overrides = {"site": site, "grade": grade, "variant": variant, **self.common}
        return build_config(ScoreGenConfig, overrides | dict(self.score))

    def chain(
        self,
        site: str,
        grade: str,
        variant: str,
        *,
        held_out: tuple[int, ...] = (),
        sample: SampleConfig | None = None,
    ) -> ChainConfigs:
        """The plan's DDPM of ``grade`` and ``variant`` without the ``held_out`` folds, and its
        sampler (``sample``: the user's, else the plan's)."""
        ddpm = self.ddpm_config(site, grade, variant, held_out=held_out)
        return ChainConfigs(ddpm, sample or self.sample_config(site, grade, variant), held_out)

    def fold_chains(self, site: str, variant: str, fold: int) -> FoldChains:
        """Per grade, the chain whose samples classifier fold ``fold`` trains with: the DDPM that
        ``ddpm_scope`` assigns it (one that never saw the fold, or the site's one)."""
        held_out = self.held_out(fold)
        return {g: self.chain(site, g, variant, held_out=held_out) for g in GRADES}

    def classifier_chains(self, config: TrainClsConfig) -> tuple[FoldChains, ...]:
        """Per fold of ``config``'s ensemble, its chains (none for a real-only setup)."""
        variant = SETUP_VARIANT.get(config.setup)
        if variant is None:
            return tuple({} for _ in range(N_FOLDS))
        return tuple(self.fold_chains(config.site, variant, k) for k in range(N_FOLDS))


def plan_for(config: StepConfig, **given: Any) -> StudyPlan:
    """The plan that ``config`` stands on, the one way to build one: the plan fields it holds
    (``main``, ``train_cls``), the profile's for those it does not (a sample or a score outside a
    study), then ``given`` (tune's trial: its MI weight and further settings)."""
    values = plan_defaults(config.profile)
    values |= {name: getattr(config, name) for name in PlanFields.names if hasattr(config, name)}
    return StudyPlan(profile=config.profile, seed=config.seed, **values | given)
