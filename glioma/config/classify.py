"""The classifier's configs: one fold, the five-fold ensemble (``train_cls``), ``cross_eval``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from glioma.config.ddpm import DEVICE_HELP, DEVICES
from glioma.config.fields import UPSTREAM, VOLATILE, StepConfig, check, choice_list, param
from glioma.config.prepare import DATA_HELP, PREPARE_RUN_HELP
from glioma.names import N_FOLDS, PAPER_MI_WEIGHT, SETUP_VARIANT, SETUPS, direction_of

ARCHITECTURES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
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


DDPM_MI_WEIGHT_HELP = "the MI weight of the DDPMs behind setup ddpm_mi"


def setup_list(text: str) -> tuple[str, ...]:
    """``"baseline,ddpm"`` -> ("baseline", "ddpm"), each checked; ConfigError otherwise."""
    return choice_list("setups", text, SETUPS)


@dataclass(frozen=True, kw_only=True)
class ClsTrainingConfig(StepConfig):
    """What a fold classifier's training depends on: shared by one fold and the ensemble."""

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
    ddpm_scope: str = param("fold", DDPM_SCOPE_HELP)
    synthetic_ratio: float = param(1.0, "synthetic images per real training image, per grade")
    device: str = param("auto", DEVICE_HELP, choices=DEVICES, role=VOLATILE)

    def check(self) -> None:
        scope_groups(self.ddpm_scope)
        check(
            0.0 < self.synthetic_ratio <= 10.0,
            f"synthetic_ratio: must be in (0, 10], got {self.synthetic_ratio}",
        )
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


@dataclass(frozen=True, kw_only=True)
class TrainClsConfig(ClsTrainingConfig):
    """Five fold classifiers of one site and setup, their ensemble, and its test evaluation."""

    step: ClassVar[str] = "train_cls"
    renamed: ClassVar[dict[str, str]] = {"mi_weight": "ddpm_mi_weight", "source": "data"}

    ddpm_mi_weight: float = param(PAPER_MI_WEIGHT, DDPM_MI_WEIGHT_HELP)
    combine: str = param(
        "mean_prob",
        "ensemble: mean_prob (average probabilities) or mean_weights (one averaged network)",
        choices=("mean_prob", "mean_weights"),
    )

    def check(self) -> None:
        super().check()
        check(
            0.0 < self.ddpm_mi_weight < 1.0,
            f"ddpm_mi_weight: must be in (0, 1), got {self.ddpm_mi_weight}",
        )

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
