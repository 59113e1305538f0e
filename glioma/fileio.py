"""Atomic file writes: a crash leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import json
import os
import pickle
import struct
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

from glioma.errors import DataError


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def _write_with(path: str | os.PathLike, mode: str, writer: Callable[[IO[Any]], None]) -> None:
    with atomic_path(path) as tmp, open(tmp, mode) as handle:
        writer(handle)
        handle.flush()
        os.fsync(handle.fileno())


def write_text(path: str | os.PathLike, text: str) -> None:
    _write_with(path, "w", lambda f: f.write(text))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    _write_with(path, "wb", lambda f: np.save(f, array, allow_pickle=False))


def load_torch_file(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """``torch.load(weights_only=True)``; a one-line DataError for a missing or foreign file.
    torch is imported here, not above: the light commands (``glioma predict``) write files too."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (
        RuntimeError,
        EOFError,
        OSError,
        ValueError,
        struct.error,
        zipfile.BadZipFile,
        pickle.UnpicklingError,
    ) as exc:
        reason = " ".join(str(exc).split())[:300]  # torch's messages span lines; ours is one
        raise DataError(
            f"{path}: not a readable torch file ({type(exc).__name__}: {reason})"
        ) from None
