"""Convolutional networks: one for small grids, one for 84x84 Atari-like frames."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lab.nets import layers


class GridCNN(nn.Module):
    """3x3 convolutions that keep the spatial size (padding 1), then a flatten and a linear layer.

    Small inputs (5x5 to ~40x40: grid planes, 8x8 digits, small pixel frames) lose nothing to
    striding; ``pool`` halves the size after each conv layer but the last when frames are larger.
    """

    def __init__(
        self,
        in_channels: int,
        height: int,
        width: int,
        out_features: int = 128,
        channels: Sequence[int] = (32, 64),
        pool: bool = False,
        activation: str = "relu",
        norm: str | None = None,
        dropout: float = 0.0,
        init: str = "he",
    ) -> None:
        super().__init__()
        stack: list[nn.Module] = []
        c, h, w = in_channels, height, width
        for i, size in enumerate(channels):
            stack.append(nn.Conv2d(c, size, kernel_size=3, padding=1))
            normalisation = layers.norm_2d(norm, size)
            if normalisation is not None:
                stack.append(normalisation)
            stack.append(layers.activation(activation))
            if pool and i < len(channels) - 1 and h >= 4 and w >= 4:
                stack.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c = size
        stack.append(nn.Flatten())
        if dropout:
            stack.append(nn.Dropout(dropout))
        stack += [nn.Linear(c * h * w, out_features), layers.activation(activation)]
        self.net = nn.Sequential(*stack)
        self.out_features = out_features
        layers.initialize(self, init, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class NatureCNN(nn.Module):
    """The DQN paper's encoder (Mnih et al., 2015) for frames of at least 36x36."""

    def __init__(
        self, in_channels: int, height: int, width: int, out_features: int = 512, init: str = "orthogonal"
    ):
        super().__init__()
        if height < 36 or width < 36:
            raise ValueError(f"NatureCNN needs frames of at least 36x36; got {height}x{width} (use GridCNN)")
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels, 32, 8, stride=4),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, in_channels, height, width)).shape[1]
        self.head = nn.Sequential(nn.Linear(flat, out_features), nn.ReLU())
        self.out_features = out_features
        layers.initialize(self, init, "relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.convs(x))
