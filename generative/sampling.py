"""Samples as pictures and animations: the denoising chain of a diffusion model, and walks through
the latent space of a GAN or VAE (spherical interpolation between random latents, in a loop)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from lab.core.errors import LabError

if TYPE_CHECKING:
    from generative.base import GenerativeModel


def labels_for(model: GenerativeModel, n: int, label: int | None) -> torch.Tensor | None:
    """All ``label`` (checked against the model), or each label in turn for a conditional model."""
    if label is not None:
        if not model.conditional:
            raise LabError(f"this {model.family} is unconditional: --label needs a conditional model")
        if not 0 <= label < model.n_classes:
            raise LabError(f"--label must lie in 0..{model.n_classes - 1}; got {label}")
        return torch.full((n,), label, dtype=torch.long)
    if model.conditional:
        return torch.arange(n) % model.n_classes
    return None


def slerp(a: torch.Tensor, b: torch.Tensor, w: float) -> torch.Tensor:
    """Spherical interpolation, row by row: Gaussian latents keep their typical norm along the way
    (a straight line passes through unlikely, too-short vectors near its middle)."""
    na, nb = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    omega = torch.acos((na * nb).sum(1).clamp(-1 + 1e-7, 1 - 1e-7))[:, None]
    so = torch.sin(omega)
    return torch.sin((1 - w) * omega) / so * a + torch.sin(w * omega) / so * b


def latent_walk(
    model: GenerativeModel, n: int, labels: torch.Tensor | None, seed: int, anchors: int = 4, frames: int = 12
) -> Iterator[torch.Tensor]:
    """Image batches along a closed loop through ``anchors`` random latents per image (GAN, VAE)."""
    if not hasattr(model, "latent"):
        raise LabError(f"a {model.family} has no latent space to walk through")
    generator = torch.Generator().manual_seed(seed)
    points = [model.latent(n, generator) for _ in range(anchors)]  # type: ignore[attr-defined]
    for k in range(anchors):
        a, b = points[k], points[(k + 1) % anchors]
        for f in range(frames):
            yield model.decode(slerp(a, b, f / frames), labels)  # type: ignore[attr-defined]


def chain_pictures(
    model: GenerativeModel, n: int, labels: torch.Tensor | None, seed: int, every: int = 1, **options: Any
) -> tuple[torch.Tensor, list[np.ndarray]]:
    """The samples of a diffusion model and a tiled picture of its chain every ``every`` steps."""
    from generative.images import tile

    if not hasattr(model, "chain"):
        raise LabError(f"a {model.family} has no denoising chain")
    frames: list[np.ndarray] = []
    x = torch.empty(0)
    generator = torch.Generator().manual_seed(seed)
    for i, total, x in model.chain(n, labels, generator, **options):  # type: ignore[attr-defined]
        if i % every == 0 or i == total - 1:
            frames.append(tile(x.clamp(-1, 1).numpy()))
    return x.clamp(-1.0, 1.0), frames
