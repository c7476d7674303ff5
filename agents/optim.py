"""Optimizer options shared by the neural agents."""

from __future__ import annotations

from typing import Any

import torch


def fast_adam_options() -> dict[str, Any]:
    """Adam's fused CPU kernel where this torch has one (one call per step instead of a few per
    tensor: for the lab's small networks the per-call overhead is much of a step), else foreach."""
    try:
        torch.optim.Adam([torch.zeros(1, requires_grad=True)], fused=True)
    except (RuntimeError, TypeError, ValueError):
        return {"foreach": True}
    return {"fused": True}
