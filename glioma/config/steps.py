"""Typed configs, one per step. Field defaults are the ``quick`` profile's unless it overrides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from glioma.config.profiles import PROFILES
from glioma.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    _check(
        value in choices, f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}"
    )


@dataclass(frozen=True)
class PrepareConfig:
    """Read one site (BraTS root, manifest CSV or the phantom) into dataset files."""

    step: ClassVar[str] = "prepare"

    source: str = "phantom"  # "phantom", a BraTS 2019 root folder, or a manifest CSV
    site: str = ""  # site name; default: phantom-a (phantom), brats (root), CSV stem (manifest)
    out_dir: str = ""  # default: <project>/data/prepared/<site>
    patch_size: int = 32
    fov_mm: float = 64.0  # square field of view around the lesion centroid, in millimetres
    seed: int = 0
    workers: int = 2
    strict: bool = False  # stop at the first bad subject instead of excluding it
    phantom_scale: float = 0.25  # fraction of the study's cohort sizes for the phantom
    phantom_dir: str = ""  # default: <project>/data/phantom
    profile: str = "quick"

    def validate(self) -> None:
        _choice("profile", self.profile, tuple(PROFILES))
        _check(bool(self.source.strip()), "source: empty; give 'phantom', a folder or a CSV")
        _check(8 <= self.patch_size <= 512, f"patch_size: must be 8..512, got {self.patch_size}")
        _check(4.0 <= self.fov_mm <= 400.0, f"fov_mm: must be 4..400 mm, got {self.fov_mm}")
        _check(1 <= self.workers <= 64, f"workers: must be 1..64, got {self.workers}")
        _check(self.seed >= 0, f"seed: must be >= 0, got {self.seed}")
        _check(
            0.0 < self.phantom_scale <= 4.0,
            f"phantom_scale: must be in (0, 4], got {self.phantom_scale}",
        )
        if self.source == "phantom":
            _check(
                self.site in ("", "phantom-a", "phantom-b"),
                f"site: the phantom has sites phantom-a and phantom-b, got {self.site!r}",
            )


def int_list(text: str, name: str) -> tuple[int, ...]:
    """``"1,2,2"`` -> (1, 2, 2); a ConfigError naming ``name`` otherwise."""
    try:
        values = tuple(int(v) for v in str(text).replace(" ", "").split(",") if v)
    except ValueError:
        raise ConfigError(f"{name}: expected comma-separated whole numbers, got {text!r}") from None
    _check(bool(values) and min(values) > 0, f"{name}: expected positive numbers, got {text!r}")
    return values


@dataclass(frozen=True)
class TrainDDPMConfig:
    """Train the DDPM of one site and grade (both grades when ``grade`` is empty)."""

    step: ClassVar[str] = "train_ddpm"

    site: str = "phantom-a"
    grade: str = ""  # LGG, HGG, or empty for both
    source: str = "phantom"  # what prepare reads when the site is not prepared yet
    prepare_run: str = ""  # a finished prepare run to train on (default: reuse or run prepare)
    fold: int = -1  # -1: all non-test subjects (alias best); k: also without fold k (alias foldk)
    mi_weight: float = 0.0  # 0: the standard DDPM (variant std); > 0: variant mi
    mi_pair: str = "x0"  # x0: MI(x0_hat, x0); eps: MI(eps_hat, eps)
    epochs: int = 40
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 0.0
    ema_decay: float = 0.995
    num_steps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    base_channels: int = 32
    channel_mults: str = "1,2,2"
    num_res_blocks: int = 1
    attention_resolutions: str = "8"
    val_fraction: float = 0.15
    sample_every: int = 10  # epochs between logged sample grids (0: only at the end)
    checkpoint_every_s: float = 60.0  # least seconds between resumable checkpoints (0: each epoch)
    register: bool = True  # false: log the model on the run only (tune trials), move no alias
    seed: int = 0
    resume: bool = False  # continue from this configuration's last checkpoint
    device: str = "auto"  # auto, cpu, cuda
    bf16: bool = False  # bfloat16 autocast on CUDA
    profile: str = "quick"

    @property
    def variant(self) -> str:
        return "mi" if self.mi_weight > 0 else "std"

    def validate(self) -> None:
        _choice("profile", self.profile, tuple(PROFILES))
        _check(
            self.grade in ("", "LGG", "HGG"),
            f"grade: expected LGG, HGG or empty, got {self.grade!r}",
        )
        _check(0.0 <= self.mi_weight < 1.0, f"mi_weight: must be in [0, 1), got {self.mi_weight}")
        _check(-1 <= self.fold <= 4, f"fold: must be -1 (none) or 0..4, got {self.fold}")
        _choice("mi_pair", self.mi_pair, ("x0", "eps"))
        _check(self.epochs >= 1, f"epochs: must be >= 1, got {self.epochs}")
        _check(self.batch_size >= 1, f"batch_size: must be >= 1, got {self.batch_size}")
        _check(0.0 < self.lr < 1.0, f"lr: must be in (0, 1), got {self.lr}")
        _check(0.0 <= self.ema_decay < 1.0, f"ema_decay: must be in [0, 1), got {self.ema_decay}")
        _check(self.num_steps >= 2, f"num_steps: must be >= 2, got {self.num_steps}")
        _check(
            0.0 < self.beta_start < self.beta_end < 1.0,
            f"beta_start, beta_end: 0 < start < end < 1, got {self.beta_start}, {self.beta_end}",
        )
        _check(self.base_channels >= 8, f"base_channels: must be >= 8, got {self.base_channels}")
        int_list(self.channel_mults, "channel_mults")
        if self.attention_resolutions:
            int_list(self.attention_resolutions, "attention_resolutions")
        _check(
            0.0 < self.val_fraction < 0.5,
            f"val_fraction: must be in (0, 0.5), got {self.val_fraction}",
        )
        _check(
            self.device in ("auto", "cpu", "cuda"),
            f"device: expected auto, cpu or cuda, got {self.device!r}",
        )


@dataclass(frozen=True)
class SampleConfig:
    """Draw synthetic images of one grade from a registered DDPM."""

    step: ClassVar[str] = "sample"

    model: str = (
        ""  # models:/... URI or a train_ddpm run id; default: the site/grade/variant's @best
    )
    site: str = "phantom-a"
    grade: str = "HGG"
    variant: str = "std"
    n: int = 0  # 0: as many as the DDPM's real training images
    sampler: str = "ddim"
    steps: int = 25  # DDIM steps (DDPM always uses all T)
    eta: float = 0.0
    batch_size: int = 64
    seed: int = 0
    out_dir: str = ""  # default: <project>/data/synthetic/<site>-<grade>-<variant>
    device: str = "auto"
    profile: str = "quick"

    def validate(self) -> None:
        _choice("profile", self.profile, tuple(PROFILES))
        _choice("grade", self.grade, ("LGG", "HGG"))
        _choice("variant", self.variant, ("std", "mi"))
        _check(
            self.sampler in ("ddim", "ddpm"),
            f"sampler: expected ddim or ddpm, got {self.sampler!r}",
        )
        _check(0 <= self.n <= 100_000, f"n: must be 0..100000, got {self.n}")
        _check(self.steps >= 1, f"steps: must be >= 1, got {self.steps}")
        _check(0.0 <= self.eta <= 1.0, f"eta: must be in [0, 1], got {self.eta}")
        _check(self.batch_size >= 1, f"batch_size: must be >= 1, got {self.batch_size}")
        _check(
            self.device in ("auto", "cpu", "cuda"),
            f"device: expected auto, cpu or cuda, got {self.device!r}",
        )


@dataclass(frozen=True)
class ScoreGenConfig:
    """Score one synthetic dataset against the real images its DDPM was trained on."""

    step: ClassVar[str] = "score_gen"

    sample_run: str = (
        ""  # a finished sample run; default: reuse or run sample for site/grade/variant
    )
    site: str = "phantom-a"
    grade: str = "HGG"
    variant: str = "std"
    inception: str = (
        "auto"  # required: stop without the weights; auto: skip FID/IS/KID, say so; off
    )
    inception_weights: str = ""  # FID Inception weights file; default: torch's hub cache
    encoder: str = "pca"  # 4 -> 3 channels: pca, per-modality, or modalities:T1ce,T2,FLAIR
    is_splits: int = 10
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    classifier: str = ""  # FD_cls model URI; default: glioma-cls-<site>-baseline@fold0; off
    memorisation_region: str = "full"  # full, or foreground (brain pixels of either image)
    memorisation_threshold: float = 0.95
    msssim_pairs: int = 2000  # pairs drawn for the mean pairwise MS-SSIM
    pairs_shown: int = 8
    batch_size: int = 32
    seed: int = 0
    device: str = "auto"
    profile: str = "quick"

    def validate(self) -> None:
        _choice("profile", self.profile, tuple(PROFILES))
        _choice("grade", self.grade, ("LGG", "HGG"))
        _choice("variant", self.variant, ("std", "mi"))
        _choice("inception", self.inception, ("required", "auto", "off"))
        _choice("memorisation_region", self.memorisation_region, ("full", "foreground"))
        _choice("device", self.device, DEVICES)
        _check(
            self.encoder in ("pca", "per-modality") or self.encoder.startswith("modalities:"),
            f"encoder: expected pca, per-modality or modalities:A,B,C, got {self.encoder!r}",
        )
        _check(self.is_splits >= 1, f"is_splits: must be >= 1, got {self.is_splits}")
        _check(self.kid_subsets >= 1, f"kid_subsets: must be >= 1, got {self.kid_subsets}")
        _check(
            self.kid_subset_size >= 2, f"kid_subset_size: must be >= 2, got {self.kid_subset_size}"
        )
        _check(
            0.0 < self.memorisation_threshold < 1.0,
            f"memorisation_threshold: must be in (0, 1), got {self.memorisation_threshold}",
        )
        _check(self.msssim_pairs >= 1, f"msssim_pairs: must be >= 1, got {self.msssim_pairs}")
        _check(self.pairs_shown >= 1, f"pairs_shown: must be >= 1, got {self.pairs_shown}")
        _check(self.batch_size >= 1, f"batch_size: must be >= 1, got {self.batch_size}")


SETUPS = ("baseline", "augment", "ddpm", "ddpm_mi")


@dataclass(frozen=True)
class TrainClsConfig:
    """Five fold classifiers of one site and setup, their ensemble, and its test evaluation."""

    step: ClassVar[str] = "train_cls"

    site: str = "phantom-a"
    setup: str = "baseline"  # baseline, augment, ddpm (+ std DDPM images), ddpm_mi (+ mi)
    source: str = "phantom"  # what prepare reads when the site is not prepared yet
    prepare_run: str = ""  # a finished prepare run (default: reuse or run prepare)
    arch: str = "resnet18"
    imagenet_weights: str = ""  # "": torch's hub cache if there, else random; "none"; a file
    epochs: int = 30
    batch_size: int = 32
    lr: float = 0.01  # peak of the one-cycle schedule
    weight_decay: float = 1e-4
    synthetic_ratio: float = 1.0  # synthetic images per real training image, per grade
    mi_weight: float = 0.1  # the mi DDPMs' weight (setup ddpm_mi)
    combine: str = "mean_prob"  # ensemble: mean_prob, or mean_weights
    seed: int = 0
    device: str = "auto"
    profile: str = "quick"

    def validate(self) -> None:
        _choice("profile", self.profile, tuple(PROFILES))
        _choice("setup", self.setup, SETUPS)
        _choice("combine", self.combine, ("mean_prob", "mean_weights"))
        _choice("device", self.device, DEVICES)
        _choice("arch", self.arch, ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"))
        _check(self.epochs >= 1, f"epochs: must be >= 1, got {self.epochs}")
        _check(self.batch_size >= 2, f"batch_size: must be >= 2, got {self.batch_size}")
        _check(0.0 < self.lr < 1.0, f"lr: must be in (0, 1), got {self.lr}")
        _check(self.weight_decay >= 0, f"weight_decay: must be >= 0, got {self.weight_decay}")
        _check(
            0.0 < self.synthetic_ratio <= 10.0,
            f"synthetic_ratio: must be in (0, 10], got {self.synthetic_ratio}",
        )
        _check(0.0 < self.mi_weight < 1.0, f"mi_weight: must be in (0, 1), got {self.mi_weight}")


def setup_list(text: str) -> tuple[str, ...]:
    """``"baseline,ddpm"`` -> ("baseline", "ddpm"), each checked; ConfigError otherwise."""
    setups = tuple(s for s in str(text).replace(" ", "").split(",") if s)
    _check(bool(setups), "setups: empty; name at least one of " + ", ".join(SETUPS))
    for setup in setups:
        _choice("setups", setup, SETUPS)
    return setups


@dataclass(frozen=True)
class CrossEvalConfig:
    """Evaluate the champion ensembles of a source site on every subject of a target site."""

    step: ClassVar[str] = "cross_eval"

    source: str = "phantom-a"  # the site the ensembles were trained on
    target: str = "phantom-b"  # the site they are tested on, all of its subjects
    setups: str = "baseline,augment,ddpm,ddpm_mi"  # a missing champion is trained first
    source_data: str = "phantom"  # what prepare reads for the source site, if needed
    target_data: str = "phantom"  # what prepare reads for the target site, if needed
    n_boot: int = 1000  # bootstrap resamples of subjects for the 95 % intervals
    seed: int = 0
    profile: str = "quick"

    @property
    def direction(self) -> str:
        return f"{self.source}-to-{self.target}"

    def validate(self) -> None:
        _choice("profile", self.profile, tuple(PROFILES))
        setup_list(self.setups)
        _check(self.source != self.target, f"target: must differ from source {self.source!r}")
        _check(self.n_boot >= 100, f"n_boot: must be >= 100, got {self.n_boot}")


@dataclass(frozen=True)
class MainConfig:
    """The whole study: both sites prepared, four setups trained per site, both directions."""

    step: ClassVar[str] = "main"

    site_a: str = "phantom-a"
    data_a: str = "phantom"  # "phantom", a BraTS 2019 root, or a manifest CSV
    site_b: str = "phantom-b"
    data_b: str = "phantom"
    setups: str = "baseline,augment,ddpm,ddpm_mi"
    mi_weight: float = 0.1  # the mi DDPMs' weight
    n_boot: int = 1000
    seed: int = 0
    workers: int = 2
    phantom_scale: float = 0.0  # 0: the profile's value (quick 0.25, paper 1.0)
    profile: str = "quick"

    def validate(self) -> None:
        _choice("profile", self.profile, tuple(PROFILES))
        setup_list(self.setups)
        _check(self.site_a != self.site_b, f"site_b: must differ from site_a {self.site_a!r}")
        _check(0.0 < self.mi_weight < 1.0, f"mi_weight: must be in (0, 1), got {self.mi_weight}")
        _check(self.n_boot >= 100, f"n_boot: must be >= 100, got {self.n_boot}")
        _check(1 <= self.workers <= 64, f"workers: must be 1..64, got {self.workers}")
        _check(
            0.0 <= self.phantom_scale <= 4.0,
            f"phantom_scale: must be in [0, 4], got {self.phantom_scale}",
        )


@dataclass(frozen=True)
class TuneConfig:
    """An Optuna study over the DDPM's mi_weight and lr: distance and memorisation, minimised."""

    step: ClassVar[str] = "tune"

    site: str = "phantom-a"
    grade: str = "HGG"  # the grade whose DDPM is tuned
    source: str = "phantom"  # what prepare reads when the site is not prepared yet
    n_trials: int = 8  # trials this process adds to the study
    mi_weight_max: float = 0.5  # mi_weight is searched in [0, mi_weight_max]
    lr_min: float = 5e-4  # lr is searched log-uniformly in [lr_min, lr_max]
    lr_max: float = 5e-3
    objective: str = "auto"  # fid, fd_radiomic, or auto: fid when the Inception weights exist
    inception_weights: str = ""  # FID Inception weights file; default: torch's hub cache
    storage: str = ""  # Optuna storage: "" = sqlite:///<project>/optuna.db, or any RDB URL
    study_name: str = ""  # "" = glioma-<site>-<grade>-<profile>
    seed: int = 0
    device: str = "auto"
    profile: str = "quick"

    def validate(self) -> None:
        _choice("profile", self.profile, tuple(PROFILES))
        _choice("grade", self.grade, ("LGG", "HGG"))
        _choice("objective", self.objective, ("auto", "fid", "fd_radiomic"))
        _choice("device", self.device, DEVICES)
        _check(1 <= self.n_trials <= 10_000, f"n_trials: must be 1..10000, got {self.n_trials}")
        _check(
            0.0 < self.mi_weight_max < 1.0,
            f"mi_weight_max: must be in (0, 1), got {self.mi_weight_max}",
        )
        _check(
            0.0 < self.lr_min < self.lr_max < 1.0,
            f"lr_min, lr_max: 0 < lr_min < lr_max < 1, got {self.lr_min}, {self.lr_max}",
        )
