"""Plain MLPs in numpy: the forward pass for acting on a handful of observations (DQN's greedy
action, the actor-critic's sampling), where torch's per-call overhead would cost more than the
arithmetic, and a stable log-softmax.

``layers`` are ``(weight, bias)`` pairs in torch's layout (``weight`` is ``(out, in)``), usually
numpy views of the torch parameters, so the numbers are always the network's current ones.
"""

from __future__ import annotations

import numpy as np

Layers = list[tuple[np.ndarray, np.ndarray]]


def mlp_forward(x: np.ndarray, layers: Layers, activation: str) -> np.ndarray:
    """``Linear -> activation -> ... -> Linear`` ("tanh" or "relu"); ``x`` is one vector or a batch."""
    for w, b in layers[:-1]:
        x = x @ w.T
        x += b
        np.tanh(x, out=x) if activation == "tanh" else np.maximum(x, 0.0, out=x)
    w, b = layers[-1]
    out = x @ w.T
    out += b
    return out


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise ``log(softmax(logits))`` of a ``(batch, n)`` array, shifted by each row's maximum."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
