"""Checkpoints: written atomically, read with ``weights_only=True`` (no pickled code runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from glioma.errors import DataError
from glioma.fileio import atomic_path, load_torch_file


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """The saved dict; a clear DataError for a missing, truncated or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: checkpoint does not exist")
    return load_torch_file(path, map_location)
