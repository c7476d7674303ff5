"""pix2pix (Isola et al., 2017): paired translation A -> B, the upper bound for CycleGAN here.

- Generator: a U-Net, three stride-2 4x4 convolutions down (LeakyReLU) and three transposed ones up
  (ReLU), each up level joined to the down level of its size; instance norm; ``tanh`` out.
- Discriminator: a PatchGAN on the pair ``(a, b)`` stacked in channels, with the paper's
  cross-entropy loss; the generator adds ``lambda_l1`` times ``|G(a) - b|_1``.
- Trained on pairs only (``dataset_options.paired: true`` for the themes data set).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from generative.base import check_loss, positive
from generative.translation import PatchDiscriminator, TranslationModel, norm
from lab.nets.training_choices import flush_denormals


class UNetGenerator(nn.Module):
    def __init__(self, image_channels: int, channels: int) -> None:
        super().__init__()
        c1, c2, c3 = channels, 2 * channels, 4 * channels
        self.down1 = nn.Conv2d(image_channels, c1, 4, stride=2, padding=1)
        self.down2 = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(c1, c2, 4, stride=2, padding=1), norm(c2))
        self.down3 = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(c2, c3, 4, stride=2, padding=1))
        self.up3 = nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(c3, c2, 4, stride=2, padding=1), norm(c2))
        self.up2 = nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(2 * c2, c1, 4, stride=2, padding=1), norm(c1))
        self.up1 = nn.Sequential(
            nn.ReLU(), nn.ConvTranspose2d(2 * c1, image_channels, 4, stride=2, padding=1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d1 = self.down1(x)
        d2 = self.down2(d1)
        u3 = self.up3(self.down3(d2))
        u2 = self.up2(torch.cat([u3, d2], 1))
        return torch.tanh(self.up1(torch.cat([u2, d1], 1)))


class Pix2Pix(TranslationModel):
    family = "pix2pix"
    needs_pairs = True
    halvings = 3
    loss_names = ("loss", "g_loss", "d_loss", "l1")
    eval_names = ("accuracy_ab", "psnr_ab", "ssim_ab", "domain_ab", "domain_accuracy")
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "channels": 32,
        "d_channels": 32,
        "lambda_l1": 100.0,
        "lr_g": 2e-4,
        "lr_d": 2e-4,
        "beta1": 0.5,
        "beta2": 0.999,
        "decay_fraction": 0.5,
        "batch_size": 8,
    }

    def __init__(self, shape: tuple[int, int, int], n_classes: int, hyperparameters: dict[str, Any]) -> None:
        super().__init__(shape, n_classes, hyperparameters)
        hp = self.hp
        positive("pix2pix", hp, "channels", "d_channels", "lr_g", "lr_d", "batch_size")
        c = self.domain_shape[0]
        self.g_ab = UNetGenerator(c, hp["channels"])
        self.d = PatchDiscriminator(2 * c, hp["d_channels"])
        betas = (hp["beta1"], hp["beta2"])
        self.opt_g = torch.optim.Adam(self.g_ab.parameters(), lr=hp["lr_g"], betas=betas)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=hp["lr_d"], betas=betas)

    def modules(self) -> dict[str, nn.Module]:
        return {"g_ab": self.g_ab, "d": self.d}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"g": self.opt_g, "d": self.opt_d}

    def generator_for(self, direction: str) -> nn.Module:
        return self.g_ab

    @flush_denormals()  # subnormal floats take the CPU's slow path
    def train_step(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        self.set_lr()
        self.g_ab.train()
        self.d.train()
        a, b = self.split(x)
        fake = self.g_ab(a)
        scores = self.d(torch.cat([a, fake], 1))
        l1 = F.l1_loss(fake, b)
        g_loss = (
            F.binary_cross_entropy_with_logits(scores, torch.ones_like(scores)) + self.hp["lambda_l1"] * l1
        )
        g_value = check_loss(g_loss, "generator loss", self.step, self.hp)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()

        real = self.d(torch.cat([a, b], 1))
        faked = self.d(torch.cat([a, fake.detach()], 1))
        d_loss = 0.5 * (
            F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            + F.binary_cross_entropy_with_logits(faked, torch.zeros_like(faked))
        )
        d_value = check_loss(d_loss, "discriminator loss", self.step, self.hp)
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        self.step += 1
        return {"loss": g_value + d_value, "g_loss": g_value, "d_loss": d_value, "l1": float(l1.detach())}
