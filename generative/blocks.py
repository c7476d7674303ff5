"""Pieces the generative networks share: image-size checks, sinusoidal embeddings, label embeddings
with a "no label" slot, and the exponential moving average of weights."""

from __future__ import annotations

import math

import torch
from torch import nn

from lab.core.errors import LabError


def check_image_shape(shape: tuple[int, int, int], levels: int = 2) -> tuple[int, int, int]:
    """``(C, H, W)`` that ``levels`` stride-2 halvings divide exactly (the networks halve twice)."""
    channels, height, width = (int(s) for s in shape)
    step = 2**levels
    if channels < 1 or height % step or width % step or height < step or width < step:
        raise LabError(
            f"images of {height}x{width} cannot be halved {levels} times: the generative networks need "
            f"sides that are multiples of {step} (resize the data, e.g. dataset_options.resize=16x16)"
        )
    return channels, height, width


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Transformer-style sinusoids of the (integer or real) diffusion time ``t``: ``(N,) -> (N, dim)``.

    Frequencies span ``1`` to ``1/max_period`` geometrically, so both neighbouring steps and the
    coarse position in the chain are distinguishable by the network.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    if dim % 2:
        embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=1)
    return embedding


class LabelEmbedding(nn.Module):
    """A learned vector per class plus one for "no label" (index ``n_classes``).

    The extra slot lets one network be both conditional and unconditional, which classifier-free
    guidance needs; ``labels=None`` means "no label" for the whole batch.
    """

    def __init__(self, n_classes: int, dim: int) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.table = nn.Embedding(n_classes + 1, dim)

    def forward(self, labels: torch.Tensor | None, batch: int) -> torch.Tensor:
        if labels is None:
            labels = torch.full((batch,), self.n_classes, dtype=torch.long, device=self.table.weight.device)
        return self.table(labels)


class EMA:
    """An exponential moving average of a module's parameters and buffers.

    Averaged weights sample better than the last ones for GANs (the generator chases a moving
    discriminator) and diffusion models (noisy per-step gradients). ``shadow`` is a copy of the
    module that the average lives in; :meth:`update` follows the module, with the decay warmed up
    as ``min(decay, (1 + n) / (10 + n))`` so early averages are not dominated by the random start.
    """

    def __init__(self, module: nn.Module, decay: float = 0.999) -> None:
        import copy

        if not 0.0 <= decay < 1.0:
            raise LabError(f"ema decay must lie in [0, 1); got {decay!r}")
        self.decay = decay
        self.updates = 0
        self.shadow = copy.deepcopy(module).eval()
        for p in self.shadow.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for avg, p in zip(self.shadow.parameters(), module.parameters(), strict=True):
            avg.lerp_(p.detach(), 1.0 - decay)
        for avg, b in zip(self.shadow.buffers(), module.buffers(), strict=True):
            avg.copy_(b)
