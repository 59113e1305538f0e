"""The classifier library's training settings: torch-free, checked at construction, so the
configs can build them (as ``glioma.diffusion.settings`` and ``glioma.scoring.settings``)."""

from __future__ import annotations

from dataclasses import dataclass

from glioma.errors import check


@dataclass(frozen=True, kw_only=True)
class ClsSettings:
    """SGD with momentum under a one-cycle learning rate peaking at ``lr``, ``epochs`` passes in
    batches of ``batch_size``; ``seed`` for the batch order and the augmentation."""

    epochs: int = 30
    batch_size: int = 32
    lr: float = 0.01  # the one-cycle schedule's peak
    momentum: float = 0.9
    weight_decay: float = 1e-4
    seed: int = 0

    def __post_init__(self) -> None:
        check(self.epochs >= 1, f"epochs: must be >= 1, got {self.epochs}")
        check(self.batch_size >= 2, f"batch_size: must be >= 2, got {self.batch_size}")
        check(self.lr > 0, f"lr: must be > 0, got {self.lr}")
        check(0.0 <= self.momentum < 1.0, f"momentum: must be in [0, 1), got {self.momentum}")
        check(self.weight_decay >= 0, f"weight_decay: must be >= 0, got {self.weight_decay}")
