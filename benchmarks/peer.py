"""The peer arm of the learning curve: lucidrains' ``denoising-diffusion-pytorch`` beside ours.

``pip install -e '.[peer]'`` installs it (a benchmark-only extra). Its ``GaussianDiffusion`` is
used at its defaults (v-prediction, Chen's sigmoid schedule over T = 1000, MSE weighted
SNR / (SNR + 1), its DDIM with ``sampling_timesteps`` 25 and x0 clipping), around its ``Unet``
at our quick network's width and depth (``dim`` 32, ``dim_mults`` 1,2,2; its two residual
blocks per level and linear attention make it about twice our cost per step). What is ours
is what both arms must share to be compared: the images, the batches (the same seeded passes,
the same augmentation), the optimiser (AdamW at the profile's lr, gradients clipped at 1, as its
``Trainer`` does) and the scoring. Its ``Trainer`` defaults (Adam 1e-4 over 100k steps) are
made for runs a hundred times longer than the quick profile's. Its EMA is the ``Trainer``'s:
``ema_pytorch.EMA`` with decay 0.995 every 10 steps after 100 and its slow warm-up; both its
raw and its EMA weights are scored.

An arm is ``peer`` or ``peer+<objective>+<schedule>`` with the objective one of ``v``, ``eps``,
``x0`` and the schedule one of ``sigmoid``, ``cosine``, ``linear`` (``peer+eps+linear``: the
peer switched to our old recipe's objective and schedule).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from torch import nn

from glioma.diffusion.augment import augment_batch
from glioma.diffusion.settings import TrainSettings
from glioma.diffusion.training import batch_index, step_generator

OBJECTIVES = {"v": "pred_v", "eps": "pred_noise", "x0": "pred_x0"}
SCHEDULES = ("sigmoid", "cosine", "linear")
DIM, DIM_MULTS = 32, (1, 2, 2)  # our quick UNet's base width and levels
SAMPLING_STEPS = 25  # the benchmark's DDIM-25 for our arms too


@dataclass(frozen=True)
class PeerArm:
    name: str
    objective: str = "v"
    schedule: str = "sigmoid"

    @classmethod
    def parse(cls, text: str) -> PeerArm:
        head, *extras = text.split("+")
        if head != "peer":
            raise ValueError(f"a peer arm starts with 'peer', got {text!r}")
        arm = {"objective": "v", "schedule": "sigmoid"}
        for extra in extras:
            if extra in OBJECTIVES:
                arm["objective"] = extra
            elif extra in SCHEDULES:
                arm["schedule"] = extra
            else:
                raise ValueError(f"{text}: {extra!r} is neither an objective nor a schedule")
        return cls(text, **arm)


class PeerTrainer:
    """The peer's model, diffusion and EMA, stepped on our batches with our optimiser."""

    def __init__(self, arm: PeerArm, settings: TrainSettings, image_size: int, channels: int = 4):
        from denoising_diffusion_pytorch import GaussianDiffusion, Unet
        from denoising_diffusion_pytorch import denoising_diffusion_pytorch as module
        from ema_pytorch import EMA

        module.tqdm = partial(module.tqdm, disable=True)  # its sampling bar, once per batch

        torch.manual_seed(settings.seed)
        self.settings, self.step = settings, 0
        self.diffusion = GaussianDiffusion(
            Unet(dim=DIM, dim_mults=DIM_MULTS, channels=channels),
            image_size=image_size,
            sampling_timesteps=SAMPLING_STEPS,
            objective=OBJECTIVES[arm.objective],
            beta_schedule=arm.schedule,
            auto_normalize=False,  # our images are in [-1, 1] already
        )
        self.ema = EMA(self.diffusion, beta=0.995, update_every=10)  # its Trainer's
        self.optimizer = torch.optim.AdamW(
            self.diffusion.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
        )

    def train_steps(self, images: torch.Tensor, count: int, labels=None) -> None:
        """``count`` optimiser steps on our batches (its own t and noise, from torch's seeded
        global generator)."""
        settings = self.settings
        self.diffusion.train()
        for _ in range(count):
            index = batch_index(
                self.step, len(images), batch_size=settings.batch_size, seed=settings.seed
            )
            gen = step_generator(settings.seed, self.step, 3)
            loss = self.diffusion(augment_batch(images[index], gen, settings.augment))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.diffusion.parameters(), settings.grad_clip)
            self.optimizer.step()
            self.ema.update()
            self.step += 1

    @torch.no_grad()
    def sample(self, n: int, *, seed: int, ema: bool) -> np.ndarray:
        model = self.ema.ema_model if ema else self.diffusion
        model.eval()
        torch.manual_seed(seed)
        return model.sample(batch_size=n).clamp(-1, 1).cpu().numpy().astype(np.float32)


def schedule_check(arm: PeerArm) -> float:
    """Largest |abar| difference between the peer's schedule table and ours of the same name
    (float32 there, float64 here): the schedules are the same curves."""
    from denoising_diffusion_pytorch.denoising_diffusion_pytorch import (
        cosine_beta_schedule,
        linear_beta_schedule,
        sigmoid_beta_schedule,
    )

    from glioma.diffusion.schedule import NoiseSchedule

    theirs = {
        "sigmoid": sigmoid_beta_schedule,
        "cosine": cosine_beta_schedule,
        "linear": linear_beta_schedule,
    }[arm.schedule](1000)
    ours = NoiseSchedule(1000, schedule=arm.schedule).alphas_cumprod
    return float((torch.cumprod(1 - theirs, 0) - ours).abs().max())
