"""Convolutional networks: ``GridCNN`` for small grids and digits, ``NatureCNN`` for larger frames.

Both take ``(N, C, H, W)`` float input and end in ``Linear -> activation`` with ``out_features``
outputs, so a task head (an :class:`~lab.nets.mlp.MLP` or a ``Linear``) goes on top.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lab.nets import layers

HEADS = ("flatten", "global")


def _conv_block(stack: list[nn.Module], conv: nn.Conv2d, activation: str, norm: str | None) -> None:
    stack.append(conv)
    normalisation = layers.norm_2d(norm, conv.out_channels)
    if normalisation is not None:
        stack.append(normalisation)
    stack.append(layers.activation(activation))


class GridCNN(nn.Module):
    """3x3 convolutions with padding 1, so the spatial size is kept, then a flattened or global head.

    On a 7x7 grid a stride-4 8x8 kernel (Nature DQN's first layer) would see the whole map at once
    and lose where things are; size-preserving convolutions keep every cell. ``head="flatten"`` keeps
    positions in the head (the agent's place matters on a fixed map); ``"global"`` averages over
    positions (any input size, fewer weights). ``pool`` halves the size after each layer but the last,
    for frames larger than ~24x24.
    """

    def __init__(
        self,
        in_channels: int,
        height: int,
        width: int,
        out_features: int = 128,
        channels: Sequence[int] = (32, 64),
        head: str = "flatten",
        pool: bool = False,
        activation: str = "relu",
        norm: str | None = None,
        dropout: float = 0.0,
        init: str = "he",
    ) -> None:
        super().__init__()
        for what, size in (("in_channels", in_channels), ("height", height), ("width", width)):
            layers.check_size(f"GridCNN {what}", size)
        layers.check_size("GridCNN out_features", out_features)
        for size in channels:
            layers.check_size("a GridCNN channel count", size)
        if head not in HEADS:
            raise layers.unknown_choice("CNN head", head, HEADS)
        layers.check_dropout(dropout)
        self.input_shape = (in_channels, height, width)
        stack: list[nn.Module] = []
        c, h, w = in_channels, height, width
        for i, size in enumerate(channels):
            _conv_block(stack, nn.Conv2d(c, size, kernel_size=3, padding=1), activation, norm)
            if pool and i < len(channels) - 1 and h >= 4 and w >= 4:
                stack.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c = size
        if head == "global":
            stack.append(nn.AdaptiveAvgPool2d(1))
            h = w = 1
        stack.append(nn.Flatten())
        if dropout:
            stack.append(nn.Dropout(dropout))
        stack += [nn.Linear(c * h * w, out_features), layers.activation(activation)]
        self.net = nn.Sequential(*stack)
        self.head_kind = head
        self.out_features = out_features
        layers.initialize(self, init, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or (self.head_kind == "flatten" and tuple(x.shape[1:]) != self.input_shape):
            raise ValueError(
                f"GridCNN expects (N, C, H, W) = (N, {', '.join(map(str, self.input_shape))}) input; "
                f"got {tuple(x.shape)}"
            )
        return self.net(x)


CNN = GridCNN  # the small-input CNN is the one most code wants


class NatureCNN(nn.Module):
    """The DQN paper's encoder (Mnih et al., 2015): 8x8/4, 4x4/2 and 3x3/1 convolutions, then a
    linear layer; made for 84x84 frames, and working on anything of at least 36x36.

    Its strides shrink an 84x84 frame to 7x7 in three cheap layers, which is what makes it fast on
    large frames and wrong for small grids (see :class:`GridCNN`).
    """

    def __init__(
        self,
        in_channels: int,
        height: int = 84,
        width: int = 84,
        out_features: int = 512,
        activation: str = "relu",
        norm: str | None = None,
        dropout: float = 0.0,
        init: str = "orthogonal",
    ) -> None:
        super().__init__()
        if height < 36 or width < 36:
            raise ValueError(f"NatureCNN needs frames of at least 36x36; got {height}x{width} (use GridCNN)")
        layers.check_size("NatureCNN in_channels", in_channels)
        layers.check_size("NatureCNN out_features", out_features)
        layers.check_dropout(dropout)
        self.input_shape = (in_channels, height, width)
        stack: list[nn.Module] = []
        _conv_block(stack, nn.Conv2d(in_channels, 32, 8, stride=4), activation, norm)
        _conv_block(stack, nn.Conv2d(32, 64, 4, stride=2), activation, norm)
        _conv_block(stack, nn.Conv2d(64, 64, 3, stride=1), activation, norm)
        stack.append(nn.Flatten())
        self.convs = nn.Sequential(*stack)
        with torch.no_grad():
            flat = self.convs.eval()(torch.zeros(1, in_channels, height, width)).shape[1]
        self.convs.train()
        head: list[nn.Module] = [nn.Dropout(dropout)] if dropout else []
        self.head = nn.Sequential(*head, nn.Linear(flat, out_features), layers.activation(activation))
        self.out_features = out_features
        layers.initialize(self, init, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"NatureCNN expects (N, C, H, W) = (N, {', '.join(map(str, self.input_shape))}) input; "
                f"got {tuple(x.shape)}"
            )
        return self.head(self.convs(x))
