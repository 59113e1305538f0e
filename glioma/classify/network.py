"""A torchvision ResNet that takes the 4 MRI contrasts and gives one logit for HGG.

ImageNet initialisation rule: with the torchvision ImageNet weights on this machine (torch's
hub cache, or a given file; a profile that requires them downloads them there first) the
network starts from them; the first convolution's filters for T1, T1ce and T2 are the RGB
filters and FLAIR's is their mean, and the 1000-way head is replaced by one logit. Without
them it starts from random weights; ``init`` says which happened.
``features`` exposes the global-pooled activations: the feature space of FD_cls.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import nn

from glioma.errors import ConfigError, DataError, MissingWeightsError
from glioma.fileio import load_torch_file
from glioma.weights import fetch

ARCHITECTURES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


def imagenet_weight_files(arch: str) -> list[str]:
    """File names torchvision gives the ImageNet weights of ``arch`` (all published versions)."""
    enum = torchvision.models.get_model_weights(arch)
    return [w.url.rsplit("/", 1)[-1] for w in enum]


def find_imagenet_weights(arch: str, path: str = "") -> Path | None:
    """``path`` if given (it must exist), else the newest version in torch's hub cache, or None."""
    if path:
        file = Path(path).expanduser()
        if not file.is_file():
            raise DataError(f"imagenet_weights {file}: no such file")
        return file
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    found = [cache / name for name in reversed(imagenet_weight_files(arch))]
    return next((f for f in found if f.is_file()), None)


def require_imagenet_weights(arch: str) -> Path:
    """The hub cache's ImageNet weights of ``arch``, downloaded there first when absent (as
    torchvision does); MissingWeightsError saying where they go when they cannot be had."""
    file = find_imagenet_weights(arch)
    if file is not None:
        return file
    url = torchvision.models.get_model_weights(arch).DEFAULT.url
    try:
        return fetch(url, what=f"ImageNet weights of {arch}")
    except MissingWeightsError as exc:
        raise MissingWeightsError(
            f"imagenet_weights: the profile trains {arch} from ImageNet weights; {exc}; copy "
            f"{url} there, pass --imagenet_weights <file>, or --imagenet_weights none to train "
            "from random weights"
        ) from None


def four_channel_stem(rgb: torch.Tensor) -> torch.Tensor:
    """(64, 3, k, k) ImageNet filters -> (64, 4, k, k): T1, T1ce, T2 = R, G, B; FLAIR = mean."""
    return torch.cat([rgb, rgb.mean(dim=1, keepdim=True)], dim=1)


class GliomaResNet(nn.Module):
    """(B, 4, H, W) in [-1, 1] -> (B,) HGG logits."""

    def __init__(self, arch: str = "resnet18", in_channels: int = 4):
        super().__init__()
        if arch not in ARCHITECTURES:
            raise ConfigError(f"arch: expected one of {', '.join(ARCHITECTURES)}, got {arch!r}")
        net = getattr(torchvision.models, arch)(weights=None)
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        net.fc = nn.Linear(net.fc.in_features, 1)
        self.arch = arch
        self.net = net

    def load_imagenet(self, file: Path) -> None:
        """Start from ImageNet weights: 4-channel stem by the rule above, new 1-logit head."""
        try:
            state = load_torch_file(file)
        except DataError:
            raise DataError(f"imagenet_weights {file}: not a torch state dict") from None
        if (
            not isinstance(state, dict)
            or state.get("conv1.weight") is None
            or state["conv1.weight"].shape[1] != 3
        ):
            raise DataError(f"imagenet_weights {file}: no 3-channel conv1.weight; not a ResNet")
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        state["conv1.weight"] = four_channel_stem(state["conv1.weight"])
        missing, unexpected = self.net.load_state_dict(state, strict=False)
        if unexpected or set(missing) - {"fc.weight", "fc.bias"}:
            raise DataError(f"imagenet_weights {file}: does not fit {self.arch}")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Global-pooled activations before the final linear layer: (B, 512 or 2048)."""
        net = self.net
        x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        x = net.layer4(net.layer3(net.layer2(net.layer1(x))))
        return torch.flatten(net.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.fc(self.features(x)).squeeze(1)

    def __setstate__(self, state: dict) -> None:
        """Unpickled from float16 storage (``glioma.classify.export``): compute in float32."""
        super().__setstate__(state)
        self.float()


def build_classifier(arch: str, imagenet_weights: str = "") -> tuple[GliomaResNet, str]:
    """The classifier and how it was initialised: ``imagenet:<file>`` or ``random``.

    ``imagenet_weights``: "" looks in torch's hub cache (random init without it), "required"
    too but stops without it, "none" forces random init, else a file.
    """
    model = GliomaResNet(arch)
    if imagenet_weights == "none":
        return model, "random"
    if imagenet_weights == "required":
        file = require_imagenet_weights(arch)
    else:
        file = find_imagenet_weights(arch, imagenet_weights)
    if file is None:
        return model, "random"
    model.load_imagenet(file)
    return model, f"imagenet:{file.name}"
