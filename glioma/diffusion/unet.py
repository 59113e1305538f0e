"""The denoising network: a UNet that predicts the noise eps from (x_t, t).

Sinusoidal time embedding -> MLP; residual blocks with GroupNorm and SiLU that add the time
embedding; self-attention at the resolutions listed in ``attention_resolutions``; skip
connections between encoder and decoder levels. 4 channels in, 4 out.

With ``num_classes`` > 0 the network is class-conditional (one network for both grades): a
learned embedding of the class y is added to the time embedding, and one extra index
(``num_classes``, the "null" class) stands for "no condition", which training uses with
probability ``cond_dropout`` so that the same network also predicts the unconditional noise
that classifier-free guidance needs (Ho & Salimans 2022).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from glioma.diffusion.settings import GROUPS, UNetConfig

__all__ = ["GROUPS", "UNetConfig", "UNet", "Guided"]


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """emb(t)_i = sin(t / 10000^(2i/d)), cos(...): the Transformer position code, for steps."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.sin(), args.cos()], dim=1)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(GROUPS, channels), channels)


class ResBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, time_dim: int, dropout: float):
        super().__init__()
        self.norm1, self.conv1 = _norm(in_ch), nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.time = nn.Linear(time_dim, out_ch)
        self.norm2, self.conv2 = _norm(out_ch), nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(F.silu(temb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return h + self.skip(x)


class SelfAttention(nn.Module):
    """Single-head self-attention over the pixels of a low-resolution feature map."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = _norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).transpose(-1, -2).unbind(1)
        attended = F.scaled_dot_product_attention(q, k, v)
        return x + self.out(attended.transpose(-1, -2).reshape(b, c, h, w))


class Level(nn.Module):
    """The blocks of one resolution, with attention after each block where asked."""

    def __init__(
        self, channels: list[tuple[int, int]], time_dim: int, attention: bool, dropout: float
    ):
        super().__init__()
        self.blocks = nn.ModuleList(ResBlock(i, o, time_dim, dropout) for i, o in channels)
        self.attn = nn.ModuleList(
            SelfAttention(o) if attention else nn.Identity() for _, o in channels
        )


class UNet(nn.Module):
    def __init__(self, config: UNetConfig, channels_last: bool = False):
        super().__init__()
        self.config = config
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        base, time_dim = config.base_channels, 4 * config.base_channels
        self.time_mlp = nn.Sequential(
            nn.Linear(base, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim)
        )
        self.class_embed = (
            nn.Embedding(config.num_classes + 1, time_dim) if config.num_classes else None
        )
        self.stem = nn.Conv2d(config.channels, base, 3, padding=1)
        widths = [base * m for m in config.channel_mults]
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        skips, ch, res = [base], base, config.image_size
        for i, width in enumerate(widths):
            pairs = [(ch if j == 0 else width, width) for j in range(config.num_res_blocks)]
            self.down.append(
                Level(pairs, time_dim, res in config.attention_resolutions, config.dropout)
            )
            ch = width
            skips += [width] * config.num_res_blocks
            last = i == len(widths) - 1
            self.downsample.append(
                nn.Identity() if last else nn.Conv2d(ch, ch, 3, stride=2, padding=1)
            )
            if not last:
                skips.append(ch)
                res //= 2
        self.mid = Level([(ch, ch), (ch, ch)], time_dim, True, config.dropout)
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for i, width in reversed(list(enumerate(widths))):
            pairs = []
            for _ in range(config.num_res_blocks + 1):
                pairs.append((ch + skips.pop(), width))
                ch = width
            self.up.append(
                Level(pairs, time_dim, res in config.attention_resolutions, config.dropout)
            )
            first = i == 0
            self.upsample.append(nn.Identity() if first else nn.Conv2d(ch, ch, 3, padding=1))
            if not first:
                res *= 2
        self.head = nn.Sequential(
            _norm(ch), nn.SiLU(), nn.Conv2d(ch, config.channels, 3, padding=1)
        )
        # channels_last: 1.1-1.25x faster CPU inference, 0.9x for paper-size CPU training
        # (benchmarks/bench_layout.py); so the samplers use it and training does not.
        self.to(memory_format=self.memory_format)

    @property
    def null_class(self) -> int:
        """The class index that means "no condition" (classifier-free guidance)."""
        return self.config.num_classes

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        """eps_hat(x_t, t[, y]); a conditional network given no ``y`` is unconditional."""
        temb = self.time_mlp(sinusoidal_embedding(t, self.config.base_channels))
        if self.class_embed is not None:
            if y is None:
                y = torch.full((len(x),), self.null_class, dtype=torch.long, device=x.device)
            temb = temb + self.class_embed(y)
        h = self.stem(x.contiguous(memory_format=self.memory_format))
        skips = [h]
        for level, down in zip(self.down, self.downsample):
            for block, attn in zip(level.blocks, level.attn):
                h = attn(block(h, temb))
                skips.append(h)
            if not isinstance(down, nn.Identity):
                h = down(h)
                skips.append(h)
        for block, attn in zip(self.mid.blocks, self.mid.attn):
            h = attn(block(h, temb))
        for level, up in zip(self.up, self.upsample):
            for block, attn in zip(level.blocks, level.attn):
                h = attn(block(torch.cat([h, skips.pop()], dim=1), temb))
            if not isinstance(up, nn.Identity):
                h = up(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.head(h)


class Guided(nn.Module):
    """A conditional UNet fixed to class ``y`` with classifier-free guidance scale ``scale``:

        eps = eps(x, t, null) + scale * (eps(x, t, y) - eps(x, t, null))

    (Ho & Salimans 2022, eq. 6 with w = scale - 1): scale 1 is the plain conditional model,
    > 1 trades diversity for fidelity to the class. The samplers call it like any eps model.
    """

    def __init__(self, model: UNet, y: int, scale: float = 1.0):
        super().__init__()
        self.model, self.y, self.scale = model, y, scale

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        labels = torch.full((len(x),), self.y, dtype=torch.long, device=x.device)
        if self.scale == 1.0:
            return self.model(x, t, labels)
        null = torch.full_like(labels, self.model.null_class)
        both = self.model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, null]))
        conditional, unconditional = both.chunk(2)
        return unconditional + self.scale * (conditional - unconditional)
