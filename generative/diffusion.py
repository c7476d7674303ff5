"""A denoising diffusion model (DDPM, Ho et al., 2020) with a small U-Net predicting the noise.

Training: pick a step ``t`` and noise ``eps``, make ``x_t = sqrt(a_t) x_0 + sqrt(1 - a_t) eps`` and
regress ``eps`` (mean squared error). Sampling: DDPM's ancestral chain over all ``T`` steps, or DDIM
(Song et al., 2021) over an evenly spaced subset of steps, far fewer for the same quality.

Conditional models learn with and without the label (it is dropped with probability ``p_uncond``)
and sample with classifier-free guidance (Ho & Salimans, 2022):
``eps = eps(x, no label) + guidance * (eps(x, label) - eps(x, no label))``; ``guidance = 1`` is the
plain conditional model, larger values trade variety for fidelity to the label.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from generative.base import ChainCallback, GenerativeModel, check_loss, positive
from generative.blocks import EMA
from generative.schedules import NoiseSchedule
from generative.unet import UNet
from lab.core.errors import LabError
from lab.nets.training_choices import flush_denormals

SAMPLERS = ("ddim", "ddpm")


def ddim_timesteps(total: int, steps: int) -> list[int]:
    """``steps`` evenly spaced chain steps from ``total - 1`` down to 0 (each used once)."""
    if not 1 <= steps <= total:
        raise LabError(f"DDIM takes between 1 and {total} steps; got {steps}")
    return sorted({round(float(v)) for v in np.linspace(total - 1, 0, steps)}, reverse=True)


def check_eta(eta: Any) -> float:
    """DDIM's noise scale: 0 (deterministic) to 1 (as much noise as the ancestral sampler); outside
    that range the update is no sampler of the model."""
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not 0.0 <= eta <= 1.0:
        raise LabError(f"eta (DDIM's noise) must lie in [0, 1]; got {eta!r}")
    return float(eta)


class Diffusion(GenerativeModel):
    family = "diffusion"
    eval_names = ("test_loss",)
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "conditional": False,
        "timesteps": 1000,
        "schedule": "cosine",
        "channels": 32,
        "mult": [1, 2],
        "blocks": 1,
        "lr": 1e-3,
        "warmup": 200,
        "batch_size": 128,
        "grad_clip": 1.0,
        "ema_decay": 0.999,
        "p_uncond": 0.1,
        "sampler": "ddim",
        "sample_steps": 100,
        "eta": 0.0,
        "guidance": 1.5,
        "clip": True,
    }

    def __init__(self, shape: tuple[int, int, int], n_classes: int, hyperparameters: dict[str, Any]) -> None:
        super().__init__(shape, n_classes, hyperparameters)
        hp = self.hp
        positive("diffusion", hp, "lr", "batch_size", "channels", "blocks", "sample_steps")
        if hp["sampler"] not in SAMPLERS:
            from generative.data import unknown

            raise unknown("sampler", hp["sampler"], SAMPLERS)
        if not 0.0 <= hp["p_uncond"] < 1.0:
            raise LabError(f"p_uncond must lie in [0, 1); got {hp['p_uncond']!r}")
        check_eta(hp["eta"])
        mult = hp["mult"]
        if not 1 <= len(mult) <= 4 or not all(
            isinstance(m, int) and not isinstance(m, bool) and m >= 1 for m in mult
        ):
            raise LabError(f"mult lists 1 to 4 whole width multipliers, one per resolution; got {mult!r}")
        self.schedule = NoiseSchedule(hp["schedule"], hp["timesteps"])
        ddim_timesteps(hp["timesteps"], hp["sample_steps"])
        self.net = UNet(
            self.shape, hp["channels"], hp["mult"], hp["blocks"], self.n_classes if self.conditional else 0
        )
        self.ema = EMA(self.net, hp["ema_decay"])
        self.opt = torch.optim.Adam(self.net.parameters(), lr=hp["lr"])

    def modules(self) -> dict[str, nn.Module]:
        return {"net": self.net, "ema": self.ema.shadow}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"net": self.opt}

    def loss(self, x0: torch.Tensor, y: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
        """The noise-prediction error on a batch (labels dropped at rate ``p_uncond``)."""
        n = len(x0)
        t = torch.randint(0, self.schedule.steps, (n,), generator=generator)
        noise = torch.randn(x0.shape, generator=generator)
        labels = None
        if self.conditional and y is not None:
            drop = torch.rand(n, generator=generator) < self.hp["p_uncond"]
            labels = torch.where(drop, torch.full_like(y, self.n_classes), y)
        return F.mse_loss(self.net(self.schedule.q_sample(x0, t, noise), t, labels), noise)

    @flush_denormals()  # subnormal floats take the CPU's slow path
    def train_step(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        self.set_lr()
        loss = self.loss(x, y, generator)
        value = check_loss(loss, "diffusion loss", self.step, self.hp)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.net.parameters(), self.hp["grad_clip"])
        self.opt.step()
        self.ema.update(self.net)
        self.step += 1
        return {"loss": value}

    def evaluate(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        """The EMA network's noise-prediction error on held-out images (random steps and noise)."""
        net, self.net = self.net, self.ema.shadow
        try:
            with torch.no_grad():
                return {"test_loss": float(self.loss(x, y if self.conditional else None, generator))}
        finally:
            self.net = net

    def eps(self, x: torch.Tensor, t: int, labels: torch.Tensor | None, guidance: float) -> torch.Tensor:
        """The EMA network's noise prediction at step ``t``, guided when there are labels."""
        net = self.ema.shadow
        steps = torch.full((len(x),), t, dtype=torch.long)
        if labels is None:
            return net(x, steps, None)
        if guidance == 1.0:
            return net(x, steps, labels)
        both = net(
            torch.cat([x, x]),
            torch.cat([steps, steps]),
            torch.cat([labels, torch.full_like(labels, self.n_classes)]),
        )
        cond, uncond = both.chunk(2)
        return uncond + guidance * (cond - uncond)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        callback: ChainCallback | None = None,
        sampler: str | None = None,
        steps: int | None = None,
        eta: float | None = None,
        guidance: float | None = None,
    ) -> torch.Tensor:
        """Images by DDIM (``steps`` of the chain, ``eta`` 0 deterministic) or DDPM (every step).

        ``callback(i, total, x)`` sees the chain's state after each step (the denoising GIF uses it).
        Keyword arguments left None take the model's hyperparameters.
        """
        x = torch.empty(0)
        for i, total, x in self.chain(n, labels, generator, sampler, steps, eta, guidance):
            if callback is not None:
                callback(i, total, x)
        return x.clamp(-1.0, 1.0)

    @torch.no_grad()
    def chain(
        self,
        n: int,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        sampler: str | None = None,
        steps: int | None = None,
        eta: float | None = None,
        guidance: float | None = None,
    ) -> Iterator[tuple[int, int, torch.Tensor]]:
        """The sampling chain step by step: ``(i, total, x)`` after each of its ``total`` steps, the
        last ``x`` being the samples (before the final clamp to [-1, 1])."""
        hp = self.hp
        sampler = sampler or hp["sampler"]
        if sampler not in SAMPLERS:
            from generative.data import unknown

            raise unknown("sampler", sampler, SAMPLERS)
        eta = hp["eta"] if eta is None else check_eta(eta)
        guidance = hp["guidance"] if guidance is None else guidance
        labels = self.sample_labels(n, labels, generator)
        x = torch.randn((n, *self.shape), generator=generator)
        if sampler == "ddpm":
            timesteps = list(range(self.schedule.steps - 1, -1, -1))
        else:
            timesteps = ddim_timesteps(self.schedule.steps, hp["sample_steps"] if steps is None else steps)
        for i, t in enumerate(timesteps):
            eps = self.eps(x, t, labels, guidance)
            t_next = timesteps[i + 1] if i + 1 < len(timesteps) else -1
            noise = torch.randn(x.shape, generator=generator) if (sampler == "ddpm" or eta > 0) else None
            if sampler == "ddpm":
                x = self.schedule.ddpm_step(x, t, eps, noise, clip=hp["clip"])  # type: ignore[arg-type]
            else:
                x = self.schedule.ddim_step(x, t, t_next, eps, noise, eta=eta, clip=hp["clip"])
            yield i, len(timesteps), x
