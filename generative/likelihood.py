"""Likelihoods of discrete images and their units.

Images hold ``levels`` grey levels per channel (17 for the digits, 256 for 8-bit pictures), scaled
to [-1, 1] with bin width ``2 / (levels - 1)``. A continuous density says nothing about discrete
data; a *discretised* Gaussian gives each level the probability mass of its bin (the two end
bins reach to infinity), so its log-likelihood is a true log-probability and bits per dimension
are comparable across models (Ho et al., 2020, section 3.3; Salimans et al., 2017).
"""

from __future__ import annotations

import math

import torch


def _log_cdf_difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``log(Phi(b) - Phi(a))`` for ``a < b``, accurate far in either tail: intervals above zero are
    mirrored below it, where ``log_ndtr`` keeps its precision."""
    mirror = a > 0
    lo = torch.where(mirror, -b, a)
    hi = torch.where(mirror, -a, b)
    log_hi, log_lo = torch.special.log_ndtr(hi), torch.special.log_ndtr(lo)
    gap = torch.clamp(log_lo - log_hi, max=-1e-12)
    return log_hi + torch.log(-torch.expm1(gap))


def discretized_gaussian_log_likelihood(
    x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor, levels: int
) -> torch.Tensor:
    """Per-element ``log P(x)`` in nats, ``x`` on the level grid of [-1, 1], under a Gaussian of
    ``mean`` and standard deviation ``exp(log_scale)`` discretised into ``levels`` bins."""
    half = 1.0 / (levels - 1)  # half a bin
    inv = torch.exp(-log_scale)
    upper = (x + half - mean) * inv
    lower = (x - half - mean) * inv
    first = torch.special.log_ndtr(upper)  # the lowest level: everything below its upper edge
    last = torch.special.log_ndtr(-lower)  # the highest level: everything above its lower edge
    middle = _log_cdf_difference(lower, upper)
    return torch.where(x < -1.0 + half, first, torch.where(x > 1.0 - half, last, middle))


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, exp(logvar)) || N(0, 1))`` per element, in nats."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def bits_per_dim(nll_nats: float | torch.Tensor, dims: int) -> float:
    """A negative log-likelihood of one image (nats) as bits per pixel-channel."""
    return float(nll_nats) / (dims * math.log(2.0))
