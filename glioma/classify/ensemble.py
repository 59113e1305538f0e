"""The served model: an MLflow pyfunc that averages the five fold classifiers.

Its artifacts are the fold models' alias URIs (``models:/glioma-cls-<site>-<setup>@foldK``):
MLflow resolves and copies them when the ensemble is logged, so the registered ensemble is
self-contained and does not change when an alias later moves; the resolved versions are in its
metadata. ``combine``: ``mean_prob`` averages the folds' HGG probabilities; ``mean_weights``
averages their weights into one network (same architecture; BatchNorm statistics averaged too).

Input, two encodings: ``{"inputs": <N x 4 x H x W numbers>}`` (JSON lists), or for bulk clients
``{"dataframe_split": {"columns": ["npy_base64"], "data": [["<base64 of a .npy file>"], ...]}}``
where each cell holds a float array of shape (4, H, W) or (n, 4, H, W): MLflow's JSON handling
of nested lists costs about 1 us per number, base64 almost nothing. So the ensemble declares no
input schema (its output schema is declared); it checks every input itself: a wrong shape,
channel count, non-numeric or non-finite value raises an MlflowException with
INVALID_PARAMETER_VALUE, which ``mlflow models serve`` answers with HTTP 400 and the message,
and goes on serving.
"""

from __future__ import annotations

import base64
import binascii
import io

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.types import ColSpec, Schema, TensorSpec

from glioma.names import GRADES
from glioma.packaging import pinned_requirements

COMBINE = ("mean_prob", "mean_weights")
NPY_COLUMN = "npy_base64"
PIP_REQUIREMENTS = pinned_requirements("torch", "torchvision", "mlflow", "numpy", "pandas")


def fold_signature(image_size: int) -> ModelSignature:
    """A fold model: float32 (-1, 4, H, W) tensors in, (-1,) HGG logits out."""
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 4, image_size, image_size))]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1,))]),
    )


def ensemble_signature() -> ModelSignature:
    """Outputs only: the inputs come in two encodings and are checked by ``checked_batch``."""
    return ModelSignature(
        inputs=None, outputs=Schema([ColSpec("double", "prob_hgg"), ColSpec("string", "label")])
    )


def npy_base64(images: np.ndarray) -> str:
    """The compact encoding of a float array for the ``npy_base64`` column."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(images, dtype=np.float32), allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _decode_npy_column(cells) -> np.ndarray:
    arrays = []
    for i, cell in enumerate(cells):
        try:
            array = np.load(
                io.BytesIO(base64.b64decode(str(cell), validate=True)), allow_pickle=False
            )
        except (ValueError, OSError, binascii.Error):
            raise bad_input(f"npy_base64 row {i}: not a base64-encoded .npy array") from None
        arrays.append(array[None] if array.ndim == 3 else array)
    try:
        return np.concatenate(arrays) if arrays else np.zeros((0,), np.float32)
    except ValueError:
        raise bad_input("npy_base64 rows: arrays of different shapes") from None


def bad_input(message: str) -> MlflowException:
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def checked_batch(model_input, image_size: int) -> np.ndarray:
    """The input as float32 (N, 4, H, W), or an MlflowException saying what is wrong."""
    if isinstance(model_input, pd.DataFrame):
        if list(model_input.columns) == [NPY_COLUMN]:
            model_input = _decode_npy_column(model_input[NPY_COLUMN])
        else:
            model_input = model_input.to_numpy()
    try:
        batch = np.asarray(model_input, dtype=np.float32)
    except (TypeError, ValueError):
        raise bad_input(
            "input must be numbers: a batch of 4-channel patches (N, 4, H, W)"
        ) from None
    expected = (4, image_size, image_size)
    if batch.ndim != 4 or batch.shape[1:] != expected:
        raise bad_input(
            f"input shape {tuple(batch.shape)}: expected (N, 4, {image_size}, {image_size}) "
            "float patches, channels T1, T1ce, T2, FLAIR"
        )
    bad = ~np.isfinite(batch)
    if bad.any():
        first = int(np.flatnonzero(bad.reshape(len(batch), -1).any(axis=1))[0])
        raise bad_input(f"input holds NaN or infinite values (first in image {first})")
    return batch


def averaged_model(models: list[torch.nn.Module]) -> torch.nn.Module:
    """One network whose floating-point weights and buffers are the folds' means."""
    merged = models[0]
    states = [m.state_dict() for m in models]
    mean = {
        k: torch.stack([s[k] for s in states]).mean(0) if v.is_floating_point() else v
        for k, v in states[0].items()
    }
    merged.load_state_dict(mean)
    return merged.eval()


class EnsemblePyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        config = context.model_config or {}
        self.image_size = int(config["image_size"])
        self.combine = config.get("combine", "mean_prob")
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        folds = sorted(k for k in context.artifacts if k.startswith("fold"))
        models = [
            mlflow.pytorch.load_model(context.artifacts[k], map_location=self.device).float().eval()
            for k in folds
        ]
        self.models = [averaged_model(models)] if self.combine == "mean_weights" else models

    @torch.no_grad()
    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(batch).to(self.device)
        return np.mean([torch.sigmoid(m(x)).double().cpu().numpy() for m in self.models], axis=0)

    def predict(self, context, model_input: np.ndarray, params=None) -> pd.DataFrame:
        probabilities = self.probabilities(checked_batch(model_input, self.image_size))
        labels = np.where(probabilities >= 0.5, GRADES[1], GRADES[0])
        return pd.DataFrame({"prob_hgg": probabilities, "label": labels})
