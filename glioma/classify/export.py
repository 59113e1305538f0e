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
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def stored_form(model: torch.nn.Module) -> Iterator[dict]:
    """``model`` in float16 while the block runs, then float32 again holding the stored values
    (``stored_precision``'s rounding, which a fold run applies before it evaluates); yields the
    arguments every fold model is written with (pickle, signature, requirements, code)."""
    pytorch_logger = logging.getLogger("mlflow.pytorch")
    level = pytorch_logger.level
    pytorch_logger.setLevel(logging.ERROR)  # the pickle caution: a deliberate choice, said above
    cast = _stored_dtype(model, STORED_DTYPE)
    try:
        with package_code() as code:
            yield {
                "serialization_format": "pickle",
                "pip_requirements": PIP_REQUIREMENTS,
                "code_paths": code,
            }
    finally:
        pytorch_logger.setLevel(level)
        with torch.no_grad():
            for tensor, former in cast:
                tensor.data = tensor.data.to(former)


def save_fold_model(model: torch.nn.Module, path: Path, image_size: int) -> Path:
    """Write the fold model (float16 weights) as an MLflow model folder at ``path``."""
    with stored_form(model) as common:
        mlflow.pytorch.save_model(model, str(path), signature=fold_signature(image_size), **common)
    return path


def log_fold_model(model: torch.nn.Module, image_size: int, *, name: str, step: int):
    """Log the fold model (float16 weights) in the active run as an MLflow 3 logged model (the
    experiment's *Models* tab), with the run's parameters, at its best ``step`` (epoch);
    returns its ModelInfo (``model_id``, ``model_uri`` = ``models:/<id>``)."""
    with stored_form(model) as common:
        return mlflow.pytorch.log_model(
            model,
            name=name,
            signature=fold_signature(image_size),
            model_type="classifier",
            step=step,
            **common,
        )


def ensemble_arguments(
    fold_dirs: dict[str, str], *, combine: str, metadata: dict, example: np.ndarray
) -> dict:
    """What the ensemble model is written with: its code, the five fold folders as artifacts,
    its config, signature and input example (a few real patches (N, 4, H, W))."""
    size = int(example.shape[-1])
    return {
        "python_model": str(ENSEMBLE_CODE),
        "artifacts": fold_dirs,
        "model_config": {"image_size": size, "combine": combine},
        "signature": ensemble_signature(size),
        "input_example": np.ascontiguousarray(example, dtype=np.float32),
        "metadata": metadata,
        "pip_requirements": PIP_REQUIREMENTS,
    }


def inner_folders(flavors: dict) -> dict[str, str]:
    """Each fold's folder inside an ensemble model (``fold0`` -> its path), from its flavors."""
    return {key: entry["path"] for key, entry in flavors["python_function"]["artifacts"].items()}


def save_ensemble(
    fold_dirs: dict[str, str], path: Path, *, combine: str, metadata: dict, example: np.ndarray
) -> dict[str, str]:
    """Write the ensemble model folder at ``path``; returns each fold's folder inside it."""
    arguments = ensemble_arguments(fold_dirs, combine=combine, metadata=metadata, example=example)
    with package_code() as code:
        mlflow.pyfunc.save_model(str(path), code_paths=code, **arguments)
    return inner_folders(mlflow.models.Model.load(str(path)).flavors)


def log_ensemble(
    fold_dirs: dict[str, str], *, name: str, combine: str, metadata: dict, example: np.ndarray
):
    """Log the ensemble in the active run as an MLflow 3 logged model (the model users serve),
    with the run's parameters; returns its ModelInfo, whose ``flavors`` name the folds'
    folders inside it (``inner_folders``)."""
    arguments = ensemble_arguments(fold_dirs, combine=combine, metadata=metadata, example=example)
    with package_code() as code:
        return mlflow.pyfunc.log_model(
            name=name, code_paths=code, model_type="ensemble", **arguments
        )
