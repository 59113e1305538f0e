"""The served model: an MLflow pyfunc that averages the five fold classifiers.

Its artifacts are the fold models' alias URIs (``models:/glioma-cls-<site>-<setup>@foldK``):
MLflow resolves and copies them when the ensemble is logged, so the registered ensemble is
self-contained and does not change when an alias later moves; the resolved versions are in its
metadata. ``combine``: ``mean_prob`` averages the folds' HGG probabilities; ``mean_weights``
averages their weights into one network (same architecture; BatchNorm statistics averaged too).

Input: the contract of ``glioma.classify.contract`` (float32 (N, 4, S, S) patches in [-1, 1]),
declared as the model's tensor input schema, in JSON or Parquet. MLflow checks shape and type;
``checked_batch`` adds finite values inside the range. A bad input raises an MlflowException
with INVALID_PARAMETER_VALUE, which ``mlflow models serve`` answers with HTTP 400 and the
message, and goes on serving.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.types import ColSpec, Schema, TensorSpec

from glioma.classify.contract import patch_shape_text, range_problem
from glioma.names import CHANNELS, GRADES
from glioma.packaging import pinned_requirements

COMBINE = ("mean_prob", "mean_weights")
PIP_REQUIREMENTS = pinned_requirements("torch", "torchvision", "mlflow", "numpy", "pandas")


def patch_schema(image_size: int) -> Schema:
    """float32 (-1, 4, S, S): prepare-normalised patches, channels T1, T1ce, T2, FLAIR."""
    shape = (-1, len(CHANNELS), image_size, image_size)
    return Schema([TensorSpec(np.dtype(np.float32), shape)])


def fold_signature(image_size: int) -> ModelSignature:
    """A fold model: patches in, (-1,) HGG logits out."""
    return ModelSignature(
        inputs=patch_schema(image_size), outputs=Schema([TensorSpec(np.dtype(np.float32), (-1,))])
    )


def ensemble_signature(image_size: int) -> ModelSignature:
    """The served ensemble: patches in, each image's HGG probability and label out."""
    return ModelSignature(
        inputs=patch_schema(image_size),
        outputs=Schema([ColSpec("double", "prob_hgg"), ColSpec("string", "label")]),
    )


def bad_input(message: str) -> MlflowException:
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def checked_batch(model_input, image_size: int) -> np.ndarray:
    """The input as float32 (N, 4, S, S) inside the range, or an MlflowException saying what is
    wrong. Behind ``mlflow models serve`` the schema has checked shape and type already; a
    caller of the Python model itself gets the same checks here."""
    try:
        batch = np.asarray(model_input, dtype=np.float32)
    except (TypeError, ValueError):
        raise bad_input(f"input must be numbers: {patch_shape_text(image_size)}") from None
    if batch.ndim != 4 or batch.shape[1:] != (len(CHANNELS), image_size, image_size):
        expected = patch_shape_text(image_size)
        raise bad_input(f"input shape {tuple(batch.shape)}: expected {expected}")
    problem = range_problem(batch)
    if problem:
        raise bad_input(problem)
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
