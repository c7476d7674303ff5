"""A convolutional variational autoencoder (Kingma & Welling, 2014), optionally conditional.

The encoder gives a diagonal Gaussian ``q(z | x)``; ``z = mu + sigma * eps`` (the
reparameterisation, so gradients flow through the draw); the decoder gives the mean of a
discretised Gaussian over the image's grey levels, with a learned per-pixel scale. Training
maximises ``E[log p(x | z)] - beta * KL(q(z | x) || N(0, I))``; ``beta = 1`` is the ELBO, a lower
bound on ``log p(x)``, reported on the test split in nats and bits per dimension. Samples decode
``z ~ N(0, I)`` to the decoder's mean. The conditional variant gives the label to both networks.

On a small data set the decoder soon memorises the training images and grows overconfident (its
learned scale shrinks), so the test ELBO worsens while samples still improve; decoupled weight
decay (``weight_decay``, AdamW) holds the test ELBO near its best for longer.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from generative.base import ChainCallback, GenerativeModel, check_loss, positive
from generative.likelihood import bits_per_dim, discretized_gaussian_log_likelihood, gaussian_kl
from lab.core.errors import LabError
from lab.nets.training_choices import flush_denormals


class Encoder(nn.Module):
    def __init__(self, shape: tuple[int, int, int], channels: int, latent: int, n_labels: int) -> None:
        super().__init__()
        c, h, w = shape
        self.convs = nn.Sequential(
            nn.Conv2d(c, channels, 3, padding=1), nn.SiLU(),
            nn.Conv2d(channels, 2 * channels, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(2 * channels, 4 * channels, 4, stride=2, padding=1), nn.SiLU(), nn.Flatten(),
        )  # fmt: skip
        flat = 4 * channels * (h // 4) * (w // 4)
        self.head = nn.Sequential(nn.Linear(flat + n_labels, 256), nn.SiLU(), nn.Linear(256, 2 * latent))

    def forward(self, x: torch.Tensor, onehot: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.convs(x)
        if onehot is not None:
            h = torch.cat([h, onehot], dim=1)
        mu, logvar = self.head(h).chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 8.0)


class Decoder(nn.Module):
    def __init__(self, shape: tuple[int, int, int], channels: int, latent: int, n_labels: int) -> None:
        super().__init__()
        c, h, w = shape
        self.base = (4 * channels, h // 4, w // 4)
        self.fc = nn.Sequential(
            nn.Linear(latent + n_labels, 256),
            nn.SiLU(),
            nn.Linear(256, 4 * channels * (h // 4) * (w // 4)),
            nn.SiLU(),
        )
        self.convs = nn.Sequential(
            nn.ConvTranspose2d(4 * channels, 2 * channels, 4, stride=2, padding=1), nn.SiLU(),
            nn.ConvTranspose2d(2 * channels, channels, 4, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(channels, c, 3, padding=1),
        )  # fmt: skip
        self.log_scale = nn.Parameter(torch.full(shape, -1.0))

    def forward(self, z: torch.Tensor, onehot: torch.Tensor | None) -> torch.Tensor:
        if onehot is not None:
            z = torch.cat([z, onehot], dim=1)
        return self.convs(self.fc(z).view(len(z), *self.base))


class VAE(GenerativeModel):
    family = "vae"
    loss_names = ("loss", "recon", "kl")
    eval_names = ("elbo", "bits_per_dim")
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "conditional": False,
        "latent": 16,
        "channels": 32,
        "beta": 1.0,
        "lr": 1e-3,
        "warmup": 100,
        "batch_size": 64,
        "weight_decay": 0.0,
        "grad_clip": 5.0,
        "min_log_scale": -4.0,
        "levels": 17,
        "temperature": 1.0,
    }

    def __init__(self, shape: tuple[int, int, int], n_classes: int, hyperparameters: dict[str, Any]) -> None:
        super().__init__(shape, n_classes, hyperparameters)
        hp = self.hp
        positive("vae", hp, "latent", "channels", "lr", "batch_size", "temperature")
        if hp["beta"] < 0:
            raise LabError(f"vae hyperparameter beta must be >= 0; got {hp['beta']!r}")
        if hp["levels"] < 2:
            raise LabError(
                f"vae hyperparameter levels (grey levels of the data) must be >= 2; got {hp['levels']}"
            )
        labels = self.n_classes if self.conditional else 0
        self.encoder = Encoder(self.shape, hp["channels"], hp["latent"], labels)
        self.decoder = Decoder(self.shape, hp["channels"], hp["latent"], labels)
        params = [*self.encoder.parameters(), *self.decoder.parameters()]
        self.opt = torch.optim.AdamW(params, lr=hp["lr"], weight_decay=hp["weight_decay"])

    def modules(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder, "decoder": self.decoder}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"vae": self.opt}

    def onehot(self, y: torch.Tensor | None) -> torch.Tensor | None:
        return F.one_hot(y, self.n_classes).float() if self.conditional and y is not None else None

    def terms(
        self, x: torch.Tensor, y: torch.Tensor | None, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image reconstruction log-likelihood and KL, in nats (one draw of ``z`` each)."""
        onehot = self.onehot(y)
        mu, logvar = self.encoder(x, onehot)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=generator)
        mean = self.decoder(z, onehot)
        log_scale = self.decoder.log_scale.clamp(min=self.hp["min_log_scale"]).expand_as(mean)
        recon = discretized_gaussian_log_likelihood(x, mean, log_scale, self.hp["levels"]).flatten(1).sum(1)
        return recon, gaussian_kl(mu, logvar).sum(1)

    @flush_denormals()  # subnormal floats take the CPU's slow path
    def train_step(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        self.set_lr()
        self.encoder.train()
        self.decoder.train()
        recon, kl = self.terms(x, y, generator)
        loss = -(recon - self.hp["beta"] * kl).mean()
        value = check_loss(loss, "VAE loss", self.step, self.hp)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(
            [*self.encoder.parameters(), *self.decoder.parameters()], self.hp["grad_clip"]
        )
        self.opt.step()
        self.step += 1
        dims = x[0].numel()
        recon_value, kl_value = float(-recon.detach().mean()), float(kl.detach().mean())
        return {"loss": value / dims, "recon": recon_value / dims, "kl": kl_value / dims}

    @torch.no_grad()
    def elbo(
        self, x: torch.Tensor, y: torch.Tensor | None, generator: torch.Generator, draws: int = 4
    ) -> float:
        """The mean ELBO per image (nats, ``beta = 1``) over ``draws`` draws of ``z``."""
        self.encoder.eval()
        self.decoder.eval()
        values = [(lambda r, k: (r - k).mean())(*self.terms(x, y, generator)) for _ in range(draws)]
        return float(torch.stack(values).mean())

    def evaluate(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        elbo = self.elbo(x, y, generator)
        return {"elbo": elbo, "bits_per_dim": bits_per_dim(-elbo, x[0].numel())}

    @torch.no_grad()
    def decode(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        self.decoder.eval()
        return self.decoder(z, self.onehot(labels)).clamp(-1.0, 1.0)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        callback: ChainCallback | None = None,
        temperature: float | None = None,
    ) -> torch.Tensor:
        """Decoder means of ``z ~ N(0, temperature^2 I)``."""
        labels = self.sample_labels(n, labels, generator)
        scale = self.hp["temperature"] if temperature is None else temperature
        z = scale * torch.randn((n, self.hp["latent"]), generator=generator)
        images = self.decode(z, labels)
        if callback is not None:
            callback(0, 1, images)
        return images

    def latent(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        return torch.randn((n, self.hp["latent"]), generator=generator)
