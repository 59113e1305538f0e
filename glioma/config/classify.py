"""The classifier's configs: one fold, the five-fold ensemble (``train_cls``), ``cross_eval``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from glioma.classify.settings import ClsSettings
from glioma.config.ddpm import DEVICE_HELP, DEVICES
from glioma.config.fields import (
    UPSTREAM,
    VOLATILE,
    StepConfig,
    built,
    check,
    choice_list,
    param,
)
from glioma.config.prepare import DATA_HELP, PREPARE_RUN_HELP
from glioma.config.synthetic import PlanFields, SyntheticShare
from glioma.names import N_FOLDS, SETUP_VARIANT, SETUPS, direction_of

ARCHITECTURES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


def setup_list(text: str) -> tuple[str, ...]:
    """``"baseline,ddpm"`` -> ("baseline", "ddpm"), each checked; ConfigError otherwise."""
    return choice_list("setups", text, SETUPS)


@dataclass(frozen=True, kw_only=True)
class ClsTrainingConfig(StepConfig, SyntheticShare):
    """What a fold classifier's training depends on: shared by one fold and the ensemble (the
    synthetic share's fields are ``glioma.config.synthetic``'s)."""

    profile_section: ClassVar[str] = "train_cls"
    renamed: ClassVar[dict[str, str]] = {"source": "data"}

    site: str = param("phantom-a", "the site the classifier trains on")
    setup: str = param(
        "baseline", "baseline, augment, ddpm (+ std DDPM images), ddpm_mi (+ mi)", choices=SETUPS
    )
    data: str = param("phantom", DATA_HELP, role=UPSTREAM)
    prepare_run: str = param("", PREPARE_RUN_HELP, role=UPSTREAM)
    arch: str = param("resnet18", "torchvision ResNet depth", choices=ARCHITECTURES)
    imagenet_weights: str = param(
        "",
        "'': torch's hub cache if there, else random; 'required': the hub cache's, else stop; "
        "'none': random; or a weights file",
    )
    epochs: int = param(30, "passes over the fold's training images")
    batch_size: int = param(32, "images per SGD step")
    lr: float = param(0.01, "peak of the one-cycle learning rate")
    weight_decay: float = param(1e-4, "SGD weight decay")
    device: str = param("auto", DEVICE_HELP, choices=DEVICES, role=VOLATILE)

    def check(self) -> None:
        self.check_share()
        check(self.epochs >= 1, f"epochs: must be >= 1, got {self.epochs}")
        check(self.batch_size >= 2, f"batch_size: must be >= 2, got {self.batch_size}")
        check(0.0 < self.lr < 1.0, f"lr: must be in (0, 1), got {self.lr}")
        check(self.weight_decay >= 0, f"weight_decay: must be >= 0, got {self.weight_decay}")

    def unused_fields(self) -> frozenset[str]:
        """baseline and augment read no DDPM: their scope and ratio cannot change them."""
        if self.setup in SETUP_VARIANT:
            return frozenset()
        return frozenset({"ddpm_scope", "synthetic_ratio"})


@dataclass(frozen=True, kw_only=True)
class TrainClsFoldConfig(ClsTrainingConfig):
    """One fold's classifier: validated on fold ``fold``, trained on the other non-test folds."""

    step: ClassVar[str] = "train_cls_fold"

    fold: int = param(0, "the fold this classifier is validated on")

    def check(self) -> None:
        super().check()
        check(0 <= self.fold < N_FOLDS, f"fold: must be 0..{N_FOLDS - 1}, got {self.fold}")

    @property
    def training(self) -> ClsSettings:
        """The library's training settings; each fold draws its own batches and augmentation."""
        return built(ClsSettings, self, seed=self.seed + self.fold)


@dataclass(frozen=True, kw_only=True)
class TrainClsConfig(ClsTrainingConfig, PlanFields):
    """Five fold classifiers of one site and setup, their ensemble, and its test evaluation."""

    step: ClassVar[str] = "train_cls"
    renamed: ClassVar[dict[str, str]] = {"mi_weight": "ddpm_mi_weight", "source": "data"}

    combine: str = param(
        "mean_prob",
        "ensemble: mean_prob (average probabilities) or mean_weights (one averaged network)",
        choices=("mean_prob", "mean_weights"),
    )

    def check(self) -> None:
        super().check()
        self.check_plan()

    def unused_fields(self) -> frozenset[str]:
        """The MI weight of the DDPMs only matters to ddpm_mi."""
        unused = super().unused_fields()
        return unused if self.setup == "ddpm_mi" else unused | {"ddpm_mi_weight"}

    def fold_config(self, fold: int) -> TrainClsFoldConfig:
        """The config of fold ``fold``: this one's training fields, nothing ensemble-only."""
        shared = {f.name: getattr(self, f.name) for f in dataclasses.fields(ClsTrainingConfig)}
        return TrainClsFoldConfig(fold=fold, **shared)


@dataclass(frozen=True, kw_only=True)
class CrossEvalConfig(StepConfig):
    """Evaluate the ensembles of a source site on every subject of a target site."""

    step: ClassVar[str] = "cross_eval"
    renamed: ClassVar[dict[str, str]] = {"source": "source_site", "target": "target_site"}

    source_site: str = param("phantom-a", "the site the ensembles were trained on")
    target_site: str = param("phantom-b", "the site they are tested on, all of its subjects")
    setups: str = param("baseline,augment,ddpm,ddpm_mi", "the setups compared (baseline first)")
    source_data: str = param("phantom", "what prepare reads for the source site", role=UPSTREAM)
    target_data: str = param("phantom", "what prepare reads for the target site", role=UPSTREAM)
    n_boot: int = param(1000, "bootstrap resamples of subjects for the 95 % intervals")

    @property
    def direction(self) -> str:
        return direction_of(self.source_site, self.target_site)

    def check(self) -> None:
        setup_list(self.setups)
        check(
            self.source_site != self.target_site,
            f"target_site: must differ from source_site {self.source_site!r}",
        )
        check(self.n_boot >= 100, f"n_boot: must be >= 100, got {self.n_boot}")
