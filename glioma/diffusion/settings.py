"""The DDPM library's settings: plain frozen dataclasses, no torch, each checked at construction.

They are the library's configuration (as diffusers' ``ConfigMixin`` arguments are): the network
(``UNetConfig``), the forward process (``ScheduleConfig``), the two loss terms (``MITerm``,
``DenoiseTerm``), the batch augmentation (``Augmentation``) and the optimisation
(``TrainSettings``). Their defaults are the project's one set: ``train_ddpm``'s config
(``glioma.config.ddpm``) takes its defaults from here and builds these values from its fields
(``TrainDDPMConfig.train_settings``), so nothing is copied field by field or written twice. No
torch here, so the command line's ``--help`` can read them; the computations that use them live
beside (``losses``, ``augment``, ``schedule``, ``unet``, ``training``).

An error names the command-line field (``mi_t_min``, ``augment_prob``), which is what a user
typed; a library user reads the same field with its prefix dropped.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from glioma.errors import check, check_choice

MI_PAIRS = ("x0", "eps")
MI_MODES = ("mi", "nmi")
MI_WEIGHTINGS = ("none", "sqrt_snr", "min_snr")
MI_SCALES = ("raw", "relative")
MI_TARGETS = ("self", "nearest")
DENOISE_WEIGHTINGS = ("none", "min_snr")
LR_SCHEDULES = ("constant", "cosine")
SCHEDULES = ("linear", "cosine", "sigmoid")  # the noise schedule: glioma.diffusion.schedule
PREDICTIONS = ("eps", "v", "x0")  # what the network outputs
GROUPS = 8  # GroupNorm groups (fewer when a layer has fewer channels)


@dataclass(frozen=True)
class UNetConfig:
    image_size: int = 32
    channels: int = 4
    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 1
    attention_resolutions: tuple[int, ...] = (8,)
    dropout: float = 0.0
    num_classes: int = 0  # 0: unconditional; 2: the grades (LGG 0, HGG 1), plus a null class

    def __post_init__(self) -> None:
        """Fail at construction, naming the field, rather than deep inside the first forward."""
        check(self.channels >= 1, f"channels: must be >= 1, got {self.channels}")
        check(self.num_classes >= 0, f"num_classes: must be >= 0, got {self.num_classes}")
        check(self.num_res_blocks >= 1, f"num_res_blocks: must be >= 1, got {self.num_res_blocks}")
        check(0.0 <= self.dropout < 1.0, f"dropout: must be in [0, 1), got {self.dropout}")
        check(
            self.base_channels >= 2 and self.base_channels % 2 == 0,
            f"base_channels: must be even (sinusoidal time embedding), got {self.base_channels}",
        )
        check(bool(self.channel_mults), "channel_mults: empty; give one multiplier per level")
        for mult in self.channel_mults:
            width = self.base_channels * mult
            groups = min(GROUPS, width)
            check(
                mult >= 1 and width % groups == 0,
                f"base_channels: level width {self.base_channels} x {mult} = {width} is not "
                f"divisible by its {groups} GroupNorm groups",
            )
        levels = self.level_resolutions()
        factor = 2 ** (len(self.channel_mults) - 1)
        check(
            self.image_size % factor == 0,
            f"image_size: {self.image_size} px cannot be halved {len(self.channel_mults) - 1} "
            f"times (channel_mults {','.join(map(str, self.channel_mults))})",
        )
        for res in self.attention_resolutions:
            check(
                res in levels,
                f"attention_resolutions: {res} is not a level's resolution; "
                f"the levels are {', '.join(map(str, levels))} px",
            )

    def level_resolutions(self) -> tuple[int, ...]:
        """The feature-map side of each level: image_size, image_size / 2, ..."""
        return tuple(self.image_size // 2**i for i in range(len(self.channel_mults)))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> UNetConfig:
        values = dict(values)
        for key in ("channel_mults", "attention_resolutions"):
            values[key] = tuple(int(v) for v in values[key])
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class ScheduleConfig:
    """The forward process and the network's parameterisation (diffusers' scheduler config:
    ``num_train_timesteps``, ``beta_schedule``, ``rescale_betas_zero_snr``,
    ``prediction_type``): T steps of the ``schedule`` (``linear`` from ``beta_start`` to
    ``beta_end``, ``cosine`` or ``sigmoid``), optionally rescaled to zero terminal SNR, and what
    the network predicts (``eps``, ``v`` or ``x0``). ``glioma.diffusion.schedule`` has the
    formulas and holds the tables (``NoiseSchedule``)."""

    num_steps: int = 1000
    schedule: str = "linear"
    beta_start: float = 1e-4
    beta_end: float = 0.02
    zero_terminal_snr: bool = False
    prediction: str = "eps"

    def __post_init__(self) -> None:
        check(self.num_steps >= 2, f"num_steps: must be >= 2, got {self.num_steps}")
        check_choice("schedule", self.schedule, SCHEDULES)
        check_choice("prediction", self.prediction, PREDICTIONS)
        check(
            0.0 < self.beta_start < self.beta_end < 1.0,
            f"beta_start, beta_end: 0 < start < end < 1, got {self.beta_start}, {self.beta_end}",
        )
        check(
            not (self.zero_terminal_snr and self.prediction == "eps"),
            "zero_terminal_snr: the last step is pure noise, from which an eps-predicting network "
            "cannot give x0 (Lin et al., 2024); use prediction v or x0",
        )

    def to_dict(self) -> dict:
        return asdict(self)

    def unused_fields(self) -> frozenset[str]:
        """``beta_start``/``beta_end`` shape the linear schedule only."""
        return frozenset() if self.schedule == "linear" else frozenset({"beta_start", "beta_end"})


@dataclass(frozen=True, kw_only=True)
class MITerm:
    """The MI regulariser (``glioma.diffusion.losses``' docstring has the equation): weight,
    pair, measure, noise window, per-step weighting, scale and target. The defaults are the form
    chosen in issue 17 (NMI, sqrt-SNR weighted, relative, nearest other image); ``LITERAL`` is
    the paper's as first built."""

    weight: float = 0.0
    pair: str = "x0"
    mode: str = "nmi"
    t_min: int = 0
    t_max: int = 0  # 0: up to T - 1
    weighting: str = "sqrt_snr"
    snr_gamma: float = 5.0
    scale: str = "relative"
    target: str = "nearest"

    def __post_init__(self) -> None:
        check(0.0 <= self.weight < 1.0, f"mi_weight: must be in [0, 1), got {self.weight}")
        check_choice("mi_pair", self.pair, MI_PAIRS)
        check_choice("mi_mode", self.mode, MI_MODES)
        check_choice("mi_weighting", self.weighting, MI_WEIGHTINGS)
        check_choice("mi_scale", self.scale, MI_SCALES)
        check_choice("mi_target", self.target, MI_TARGETS)
        check(self.t_min >= 0, f"mi_t_min: must be >= 0, got {self.t_min}")
        check(
            self.t_max == 0 or self.t_max >= self.t_min,
            f"mi_t_max: must be 0 (no upper end) or >= mi_t_min {self.t_min}, got {self.t_max}",
        )
        check(self.snr_gamma > 0, f"mi_snr_gamma: must be > 0, got {self.snr_gamma}")
        check(
            self.pair == "x0" or self.target == "self",
            f"mi_target: {self.target!r} compares x0_hat with other images; it needs mi_pair x0",
        )

    @property
    def form(self) -> dict[str, object]:
        """What makes this term another besides its weight (registered names tell them apart)."""
        return {name: value for name, value in asdict(self).items() if name != "weight"}


# The paper's term as first reconstructed: MI in nats against the own image, every t, raw.
LITERAL = {"mode": "mi", "t_min": 0, "weighting": "none", "scale": "raw", "target": "self"}


@dataclass(frozen=True, kw_only=True)
class DenoiseTerm:
    """The denoising term's per-step weighting: ``none`` or ``min_snr`` (gamma ``snr_gamma``)."""

    weighting: str = "none"
    snr_gamma: float = 5.0

    def __post_init__(self) -> None:
        check_choice("loss_weighting", self.weighting, DENOISE_WEIGHTINGS)
        check(self.snr_gamma > 0, f"snr_gamma: must be > 0, got {self.snr_gamma}")


@dataclass(frozen=True, kw_only=True)
class Augmentation:
    """``prob``: share of images transformed; each of those is flipped left-right with
    probability 1/2, turned by U(-degrees, degrees) and zoomed by U(1 - zoom, 1 + zoom)
    (``glioma.diffusion.augment`` says why these and no others)."""

    prob: float = 0.5
    degrees: float = 10.0
    zoom: float = 0.05

    def __post_init__(self) -> None:
        check(0.0 <= self.prob <= 1.0, f"augment_prob: must be in [0, 1], got {self.prob}")
        check(0.0 <= self.degrees <= 30.0, f"augment_degrees: must be 0..30, got {self.degrees}")
        check(0.0 <= self.zoom < 0.5, f"augment_zoom: must be in [0, 0.5), got {self.zoom}")


@dataclass(frozen=True, kw_only=True)
class TrainSettings:
    """The optimisation, counted in optimiser steps: the same budget for 15 images or 300."""

    train_steps: int = 1000
    eval_every: int = 100  # steps between validations (best-checkpoint selection), logged points
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 0.0
    lr_schedule: str = "constant"  # or "cosine": glioma.diffusion.training.lr_factor
    lr_warmup_steps: int = 0
    mi: MITerm = field(default_factory=MITerm)
    denoise: DenoiseTerm = field(default_factory=DenoiseTerm)
    augment: Augmentation = field(default_factory=Augmentation)
    ema_decay: float = 0.995  # 0 turns the moving average off (the raw weights are used)
    cond_dropout: float = 0.1  # class-conditional networks: share of labels replaced by null
    grad_clip: float = 1.0
    seed: int = 0
    bf16: bool = False  # bfloat16 autocast of the forward pass (CUDA or CPU)

    def __post_init__(self) -> None:
        check(self.train_steps >= 1, f"train_steps: must be >= 1, got {self.train_steps}")
        check(self.eval_every >= 1, f"eval_every: must be >= 1, got {self.eval_every}")
        check(self.batch_size >= 1, f"batch_size: must be >= 1, got {self.batch_size}")
        check(0.0 < self.lr < 1.0, f"lr: must be in (0, 1), got {self.lr}")
        check(self.weight_decay >= 0, f"weight_decay: must be >= 0, got {self.weight_decay}")
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        check(
            self.lr_warmup_steps >= 0, f"lr_warmup_steps: must be >= 0, got {self.lr_warmup_steps}"
        )
        check(0.0 <= self.ema_decay < 1.0, f"ema_decay: must be in [0, 1), got {self.ema_decay}")
        check(self.grad_clip > 0, f"grad_clip: must be > 0, got {self.grad_clip}")
        check(
            0.0 <= self.cond_dropout < 1.0,
            f"cond_dropout: must be in [0, 1), got {self.cond_dropout}",
        )
        check(self.seed >= 0, f"seed: must be >= 0, got {self.seed}")


def steps_for_epochs(epochs: int, n_images: int, batch_size: int) -> int:
    """Optimiser steps of ``epochs`` passes over ``n_images`` (the last batch of a pass short)."""
    return epochs * math.ceil(n_images / batch_size)
