"""The generative steps' configs: ``train_ddpm`` (one DDPM per grade) and ``sample``."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import ClassVar

from glioma.config.build import build_config
from glioma.config.fields import UPSTREAM, VOLATILE, StepConfig, built, check, int_list, param
from glioma.config.prepare import DATA_HELP, PREPARE_RUN_HELP
from glioma.diffusion.settings import (
    DENOISE_WEIGHTINGS,
    LR_SCHEDULES,
    MI_MODES,
    MI_PAIRS,
    MI_SCALES,
    MI_TARGETS,
    MI_WEIGHTINGS,
    PREDICTIONS,
    SCHEDULES,
    Augmentation,
    DenoiseTerm,
    MITerm,
    ScheduleConfig,
    TrainSettings,
    UNetConfig,
    steps_for_epochs,
)
from glioma.errors import ConfigError
from glioma.names import GRADES, N_FOLDS, PAPER_MI_WEIGHT, VARIANTS, variant_of

DEVICES = ("auto", "cpu", "cuda")
DEVICE_HELP = "auto (CUDA when present), cpu or cuda"


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


def _text(values: tuple[int, ...]) -> str:
    return ",".join(map(str, values))


@dataclass(frozen=True, kw_only=True)
class TrainDDPMConfig(StepConfig):
    """Train the DDPM of one site and grade (both grades when ``grade`` is empty).

    The fields are the command line's and MLproject's; their defaults are the library's
    (``glioma.diffusion.settings``), and the library's values are built from them
    (``mi_term``, ``denoise_term``, ``augmentation``, ``noise_schedule``, ``unet``,
    ``train_settings``): ``mi_<x>`` is ``MITerm.<x>``, ``augment_<x>`` ``Augmentation.<x>``,
    ``loss_weighting``/``snr_gamma`` ``DenoiseTerm``'s, the rest by their own names.
    """

    step: ClassVar[str] = "train_ddpm"
    renamed: ClassVar[dict[str, str]] = {"fold": "held_out", "source": "data"}

    site: str = param("phantom-a", "the site whose images the DDPM learns")
    grade: str = param("", "LGG, HGG, or empty for both", choices=("", *GRADES))
    data: str = param("phantom", DATA_HELP, role=UPSTREAM)
    prepare_run: str = param("", PREPARE_RUN_HELP, role=UPSTREAM)
    held_out: str = param(
        "",
        "folds whose subjects it never sees: '' none (alias best), '2' (fold2), '0,1' (folds0-1)",
    )
    mi_weight: float = param(
        MITerm.weight, "this DDPM's MI weight: 0 trains variant std, > 0 variant mi"
    )
    mi_pair: str = param(
        MITerm.pair, "MI between x0_hat and x0, or eps_hat and eps", choices=MI_PAIRS
    )
    mi_mode: str = param(
        MITerm.mode,
        "nmi (normalised to [0, 1]) or mi (nats, the paper's literal term)",
        choices=MI_MODES,
    )
    mi_t_min: int = param(
        MITerm.t_min, "the MI term acts only at diffusion steps t >= this (0: every t)"
    )
    mi_t_max: int = param(
        MITerm.t_max, "the MI term acts only at diffusion steps t <= this (0: up to T-1)"
    )
    mi_weighting: str = param(
        MITerm.weighting,
        "per-step weight of the MI term: none, sqrt_snr min(1, sqrt(SNR_t)), min_snr "
        "min(SNR_t, gamma)/gamma",
        choices=MI_WEIGHTINGS,
    )
    mi_snr_gamma: float = param(MITerm.snr_gamma, "gamma of mi_weighting min_snr")
    mi_scale: str = param(
        MITerm.scale,
        "raw (the term as it is) or relative (scaled to the Huber term's batch value: "
        "mi_weight 0.1 = a tenth of the objective)",
        choices=MI_SCALES,
    )
    mi_target: str = param(
        MITerm.target,
        "nearest: MI of x0_hat with the most similar other training image of the batch; self: "
        "with its own x0 (the paper's literal term)",
        choices=MI_TARGETS,
    )
    loss_weighting: str = param(
        DenoiseTerm.weighting,
        "per-step weight of the Huber term: none, or min_snr min(SNR_t, gamma)/SNR_t",
        choices=DENOISE_WEIGHTINGS,
    )
    snr_gamma: float = param(DenoiseTerm.snr_gamma, "gamma of loss_weighting min_snr")
    train_steps: int = param(
        TrainSettings.train_steps, "optimiser steps, the same for every grade, fold and size"
    )
    epochs: int = param(
        0, "0: train_steps decides; > 0: that many passes over the images instead (said)"
    )
    eval_every: int = param(
        TrainSettings.eval_every, "optimiser steps between validations (best-checkpoint choice)"
    )
    batch_size: int = param(TrainSettings.batch_size, "images per optimiser step")
    conditional: bool = param(
        False, "one class-conditional network for both grades (grade embedding; grade '')"
    )
    cond_dropout: float = param(
        TrainSettings.cond_dropout, "conditional: share of labels dropped (for guidance)"
    )
    augment_prob: float = param(
        Augmentation.prob, "share of training images flipped/rotated/zoomed (0: off)"
    )
    augment_degrees: float = param(
        Augmentation.degrees, "largest rotation of an augmented image, degrees"
    )
    augment_zoom: float = param(
        Augmentation.zoom, "largest zoom of an augmented image (0.05: 0.95..1.05)"
    )
    lr: float = param(TrainSettings.lr, "AdamW learning rate")
    lr_schedule: str = param(
        TrainSettings.lr_schedule,
        "constant, or cosine (to 0 at the last step)",
        choices=LR_SCHEDULES,
    )
    lr_warmup_steps: int = param(
        TrainSettings.lr_warmup_steps, "optimiser steps of linear learning-rate warm-up"
    )
    weight_decay: float = param(TrainSettings.weight_decay, "AdamW weight decay")
    ema_decay: float = param(TrainSettings.ema_decay, "EMA of the weights (0: off)")
    num_steps: int = param(ScheduleConfig.num_steps, "diffusion steps T of the forward process")
    schedule: str = param(
        ScheduleConfig.schedule,
        "noise schedule: linear (Ho et al.), cosine (Nichol & Dhariwal) or sigmoid (Chen)",
        choices=SCHEDULES,
    )
    beta_start: float = param(ScheduleConfig.beta_start, "first beta of the linear schedule")
    beta_end: float = param(ScheduleConfig.beta_end, "last beta of the linear schedule")
    zero_terminal_snr: bool = param(
        ScheduleConfig.zero_terminal_snr,
        "rescale the schedule so that its last step is pure noise (Lin et al.; not with eps)",
    )
    prediction: str = param(
        ScheduleConfig.prediction,
        "what the network predicts: eps (the noise), v (Salimans & Ho) or x0 (the image)",
        choices=PREDICTIONS,
    )
    base_channels: int = param(UNetConfig.base_channels, "UNet channels at full resolution")
    channel_mults: str = param(_text(UNetConfig.channel_mults), "UNet channel multiplier per level")
    num_res_blocks: int = param(UNetConfig.num_res_blocks, "residual blocks per UNet level")
    attention_resolutions: str = param(
        _text(UNetConfig.attention_resolutions), "feature-map sizes with self-attention ('' none)"
    )
    val_fraction: float = param(0.15, "share of the training subjects held out for selection")
    sample_every: int = param(0, "optimiser steps between logged sample grids (0: only the best)")
    checkpoint_every_s: float = param(
        60.0, "least seconds between resumable checkpoints (0: every validation)", role=VOLATILE
    )
    register: bool = param(True, "register the model (false: log it on the run only)")
    resume: bool = param(False, "continue from this configuration's checkpoint", role=VOLATILE)
    device: str = param("auto", DEVICE_HELP, choices=DEVICES, role=VOLATILE)
    bf16: bool = param(
        TrainSettings.bf16, "bfloat16 autocast of the training forward pass (CUDA or CPU)"
    )

    @property
    def variant(self) -> str:
        return variant_of(self.mi_weight)

    # --- the library's values, built from the fields above (one set of defaults) ---------

    @property
    def mi_term(self) -> MITerm:
        return built(MITerm, self, prefix="mi_")

    @property
    def denoise_term(self) -> DenoiseTerm:
        return built(DenoiseTerm, self, names={"weighting": "loss_weighting"})

    @property
    def augmentation(self) -> Augmentation:
        return built(Augmentation, self, prefix="augment_")

    @property
    def noise_schedule(self) -> ScheduleConfig:
        return built(ScheduleConfig, self)

    def unet(self, image_size: int) -> UNetConfig:
        """The network for patches of ``image_size`` px (both grades' classes if conditional)."""
        attention = self.attention_resolutions
        return built(
            UNetConfig,
            self,
            image_size=image_size,
            channel_mults=int_list(self.channel_mults, "channel_mults"),
            attention_resolutions=int_list(attention, "attention_resolutions") if attention else (),
            num_classes=len(GRADES) if self.conditional else 0,
        )

    def total_steps(self, n_train: int) -> int:
        """``train_steps``, or ``epochs`` passes over the ``n_train`` images when epochs > 0."""
        if self.epochs:
            return steps_for_epochs(self.epochs, n_train, self.batch_size)
        return self.train_steps

    def train_settings(self, n_train: int) -> TrainSettings:
        """The optimisation of a DDPM that trains on ``n_train`` images."""
        parts = {"mi": self.mi_term, "denoise": self.denoise_term, "augment": self.augmentation}
        return built(TrainSettings, self, train_steps=self.total_steps(n_train), **parts)

    def unused_fields(self) -> frozenset[str]:
        """Settings that the others switch off: they cannot change the weights."""
        unused = set()
        if not self.conditional:
            unused.add("cond_dropout")
        if self.augment_prob == 0:
            unused |= {"augment_degrees", "augment_zoom"}
        if self.loss_weighting != "min_snr":
            unused.add("snr_gamma")
        if self.mi_weighting != "min_snr":
            unused.add("mi_snr_gamma")
        return frozenset(unused | self.noise_schedule.unused_fields())

    # --- names --------------------------------------------------------------------------

    @property
    def mi_form(self) -> dict[str, object]:
        """The MI term's settings besides its weight, by their field names (``mi_mode``, ...)."""
        return {f"mi_{name}": value for name, value in self.mi_term.form.items()}

    @property
    def model_label(self) -> str:
        """The last part of the registered name: ``std``; ``mi`` for the paper's weight in the
        default form; ``mi-w0.05`` for another weight; ``-f<hash>`` added for another form, so
        that no DDPM ever moves the ``@best`` of a DDPM trained with other MI settings."""
        if self.variant == "std":
            return "std"
        label = "mi" if self.mi_weight == PAPER_MI_WEIGHT else f"mi-w{self.mi_weight:g}"
        if self.mi_term.form != MITerm().form:
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
        """The fields of one value here; the library's values check theirs as they are built
        (``train_settings`` builds the MI term, the denoising term and the augmentation)."""
        self.held_out_folds  # noqa: B018 - parsing is the check
        self.train_settings(n_train=self.batch_size)
        self.noise_schedule  # noqa: B018 - building is the check
        check(
            self.mi_t_max < self.num_steps,
            f"mi_t_max: must be below num_steps {self.num_steps}, got {self.mi_t_max}",
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
        check(self.epochs >= 0, f"epochs: must be >= 0 (0: use train_steps), got {self.epochs}")
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
    renamed: ClassVar[dict[str, str]] = {"source": "data"}

    model: str = param(
        "",
        "a models:/ or runs:/ URI or a train_ddpm run id (default: train_ddpm of site/grade)",
        role=UPSTREAM,
    )
    site: str = param("phantom-a", "the site of the default DDPM")
    grade: str = param("HGG", "the grade of the default DDPM", choices=GRADES)
    variant: str = param("std", "the variant of the default DDPM", choices=VARIANTS)
    data: str = param("phantom", DATA_HELP, role=UPSTREAM)
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

    def unused_fields(self) -> frozenset[str]:
        """Ancestral sampling takes all T steps, without DDIM's step count or eta."""
        return frozenset({"steps", "eta"}) if self.sampler == "ddpm" else frozenset()

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
    return shared if shared.conditional else replace(shared, grade=grade)
