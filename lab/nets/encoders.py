"""A sensible encoder for any gymnasium observation space: what an agent's network starts with."""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from lab.nets.cnn import GridCNN, NatureCNN
from lab.nets.mlp import MLP


class DiscreteEncoder(nn.Module):
    """A state number -> a learned embedding (a one-hot times a matrix, without the one-hot)."""

    def __init__(self, n: int, features: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n, features)
        self.out_features = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding(x.long().reshape(-1))


class ImageEncoder(nn.Module):
    """``(N, H, W, C)`` images of any dtype -> features: channels first, scaled to [0, 1] by the
    space's per-channel high (255 for pixels; 1 or a small count for symbolic planes)."""

    def __init__(self, space: spaces.Box, features: int) -> None:
        super().__init__()
        height, width, channels = space.shape
        high = (
            np.asarray(np.broadcast_to(space.high, space.shape), dtype=np.float32)
            .reshape(-1, channels)
            .max(0)
        )
        self.register_buffer("scale", torch.as_tensor(1.0 / np.maximum(high, 1.0)).view(1, channels, 1, 1))
        if min(height, width) >= 36:
            self.cnn: nn.Module = NatureCNN(channels, height, width, out_features=features)
        else:
            self.cnn = GridCNN(channels, height, width, out_features=features, pool=max(height, width) > 24)
        self.out_features = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cnn(x.permute(0, 3, 1, 2).float() * self.scale)


class VectorEncoder(nn.Module):
    def __init__(self, size: int, features: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.mlp = MLP(size, features, hidden=hidden)
        self.out_features = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.mlp(x.float().reshape(x.shape[0], -1)))


def is_image_space(space: spaces.Space) -> bool:
    return isinstance(space, spaces.Box) and len(space.shape) == 3 and space.shape[-1] <= 16


def encoder_for_space(space: spaces.Space, features: int = 64, hidden: tuple[int, ...] = (64,)) -> nn.Module:
    """Discrete -> embedding, a Box vector -> MLP, an ``(H, W, C)`` image Box -> CNN (with scaling).

    The module has ``out_features``; its input is a batch of raw observations as a tensor.
    """
    if isinstance(space, spaces.Discrete):
        return DiscreteEncoder(int(space.n), features)
    if is_image_space(space):
        return ImageEncoder(space, features)
    if isinstance(space, spaces.Box) and len(space.shape) == 1:
        return VectorEncoder(space.shape[0], features, hidden)
    raise ValueError(
        f"no encoder for the observation space {space}: the lab's networks take Discrete spaces, "
        "Box vectors and (H, W, C) image Boxes"
    )
