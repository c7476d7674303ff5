"""Noise schedules of a diffusion model and the closed forms they give (Ho et al., 2020; Nichol &
Dhariwal, 2021; Song et al., 2021 for DDIM).

Everything is computed once in float64 and stored as float32 tables indexed by the step ``t`` in
``0..T-1``, where step ``t`` has noise level ``beta[t]`` and ``alpha_bar[t] = prod(1 - beta[:t+1])``:

- forward process ``q(x_t | x_0) = N(sqrt(alpha_bar[t]) x_0, (1 - alpha_bar[t]) I)``;
- posterior ``q(x_{t-1} | x_t, x_0) = N(c0[t] x_0 + ct[t] x_t, beta_tilde[t] I)``;
- DDIM's step between any two levels, which with ``eta = 1`` between neighbouring steps is exactly
  the ancestral (posterior) step above.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lab.core.errors import LabError

SCHEDULES = ("linear", "cosine")


def linear_betas(steps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> np.ndarray:
    """Ho et al.'s schedule, rescaled so that other chain lengths keep the same overall noise."""
    scale = 1000.0 / steps
    return np.linspace(scale * beta_start, scale * beta_end, steps, dtype=np.float64)


def cosine_alpha_bar(steps: int, offset: float = 0.008) -> np.ndarray:
    """``alpha_bar[t] = f(t+1) / f(0)`` with ``f(u) = cos((u/T + s) / (1 + s) * pi/2)^2``: the signal
    fades evenly instead of being mostly gone halfway through, as with the linear schedule."""
    u = np.arange(steps + 1, dtype=np.float64)
    f = np.cos((u / steps + offset) / (1 + offset) * math.pi / 2) ** 2
    return f[1:] / f[0]


def cosine_betas(steps: int, max_beta: float = 0.999) -> np.ndarray:
    """Betas of :func:`cosine_alpha_bar`, capped at ``max_beta`` (the last step would be 1: no signal)."""
    alpha_bar = np.concatenate([[1.0], cosine_alpha_bar(steps)])
    return np.minimum(1.0 - alpha_bar[1:] / alpha_bar[:-1], max_beta)


class NoiseSchedule:
    """The tables of one schedule (see the module docstring), as float32 tensors of length ``T``."""

    def __init__(self, kind: str = "cosine", steps: int = 1000) -> None:
        if kind not in SCHEDULES:
            from generative.data import unknown

            raise unknown("noise schedule", kind, SCHEDULES)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
            raise LabError(f"a diffusion chain needs at least 2 steps; got {steps!r}")
        if kind == "linear" and 1000.0 / steps * 0.02 >= 1.0:  # rescaled, its last beta would be >= 1
            raise LabError(
                f"the linear schedule needs more than 20 steps (its betas grow as 1000/T and at {steps} "
                "the last leaves no signal); use schedule: cosine for short chains"
            )
        self.kind, self.steps = kind, steps
        betas = linear_betas(steps) if kind == "linear" else cosine_betas(steps)
        alpha_bar = np.cumprod(1.0 - betas)
        alpha_bar_prev = np.concatenate([[1.0], alpha_bar[:-1]])
        self.betas64, self.alpha_bar64 = betas, alpha_bar
        tables = {
            "betas": betas,
            "alpha_bar": alpha_bar,
            "alpha_bar_prev": alpha_bar_prev,
            "sqrt_alpha_bar": np.sqrt(alpha_bar),
            "sqrt_one_minus_alpha_bar": np.sqrt(1.0 - alpha_bar),
            "posterior_variance": betas * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar),
            "posterior_c0": betas * np.sqrt(alpha_bar_prev) / (1.0 - alpha_bar),
            "posterior_ct": (1.0 - alpha_bar_prev) * np.sqrt(1.0 - betas) / (1.0 - alpha_bar),
        }
        for name, table in tables.items():
            setattr(self, name, torch.tensor(table, dtype=torch.float32))

    @staticmethod
    def _at(table: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return table[t][:, None, None, None]

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """A draw of ``x_t ~ q(x_t | x_0)`` given the standard normal ``noise``."""
        return self._at(self.sqrt_alpha_bar, t) * x0 + self._at(self.sqrt_one_minus_alpha_bar, t) * noise

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """The clean image implied by a noise prediction (inverting :meth:`q_sample`)."""
        return (x_t - self._at(self.sqrt_one_minus_alpha_bar, t) * eps) / self._at(self.sqrt_alpha_bar, t)

    def posterior(
        self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of ``q(x_{t-1} | x_t, x_0)``."""
        mean = self._at(self.posterior_c0, t) * x0 + self._at(self.posterior_ct, t) * x_t
        return mean, self._at(self.posterior_variance, t)

    def ddpm_step(
        self, x_t: torch.Tensor, t: int, eps: torch.Tensor, noise: torch.Tensor, clip: bool = True
    ) -> torch.Tensor:
        """One ancestral step ``x_t -> x_{t-1}``: the posterior around the predicted ``x_0`` (clipped
        to the data range when ``clip``), plus ``noise`` scaled by its standard deviation (none at t=0)."""
        index = torch.full((len(x_t),), t, dtype=torch.long)
        x0 = self.predict_x0(x_t, index, eps)
        if clip:
            x0 = x0.clamp(-1.0, 1.0)
        mean, variance = self.posterior(x0, x_t, index)
        return mean if t == 0 else mean + variance.sqrt() * noise

    def ddim_step(
        self,
        x_t: torch.Tensor,
        t: int,
        t_next: int,
        eps: torch.Tensor,
        noise: torch.Tensor | None = None,
        eta: float = 0.0,
        clip: bool = True,
    ) -> torch.Tensor:
        """DDIM's jump from step ``t`` to an earlier step ``t_next`` (``-1``: the clean image).

        ``eta = 0`` is deterministic; ``eta = 1`` between neighbouring steps is the ancestral step.
        When ``x_0`` is clipped the noise direction is recomputed from it, so both samplers treat the
        clipped prediction the same way.
        """
        a_t = float(self.alpha_bar64[t])
        a_next = 1.0 if t_next < 0 else float(self.alpha_bar64[t_next])
        x0 = (x_t - math.sqrt(1.0 - a_t) * eps) / math.sqrt(a_t)
        if clip:
            x0 = x0.clamp(-1.0, 1.0)
            eps = (x_t - math.sqrt(a_t) * x0) / math.sqrt(1.0 - a_t)
        sigma = eta * math.sqrt((1.0 - a_next) / (1.0 - a_t) * (1.0 - a_t / a_next))
        out = math.sqrt(a_next) * x0 + math.sqrt(max(1.0 - a_next - sigma**2, 0.0)) * eps
        if sigma > 0.0 and noise is not None:
            out = out + sigma * noise
        return out
