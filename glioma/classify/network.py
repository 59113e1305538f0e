"""A torchvision ResNet that takes the 4 MRI contrasts and gives one logit for HGG.

``features`` exposes the penultimate (global-pooled) activations: the feature space of
FD_cls, the Fréchet distance measured by a trained glioma classifier instead of Inception.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from glioma.errors import ConfigError

ARCHITECTURES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


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

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Global-pooled activations before the final linear layer: (B, 512 or 2048)."""
        net = self.net
        x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        x = net.layer4(net.layer3(net.layer2(net.layer1(x))))
        return torch.flatten(net.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.fc(self.features(x)).squeeze(1)
