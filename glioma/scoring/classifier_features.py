"""Features for ``FD_cls``: penultimate activations of a trained glioma classifier.

Any registered PyTorch classifier logged in MLflow's pickle format works: the features are
its ``features(x)`` when it has one (``GliomaResNet``), else the input of its last linear
layer. A Fréchet distance in this space needs no download, so it works offline.
"""

from __future__ import annotations

import mlflow
import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from glioma.errors import DataError


def load_classifier(model_uri: str) -> nn.Module:
    """A classifier from the registry or a run; DataError naming the URI otherwise."""
    try:
        model = mlflow.pytorch.load_model(model_uri, map_location="cpu")
    except Exception as exc:  # MLflow raises several types for a bad URI or flavour
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{model_uri}: cannot load this classifier ({first})") from None
    if not isinstance(model, nn.Module):
        raise DataError(f"{model_uri}: not a PyTorch module ({type(model).__name__})")
    return model.float().eval()


def _last_linear(model: nn.Module) -> nn.Linear:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise DataError("classifier has no linear layer: no penultimate features for FD_cls")
    return linears[-1]


@torch.no_grad()
def classifier_features(
    model: nn.Module, images: np.ndarray, *, batch_size: int = 64, device: str = "cpu"
) -> np.ndarray:
    """(N, 4, H, W) -> (N, F) penultimate features of ``model``."""
    model = model.to(device).eval()
    captured: list[torch.Tensor] = []
    hook = None
    if not hasattr(model, "features"):
        hook = _last_linear(model).register_forward_hook(
            lambda _m, inputs, _out: captured.append(inputs[0])
        )
    rows = []
    try:
        for start in tqdm(
            range(0, len(images), batch_size), desc="classifier features", leave=False
        ):
            batch = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size]))
            batch = batch.to(device, torch.float32)
            if hook is None:
                rows.append(model.features(batch).double().cpu().numpy())
            else:
                captured.clear()
                model(batch)
                rows.append(captured[-1].flatten(1).double().cpu().numpy())
    finally:
        if hook is not None:
            hook.remove()
    return np.concatenate(rows)
