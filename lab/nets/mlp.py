"""The multi-layer perceptron."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lab.nets import layers


class MLP(nn.Module):
    """Linear layers with an activation (and optional normalisation and dropout) between them.

    ``hidden=()`` makes a linear model. ``out_init_scale`` shrinks the last layer's weights, as
    policy heads often want (near-uniform action probabilities at the start).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: Sequence[int] = (64, 64),
        activation: str = "relu",
        norm: str | None = None,
        dropout: float = 0.0,
        init: str = "default",
        out_init_scale: float | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1); got {dropout}")
        stack: list[nn.Module] = []
        width = in_features
        for size in hidden:
            stack.append(nn.Linear(width, size))
            normalisation = layers.norm_1d(norm, size)
            if normalisation is not None:
                stack.append(normalisation)
            stack.append(layers.activation(activation))
            if dropout:
                stack.append(nn.Dropout(dropout))
            width = size
        self.body = nn.Sequential(*stack)
        self.head = nn.Linear(width, out_features)
        self.in_features, self.out_features = in_features, out_features
        layers.initialize(self, init, activation)
        if out_init_scale is not None:
            with torch.no_grad():
                self.head.weight.mul_(out_init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))
