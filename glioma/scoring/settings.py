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


@dataclass(frozen=True, kw_only=True)
class TSTRSettings:
    """The TSTR and TRTR classifiers (``glioma.scoring.tstr``): ``arch`` trained ``epochs``
    passes, ``val_share`` of each training set kept aside to choose the epoch."""

    arch: str = "resnet18"
    epochs: int = 30
    batch_size: int = 32
    lr: float = 0.01
    val_share: float = 0.2  # of each training set, stratified, for the epoch choice
    seed: int = 0

    def __post_init__(self) -> None:
        check(self.epochs >= 1, f"tstr_epochs: must be >= 1, got {self.epochs}")
        check(0 < self.val_share < 1, f"val_share: must be in (0, 1), got {self.val_share}")


@dataclass(frozen=True, kw_only=True)
class InceptionSettings:
    """FID, KID, IS and PRDC on the FID Inception's features: ``mode`` required (stop without
    the weights), auto (skip and say so) or off; ``encoder`` maps 4 channels to 3."""

    mode: str = "auto"
    weights: str = ""  # the weights file; '': torch's hub cache
    encoder: str = "pca"
    batch_size: int = 32
    is_splits: int = 10
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    prdc_k: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        check(self.is_splits >= 1, f"is_splits: must be >= 1, got {self.is_splits}")
        check(self.kid_subsets >= 1, f"kid_subsets: must be >= 1, got {self.kid_subsets}")
        check(
            self.kid_subset_size >= 2, f"kid_subset_size: must be >= 2, got {self.kid_subset_size}"
        )
        check(self.prdc_k >= 1, f"prdc_k: must be >= 1, got {self.prdc_k}")
        check(self.batch_size >= 1, f"batch_size: must be >= 1, got {self.batch_size}")


@dataclass(frozen=True, kw_only=True)
class MemorisationSettings:
    """Nearest-training correlation over the ``region`` (full, or foreground), a copy above
    ``threshold``, the ``pairs_shown`` nearest pairs in the figure."""

    region: str = "full"
    threshold: float = 0.95
    pairs_shown: int = 8

    def __post_init__(self) -> None:
        check(
            0.0 < self.threshold < 1.0,
            f"memorisation_threshold: must be in (0, 1), got {self.threshold}",
        )
        check(self.pairs_shown >= 1, f"pairs_shown: must be >= 1, got {self.pairs_shown}")
