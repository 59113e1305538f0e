"""The configs that judge synthetic images: ``score_gen`` and the Optuna ``tune`` study."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from glioma.config.classify import ARCHITECTURES
from glioma.config.ddpm import DEVICE_HELP, DEVICES, MI_MODES
from glioma.config.executor import ExecutorConfig
from glioma.config.fields import (
    UPSTREAM,
    VOLATILE,
    StepConfig,
    built,
    check,
    choice_list,
    param,
)
from glioma.config.prepare import DATA_HELP
from glioma.names import GRADES, VARIANTS
from glioma.scoring.settings import (
    InceptionSettings,
    MemorisationSettings,
    TSTRSettings,
    TwoSampleSettings,
)


def mi_mode_list(text: str) -> tuple[str, ...]:
    """``"mi,nmi"`` -> ("mi", "nmi"), each one of MI_MODES."""
    return choice_list("mi_modes", text, MI_MODES)


WEIGHTS_HELP = "FID Inception weights file (default: torch's hub cache)"
SHOWN = {"pairs_shown": "pairs_shown"}  # memorisation's own field, not memorisation_-prefixed


@dataclass(frozen=True, kw_only=True)
class ScoreGenConfig(StepConfig):
    """Score one synthetic dataset against the real images its DDPM was trained on."""

    step: ClassVar[str] = "score_gen"
    renamed: ClassVar[dict[str, str]] = {"source": "data"}

    sample_run: str = param(
        "", "a finished sample run (default: sample of site/grade/variant)", role=UPSTREAM
    )
    site: str = param("phantom-a", "the site of the default sample")
    grade: str = param("HGG", "the grade of the default sample", choices=GRADES)
    variant: str = param("std", "the variant of the default sample", choices=VARIANTS)
    data: str = param("phantom", DATA_HELP, role=UPSTREAM)
    inception: str = param(
        "auto",
        "required: stop without the weights; auto: skip FID/IS/KID and say so; off",
        choices=("required", "auto", "off"),
    )
    inception_weights: str = param("", WEIGHTS_HELP)
    encoder: str = param("pca", "4 -> 3 channels: pca, per-modality or modalities:T1ce,T2,FLAIR")
    is_splits: int = param(10, "Inception Score splits")
    kid_subsets: int = param(100, "KID subsets")
    kid_subset_size: int = param(1000, "KID subset size (at most the set size)")
    classifier: str = param(
        "", "FD_cls model URI; '': main's baseline fold 0 (none outside main); off: no FD_cls"
    )
    memorisation_region: str = param(
        "full", "full, or foreground (brain pixels of either image)", choices=("full", "foreground")
    )
    memorisation_threshold: float = param(0.95, "r above which a synthetic image counts as copied")
    msssim_pairs: int = param(2000, "pairs drawn for the mean pairwise MS-SSIM")
    pairs_shown: int = param(8, "nearest pairs in the figure")
    prdc_k: int = param(5, "k of the k-NN balls of precision/recall/density/coverage")
    other_sample_run: str = param(
        "",
        "the other grade's sample run, for TSTR and the real-vs-synthetic figure (with "
        "sample_run; without it, the default sample of the other grade)",
        role=UPSTREAM,
    )
    tstr: bool = param(True, "train on synthetic (both grades), test on real, beside TRTR")
    tstr_arch: str = param("resnet18", "TSTR/TRTR classifier", choices=ARCHITECTURES)
    tstr_epochs: int = param(30, "TSTR/TRTR training epochs")
    c2st: bool = param(
        True,
        "two-sample test: a small CNN told to separate real training patches from synthetic "
        "ones, ROC AUC on held-back halves (0.5: indistinguishable), beside real vs real",
    )
    c2st_epochs: int = param(TwoSampleSettings.epochs, "two-sample CNN training epochs")
    batch_size: int = param(32, "images per feature batch", role=VOLATILE)
    device: str = param("auto", DEVICE_HELP, choices=DEVICES, role=VOLATILE)

    def unused_fields(self) -> frozenset[str]:
        return frozenset() if self.c2st else frozenset({"c2st_epochs"})

    # --- the library's values, built from the fields above (one set of defaults) ---------

    @property
    def inception_settings(self) -> InceptionSettings:
        names = {"mode": "inception", "weights": "inception_weights"}
        return built(InceptionSettings, self, names=names)

    @property
    def memorisation(self) -> MemorisationSettings:
        return built(MemorisationSettings, self, prefix="memorisation_", names=SHOWN)

    @property
    def tstr_settings(self) -> TSTRSettings:
        return built(TSTRSettings, self, prefix="tstr_", seed=self.seed)

    @property
    def two_sample(self) -> TwoSampleSettings:
        return built(TwoSampleSettings, self, prefix="c2st_", seed=self.seed)

    def check(self) -> None:
        check(
            self.encoder in ("pca", "per-modality") or self.encoder.startswith("modalities:"),
            f"encoder: expected pca, per-modality or modalities:A,B,C, got {self.encoder!r}",
        )
        check(self.msssim_pairs >= 1, f"msssim_pairs: must be >= 1, got {self.msssim_pairs}")
        # The rest is the library's: building its settings checks them, naming the field.
        _ = (self.inception_settings, self.memorisation, self.tstr_settings, self.two_sample)


@dataclass(frozen=True, kw_only=True)
class TuneConfig(ExecutorConfig, StepConfig):
    """An Optuna study over the DDPM's mi_weight and lr: distance and memorisation, minimised."""

    step: ClassVar[str] = "tune"
    renamed: ClassVar[dict[str, str]] = {"source": "data"}

    site: str = param("phantom-a", "the site whose DDPM is tuned")
    grade: str = param("HGG", "the grade whose DDPM is tuned", choices=GRADES)
    data: str = param("phantom", DATA_HELP, role=UPSTREAM)
    n_trials: int = param(8, "trials this process adds to the study")
    trials_at_once: int = param(
        1,
        "trials asked of Optuna together and run side by side (with --executor ray); "
        "1: each trial sees the results of all before it",
    )
    mi_weight_max: float = param(0.5, "mi_weight is searched in [0, mi_weight_max]")
    mi_modes: str = param("mi,nmi", "the MI modes searched (mi: nats, nmi: normalised)")
    mi_t_min_max: int = param(
        800, "mi_t_min is searched in 0, T/10, ... up to this x T/1000 (0: always 0, every t)"
    )
    lr_min: float = param(5e-4, "lr is searched log-uniformly in [lr_min, lr_max]")
    lr_max: float = param(5e-3, "upper end of the lr range")
    objective: str = param(
        "auto",
        "fid, fd_radiomic, or auto: fid when the Inception weights exist",
        choices=("auto", "fid", "fd_radiomic"),
    )
    inception_weights: str = param("", WEIGHTS_HELP)
    storage: str = param("", "Optuna storage: '' = sqlite:///<project>/optuna.db, or an RDB URL")
    study_name: str = param("", "'' = glioma-<site>-<grade>-<profile>")
    device: str = param("auto", DEVICE_HELP, choices=DEVICES, role=VOLATILE)

    def check(self) -> None:
        self.check_executor()
        check(
            1 <= self.trials_at_once <= 256,
            f"trials_at_once: must be 1..256, got {self.trials_at_once}",
        )
        mi_mode_list(self.mi_modes)
        check(
            0 <= self.mi_t_min_max < 1000 and self.mi_t_min_max % 100 == 0,
            f"mi_t_min_max: a multiple of 100 in 0..900, got {self.mi_t_min_max}",
        )
        check(1 <= self.n_trials <= 10_000, f"n_trials: must be 1..10000, got {self.n_trials}")
        check(
            0.0 < self.mi_weight_max < 1.0,
            f"mi_weight_max: must be in (0, 1), got {self.mi_weight_max}",
        )
        check(
            0.0 < self.lr_min < self.lr_max < 1.0,
            f"lr_min, lr_max: 0 < lr_min < lr_max < 1, got {self.lr_min}, {self.lr_max}",
        )
