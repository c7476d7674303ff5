"""What every generative model family provides, so training, checkpoints, evaluation, sampling and
the viewer treat GANs, VAEs and diffusion models alike.

A family subclasses :class:`GenerativeModel` and declares its hyperparameters with their defaults
in ``DEFAULTS``; a typo is an error naming the closest key. All randomness comes from explicit
``torch.Generator`` s, so training is a pure function of (seed, step) and a resumed run repeats an
uninterrupted one exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from generative.blocks import check_image_shape
from lab.core.errors import LabError
from lab.nets.training_choices import set_learning_rate

ChainCallback = Callable[[int, int, torch.Tensor], None]
"""``callback(i, total, images)`` during sampling: image batch ``i`` of ``total`` intermediate ones."""


def check_hyperparameters(family: str, given: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """``defaults`` updated with ``given``, each key known and each value of the default's type."""
    from generative.data import unknown

    out = dict(defaults)
    for key, value in given.items():
        if key not in defaults:
            raise unknown(f"{family} hyperparameter", key, sorted(defaults))
        default = defaults[key]
        if isinstance(default, bool) and not isinstance(value, bool):
            raise LabError(f"{family} hyperparameter {key} is true or false; got {value!r}")
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise LabError(f"{family} hyperparameter {key} is a number; got {value!r}")
            if isinstance(default, int) and not float(value).is_integer():
                raise LabError(f"{family} hyperparameter {key} is a whole number; got {value!r}")
            value = type(default)(value)
        if isinstance(default, (list, tuple)):
            if not isinstance(value, (list, tuple)):
                raise LabError(f"{family} hyperparameter {key} is a list; got {value!r}")
            value = list(value)
        if isinstance(default, str) and not isinstance(value, str):
            raise LabError(f"{family} hyperparameter {key} is a name; got {value!r}")
        out[key] = value
    return out


def positive(family: str, hp: dict[str, Any], *keys: str) -> None:
    for key in keys:
        if not hp[key] > 0:
            raise LabError(f"{family} hyperparameter {key} must be positive; got {hp[key]!r}")


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then a cosine decay to a tenth at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))


class GenerativeModel:
    """The common interface; see the family modules for the models themselves."""

    family: ClassVar[str] = ""
    DEFAULTS: ClassVar[dict[str, Any]] = {}
    loss_names: ClassVar[tuple[str, ...]] = ("loss",)
    """The keys :meth:`train_step` returns, in the order metrics.csv lists them."""
    eval_names: ClassVar[tuple[str, ...]] = ()
    """The keys :meth:`evaluate` returns."""
    min_batch: ClassVar[int] = 1
    """The fewest images a training batch may hold (batch norm needs two)."""
    translates: ClassVar[bool] = False
    """A translation model (CycleGAN, pix2pix): its data holds two domains side by side in channels."""

    def __init__(self, shape: tuple[int, int, int], n_classes: int, hyperparameters: dict[str, Any]) -> None:
        self.shape = check_image_shape(shape)
        self.hp = check_hyperparameters(self.family, hyperparameters, self.DEFAULTS)
        self.conditional = bool(self.hp.get("conditional", False))
        if self.conditional and n_classes < 2:
            raise LabError(f"a conditional {self.family} needs labelled data with 2 or more classes")
        self.n_classes = int(n_classes)
        self.step = 0
        self.total_steps = 1

    # ----- what subclasses provide -----

    def modules(self) -> dict[str, nn.Module]:
        """Every network whose weights are saved (the EMA copy included)."""
        raise NotImplementedError

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def train_step(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        """One optimisation step on a batch; returns the losses to log (``loss`` is the main one).
        Families decorate it with :func:`lab.nets.flush_denormals`, so that any loop calling it (``lab
        gen train``, a user's own) runs its steps with subnormal floats flushed."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(
        self,
        n: int,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        callback: ChainCallback | None = None,
    ) -> torch.Tensor:
        """``n`` images ``(n, C, H, W)`` in [-1, 1]; ``labels`` for conditional models (None: random)."""
        raise NotImplementedError

    def evaluate(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        """Family-specific figures on held-out data (the VAE's ELBO and bits per dimension)."""
        return {}

    # ----- shared -----

    def set_lr(self) -> None:
        factor = lr_factor(self.step, self.total_steps, self.hp.get("warmup", 0))
        for name, opt in self.optimizers().items():
            base = self.hp.get(f"lr_{name}", self.hp.get("lr"))
            set_learning_rate(opt, base * factor)

    def sample_labels(self, n: int, labels: Any, generator: torch.Generator | None) -> torch.Tensor | None:
        """The labels to sample with: None for unconditional models; given ones checked; else random."""
        if not self.conditional:
            if labels is not None:
                raise LabError(f"this {self.family} is unconditional: it takes no label")
            return None
        if labels is None:
            return torch.randint(0, self.n_classes, (n,), generator=generator)
        labels = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
        if len(labels) == 1:
            labels = labels.expand(n)
        if len(labels) != n or int(labels.min()) < 0 or int(labels.max()) >= self.n_classes:
            raise LabError(f"labels must lie in 0..{self.n_classes - 1}; got {labels.unique().tolist()}")
        return labels.clone()

    def describe(self) -> str:
        params = sum(p.numel() for m in self.trained_modules().values() for p in m.parameters())
        kind = "conditional " if self.conditional else ""
        return f"{kind}{self.family}, {params:,} parameters"

    def trained_modules(self) -> dict[str, nn.Module]:
        """The networks being trained (not their EMA copies)."""
        return {k: m for k, m in self.modules().items() if not k.startswith("ema")}


def check_loss(value: torch.Tensor, what: str, step: int, hp: dict[str, Any]) -> float:
    """The loss as a float, or a one-line error when it is NaN or infinite (nothing is stepped) that
    names the hyperparameters ``hp`` has to tame it: its learning rates and gradient clipping."""
    number = float(value.detach())
    if not math.isfinite(number):
        rates = [f"--set hyperparameters.{k}=..." for k in hp if k == "lr" or k.startswith("lr_")]
        advice = f"lower the learning rate ({', '.join(rates)})"
        if "grad_clip" in hp:
            advice += " or clip gradients harder (hyperparameters.grad_clip)"
        raise LabError(
            f"the {what} became {number} at step {step}: {advice}; the checkpoints written so far are intact"
        )
    return number
