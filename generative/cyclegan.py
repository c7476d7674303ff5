"""CycleGAN (Zhu et al., 2017): translation between two image domains from unpaired examples.

- Two generators, ``G: A -> B`` and ``F: B -> A``, each a small ResNet (Johnson et al., 2016):
  a 7x7 convolution, one stride-2 halving, ``blocks`` residual blocks, one doubling, a 7x7
  convolution to ``tanh``; instance norm, reflection padding.
- Two PatchGAN discriminators, ``D_B`` on real/fake B and ``D_A`` on real/fake A, trained with the
  least-squares loss (Mao et al., 2017) on fakes drawn through a pool of the last ``pool_size``.
- With ``lambda_global`` > 0, beside each PatchGAN a global critic
  (:class:`~generative.translation.GlobalDiscriminator`, one score per image), trained the same way;
  its adversarial loss enters the generators' weighted by ``lambda_global``. A PatchGAN judges
  patches one by one and cannot count: a translation that permutes kinds of equal local look
  passes it, but not a critic that sees a board with two goals.
- The generators minimise the least-squares adversarial loss plus ``lambda_cycle`` times the cycle
  losses ``|F(G(a)) - a|_1 + |G(F(b)) - b|_1`` plus ``lambda_identity * lambda_cycle`` times the
  identity losses ``|G(b) - b|_1 + |F(a) - a|_1``.
- Adam with beta1 = 0.5; the learning rate stays at ``lr_*`` then decays linearly to zero over the
  last ``decay_fraction`` of the steps.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from generative.base import check_loss, positive
from generative.translation import GlobalDiscriminator, ImagePool, PatchDiscriminator, TranslationModel, norm
from lab.core.errors import LabError
from lab.nets.training_choices import flush_denormals


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), norm(channels), nn.ReLU(),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), norm(channels),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class ResnetGenerator(nn.Module):
    def __init__(self, image_channels: int, channels: int, blocks: int, colour_path: bool = False) -> None:
        super().__init__()
        wide = 2 * channels
        self.colour = (
            nn.Sequential(
                nn.Conv2d(image_channels, channels, 1),
                nn.LeakyReLU(0.2),
                nn.Conv2d(channels, image_channels, 1),
            )
            if colour_path
            else None
        )
        self.net = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(image_channels, channels, 7), norm(channels), nn.ReLU(),
            nn.Conv2d(channels, wide, 3, stride=2, padding=1), norm(wide), nn.ReLU(),
            *(ResidualBlock(wide) for _ in range(blocks)),
            nn.ConvTranspose2d(wide, channels, 3, stride=2, padding=1, output_padding=1),
            norm(channels), nn.ReLU(),
            nn.ReflectionPad2d(3), nn.Conv2d(channels, image_channels, 7),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(x) if self.colour is None else self.net(x) + self.colour(x))


def least_squares(scores: torch.Tensor, target: float) -> torch.Tensor:
    return F.mse_loss(scores, torch.full_like(scores, target))


class CycleGAN(TranslationModel):
    family = "cyclegan"
    directions = ("ab", "ba")
    halvings = 1
    loss_names = ("loss", "g_loss", "d_loss", "cycle", "identity")
    eval_names = (
        "accuracy_ab", "accuracy_ba", "psnr_ab", "psnr_ba", "ssim_ab", "ssim_ba", "cycle_l1_a", "cycle_l1_b",
        "cycle_accuracy_a", "cycle_accuracy_a_noisy", "cycle_psnr_a", "cycle_psnr_a_noisy", "domain_ab",
        "domain_ba", "domain_accuracy",
    )  # fmt: skip
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "channels": 32,
        "blocks": 3,
        "d_channels": 32,
        "lambda_cycle": 10.0,
        "lambda_identity": 0.5,
        "lambda_global": 0.0,
        "cycle_noise": 0.0,
        "colour_path": False,
        "pool_size": 50,
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
        positive("cyclegan", hp, "channels", "blocks", "d_channels", "lr_g", "lr_d", "batch_size")
        c = self.domain_shape[0]
        self.g_ab = ResnetGenerator(c, hp["channels"], hp["blocks"], hp["colour_path"])
        self.g_ba = ResnetGenerator(c, hp["channels"], hp["blocks"], hp["colour_path"])
        self.d_a = PatchDiscriminator(c, hp["d_channels"])
        self.d_b = PatchDiscriminator(c, hp["d_channels"])
        self.critics = {}
        if hp["lambda_global"] > 0:
            self.critics = {
                "c_a": GlobalDiscriminator(self.domain_shape, hp["d_channels"]),
                "c_b": GlobalDiscriminator(self.domain_shape, hp["d_channels"]),
            }
        for key in ("lambda_global", "cycle_noise"):
            if hp[key] < 0:
                raise LabError(f"cyclegan hyperparameter {key} must be >= 0; got {hp[key]!r}")
        self.pool_a = ImagePool(int(hp["pool_size"]), self.domain_shape)
        self.pool_b = ImagePool(int(hp["pool_size"]), self.domain_shape)
        betas = (hp["beta1"], hp["beta2"])
        generators = [*self.g_ab.parameters(), *self.g_ba.parameters()]
        self.opt_g = torch.optim.Adam(generators, lr=hp["lr_g"], betas=betas)
        critics = [p for net in (self.d_a, self.d_b, *self.critics.values()) for p in net.parameters()]
        self.opt_d = torch.optim.Adam(critics, lr=hp["lr_d"], betas=betas)

    def modules(self) -> dict[str, nn.Module]:
        return {
            "g_ab": self.g_ab, "g_ba": self.g_ba, "d_a": self.d_a, "d_b": self.d_b,
            **self.critics, "pool_a": self.pool_a, "pool_b": self.pool_b,
        }  # fmt: skip

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"g": self.opt_g, "d": self.opt_d}

    def generator_for(self, direction: str) -> nn.Module:
        return self.g_ab if direction == "ab" else self.g_ba

    def realness(self, images: torch.Tensor, domain: str, target: float) -> torch.Tensor:
        """The least-squares loss of domain ``domain``'s discriminators (PatchGAN, and the global
        critic weighted by ``lambda_global``) against ``target`` (1 real, 0 fake)."""
        loss = least_squares(getattr(self, f"d_{domain}")(images), target)
        if not self.critics:
            return loss
        return loss + self.hp["lambda_global"] * least_squares(self.critics[f"c_{domain}"](images), target)

    def noisy(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``images`` plus Gaussian noise of sigma ``cycle_noise`` (pixels in [0, 1]) on the way back:
        a translation cannot then hide its source in a faint signal (Chu et al., 2017), it has to
        draw it."""
        sigma = self.hp["cycle_noise"]
        if sigma == 0:
            return images
        return images + torch.randn(images.shape, generator=generator) * (2.0 * sigma)

    @flush_denormals()  # subnormal floats take the CPU's slow path
    def train_step(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        self.set_lr()
        for module in self.modules().values():
            module.train()
        a, b = self.split(x)
        hp = self.hp
        fake_b, fake_a = self.g_ab(a), self.g_ba(b)
        adversarial = self.realness(fake_b, "b", 1.0) + self.realness(fake_a, "a", 1.0)
        cycle = F.l1_loss(self.g_ba(self.noisy(fake_b, generator)), a) + F.l1_loss(
            self.g_ab(self.noisy(fake_a, generator)), b
        )
        identity = (
            F.l1_loss(self.g_ab(b), b) + F.l1_loss(self.g_ba(a), a)
            if hp["lambda_identity"] > 0
            else cycle * 0
        )
        g_loss = adversarial + hp["lambda_cycle"] * (cycle + hp["lambda_identity"] * identity)
        g_value = check_loss(g_loss, "generator loss", self.step, self.hp)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()

        pooled_b = self.pool_b.query(fake_b.detach(), generator)
        pooled_a = self.pool_a.query(fake_a.detach(), generator)
        d_loss = 0.5 * (
            self.realness(b, "b", 1.0) + self.realness(pooled_b, "b", 0.0)
            + self.realness(a, "a", 1.0) + self.realness(pooled_a, "a", 0.0)
        )  # fmt: skip
        d_value = check_loss(d_loss, "discriminator loss", self.step, self.hp)
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        self.step += 1
        return {
            "loss": g_value + d_value, "g_loss": g_value, "d_loss": d_value,
            "cycle": float(cycle.detach()), "identity": float(identity.detach()),
        }  # fmt: skip
