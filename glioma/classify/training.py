"""Train one fold's classifier: focal loss, SGD with a one-cycle learning rate, best epoch by
validation loss. Every random draw (init, batch order, augmentation) is seeded by ``seed``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from glioma.classify.losses import focal_loss
from glioma.classify.settings import ClsSettings
from glioma.errors import DataError


@dataclass
class FoldResult:
    best_state: dict[str, torch.Tensor]
    best_epoch: int
    best_val_loss: float
    history: list[dict[str, float]] = field(default_factory=list)


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Shuffled index batches; a last batch of one joins the one before (BatchNorm needs 2)."""
    order = torch.randperm(n, generator=generator)
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2:] = [torch.cat(batches[-2:])]
    return batches


@torch.no_grad()
def predict_logits(model: nn.Module, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    model.eval()
    device = next(model.parameters()).device
    out = [
        model(images[i : i + batch_size].to(device)).float().cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(out) if out else torch.zeros(0)


def evaluate_loss(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor
) -> tuple[float, float]:
    """(focal loss, accuracy) on a whole set."""
    logits = predict_logits(model, images)
    loss = float(focal_loss(logits, labels))
    accuracy = float(((logits > 0).float() == labels).float().mean())
    return loss, accuracy


def train_fold(
    model: nn.Module,
    *,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    settings: ClsSettings,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    device: torch.device | str = "cpu",
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> FoldResult:
    """Fit ``model`` on ``train`` (images, labels); keep the epoch with the lowest val loss."""
    if len(train[0]) < 2:
        raise DataError(f"train_cls: {len(train[0])} training image(s); need at least 2")
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    model = model.to(device)
    images, labels = train
    steps = len(_batches(len(images), settings.batch_size, torch.Generator()))
    optimiser = torch.optim.SGD(
        model.parameters(),
        lr=settings.lr,
        momentum=settings.momentum,
        weight_decay=settings.weight_decay,
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=settings.lr, epochs=settings.epochs, steps_per_epoch=steps
    )
    result = FoldResult({}, -1, float("inf"))
    for epoch in range(settings.epochs):
        model.train()
        total, seen = 0.0, 0
        for index in _batches(len(images), settings.batch_size, generator):
            x = images[index]
            if augment is not None:
                x = torch.stack([augment(image) for image in x])
            x, y = x.to(device), labels[index].to(device)
            optimiser.zero_grad(set_to_none=True)
            loss = focal_loss(model(x), y)
            loss.backward()
            optimiser.step()
            schedule.step()
            total, seen = total + float(loss.detach()) * len(index), seen + len(index)
        val_loss, val_accuracy = evaluate_loss(model, *val)
        metrics = {
            "train_loss": total / seen,
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
            "lr": schedule.get_last_lr()[0],
        }
        result.history.append(metrics)
        if val_loss < result.best_val_loss:
            result.best_val_loss, result.best_epoch = val_loss, epoch
            result.best_state = copy.deepcopy(
                {k: v.detach().cpu() for k, v in model.state_dict().items()}
            )
        if on_epoch is not None:
            on_epoch(epoch, metrics)
    model.load_state_dict(result.best_state)
    return result


def labels_tensor(labels: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.asarray(labels, dtype=np.float32))
