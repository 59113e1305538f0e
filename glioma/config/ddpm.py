"""The generative steps' configs: ``train_ddpm`` (one DDPM per grade) and ``sample``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from glioma.config.fields import UPSTREAM, VOLATILE, StepConfig, check, int_list, param
from glioma.config.prepare import PREPARE_RUN_HELP, SOURCE_HELP
from glioma.names import GRADES, VARIANTS, variant_of

DEVICES = ("auto", "cpu", "cuda")
DEVICE_HELP = "auto (CUDA when present), cpu or cuda"


@dataclass(frozen=True, kw_only=True)
class TrainDDPMConfig(StepConfig):
    """Train the DDPM of one site and grade (both grades when ``grade`` is empty)."""

    step: ClassVar[str] = "train_ddpm"

    site: str = param("phantom-a", "the site whose images the DDPM learns")
    grade: str = param("", "LGG, HGG, or empty for both", choices=("", *GRADES))
    source: str = param("phantom", SOURCE_HELP, role=UPSTREAM)
    prepare_run: str = param("", PREPARE_RUN_HELP, role=UPSTREAM)
    fold: int = param(-1, "-1: every non-test subject (alias best); k: also without fold k")
    mi_weight: float = param(0.0, "this DDPM's MI weight: 0 trains variant std, > 0 variant mi")
    mi_pair: str = param(
        "x0", "MI between x0_hat and x0, or eps_hat and eps", choices=("x0", "eps")
    )
    epochs: int = param(40, "passes over the training images")
    batch_size: int = param(8, "images per optimiser step")
    lr: float = param(2e-3, "AdamW learning rate")
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
    sample_every: int = param(10, "epochs between logged sample grids (0: only the best)")
    checkpoint_every_s: float = param(
        60.0, "least seconds between resumable checkpoints (0: every epoch)", role=VOLATILE
    )
    register: bool = param(True, "register the model (false: log it on the run only)")
    resume: bool = param(False, "continue from this configuration's checkpoint", role=VOLATILE)
    device: str = param("auto", DEVICE_HELP, choices=DEVICES, role=VOLATILE)
    bf16: bool = param(False, "bfloat16 autocast on CUDA")

    @property
    def variant(self) -> str:
        return variant_of(self.mi_weight)

    def check(self) -> None:
        check(0.0 <= self.mi_weight < 1.0, f"mi_weight: must be in [0, 1), got {self.mi_weight}")
        check(-1 <= self.fold <= 4, f"fold: must be -1 (none) or 0..4, got {self.fold}")
        check(self.epochs >= 1, f"epochs: must be >= 1, got {self.epochs}")
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
        check(self.batch_size >= 1, f"batch_size: must be >= 1, got {self.batch_size}")
