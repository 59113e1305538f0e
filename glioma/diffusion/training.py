"""DDPM training that can be killed at any moment and resumed to the same result.

Training is counted in optimiser steps. The images are visited in passes (a seeded random order
per pass, seeded by (seed, pass)); the steps t, noise and augmentation of optimiser step s come
from a generator seeded by (seed, s). So the batch a resumed run replays after a crash is the
batch an uninterrupted run would have had. Every ``eval_every`` steps the sampling (EMA) model is
validated, the best so far kept, and the full state (weights, EMA, optimiser, step, best
validation loss) written atomically when due; a resumed run loses at most the steps since.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel

from glioma.diffusion.augment import augment_batch
from glioma.diffusion.checkpoint import load_checkpoint, save_checkpoint
from glioma.diffusion.distributed import local_share
from glioma.diffusion.losses import diffusion_loss
from glioma.diffusion.schedule import NoiseSchedule
from glioma.diffusion.settings import TrainSettings, steps_for_epochs
from glioma.diffusion.unet import UNet, UNetConfig

__all__ = [
    "DDPMTrainer",
    "TrainSettings",
    "batch_index",
    "lr_factor",
    "step_generator",
    "steps_for_epochs",
]


def lr_factor(step: int, *, total: int, warmup: int, schedule: str) -> float:
    """The learning rate of optimiser step ``step`` (0-based) over ``lr``: a linear warm-up
    (step + 1) / warmup over the first ``warmup`` steps, then 1 (``constant``) or a half cosine
    0.5 (1 + cos(pi p)) with p the share of the post-warm-up steps done (``cosine``; Loshchilov &
    Hutter, 2017, without restarts). A function of the step alone, so a resumed run follows the
    same curve with nothing extra in the checkpoint."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def step_generator(*key: int) -> torch.Generator:
    """A CPU generator seeded by (seed, pass or step, purpose): the same stream on any device."""
    state = np.random.SeedSequence(list(key)).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state % 2**63))


def batch_index(step: int, n_images: int, *, batch_size: int, seed: int) -> torch.Tensor:
    """The images of optimiser step ``step``: its slice of its pass's seeded order."""
    per_pass = math.ceil(n_images / batch_size)
    order = torch.randperm(n_images, generator=step_generator(seed, step // per_pass, 1))
    at = (step % per_pass) * batch_size
    return order[at : at + batch_size]


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
    """Holds model, EMA, optimiser and progress; ``fit`` runs the remaining optimiser steps."""

    def __init__(
        self, unet: UNetConfig, schedule: NoiseSchedule, settings: TrainSettings, device="cpu"
    ):
        torch.manual_seed(settings.seed)
        self.device = torch.device(device)
        self.unet_config, self.settings = unet, settings
        self.schedule = schedule.to(self.device)
        # CPU: weights in channels_last (oneDNN's convolutions; a probe under load: 1.08x per
        # step at 32 base channels, 1.4x at 16, quick UNet at 32 px). Not measured on CUDA,
        # so there the layout stays as it was.
        layout = torch.channels_last if self.device.type == "cpu" else torch.preserve_format
        self.model = UNet(unet).to(self.device, memory_format=layout)
        self.trained = DistributedDataParallel(self.model) if dist.is_initialized() else self.model
        decay = settings.ema_decay
        self.ema = AveragedModel(
            self.model, multi_avg_fn=ema_with_warmup(decay) if decay > 0 else None
        )
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
        )
        self.step = 0  # optimiser steps completed
        self.best_val = math.inf
        self.best_step = -1  # the step count at the best validation
        self.best_state: dict[str, torch.Tensor] | None = None
        self.history: list[dict[str, float]] = []  # one row per validation

    def _autocast(self):
        """bfloat16 autocast of the forward pass on CUDA or CPU (GroupNorm, softmax and the
        losses stay float32 under torch's autocast op lists; the MI histogram casts itself)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.settings.bf16)

    @property
    def sampling_model(self) -> nn.Module:
        """The EMA weights when the average is on, the raw weights otherwise."""
        return self.ema.module if self.settings.ema_decay > 0 else self.model

    def _update_ema(self) -> None:
        if self.settings.ema_decay > 0:
            self.ema.update_parameters(self.model)
        else:
            self.ema.module.load_state_dict(self.model.state_dict())

    def _labels(self, labels: torch.Tensor | None, gen: torch.Generator) -> torch.Tensor | None:
        """The batch's classes with ``cond_dropout`` of them replaced by the null class."""
        if labels is None:
            return None
        drop = torch.rand(len(labels), generator=gen) < self.settings.cond_dropout
        return torch.where(drop, self.model.null_class, labels)

    def train_step(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        """Optimiser step ``self.step`` on its batch of ``images`` (N, 4, H, W) (and their
        classes, for a class-conditional network)."""
        self.model.train()
        settings = self.settings
        index = batch_index(
            self.step, len(images), batch_size=settings.batch_size, seed=settings.seed
        )
        gen = step_generator(settings.seed, self.step, 3)
        x0 = augment_batch(images[index], gen, self.settings.augment).to(self.device)
        t = torch.randint(0, self.schedule.num_steps, (len(index),), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        y = self._labels(labels[index] if labels is not None else None, gen)
        rows, weight = local_share(len(index))
        x0, t, noise = x0[rows], t[rows].to(self.device), noise[rows].to(self.device)
        y = y[rows].to(self.device) if y is not None else None
        with self._autocast():
            terms = diffusion_loss(
                self.trained,
                self.schedule,
                x0,
                t,
                noise,
                mi=self.settings.mi,
                denoise=self.settings.denoise,
                y=y,
            )
        self.optimizer.zero_grad(set_to_none=True)
        (terms.total * weight).backward()
        if self.settings.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.grad_clip)
        factor = lr_factor(
            self.step,
            total=self.settings.train_steps,
            warmup=self.settings.lr_warmup_steps,
            schedule=self.settings.lr_schedule,
        )
        for group in self.optimizer.param_groups:
            group["lr"] = self.settings.lr * factor
        self.optimizer.step()
        self._update_ema()
        self.step += 1
        return terms.detached()

    def train_steps(
        self, images: torch.Tensor, count: int, labels: torch.Tensor | None = None
    ) -> dict[str, float]:
        """``count`` optimiser steps; their mean loss terms as ``train_*``."""
        sums = {"loss": 0.0, "huber": 0.0, "mi": 0.0}
        for _ in range(count):
            for key, value in self.train_step(images, labels).items():
                sums[key] += value
        return {f"train_{k}": v / count for k, v in sums.items()}

    @torch.no_grad()
    def validate(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        """Sampling-model loss at fixed (seeded) steps and noise: comparable across steps;
        conditional networks are validated with the true classes."""
        model = self.sampling_model.eval()
        gen = step_generator(self.settings.seed, 0, 2)
        sums, count = {"loss": 0.0, "huber": 0.0, "mi": 0.0}, 0
        for i, x0 in enumerate(images.split(self.settings.batch_size)):
            t = torch.randint(0, self.schedule.num_steps, (len(x0),), generator=gen).to(self.device)
            noise = torch.randn(x0.shape, generator=gen).to(self.device)
            y = None
            if labels is not None:
                at = i * self.settings.batch_size
                y = labels[at : at + len(x0)].to(self.device)
            terms = diffusion_loss(
                model,
                self.schedule,
                x0.to(self.device),
                t,
                noise,
                mi=self.settings.mi,
                denoise=self.settings.denoise,
                y=y,
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
        on_eval: Callable[[int, dict[str, float]], None] | None = None,
        checkpoint_every_s: float = 0.0,
        labels: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        """Train from ``self.step`` to ``settings.train_steps``, validating every ``eval_every``.

        The resumable checkpoint is written after a validation when ``checkpoint_every_s``
        seconds have passed since the last one (0: after every validation) and always after the
        last step: short intervals would otherwise spend more time pickling than training.
        ``on_eval(step, metrics)`` gets the step count done. ``labels``: the (training,
        validation) classes of a class-conditional network.
        """
        train_y, val_y = labels if labels is not None else (None, None)
        last_saved, total = time.monotonic(), self.settings.train_steps
        while self.step < total:
            upto = min(
                total, (self.step // self.settings.eval_every + 1) * self.settings.eval_every
            )
            metrics = {
                **self.train_steps(train, upto - self.step, train_y),
                **self.validate(val, val_y),
            }
            if metrics["val_loss"] < self.best_val:
                self.best_val, self.best_step = metrics["val_loss"], self.step
                self.best_state = copy.deepcopy(self.sampling_model.state_dict())
            metrics["best_val_loss"] = self.best_val
            self.history.append({"step": self.step, **metrics})
            due = time.monotonic() - last_saved >= checkpoint_every_s
            if checkpoint is not None and (due or self.step == total):
                save_checkpoint(checkpoint, self.state_dict())
                last_saved = time.monotonic()
            if on_eval:
                on_eval(self.step, metrics)

    def state_dict(self) -> dict[str, Any]:
        settings = asdict(self.settings)
        return {
            "unet": self.unet_config.to_dict(),
            "settings": settings,
            "schedule": self.schedule.config.to_dict(),
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "best_val": self.best_val,
            "best_step": self.best_step,
            "best_state": self.best_state,
            "history": self.history,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.best_val, self.best_step = (
            state["step"],
            state["best_val"],
            state["best_step"],
        )
        self.best_state, self.history = state["best_state"], list(state["history"])

    def resume_from(self, path: Path) -> bool:
        """Load ``path`` if it exists; True when training continues from it."""
        if not path.exists():
            return False
        self.load_state_dict(load_checkpoint(path, map_location=self.device))
        return True
