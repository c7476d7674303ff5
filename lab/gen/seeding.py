"""The random draws of a generative run as pure functions of (seed, step): the same spec trains the
same model however often it is stopped and resumed (see :mod:`lab.gen.train`)."""

from __future__ import annotations

import torch

from lab.core.errors import LabError

EVAL_SEED_OFFSET = 7919  # evaluation draws use their own stream, apart from training's


def mix(*values: int) -> int:
    """A 63-bit seed from integers (SplitMix64's finaliser over their sum chain), for torch generators."""
    z = 0x9E3779B97F4A7C15
    for v in values:
        z = (z + (int(v) & 0xFFFFFFFFFFFFFFFF) + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        z ^= z >> 31
    return z >> 1


def step_generator(seed: int, step: int) -> torch.Generator:
    """The generator of training step ``step``'s draws (noise, timesteps, label dropping): the same
    on a resume."""
    return torch.Generator().manual_seed(mix(seed, step, 1))


def eval_generator(seed: int) -> torch.Generator:
    """The draws of held-out figures (test loss, ELBO): apart from training's, the same every time."""
    return torch.Generator().manual_seed(mix(seed, EVAL_SEED_OFFSET))


def quality_seed(seed: int) -> int:
    """The seed of the images the final Frechet ratio is measured on (``lab gen eval`` reuses it)."""
    return mix(seed, 6)


class Batches:
    """Batch ``k`` of training: epochs are seeded permutations, the last partial batch dropped."""

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        if n < 1:
            raise LabError("the training split is empty")
        self.n, self.batch_size, self.seed = n, min(batch_size, n), seed
        self.per_epoch = n // self.batch_size
        self._epoch, self._order = -1, torch.arange(0)

    def indices(self, step: int) -> torch.Tensor:
        """The training split's rows of batch ``step``."""
        epoch, k = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(mix(self.seed, epoch, 2))
            self._epoch, self._order = epoch, torch.randperm(self.n, generator=generator)
        return self._order[k * self.batch_size : (k + 1) * self.batch_size]
