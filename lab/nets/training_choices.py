"""Choices by name for training: losses, optimisers and learning-rate schedules, shared by
:func:`lab.nets.fit` and the lab's other training loops (a typo is a one-line error naming the
closest valid choice)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.nn import functional as F

from lab.nets.layers import unknown_choice

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

OPTIMIZERS = ("adamw", "adam", "sgd", "rmsprop")
SCHEDULES = (None, "constant", "cosine", "linear", "step", "linear_warmup_cosine")
CLASSIFICATION_LOSSES = ("cross_entropy", "binary_cross_entropy")


def _cross_entropy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Class indices (an integer type), or class probabilities shaped like the outputs; ``(N, T, V)``
    sequence logits are flattened over steps (with either kind of target)."""
    probabilities = targets.is_floating_point()
    if probabilities and targets.shape != outputs.shape:
        raise ValueError(
            f"cross_entropy takes class indices of an integer type or class probabilities shaped like "
            f"the outputs {tuple(outputs.shape)}; got float targets of shape {tuple(targets.shape)}"
        )
    if outputs.dim() == 3:
        classes = outputs.shape[-1]
        outputs, targets = (
            outputs.reshape(-1, classes),
            targets.reshape(-1, classes) if probabilities else targets.reshape(-1),
        )
    return F.cross_entropy(outputs, targets)


def _matching(loss: Callable[..., torch.Tensor]) -> LossFn:
    """``loss`` after checking shapes: PyTorch would silently broadcast ``(N, 1)`` against ``(N,)``
    into an ``N x N`` loss, the classic wrong-answer bug of regression code."""

    def matched(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if outputs.shape != targets.shape:
            if outputs.numel() != targets.numel():
                raise ValueError(
                    f"the model's outputs have shape {tuple(outputs.shape)} but the targets have shape "
                    f"{tuple(targets.shape)}"
                )
            targets = targets.reshape(outputs.shape)
        return loss(outputs, targets)

    return matched


LOSSES: dict[str, LossFn] = {
    "cross_entropy": _cross_entropy,
    "binary_cross_entropy": _matching(F.binary_cross_entropy_with_logits),  # on logits
    "mse": _matching(F.mse_loss),
    "huber": _matching(F.smooth_l1_loss),
    "l1": _matching(F.l1_loss),
}


def make_optimizer(
    name: str,
    params: Any,
    lr: float,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    nesterov: bool = False,
) -> torch.optim.Optimizer:
    """AdamW (decoupled weight decay: the usual default), Adam, SGD (heavy-ball or Nesterov) or RMSprop."""
    if name not in OPTIMIZERS:
        raise unknown_choice("optimizer", name, OPTIMIZERS)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        if nesterov and momentum <= 0:
            raise ValueError("Nesterov momentum needs momentum > 0")
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    return torch.optim.RMSprop(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def lr_factor(schedule: str | None, step: int, total: int, warmup: int = 0) -> float:
    """The multiplier of the base learning rate at optimisation step ``step`` (0-based) of ``total``.

    ``cosine`` and ``linear`` decay towards 0 at the end of training; ``step`` multiplies by 0.1 at
    one third and again at two thirds; ``linear_warmup_cosine`` rises linearly over ``warmup`` steps
    (sparing Adam's first, badly estimated updates a full learning rate), then decays as a cosine.
    """
    if schedule not in SCHEDULES:
        raise unknown_choice("schedule", schedule, SCHEDULES)
    total = max(total, 1)
    if schedule is None or schedule == "constant":
        return 1.0
    if schedule == "step":
        return 0.1 ** min(2, 3 * step // total)
    if schedule == "linear_warmup_cosine":
        if step < warmup:
            return (step + 1) / warmup
        step, total = step - warmup, total - warmup
    progress = min(1.0, step / max(total, 1))
    if schedule == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def set_learning_rate(optimizer: torch.optim.Optimizer, value: float) -> None:
    """Write a learning rate (a schedule's value now) into every parameter group of ``optimizer``."""
    for group in optimizer.param_groups:
        group["lr"] = value


@contextmanager
def flush_denormals() -> Iterator[None]:
    """Within the block, subnormal floats (below 1.2e-38) are read and written as 0 on this thread
    (torch's public ``set_flush_denormal``); afterwards the setting is what it was.

    Training loops run their updates in it. Adam's running mean of a weight whose gradient stays 0
    (a dead ReLU unit, an input that stops occurring) decays towards 0 until rounding sticks it at a
    few subnormal values, and on x86 every operation on a subnormal takes a slow microcode path:
    DQN on CartPole holds about 35k such values in its Adam state from 10k steps on, and its
    gradient step takes half as long again for them. Values that small change no float32 result
    that training depends on. Torch's other intra-op threads, if any, keep their own setting."""
    already = bool(torch.tensor(1e-39) == 0)  # a subnormal float32 reads as 0 while flushing
    if already or not torch.set_flush_denormal(True):  # False: this CPU cannot flush
        yield
        return
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def loss_function(loss: str | LossFn) -> LossFn:
    if callable(loss):
        return loss
    if loss not in LOSSES:
        raise unknown_choice("loss", loss, list(LOSSES))
    return LOSSES[loss]
