"""pytorch-fid's FID Inception network, loaded only from local weights.

FID and IS are comparable across papers only with the TF-ported FID Inception weights that
pytorch-fid downloads on first use. Here they come from torch's hub cache (where pytorch-fid
keeps them) or from a given file; this module never downloads and never substitutes random
weights: without the file it raises ``MissingWeightsError`` naming the file, URL and place.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_fid import inception as fid_inception
from torch import nn
from tqdm.auto import tqdm

from glioma.errors import DataError, MissingWeightsError
from glioma.fileio import load_torch_file

WEIGHTS_URL = fid_inception.FID_WEIGHTS_URL
WEIGHTS_FILE = WEIGHTS_URL.rsplit("/", 1)[-1]  # pt_inception-2015-12-05-6726825d.pth
INPUT_SIZE = 299


def hub_weights_path() -> Path:
    """Where pytorch-fid (torch.hub) caches the FID Inception weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


def find_weights(path: str = "") -> Path:
    """The weights file: ``path`` if given, else the hub cache; MissingWeightsError if absent."""
    candidate = Path(os.path.expanduser(path)) if path else hub_weights_path()
    if candidate.is_file():
        return candidate
    where = f"the given path {candidate}" if path else f"torch's hub cache {candidate}"
    raise MissingWeightsError(
        f"FID Inception weights {WEIGHTS_FILE} not found at {where}; download {WEIGHTS_URL} "
        f"and save it as {hub_weights_path()} (or pass --inception_weights <file>)"
    )


def fid_inception_architecture() -> nn.Module:
    """torchvision's Inception v3 patched into the FID Inception (as pytorch-fid builds it)."""
    net = fid_inception._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    net.Mixed_5b = fid_inception.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = fid_inception.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = fid_inception.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = fid_inception.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = fid_inception.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = fid_inception.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = fid_inception.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = fid_inception.FIDInceptionE_1(1280)
    net.Mixed_7c = fid_inception.FIDInceptionE_2(2048)
    return net


class FIDInception(nn.Module):
    """(B, 3, H, W) in [0, 1] -> (pool3 features (B, 2048), logits (B, 1008)).

    Resizes to 299x299 (bilinear) and scales to [-1, 1] exactly as pytorch-fid's InceptionV3.
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net.eval()

    @classmethod
    def from_weights(cls, path: str = "") -> FIDInception:
        weights = find_weights(path)
        net = fid_inception_architecture()
        try:
            state = load_torch_file(weights)
        except DataError:
            raise MissingWeightsError(
                f"{weights}: not the FID Inception weights (unreadable as a torch state dict)"
            ) from None
        try:
            net.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as exc:
            first = str(exc).splitlines()[0]
            raise MissingWeightsError(
                f"{weights}: not the FID Inception weights ({first})"
            ) from None
        return cls(net)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.interpolate(
            images, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False
        )
        x = 2 * x - 1
        net = self.net
        for name in (
            "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1",
            "Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool2",
            "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
            "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c", "avgpool",
        ):  # fmt: skip
            x = getattr(net, name)(x)
        pool3 = torch.flatten(x, 1)
        return pool3, net.fc(pool3)


@torch.no_grad()
def inception_features(
    model: FIDInception,
    images: np.ndarray,
    *,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    desc: str = "inception",
) -> tuple[np.ndarray, np.ndarray]:
    """(pool3 features (N, 2048), logits (N, 1008)) of (N, 3, H, W) images in [0, 1]."""
    model = model.to(device).eval()
    pools, logits = [], []
    for start in tqdm(range(0, len(images), batch_size), desc=desc, unit="batch", leave=False):
        batch = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size]))
        pool3, logit = model(batch.to(device, torch.float32))
        pools.append(pool3.double().cpu().numpy())
        logits.append(logit.double().cpu().numpy())
    return np.concatenate(pools), np.concatenate(logits)
