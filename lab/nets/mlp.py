"""The multi-layer perceptron: the head of every agent and the body of vector-observation networks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lab.nets import layers


class MLP(nn.Module):
    """``Linear -> [norm] -> activation -> [dropout]`` for each hidden size, then a linear output layer.

    ``hidden=()`` makes a linear model. The output layer is initialised for no activation (gain 1)
    since its outputs are logits, values or regression targets; ``out_init_scale`` shrinks it further,
    as policy heads want (near-uniform action probabilities at the start, e.g. 0.01).
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
        layers.check_size("MLP in_features", in_features)
        layers.check_size("MLP out_features", out_features)
        for size in hidden:
            layers.check_size("an MLP hidden size", size)
        layers.check_dropout(dropout)
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
        layers.initialize(self.body, init, activation)
        layers.initialize(self.head, init, "linear")
        if out_init_scale is not None:
            with torch.no_grad():
                self.head.weight.mul_(out_init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))
