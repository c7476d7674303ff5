"""Choices by name: activations, normalisation and weight initialisation, shared by every network."""

from __future__ import annotations

import difflib
import math

from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "silu": nn.SiLU,
}
NORMS = (None, "batch", "layer")
INITS = ("default", "xavier", "he", "orthogonal")


def _unknown(kind: str, name: object, options: list[str]) -> ValueError:
    close = difflib.get_close_matches(str(name), options, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ValueError(f"unknown {kind} {name!r}{hint} (choose from {', '.join(options)})")


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise _unknown("activation", name, list(ACTIVATIONS))
    return ACTIVATIONS[name]()


def norm_1d(name: str | None, features: int) -> nn.Module | None:
    """BatchNorm or LayerNorm over a feature vector (``None``: no normalisation)."""
    if name not in NORMS:
        raise _unknown("normalisation", name, [str(n) for n in NORMS])
    if name == "batch":
        return nn.BatchNorm1d(features)
    if name == "layer":
        return nn.LayerNorm(features)
    return None


def norm_2d(name: str | None, channels: int) -> nn.Module | None:
    """BatchNorm over channels, or LayerNorm-like GroupNorm(1) for images (``None``: none)."""
    if name not in NORMS:
        raise _unknown("normalisation", name, [str(n) for n in NORMS])
    if name == "batch":
        return nn.BatchNorm2d(channels)
    if name == "layer":
        return nn.GroupNorm(1, channels)
    return None


def initialize(module: nn.Module, scheme: str = "default", activation_name: str = "relu") -> nn.Module:
    """Re-initialise every Linear and Conv weight of ``module`` (biases to zero); returns it.

    ``he`` suits ReLU-family activations (variance 2 / fan_in), ``xavier`` tanh-like ones,
    ``orthogonal`` (gain for the activation) is the usual choice for RL policies and values.
    """
    if scheme not in INITS:
        raise _unknown("initialisation", scheme, list(INITS))
    if scheme == "default":
        return module
    gain_name = activation_name if activation_name in ("relu", "tanh", "leaky_relu") else "relu"
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d, nn.Conv1d)):
            if scheme == "xavier":
                nn.init.xavier_uniform_(layer.weight, gain=nn.init.calculate_gain(gain_name))
            elif scheme == "he":
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            else:
                nn.init.orthogonal_(layer.weight, gain=math.sqrt(2) if gain_name == "relu" else 1.0)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return module
