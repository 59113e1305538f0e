"""Which torch device a step runs on: CUDA when present (``auto``), else the CPU."""

from __future__ import annotations

import torch

from glioma.errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda asked for, but torch sees no CUDA device")
    return torch.device(name)
