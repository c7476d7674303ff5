"""A small U-Net for denoising: residual blocks conditioned on the diffusion time (and a label),
two stride-2 levels with skip connections.

Small images (8x8 digits, 16x16 frames) need no attention: two halvings already give every
output pixel a receptive field wider than the image.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from generative.blocks import LabelEmbedding, check_image_shape, timestep_embedding


def _groups(channels: int) -> int:
    """GroupNorm groups: 8 where the channels allow, fewer for narrow layers."""
    return next(g for g in (8, 4, 2, 1) if channels % g == 0)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, with the embedding added between as a per-channel shift."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2 = nn.GroupNorm(_groups(c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity: stable early training
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(emb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class UNet(nn.Module):
    """``eps = net(x_t, t, labels)`` for images ``(N, C, H, W)`` with H and W multiples of 4.

    ``channels`` and ``mult`` give the widths of the three resolutions (``channels * mult[i]``);
    ``n_classes > 0`` adds a label embedding with a "no label" slot (``labels=None`` or
    ``n_classes``), for classifier-free guidance.
    """

    def __init__(
        self,
        shape: tuple[int, int, int],
        channels: int = 64,
        mult: Sequence[int] = (1, 2, 2),
        blocks: int = 1,
        n_classes: int = 0,
    ) -> None:
        super().__init__()
        c_img, _, _ = check_image_shape(shape, len(mult) - 1)
        emb_dim = 4 * channels
        self.channels = channels
        self.time_mlp = nn.Sequential(nn.Linear(channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.labels = LabelEmbedding(n_classes, emb_dim) if n_classes > 0 else None
        self.stem = nn.Conv2d(c_img, channels, 3, padding=1)
        widths = [channels * m for m in mult]
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skips = [channels]
        c = channels
        for level, width in enumerate(widths):
            for _ in range(blocks):
                self.down.append(ResBlock(c, width, emb_dim))
                c = width
                skips.append(c)
            if level < len(widths) - 1:
                self.downsample.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)
        self.mid = nn.ModuleList([ResBlock(c, c, emb_dim), ResBlock(c, c, emb_dim)])
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level, width in reversed(list(enumerate(widths))):
            for _ in range(blocks + 1):
                self.up.append(ResBlock(c + skips.pop(), width, emb_dim))
                c = width
            if level > 0:
                self.upsample.append(nn.Conv2d(c, c, 3, padding=1))
        self.out_norm = nn.GroupNorm(_groups(c), c)
        self.out = nn.Conv2d(c, c_img, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.blocks, self.levels = blocks, len(widths)

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.time_mlp(timestep_embedding(t, self.channels))
        if self.labels is not None:
            emb = emb + self.labels(labels, len(x))
        h = self.stem(x)
        skips = [h]
        blocks = iter(self.down)
        for level in range(self.levels):
            for _ in range(self.blocks):
                h = next(blocks)(h, emb)
                skips.append(h)
            if level < self.levels - 1:
                h = self.downsample[level](h)
                skips.append(h)
        for block in self.mid:
            h = block(h, emb)
        blocks = iter(self.up)
        for i, level in enumerate(reversed(range(self.levels))):
            for _ in range(self.blocks + 1):
                h = next(blocks)(torch.cat([h, skips.pop()], dim=1), emb)
            if level > 0:
                h = self.upsample[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.out(F.silu(self.out_norm(h)))
