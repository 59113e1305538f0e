"""The generative steps' configs: ``train_ddpm`` (one DDPM per grade) and ``sample``."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import ClassVar

from glioma.config.build import build_config
from glioma.config.fields import (
    UPSTREAM,
    VOLATILE,
    StepConfig,
    check,
    check_choice,
    int_list,
    param,
)
from glioma.config.prepare import PREPARE_RUN_HELP, SOURCE_HELP
from glioma.errors import ConfigError
from glioma.names import GRADES, N_FOLDS, PAPER_MI_WEIGHT, VARIANTS, variant_of

DEVICES = ("auto", "cpu", "cuda")
DEVICE_HELP = "auto (CUDA when present), cpu or cuda"


MI_PAIRS = ("x0", "eps")
MI_MODES = ("mi", "nmi")
MI_WEIGHTINGS = ("none", "sqrt_snr", "min_snr")
# What makes one MI term another besides its weight (registered names tell them apart).
MI_FORM_FIELDS = (
    "mi_pair", "mi_mode", "mi_t_min", "mi_t_max", "mi_weighting", "mi_snr_gamma", "mi_scale",
    "mi_target",
)  # fmt: skip
MI_SCALES = ("raw", "relative")
MI_TARGETS = ("self", "nearest")
DENOISE_WEIGHTINGS = ("none", "min_snr")
LR_SCHEDULES = ("constant", "cosine")


def check_mi_term(
    *,
    weight: float,
    pair: str,
    mode: str,
    t_min: int,
    t_max: int = 0,
    weighting: str = "none",
    snr_gamma: float = 5.0,
    scale: str = "raw",
    target: str = "self",
) -> None:
    """The MI regulariser's settings (``glioma.diffusion.losses.MITerm`` checks with this)."""
    check(0.0 <= weight < 1.0, f"mi_weight: must be in [0, 1), got {weight}")
    check_choice("mi_pair", pair, MI_PAIRS)
    check_choice("mi_mode", mode, MI_MODES)
    check_choice("mi_weighting", weighting, MI_WEIGHTINGS)
    check_choice("mi_scale", scale, MI_SCALES)
    check_choice("mi_target", target, MI_TARGETS)
    check(t_min >= 0, f"mi_t_min: must be >= 0, got {t_min}")
    check(
        t_max == 0 or t_max >= t_min,
        f"mi_t_max: must be 0 (no upper end) or >= mi_t_min {t_min}, got {t_max}",
    )
    check(snr_gamma > 0, f"mi_snr_gamma: must be > 0, got {snr_gamma}")
    check(
        pair == "x0" or target == "self",
        f"mi_target: {target!r} compares x0_hat with other images; it needs mi_pair x0",
    )


def check_denoise_term(*, weighting: str, snr_gamma: float) -> None:
    """The denoising term's weighting (``glioma.diffusion.losses.DenoiseTerm`` checks with this)."""
    check_choice("loss_weighting", weighting, DENOISE_WEIGHTINGS)
    check(snr_gamma > 0, f"snr_gamma: must be > 0, got {snr_gamma}")


def check_augmentation(*, prob: float, degrees: float, zoom: float) -> None:
    """DDPM augmentation's settings (``glioma.diffusion.augment.Augmentation`` checks with this)."""
    check(0.0 <= prob <= 1.0, f"augment_prob: must be in [0, 1], got {prob}")
    check(0.0 <= degrees <= 30.0, f"augment_degrees: must be 0..30, got {degrees}")
    check(0.0 <= zoom < 0.5, f"augment_zoom: must be in [0, 0.5), got {zoom}")


def fold_list(text: str) -> tuple[int, ...]:
    """``"0,2"`` -> (0, 2): classifier folds, sorted; ``""`` or ``"-1"`` -> () (none)."""
    text = str(text).replace(" ", "")
    if text in ("", "-1"):
        return ()
    try:
        folds = tuple(sorted({int(v) for v in text.split(",") if v}))
    except ValueError:
        raise ConfigError(f"held_out: expected fold numbers such as '0,1', got {text!r}") from None
    check(
        bool(folds) and min(folds) >= 0 and max(folds) < N_FOLDS and len(folds) < N_FOLDS,
        f"held_out: folds are 0..{N_FOLDS - 1} and at least one must stay in, got {text!r}",
    )
    return folds


@dataclass(frozen=True, kw_only=True)
class TrainDDPMConfig(StepConfig):
    """Train the DDPM of one site and grade (both grades when ``grade`` is empty)."""

    step: ClassVar[str] = "train_ddpm"
    renamed: ClassVar[dict[str, str]] = {"fold": "held_out"}

    site: str = param("phantom-a", "the site whose images the DDPM learns")
    grade: str = param("", "LGG, HGG, or empty for both", choices=("", *GRADES))
    source: str = param("phantom", SOURCE_HELP, role=UPSTREAM)
    prepare_run: str = param("", PREPARE_RUN_HELP, role=UPSTREAM)
    held_out: str = param(
        "",
        "folds whose subjects it never sees: '' none (alias best), '2' (fold2), '0,1' (folds0-1)",
    )
    mi_weight: float = param(0.0, "this DDPM's MI weight: 0 trains variant std, > 0 variant mi")
    mi_pair: str = param("x0", "MI between x0_hat and x0, or eps_hat and eps", choices=MI_PAIRS)
    mi_mode: str = param(
        "nmi", "nmi (normalised to [0, 1]) or mi (nats, the paper's literal term)", choices=MI_MODES
    )
    mi_t_min: int = param(0, "the MI term acts only at diffusion steps t >= this (0: every t)")
    mi_t_max: int = param(0, "the MI term acts only at diffusion steps t <= this (0: up to T-1)")
    mi_weighting: str = param(
        "sqrt_snr",
        "per-step weight of the MI term: none, sqrt_snr min(1, sqrt(SNR_t)), min_snr "
        "min(SNR_t, gamma)/gamma",
        choices=MI_WEIGHTINGS,
    )
    mi_snr_gamma: float = param(5.0, "gamma of mi_weighting min_snr")
    mi_scale: str = param(
        "relative",
        "raw (the term as it is) or relative (scaled to the Huber term's batch value: "
        "mi_weight 0.1 = a tenth of the objective)",
        choices=MI_SCALES,
    )
    mi_target: str = param(
        "nearest",
        "nearest: MI of x0_hat with the most similar other training image of the batch; self: "
        "with its own x0 (the paper's literal term)",
        choices=MI_TARGETS,
    )
    loss_weighting: str = param(
        "none",
        "per-step weight of the Huber term: none, or min_snr min(SNR_t, gamma)/SNR_t",
        choices=DENOISE_WEIGHTINGS,
    )
    snr_gamma: float = param(5.0, "gamma of loss_weighting min_snr")
    train_steps: int = param(1000, "optimiser steps, the same for every grade, fold and size")
    epochs: int = param(
        0, "0: train_steps decides; > 0: that many passes over the images instead (said)"
    )
    eval_every: int = param(100, "optimiser steps between validations (best-checkpoint choice)")
    batch_size: int = param(16, "images per optimiser step")
    conditional: bool = param(
        False, "one class-conditional network for both grades (grade embedding; grade '')"
    )
    cond_dropout: float = param(0.1, "conditional: share of labels dropped (for guidance)")
    augment_prob: float = param(0.5, "share of training images flipped/rotated/zoomed (0: off)")
    augment_degrees: float = param(10.0, "largest rotation of an augmented image, degrees")
    augment_zoom: float = param(0.05, "largest zoom of an augmented image (0.05: 0.95..1.05)")
    lr: float = param(2e-3, "AdamW learning rate")
    lr_schedule: str = param(
        "constant", "constant, or cosine (to 0 at the last step)", choices=LR_SCHEDULES
    )
    lr_warmup_steps: int = param(0, "optimiser steps of linear learning-rate warm-up")
    weight_decay: float = param(0.0, "AdamW weight decay")
    ema_decay: float = param(0.995, "EMA of the weights (0: off)")
    num_steps: int = param(1000, "diffusion steps T of the forward process")
    beta_start: float = param(1e-4, "first beta of the linear schedule")
    beta_end: float = param(0.02, "last beta of the linear schedule")
    base_channels: int = param(32, "UNet channels at full resolution")
    channel_mults: str = param("1,2,2", "UNet channel multiplier per level")
    num_res_blocks: int = param(1, "residual blocks per UNet level")
    attention_resolutions: str = param("8", "feature-map sizes with self-attention ('' none)")
    val_fraction: float = param(0.15, "share of the training subjects held out for selection")
    sample_every: int = param(0, "optimiser steps between logged sample grids (0: only the best)")
    checkpoint_every_s: float = param(
        60.0, "least seconds between resumable checkpoints (0: every validation)", role=VOLATILE
    )
    register: bool = param(True, "register the model (false: log it on the run only)")
    resume: bool = param(False, "continue from this configuration's checkpoint", role=VOLATILE)
    device: str = param("auto", DEVICE_HELP, choices=DEVICES, role=VOLATILE)
    bf16: bool = param(False, "bfloat16 autocast of the training forward pass (CUDA or CPU)")

    @property
    def variant(self) -> str:
        return variant_of(self.mi_weight)

    @property
    def mi_form(self) -> dict[str, object]:
        """The MI term's settings besides its weight (mode, weighting, scale, target, window)."""
        return {name: getattr(self, name) for name in MI_FORM_FIELDS}

    @property
    def model_label(self) -> str:
        """The last part of the registered name: ``std``; ``mi`` for the paper's weight in the
        default form; ``mi-w0.05`` for another weight; ``-f<hash>`` added for another form, so
        that no DDPM ever moves the ``@best`` of a DDPM trained with other MI settings."""
        if self.variant == "std":
            return "std"
        label = "mi" if self.mi_weight == PAPER_MI_WEIGHT else f"mi-w{self.mi_weight:g}"
        defaults = {f.name: f.default for f in dataclasses.fields(self) if f.name in MI_FORM_FIELDS}
        if self.mi_form != defaults:
            text = json.dumps(self.mi_form, sort_keys=True).encode()
            label += "-f" + hashlib.sha256(text).hexdigest()[:8]
        return label

    @property
    def grade_label(self) -> str:
        """The grade in names and messages: ``both`` for a conditional DDPM."""
        return "both" if self.conditional else self.grade

    @property
    def held_out_folds(self) -> tuple[int, ...]:
        """The folds left out, sorted; ``-1`` (the old ``--fold -1``) means none."""
        return fold_list(self.held_out)

    def check(self) -> None:
        self.held_out_folds  # noqa: B018 - parsing is the check
        check_mi_term(
            weight=self.mi_weight,
            pair=self.mi_pair,
            mode=self.mi_mode,
            t_min=self.mi_t_min,
            t_max=self.mi_t_max,
            weighting=self.mi_weighting,
            snr_gamma=self.mi_snr_gamma,
            scale=self.mi_scale,
            target=self.mi_target,
        )
        check_denoise_term(weighting=self.loss_weighting, snr_gamma=self.snr_gamma)
        check(
            self.lr_warmup_steps >= 0,
            f"lr_warmup_steps: must be >= 0, got {self.lr_warmup_steps}",
        )
        check(
            self.mi_t_max < self.num_steps,
            f"mi_t_max: must be below num_steps {self.num_steps}, got {self.mi_t_max}",
        )
        check_augmentation(
            prob=self.augment_prob, degrees=self.augment_degrees, zoom=self.augment_zoom
        )
        check(
            self.mi_t_min < self.num_steps,
            f"mi_t_min: must be below num_steps {self.num_steps}, got {self.mi_t_min} "
            "(profiles set it for T = 1000; give --mi_t_min with --num_steps)",
        )
        check(
            not (self.conditional and self.grade),
            f"grade: a conditional DDPM learns both grades; leave grade empty, got {self.grade}",
        )
        check(
            0.0 <= self.cond_dropout < 1.0,
            f"cond_dropout: must be in [0, 1), got {self.cond_dropout}",
        )
        check(self.train_steps >= 1, f"train_steps: must be >= 1, got {self.train_steps}")
        check(self.epochs >= 0, f"epochs: must be >= 0 (0: use train_steps), got {self.epochs}")
        check(self.eval_every >= 1, f"eval_every: must be >= 1, got {self.eval_every}")
        check(self.batch_size >= 1, f"batch_size: must be >= 1, got {self.batch_size}")
        check(0.0 < self.lr < 1.0, f"lr: must be in (0, 1), got {self.lr}")
        check(0.0 <= self.ema_decay < 1.0, f"ema_decay: must be in [0, 1), got {self.ema_decay}")
        check(self.num_steps >= 2, f"num_steps: must be >= 2, got {self.num_steps}")
        check(
            0.0 < self.beta_start < self.beta_end < 1.0,
            f"beta_start, beta_end: 0 < start < end < 1, got {self.beta_start}, {self.beta_end}",
        )
        check(self.base_channels >= 8, f"base_channels: must be >= 8, got {self.base_channels}")
        int_list(self.channel_mults, "channel_mults")
        if self.attention_resolutions:
            int_list(self.attention_resolutions, "attention_resolutions")
        check(
            0.0 < self.val_fraction < 0.5,
            f"val_fraction: must be in (0, 0.5), got {self.val_fraction}",
        )
        check(self.sample_every >= 0, f"sample_every: must be >= 0, got {self.sample_every}")


@dataclass(frozen=True, kw_only=True)
class SampleConfig(StepConfig):
    """Draw synthetic images of one grade from a DDPM."""

    step: ClassVar[str] = "sample"

    model: str = param(
        "",
        "a models:/ or runs:/ URI or a train_ddpm run id (default: train_ddpm of site/grade)",
        role=UPSTREAM,
    )
    site: str = param("phantom-a", "the site of the default DDPM")
    grade: str = param("HGG", "the grade of the default DDPM", choices=GRADES)
    variant: str = param("std", "the variant of the default DDPM", choices=VARIANTS)
    source: str = param("phantom", SOURCE_HELP, role=UPSTREAM)
    n: int = param(0, "images to draw (0: n_per_subject x the real subjects behind the DDPM)")
    n_per_subject: float = param(
        1.0, "with n = 0: images per real subject the DDPM trained or selected on"
    )
    sampler: str = param("ddim", "ddim, or ddpm (ancestral, all T steps)", choices=("ddim", "ddpm"))
    steps: int = param(25, "DDIM steps (DDPM always takes all T)")
    eta: float = param(0.0, "DDIM eta (0: deterministic)")
    guidance: float = param(
        1.0, "classifier-free guidance scale of a conditional DDPM (1: none, > 1: stronger)"
    )
    batch_size: int = param(64, "images per sampling batch (the seed draws per batch)")
    out_dir: str = param(
        "",
        "local copy of the images (default <project>/data/synthetic/<site>-<grade>-<variant>)",
        role=VOLATILE,
    )
    device: str = param("auto", DEVICE_HELP, choices=DEVICES, role=VOLATILE)

    def check(self) -> None:
        check(0 <= self.n <= 100_000, f"n: must be 0..100000, got {self.n}")
        check(
            0.0 < self.n_per_subject <= 10.0,
            f"n_per_subject: must be in (0, 10], got {self.n_per_subject}",
        )
        check(self.steps >= 1, f"steps: must be >= 1, got {self.steps}")
        check(0.0 <= self.eta <= 1.0, f"eta: must be in [0, 1], got {self.eta}")
        check(0.0 <= self.guidance <= 20.0, f"guidance: must be in [0, 20], got {self.guidance}")
        check(self.batch_size >= 1, f"batch_size: must be >= 1, got {self.batch_size}")


def ddpm_config_for(grade: str, overrides: dict) -> TrainDDPMConfig:
    """The DDPM that draws ``grade`` under these overrides (and their profile): the grade's own,
    or, where the profile makes DDPMs conditional, the one network of both grades."""
    shared = build_config(TrainDDPMConfig, {**overrides, "grade": ""})
    return shared if shared.conditional else dataclasses.replace(shared, grade=grade)
