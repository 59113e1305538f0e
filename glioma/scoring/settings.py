"""The scoring library's settings that the command line builds: torch-free, checked at
construction, so ``--help`` and the configs can read them (as ``glioma.diffusion.settings``)."""

from __future__ import annotations

from dataclasses import dataclass

from glioma.errors import check


@dataclass(frozen=True, kw_only=True)
class TwoSampleSettings:
    """The CNN's training: ``epochs`` passes of Adam at ``lr``, batches of ``batch_size``,
    random flips; ``n_boot`` bootstrap resamples for the interval; ``seed`` for the halves,
    the weights and the resamples."""

    epochs: int = 40
    batch_size: int = 32
    lr: float = 1e-3
    width: int = 16
    n_boot: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        check(self.epochs >= 1, f"c2st_epochs: must be >= 1, got {self.epochs}")
        check(self.batch_size >= 1, f"c2st_batch_size: must be >= 1, got {self.batch_size}")
        check(0 < self.lr < 1, f"c2st_lr: must be in (0, 1), got {self.lr}")
        check(self.width >= 4, f"c2st_width: must be >= 4, got {self.width}")
