"""What the image-translation models (CycleGAN, pix2pix) share: the two-domain image layout, the
PatchGAN discriminator, the pool of past fakes and the linear learning-rate decay.

Translation data carries domain A in the first half of the channels and domain B in the second
(:mod:`generative.translation_data`); a model translates, it does not sample from noise.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from generative.base import ChainCallback, GenerativeModel
from generative.blocks import check_image_shape
from lab.core.errors import LabError
from lab.nets.training_choices import set_learning_rate


def norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=True)


class PatchDiscriminator(nn.Module):
    """PatchGAN (Isola et al., 2017): a real/fake score for each overlapping patch, not the image.

    Two stride-2 and two stride-1 4x4 convolutions: each score sees a 34x34 patch (a 70x70 one in
    the paper, whose images are 256 pixels; these are 32)."""

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(channels, 2 * channels, 4, stride=2, padding=1), norm(2 * channels), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * channels, 4 * channels, 4, padding=1), norm(4 * channels), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * channels, 1, 4, padding=1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class GlobalDiscriminator(nn.Module):
    """One real/fake score for the whole image: three stride-2 4x4 convolutions (no normalisation,
    which would rescale what it counts), then a two-layer perceptron over every position at once.
    Beside a PatchGAN it sees the whole board, so "two goals" or "no start" are visible to it (the
    hidden layer matters: a score linear in the features could only say "more goals, more fake")."""

    def __init__(self, shape: tuple[int, int, int], channels: int) -> None:
        super().__init__()
        in_channels, height, width = shape
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(channels, 2 * channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * channels, 4 * channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(4 * channels * (height // 8) * (width // 8), 4 * channels),
            nn.LeakyReLU(0.2), nn.Linear(4 * channels, 1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ImagePool(nn.Module):
    """The last ``size`` fakes (Shrivastava et al., 2017): the discriminator is shown, for each new
    fake, the fake itself or (once full, with probability 1/2) a stored one it replaces, so it does
    not forget what the generator made before. The images are buffers: checkpoints keep them."""

    def __init__(self, size: int, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.size = size
        self.register_buffer("images", torch.zeros(size, *shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def query(self, fakes: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.size == 0:
            return fakes
        out = fakes.clone()
        swap = torch.rand(len(fakes), generator=generator) < 0.5
        slots = torch.randint(0, self.size, (len(fakes),), generator=generator)
        for i, fake in enumerate(fakes):
            filled = int(self.count)
            if filled < self.size:
                self.images[filled] = fake
                self.count += 1
            elif swap[i]:
                out[i] = self.images[slots[i]]
                self.images[slots[i]] = fake
        return out


class TranslationModel(GenerativeModel):
    """A model from domain A to domain B (and, for CycleGAN, back); ``translate`` is its sampling."""

    translates: ClassVar[bool] = True
    directions: ClassVar[tuple[str, ...]] = ("ab",)
    needs_pairs: ClassVar[bool] = False

    def __init__(self, shape: tuple[int, int, int], n_classes: int, hyperparameters: dict[str, Any]) -> None:
        super().__init__(shape, n_classes, hyperparameters)
        channels, height, width = shape
        if channels % 2 or channels == 0:
            raise LabError(
                f"a {self.family} translates between two domains: train it on the themes or folders data "
                f"set (its images carry both); these have {channels} channel(s)"
            )
        self.domain_shape = check_image_shape((channels // 2, height, width), levels=self.halvings)
        if min(height, width) < 16:
            raise LabError(
                f"a {self.family} needs images of at least 16x16 (its PatchGAN discriminator halves them "
                f"twice, then looks at 4x4 patches); these are {height}x{width}: resize them "
                "(dataset_options.resize=16x16, or a larger tile)"
            )
        if not 0.0 <= self.hp["decay_fraction"] <= 1.0:
            raise LabError(f"decay_fraction must lie in [0, 1]; got {self.hp['decay_fraction']!r}")

    halvings: ClassVar[int] = 2

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Domain A and domain B images of a two-domain batch."""
        c = self.domain_shape[0]
        return x[:, :c], x[:, c:]

    def set_lr(self) -> None:
        """CycleGAN's schedule: the base rate, then a linear decay to zero over the last
        ``decay_fraction`` of the steps."""
        decay = round(self.hp["decay_fraction"] * self.total_steps)
        start = self.total_steps - decay
        factor = 1.0 if self.step < start else 1.0 - (self.step - start) / (decay + 1)
        for name, opt in self.optimizers().items():
            set_learning_rate(opt, self.hp[f"lr_{name}"] * factor)

    def generator_for(self, direction: str) -> nn.Module:
        raise NotImplementedError

    @torch.no_grad()
    def translate(self, images: torch.Tensor, direction: str = "ab", batch: int = 256) -> torch.Tensor:
        """Images of one domain, translated (``ab``: A to B, ``ba``: B to A), in [-1, 1]."""
        if direction not in self.directions:
            raise LabError(f"a {self.family} translates {' and '.join(self.directions)}; got {direction!r}")
        net = self.generator_for(direction)
        net.eval()
        images = torch.as_tensor(images, dtype=torch.float32)
        out = [net(images[i : i + batch]) for i in range(0, len(images), batch)]
        return torch.cat(out) if out else images.clone()

    @torch.no_grad()
    def sample(
        self,
        n: int,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        callback: ChainCallback | None = None,
    ) -> torch.Tensor:
        raise LabError(
            f"a {self.family} translates images rather than sampling them: use 'lab gen sample' on its run "
            "(it translates held-out images) or model.translate(images)"
        )
