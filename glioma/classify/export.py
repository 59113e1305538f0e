"""The classifier as MLflow models: one fold, and the ensemble that serves the five.

Both carry the package's code (``code_paths``) and their pip requirements, so they load in an
environment that holds only MLflow and those requirements: no project checkout, no
``pip install -e``. Fold models use MLflow's ``pickle`` format, chosen over MLflow 3's default
``pt2``: ``pt2`` needs an input example, fixes the traced shapes and loads back as a graph
module, which loses the ``features`` method FD_cls reads and the weight averaging. The pickle
needs ``glioma`` importable where it is loaded, which the carried code provides.

The ensemble's artifacts are the five fold model folders, copied into it: the registered
ensemble is self-contained (``mlflow models serve`` and ``build-docker`` need nothing else).

Fold weights (not the BatchNorm statistics) are stored in float16 and computed in float32
(``GliomaResNet`` casts itself back when unpickled): half the disk (a quick study holds 40
ResNet-18s). The rounding moves a probability by about 1e-3 at most; ``stored_precision``
applies it before a fold is evaluated, so a fold run's metrics are those of the model it stores.
"""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
import numpy as np
import torch

from glioma.classify.ensemble import PIP_REQUIREMENTS, ensemble_signature, fold_signature
from glioma.packaging import package_code

ENSEMBLE_CODE = Path(__file__).with_name("ensemble_model.py")


STORED_DTYPE = torch.float16


def _storable(tensor: torch.Tensor) -> bool:
    """A weight that float16 holds: finite there (BatchNorm statistics stay float32: they
    are few, and after a short training can exceed float16's 65504)."""
    return tensor.is_floating_point() and bool(torch.isfinite(tensor.to(STORED_DTYPE)).all())


@torch.no_grad()
def stored_precision(model: torch.nn.Module) -> torch.nn.Module:
    """Round ``model``'s weights as ``save_fold_model`` stores them (in place)."""
    for tensor in model.parameters():
        if _storable(tensor):
            tensor.copy_(tensor.to(STORED_DTYPE).to(tensor.dtype))
    return model


@torch.no_grad()
def _stored_dtype(
    model: torch.nn.Module, dtype: torch.dtype
) -> list[tuple[torch.nn.Parameter, torch.dtype]]:
    """Cast ``model``'s storable weights to ``dtype`` in place; returns each one cast with its
    former dtype. No copy of the network is made (a ResNet-18 per fold)."""
    cast = []
    for tensor in model.parameters():
        if tensor.is_floating_point():
            converted = tensor.data.to(dtype)
            if bool(torch.isfinite(converted).all()):
                cast.append((tensor, tensor.dtype))
                tensor.data = converted
    return cast


def save_fold_model(model: torch.nn.Module, path: Path, image_size: int) -> Path:
    """Write the fold model (float16 weights) as an MLflow model folder at ``path``. ``model``
    is stored in float16 and handed back in float32 holding the stored values
    (``stored_precision``'s rounding, which a fold run applies before it evaluates)."""
    pytorch_logger = logging.getLogger("mlflow.pytorch")
    level = pytorch_logger.level
    pytorch_logger.setLevel(logging.ERROR)  # the pickle caution: a deliberate choice, said above
    cast = _stored_dtype(model, STORED_DTYPE)
    try:
        with package_code() as code:
            mlflow.pytorch.save_model(
                model,
                str(path),
                serialization_format="pickle",
                signature=fold_signature(image_size),
                pip_requirements=PIP_REQUIREMENTS,
                code_paths=code,
            )
    finally:
        pytorch_logger.setLevel(level)
        with torch.no_grad():
            for tensor, former in cast:
                tensor.data = tensor.data.to(former)
    return path


def save_ensemble(
    fold_dirs: dict[str, str], path: Path, *, combine: str, metadata: dict, example: np.ndarray
) -> dict[str, str]:
    """Write the ensemble model folder at ``path``; returns each fold's folder inside it.

    ``example``: a few real patches (N, 4, H, W), stored as the model's input example.
    """
    with package_code() as code:
        mlflow.pyfunc.save_model(
            str(path),
            python_model=str(ENSEMBLE_CODE),
            artifacts=fold_dirs,
            code_paths=code,
            model_config={"image_size": int(example.shape[-1]), "combine": combine},
            signature=ensemble_signature(int(example.shape[-1])),
            input_example=np.ascontiguousarray(example, dtype=np.float32),
            metadata=metadata,
            pip_requirements=PIP_REQUIREMENTS,
        )
    stored = mlflow.models.Model.load(str(path)).flavors["python_function"]["artifacts"]
    return {key: entry["path"] for key, entry in stored.items()}
