"""DDPM training that can be killed at any moment and resumed to the same result.

Everything random in epoch e (batch order, steps t, noise) comes from generators seeded with
(seed, e), so an epoch replayed after a crash is the epoch an uninterrupted run would have
had. The full state (weights, EMA, optimiser, epoch, best validation loss) is written
atomically after every epoch; a resumed run loses at most the epoch in flight.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel

from glioma.config.fields import check
from glioma.diffusion.checkpoint import load_checkpoint, save_checkpoint
from glioma.diffusion.distributed import local_share
from glioma.diffusion.losses import diffusion_loss
from glioma.diffusion.schedule import NoiseSchedule
from glioma.diffusion.unet import UNet, UNetConfig


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 30
    batch_size: int = 16
    lr: float = 2e-4
    weight_decay: float = 0.0
    mi_weight: float = 0.0
    mi_pair: str = "x0"
    ema_decay: float = 0.995  # 0 turns the moving average off (the raw weights are used)
    grad_clip: float = 1.0
    seed: int = 0
    bf16: bool = False  # bfloat16 autocast of the forward pass, CUDA only

    def __post_init__(self) -> None:
        check(self.epochs >= 1, f"epochs: must be >= 1, got {self.epochs}")
        check(self.batch_size >= 1, f"batch_size: must be >= 1, got {self.batch_size}")
        check(self.lr > 0, f"lr: must be > 0, got {self.lr}")
        check(0.0 <= self.mi_weight < 1.0, f"mi_weight: must be in [0, 1), got {self.mi_weight}")
        check(self.mi_pair in ("x0", "eps"), f"mi_pair: expected x0 or eps, got {self.mi_pair!r}")
        check(0.0 <= self.ema_decay < 1.0, f"ema_decay: must be in [0, 1), got {self.ema_decay}")
        check(self.grad_clip > 0, f"grad_clip: must be > 0, got {self.grad_clip}")


def _generator(*key: int) -> torch.Generator:
    """A CPU generator seeded by (seed, epoch, purpose): the same stream on any device."""
    state = np.random.SeedSequence(list(key)).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state % 2**63))


def ema_with_warmup(decay: float):
    """EMA update for ``AveragedModel``: decay_n = min(decay, (1 + n) / (10 + n)).

    With a fixed 0.995, after 160 steps (a quick-profile run) the average would still hold
    45 % of the first weights; the warm-up (as in diffusers' EMAModel) lets it follow early.
    """

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n_averaged) -> None:
        n = float(n_averaged)
        weight = 1.0 - min(decay, (1.0 + n) / (10.0 + n))
        torch._foreach_lerp_(averaged, current, weight)

    return update


class DDPMTrainer:
    """Holds model, EMA, optimiser and progress; ``fit`` runs the remaining epochs."""

    def __init__(
        self, unet: UNetConfig, schedule: NoiseSchedule, settings: TrainSettings, device="cpu"
    ):
        torch.manual_seed(settings.seed)
        self.device = torch.device(device)
        self.unet_config, self.settings = unet, settings
        self.schedule = schedule.to(self.device)
        self.model = UNet(unet).to(self.device)
        self.trained = DistributedDataParallel(self.model) if dist.is_initialized() else self.model
        decay = settings.ema_decay
        self.ema = AveragedModel(
            self.model, multi_avg_fn=ema_with_warmup(decay) if decay > 0 else None
        )
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
        )
        self.epoch = 0  # epochs completed
        self.best_val = math.inf
        self.best_epoch = -1
        self.best_state: dict[str, torch.Tensor] | None = None
        self.history: list[dict[str, float]] = []

    def _autocast(self):
        enabled = self.settings.bf16 and self.device.type == "cuda"
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=enabled)

    @property
    def sampling_model(self) -> nn.Module:
        """The EMA weights when the average is on, the raw weights otherwise."""
        return self.ema.module if self.settings.ema_decay > 0 else self.model

    def _update_ema(self) -> None:
        if self.settings.ema_decay > 0:
            self.ema.update_parameters(self.model)
        else:
            self.ema.module.load_state_dict(self.model.state_dict())

    def train_epoch(self, images: torch.Tensor) -> dict[str, float]:
        """One pass over ``images`` (N, 4, H, W) in a seeded random order."""
        self.model.train()
        gen = _generator(self.settings.seed, self.epoch, 1)
        order = torch.randperm(len(images), generator=gen)
        sums = {"loss": 0.0, "huber": 0.0, "mi": 0.0}
        batches = order.split(self.settings.batch_size)
        for index in batches:
            x0 = images[index].to(self.device)
            t = torch.randint(0, self.schedule.num_steps, (len(index),), generator=gen)
            noise = torch.randn(x0.shape, generator=gen)
            rows, weight = local_share(len(index))
            x0, t, noise = x0[rows], t[rows].to(self.device), noise[rows].to(self.device)
            with self._autocast():
                terms = diffusion_loss(
                    self.trained,
                    self.schedule,
                    x0,
                    t,
                    noise,
                    mi_weight=self.settings.mi_weight,
                    mi_pair=self.settings.mi_pair,
                )
            self.optimizer.zero_grad(set_to_none=True)
            (terms.total * weight).backward()
            if self.settings.grad_clip > 0:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.grad_clip)
            self.optimizer.step()
            self._update_ema()
            for key, value in terms.detached().items():
                sums[key] += value
        return {f"train_{k}": v / len(batches) for k, v in sums.items()}

    @torch.no_grad()
    def validate(self, images: torch.Tensor) -> dict[str, float]:
        """Sampling-model loss at fixed (seeded) steps and noise: comparable across epochs."""
        model = self.sampling_model.eval()
        gen = _generator(self.settings.seed, 0, 2)
        sums, count = {"loss": 0.0, "huber": 0.0, "mi": 0.0}, 0
        for x0 in images.split(self.settings.batch_size):
            t = torch.randint(0, self.schedule.num_steps, (len(x0),), generator=gen).to(self.device)
            noise = torch.randn(x0.shape, generator=gen).to(self.device)
            terms = diffusion_loss(
                model,
                self.schedule,
                x0.to(self.device),
                t,
                noise,
                mi_weight=self.settings.mi_weight,
                mi_pair=self.settings.mi_pair,
            )
            for key, value in terms.detached().items():
                sums[key] += value * len(x0)
            count += len(x0)
        return {f"val_{k}": v / count for k, v in sums.items()}

    def fit(
        self,
        train: torch.Tensor,
        val: torch.Tensor,
        *,
        checkpoint: Path | None = None,
        on_epoch: Callable[[int, dict[str, float]], None] | None = None,
        checkpoint_every_s: float = 0.0,
    ) -> None:
        """Train from ``self.epoch`` to ``settings.epochs``.

        The resumable checkpoint is written after an epoch when ``checkpoint_every_s`` seconds
        have passed since the last one (0: after every epoch) and always after the last epoch:
        a short epoch would otherwise spend more time pickling than training.
        """
        last_saved = time.monotonic()
        while self.epoch < self.settings.epochs:
            metrics = {**self.train_epoch(train), **self.validate(val)}
            if metrics["val_loss"] < self.best_val:
                self.best_val, self.best_epoch = metrics["val_loss"], self.epoch
                self.best_state = copy.deepcopy(self.sampling_model.state_dict())
            metrics["best_val_loss"] = self.best_val
            self.history.append(metrics)
            self.epoch += 1
            due = time.monotonic() - last_saved >= checkpoint_every_s
            if checkpoint is not None and (due or self.epoch == self.settings.epochs):
                save_checkpoint(checkpoint, self.state_dict())
                last_saved = time.monotonic()
            if on_epoch:
                on_epoch(self.epoch - 1, metrics)

    def state_dict(self) -> dict[str, Any]:
        return {
            "unet": self.unet_config.to_dict(),
            "settings": asdict(self.settings),
            "num_steps": self.schedule.num_steps,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch,
            "best_val": self.best_val,
            "best_epoch": self.best_epoch,
            "best_state": self.best_state,
            "history": self.history,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch, self.best_val, self.best_epoch = (
            state["epoch"],
            state["best_val"],
            state["best_epoch"],
        )
        self.best_state, self.history = state["best_state"], list(state["history"])

    def resume_from(self, path: Path) -> bool:
        """Load ``path`` if it exists; True when training continues from it."""
        if not path.exists():
            return False
        self.load_state_dict(load_checkpoint(path, map_location=self.device))
        return True
