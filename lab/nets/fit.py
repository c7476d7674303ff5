"""One supervised training loop: validation split, mini-batches, optimisers, schedules, gradient
clipping, early stopping with the best weights restored, a progress bar, and the history."""

from __future__ import annotations

import copy
import difflib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

OPTIMIZERS = ("adamw", "adam", "sgd", "rmsprop")
SCHEDULES = (None, "cosine", "step", "warmup_cosine")
LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "cross_entropy": F.cross_entropy,
    "mse": F.mse_loss,
}


@dataclass
class History:
    """Per-epoch figures of a :func:`fit` run."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False
    samples_per_second: float = 0.0


def _choose(kind: str, name: object, options: tuple) -> None:
    if name not in options:
        names = [str(o) for o in options]
        close = difflib.get_close_matches(str(name), names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown {kind} {name!r}{hint} (choose from {', '.join(names)})")


def make_optimizer(
    name: str, params, lr: float, weight_decay: float, momentum: float, nesterov: bool
) -> torch.optim.Optimizer:
    _choose("optimizer", name, OPTIMIZERS)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    return torch.optim.RMSprop(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def lr_factor(schedule: str | None, step: int, total: int, warmup: int) -> float:
    """The multiplier of the base learning rate after ``step`` of ``total`` optimisation steps."""
    if schedule is None:
        return 1.0
    if schedule == "step":
        return 0.1 ** (3 * step // max(total, 1))  # x0.1 at 1/3 and 2/3 of training
    if schedule == "warmup_cosine" and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, step / max(total, 1))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def _as_tensor(a) -> torch.Tensor:
    return a if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))


@torch.no_grad()
def predict(model: nn.Module, X, batch_size: int = 1024) -> torch.Tensor:
    """The model's outputs on ``X`` in evaluation mode, batch by batch."""
    was_training = model.training
    model.eval()
    X = _as_tensor(X)
    outputs = torch.cat([model(X[i : i + batch_size]) for i in range(0, len(X), batch_size)])
    model.train(was_training)
    return outputs


def accuracy(model: nn.Module, X, y) -> float:
    return float((predict(model, X).argmax(1) == _as_tensor(y)).float().mean())


def _evaluate(
    model: nn.Module, loss_fn, X: torch.Tensor, y: torch.Tensor, classify: bool
) -> tuple[float, float]:
    outputs = predict(model, X)
    loss = float(loss_fn(outputs, y))
    acc = float((outputs.argmax(1) == y).float().mean()) if classify else float("nan")
    return loss, acc


def fit(
    model: nn.Module,
    X,
    y,
    *,
    loss: str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = "cross_entropy",
    validation: tuple | None = None,
    val_fraction: float = 0.1,
    batch_size: int = 64,
    epochs: int = 50,
    optimizer: str = "adamw",
    lr: float = 1e-3,
    weight_decay: float = 1e-2,
    momentum: float = 0.9,
    nesterov: bool = False,
    schedule: str | None = None,
    warmup_steps: int = 100,
    grad_clip: float | None = None,
    early_stopping_patience: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> History:
    """Train ``model`` on ``(X, y)``; returns the :class:`History`.

    The validation set is ``validation`` or a seeded ``val_fraction`` split of the data. With
    ``early_stopping_patience``, training stops after that many epochs without a better validation
    loss and the best weights are put back. A non-finite loss stops training with a ``FloatingPointError``
    and leaves the weights of the last good step.
    """
    X, y = _as_tensor(X), _as_tensor(y)
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} samples but y has {len(y)}")
    if len(X) == 0:
        raise ValueError("no training data")
    if isinstance(loss, str):
        _choose("loss", loss, tuple(LOSSES))
        loss_fn = LOSSES[loss]
    else:
        loss_fn = loss
    classify = loss == "cross_entropy"
    _choose("schedule", schedule, SCHEDULES)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    if validation is None:
        order = torch.randperm(len(X), generator=generator)
        n_val = round(val_fraction * len(X))
        X_val, y_val = X[order[:n_val]], y[order[:n_val]]
        X, y = X[order[n_val:]], y[order[n_val:]]
    else:
        X_val, y_val = _as_tensor(validation[0]), _as_tensor(validation[1])
    has_val = len(X_val) > 0
    opt = make_optimizer(optimizer, model.parameters(), lr, weight_decay, momentum, nesterov)
    steps_per_epoch = math.ceil(len(X) / batch_size)
    total_steps = steps_per_epoch * epochs
    history = History()
    best_loss, best_state, waited, step = math.inf, None, 0, 0

    from rich.progress import Progress

    samples, started = 0, time.perf_counter()
    with Progress(disable=not progress) as bar:
        task = bar.add_task("fit", total=epochs)
        for epoch in range(epochs):
            model.train()
            order = torch.randperm(len(X), generator=generator)
            running, seen = 0.0, 0
            for start in range(0, len(X), batch_size):
                index = order[start : start + batch_size]
                for group in opt.param_groups:
                    group["lr"] = lr * lr_factor(schedule, step, total_steps, warmup_steps)
                batch_loss = loss_fn(model(X[index]), y[index])
                if not torch.isfinite(batch_loss):
                    raise FloatingPointError(
                        f"the loss became {batch_loss.item()} at epoch {epoch}, step {step}: lower the"
                        " learning rate or check the data for NaN/inf (the weights are those of the last"
                        " finite step)"
                    )
                opt.zero_grad(set_to_none=True)
                batch_loss.backward()
                if grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                opt.step()
                step += 1
                running += batch_loss.item() * len(index)
                seen += len(index)
            samples += seen
            history.train_loss.append(running / seen)
            history.lr.append(opt.param_groups[0]["lr"])
            if has_val:
                val_loss, val_acc = _evaluate(model, loss_fn, X_val, y_val, classify)
                history.val_loss.append(val_loss)
                history.val_accuracy.append(val_acc)
                if val_loss < best_loss:
                    best_loss, best_state, waited = val_loss, copy.deepcopy(model.state_dict()), 0
                    history.best_epoch = epoch
                else:
                    waited += 1
            shown = f"train {history.train_loss[-1]:.4f}" + (
                f" val {history.val_loss[-1]:.4f}" if has_val else ""
            )
            bar.update(task, advance=1, description=f"epoch {epoch + 1}/{epochs}: {shown}")
            if early_stopping_patience is not None and has_val and waited > early_stopping_patience:
                history.stopped_early = True
                break
    history.samples_per_second = samples / max(time.perf_counter() - started, 1e-9)
    if early_stopping_patience is not None and best_state is not None:
        model.load_state_dict(best_state)
    return history
