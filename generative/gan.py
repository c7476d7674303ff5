"""A DCGAN (Radford et al., 2016) for small images, with the usual stabilisers as options.

- Generator: ``z`` (and a label embedding) -> linear -> two stride-2 transposed convolutions with
  BatchNorm -> ``tanh``. Discriminator: strided convolutions with LeakyReLU, optionally spectrally
  normalised (Miyato et al., 2018: a 1-Lipschitz critic without a gradient penalty).
- Losses: ``ns`` (non-saturating: the generator maximises ``log D(G(z))``, which keeps its gradient
  when the discriminator wins) or ``hinge`` (Lim & Ye, 2017; SAGAN, BigGAN).
- ``label_smoothing`` (one-sided, ``ns`` only): real targets ``1 - s`` keep the discriminator from
  growing overconfident (Salimans et al., 2016).
- ``batch_std`` (Karras et al., 2018): the discriminator also sees how varied the batch is, so a
  generator that collapses onto a few images is caught; unconditional models need it.
- Conditional: the generator gets a label embedding; the discriminator is a projection
  discriminator (Miyato & Koyama, 2018), adding ``<embed(y), features>`` to its output.
- The samples come from an exponential moving average of the generator's weights.

The default optimiser settings are SAGAN's (Zhang et al., 2019): Adam with beta1 = 0, beta2 = 0.9
and a discriminator learning rate four times the generator's. With DCGAN's (2e-4 both, beta1 0.5)
the unconditional model collapses onto a few digits on this data; the conditional one, whose labels
already spread the samples, does well with either.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from generative.base import ChainCallback, GenerativeModel, check_loss, positive
from generative.blocks import EMA
from lab.core.errors import LabError
from lab.nets.training_choices import flush_denormals

LOSSES = ("ns", "hinge")


class Generator(nn.Module):
    def __init__(self, shape: tuple[int, int, int], channels: int, z_dim: int, n_classes: int) -> None:
        super().__init__()
        c, h, w = shape
        self.base = (4 * channels, h // 4, w // 4)
        self.embed = nn.Embedding(n_classes, z_dim) if n_classes else None
        size = self.base[0] * self.base[1] * self.base[2]
        self.fc = nn.Sequential(nn.Linear(z_dim, size), nn.BatchNorm1d(size), nn.ReLU())
        self.convs = nn.Sequential(
            nn.ConvTranspose2d(4 * channels, 2 * channels, 4, stride=2, padding=1),
            nn.BatchNorm2d(2 * channels), nn.ReLU(),
            nn.ConvTranspose2d(2 * channels, channels, 4, stride=2, padding=1),
            nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, c, 3, padding=1), nn.Tanh(),
        )  # fmt: skip

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if self.embed is not None and labels is not None:
            z = z * self.embed(labels)  # multiplicative: the label gates every latent direction
        return self.convs(self.fc(z).view(len(z), *self.base))


class Discriminator(nn.Module):
    def __init__(
        self, shape: tuple[int, int, int], channels: int, n_classes: int, spectral: bool, batch_std: bool
    ) -> None:
        super().__init__()
        c, h, w = shape
        sn = nn.utils.parametrizations.spectral_norm if spectral else (lambda m: m)
        self.convs = nn.Sequential(
            sn(nn.Conv2d(c, channels, 3, padding=1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(channels, 2 * channels, 4, stride=2, padding=1)), nn.LeakyReLU(0.2),
            sn(nn.Conv2d(2 * channels, 4 * channels, 4, stride=2, padding=1)), nn.LeakyReLU(0.2),
        )  # fmt: skip
        self.batch_std = batch_std
        features = (4 * channels + int(batch_std)) * (h // 4) * (w // 4)
        self.out = sn(nn.Linear(features, 1))
        self.embed = sn(nn.Embedding(n_classes, features)) if n_classes else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        h = self.convs(x)
        if self.batch_std:  # how varied the batch is: a collapsed generator's batches give itself away
            spread = h.std(0, unbiased=False).mean() if len(h) > 1 else h.new_zeros(())
            h = torch.cat([h, spread.expand(len(h), 1, *h.shape[2:])], dim=1)
        h = h.flatten(1)
        out = self.out(h).squeeze(1)
        if self.embed is not None and labels is not None:
            out = out + (self.embed(labels) * h).sum(1)
        return out


class GAN(GenerativeModel):
    family = "gan"
    loss_names = ("loss", "d_loss", "g_loss")
    min_batch = 2  # the generator's batch norm needs two images to normalise over
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "conditional": False,
        "loss": "hinge",
        "z_dim": 64,
        "channels": 32,
        "spectral_norm": True,
        "batch_std": False,
        "label_smoothing": 0.0,
        "lr_g": 1e-4,
        "lr_d": 4e-4,
        "beta1": 0.0,
        "beta2": 0.9,
        "warmup": 0,
        "batch_size": 64,
        "d_steps": 1,
        "ema_decay": 0.999,
    }

    def __init__(self, shape: tuple[int, int, int], n_classes: int, hyperparameters: dict[str, Any]) -> None:
        super().__init__(shape, n_classes, hyperparameters)
        hp = self.hp
        positive("gan", hp, "z_dim", "channels", "lr_g", "lr_d", "batch_size", "d_steps")
        if hp["batch_size"] < self.min_batch:
            raise LabError(
                f"gan hyperparameter batch_size must be at least {self.min_batch} (batch norm); "
                f"got {hp['batch_size']}"
            )
        if hp["loss"] not in LOSSES:
            from generative.data import unknown

            raise unknown("GAN loss", hp["loss"], LOSSES)
        if not 0.0 <= hp["label_smoothing"] < 0.5:
            raise LabError(f"label_smoothing must lie in [0, 0.5); got {hp['label_smoothing']!r}")
        labels = self.n_classes if self.conditional else 0
        self.generator = Generator(self.shape, hp["channels"], hp["z_dim"], labels)
        self.discriminator = Discriminator(
            self.shape, hp["channels"], labels, hp["spectral_norm"], hp["batch_std"]
        )
        self.ema = EMA(self.generator, hp["ema_decay"])
        betas = (hp["beta1"], hp["beta2"])
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=hp["lr_g"], betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=hp["lr_d"], betas=betas)

    def modules(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator, "ema": self.ema.shadow}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"g": self.opt_g, "d": self.opt_d}

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        if self.hp["loss"] == "hinge":
            return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
        target = torch.full_like(real, 1.0 - self.hp["label_smoothing"])
        return F.binary_cross_entropy_with_logits(real, target) + F.softplus(fake).mean()

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        return -fake.mean() if self.hp["loss"] == "hinge" else F.softplus(-fake).mean()

    def fake_labels(self, y: torch.Tensor, generator: torch.Generator) -> torch.Tensor | None:
        return torch.randint(0, self.n_classes, y.shape, generator=generator) if self.conditional else None

    @flush_denormals()  # subnormal floats take the CPU's slow path
    def train_step(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        self.set_lr()
        self.generator.train()
        self.discriminator.train()
        labels = y if self.conditional else None
        n = len(x)
        for _ in range(self.hp["d_steps"]):
            fake_y = self.fake_labels(y, generator)
            with torch.no_grad():
                fake = self.generator(torch.randn((n, self.hp["z_dim"]), generator=generator), fake_y)
            d_loss = self.d_loss(self.discriminator(x, labels), self.discriminator(fake, fake_y))
            d_value = check_loss(d_loss, "discriminator loss", self.step, self.hp)
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
        fake_y = self.fake_labels(y, generator)
        fake = self.generator(torch.randn((n, self.hp["z_dim"]), generator=generator), fake_y)
        g_loss = self.g_loss(self.discriminator(fake, fake_y))
        g_value = check_loss(g_loss, "generator loss", self.step, self.hp)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        self.ema.update(self.generator)
        self.step += 1
        return {"loss": d_value + g_value, "d_loss": d_value, "g_loss": g_value}

    @torch.no_grad()
    def decode(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.ema.shadow(z, labels)

    def latent(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        return torch.randn((n, self.hp["z_dim"]), generator=generator)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        callback: ChainCallback | None = None,
    ) -> torch.Tensor:
        labels = self.sample_labels(n, labels, generator)
        images = self.decode(self.latent(n, generator), labels)
        if callback is not None:
            callback(0, 1, images)
        return images
