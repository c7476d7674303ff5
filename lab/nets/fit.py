"""The one supervised training loop of the lab.

``fit`` holds what every supervised use needs (a seeded validation split and shuffling, the usual
optimisers and learning-rate schedules, gradient clipping, early stopping that returns the best
weights, a live progress bar, a stop on a diverging loss) so that agents and generative models
never grow their own copies.
"""

from __future__ import annotations

import copy
import math
import numbers
import time
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from lab.nets.inference import EVAL_OUTPUTS, IGNORE, as_tensor, correct, model_device, predict
from lab.nets.layers import check_size, unknown_choice
from lab.nets.training_choices import (
    CLASSIFICATION_LOSSES,
    OPTIMIZERS,
    LossFn,
    loss_function,
    lr_factor,
)
from lab.nets.training_loop import ProgressBar, TrainingLoop, loss_weight


@dataclass
class History:
    """What a :func:`fit` run did, epoch by epoch (lists have one entry per epoch run)."""

    train_loss: list[float] = field(default_factory=list)
    """Mean training loss over the epoch's batches (dropout on, weights changing as it goes)."""
    val_loss: list[float] = field(default_factory=list)
    """Validation loss at the end of the epoch (evaluation mode); empty without validation data."""
    val_metric: list[float] = field(default_factory=list)
    """Validation accuracy for the classification losses; NaN for the others."""
    lr: list[float] = field(default_factory=list)
    """The learning rate of the epoch's last step."""
    metric_name: str | None = None
    best_epoch: int | None = None
    """0-based epoch of the lowest validation loss (``None`` without validation data)."""
    stopped_early: bool = False
    seconds: float = 0.0
    samples_per_second: float = 0.0
    """Training samples per second of the optimisation steps (validation and bar excluded)."""

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    @property
    def best_val_loss(self) -> float | None:
        return None if self.best_epoch is None else self.val_loss[self.best_epoch]


# ----- data -----


def _check_finite(tensor: torch.Tensor, what: str) -> None:
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        bad = torch.nonzero(~torch.isfinite(tensor.reshape(len(tensor), -1)).all(1))[0, 0]
        raise ValueError(f"{what} holds NaN or infinite values (the first at sample {int(bad)})")


def _targets(y: torch.Tensor, loss: str | LossFn) -> torch.Tensor:
    """Class indices as int64 for cross-entropy (whole-number float labels, as pandas and numpy often
    hold them, included); float targets for the regression losses."""
    if loss == "cross_entropy" and (
        not y.is_floating_point() or (y.dim() == 1 and bool((y == y.round()).all()))
    ):
        return y.long()
    if loss in ("binary_cross_entropy", "mse", "huber", "l1") and not y.is_floating_point():
        return y.float()
    return y


def _evaluate(
    model: nn.Module, loss_fn: LossFn, X: torch.Tensor, y: torch.Tensor, loss: str | LossFn
) -> tuple[float, float]:
    """The validation loss and accuracy. A built-in loss is a mean over what counts, so it is taken
    batch by batch and weighted as the training loss weighs its batches (:func:`loss_weight`): a
    language model's outputs over a whole validation set (sentences x steps x vocabulary) would take
    gigabytes. A custom loss sees the whole set at once."""
    targets = y.cpu()
    if not isinstance(loss, str):
        return float(loss_fn(predict(model, X), targets)), float("nan")
    step = max(1, EVAL_OUTPUTS // max(1, predict(model, X[:1]).numel()))
    total, counted, right = 0.0, 0, []
    for i in range(0, len(X), step):
        outputs, t = predict(model, X[i : i + step]), targets[i : i + step]
        n = loss_weight(t, loss)
        if n:  # a batch of padding alone has no mean
            total += float(loss_fn(outputs, t)) * n
            counted += n
        if loss in CLASSIFICATION_LOSSES:
            right.append(correct(outputs, t, loss == "binary_cross_entropy"))
    accuracy = float(torch.cat(right).float().mean()) if right else float("nan")
    return total / counted, accuracy


@dataclass(frozen=True)
class FitOptions:
    """:func:`fit`'s options, as it was called (its signature holds the defaults; see it for what each
    does); :meth:`checked` validates them."""

    loss: str | LossFn
    val_fraction: float
    batch_size: int
    epochs: int
    optimizer: str
    lr: float
    weight_decay: float | None
    momentum: float
    nesterov: bool
    schedule: str | None
    warmup_steps: int | None
    grad_clip: float | None
    early_stopping_patience: int | None
    seed: int
    progress: bool

    @property
    def classify(self) -> bool:
        return isinstance(self.loss, str) and self.loss in CLASSIFICATION_LOSSES

    def checked(self) -> FitOptions:
        """These options with sizes checked and ``weight_decay`` filled in, or a ``ValueError``."""
        if self.optimizer not in OPTIMIZERS:
            raise unknown_choice("optimizer", self.optimizer, OPTIMIZERS)
        lr_factor(self.schedule, 0, 1)  # checks the name before any work
        batch_size, epochs = check_size("batch_size", self.batch_size), check_size("epochs", self.epochs)
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in [0, 1); got {self.val_fraction!r}")
        lr = self.lr
        if isinstance(lr, bool) or not (isinstance(lr, numbers.Real) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be a positive number; got {lr!r}")
        weight_decay = self.weight_decay
        if weight_decay is None:
            weight_decay = 1e-2 if self.optimizer == "adamw" else 0.0
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be a positive number (or None); got {self.grad_clip!r}")
        patience = self.early_stopping_patience
        if patience is not None and (
            isinstance(patience, bool) or not isinstance(patience, int) or patience < 1
        ):
            raise ValueError(
                f"early_stopping_patience must be a whole number >= 1 (or None); got {patience!r}"
            )
        warmup = self.warmup_steps
        if warmup is not None and (
            isinstance(warmup, bool) or not isinstance(warmup, numbers.Integral) or warmup < 0
        ):
            raise ValueError(f"warmup_steps must be a whole number >= 0 (or None); got {warmup!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral):
            raise ValueError(f"seed must be a whole number; got {self.seed!r}")
        return replace(self, batch_size=batch_size, epochs=epochs, weight_decay=weight_decay)


def fit(
    model: nn.Module,
    X: Any,
    y: Any,
    *,
    loss: str | LossFn = "cross_entropy",
    validation: tuple[Any, Any] | None = None,
    val_fraction: float = 0.1,
    batch_size: int = 64,
    epochs: int = 50,
    optimizer: str = "adamw",
    lr: float = 1e-3,
    weight_decay: float | None = None,
    momentum: float = 0.9,
    nesterov: bool = False,
    schedule: str | None = None,
    warmup_steps: int | None = None,
    grad_clip: float | None = None,
    early_stopping_patience: int | None = None,
    seed: int = 0,
    progress: bool = True,
    device: str | torch.device | None = None,
) -> History:
    """Train ``model`` on inputs ``X`` and targets ``y`` (arrays or tensors, samples first).

    - Validation: ``validation=(X_val, y_val)``, or else a seeded ``val_fraction`` of ``(X, y)`` held
      out (0 for none). Its loss is measured after every epoch, with accuracy for the classification
      losses (``cross_entropy`` on class indices or probabilities, also ``(N, T, V)`` sequence logits;
      ``binary_cross_entropy`` on logits).
    - ``loss``: a name (``cross_entropy``, ``binary_cross_entropy``, ``mse``, ``huber``, ``l1``) or
      ``loss(outputs, targets) -> scalar``.
    - ``weight_decay`` defaults to 0.01 for AdamW (decoupled from the gradient) and to 0 for the
      others, where it is an L2 penalty added to the gradient.
    - ``schedule`` sets the learning rate at every step (see :func:`lr_factor`); ``warmup_steps``
      defaults to 5% of all steps. ``grad_clip`` caps the gradients' global L2 norm.
    - ``early_stopping_patience``: stop after that many epochs in a row without a lower validation
      loss, and end with the weights of the best epoch (whether training stopped early or not).
    - Reproducible: ``seed`` seeds torch (initialising nothing, but dropout) and the shuffling, so a
      model built after the same ``torch.manual_seed`` ends with the same weights on the same machine.
    - ``device``: where to train (the model is moved there); by default where the model's weights are.

    A NaN or infinite loss or gradient stops training with a ``FloatingPointError`` that says where;
    the model keeps the last weights that gave a finite loss.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"fit trains a torch.nn.Module; got {type(model).__name__}")
    X, y = _training_data(X, y, loss)
    loss_fn = loss_function(loss)
    options = FitOptions(
        loss=loss,
        val_fraction=val_fraction,
        batch_size=batch_size,
        epochs=epochs,
        optimizer=optimizer,
        lr=lr,
        weight_decay=weight_decay,
        momentum=momentum,
        nesterov=nesterov,
        schedule=schedule,
        warmup_steps=warmup_steps,
        grad_clip=grad_clip,
        early_stopping_patience=early_stopping_patience,
        seed=seed,
        progress=progress,
    ).checked()

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    X, y, X_val, y_val = _split(X, y, validation, options, generator)
    _check_counts(y, "y", loss)
    if len(X_val) > 0:
        _check_counts(y_val, "y_val", loss)
    if options.early_stopping_patience is not None and len(X_val) == 0:
        raise ValueError(
            "early stopping needs validation data: pass validation=(X_val, y_val) or val_fraction > 0"
        )
    device = model_device(model) if device is None else torch.device(device)
    model.to(device)
    X, y = X.to(device), y.to(device)
    loop = TrainingLoop(model, loss_fn, options, len(X))
    history = History(metric_name="accuracy" if options.classify else None)
    best = _BestWeights(options.early_stopping_patience)
    train_seconds, train_samples, started = 0.0, 0, time.perf_counter()

    with ProgressBar(progress, options.epochs, loop.total_steps) as bar:
        for epoch in range(options.epochs):
            tick = time.perf_counter()
            order = torch.randperm(len(X), generator=generator).to(device)
            train_loss, seen = loop.epoch(epoch, X, y, order, bar)
            train_seconds += time.perf_counter() - tick
            train_samples += seen
            history.train_loss.append(train_loss)
            history.lr.append(loop.opt.param_groups[0]["lr"])
            if len(X_val) > 0:
                val_loss, metric = _evaluate(model, loss_fn, X_val, y_val, loss)
                if not math.isfinite(val_loss):
                    raise loop.guard.diverged("validation loss", val_loss, loop.epoch_end(epoch))
                history.val_loss.append(val_loss)
                history.val_metric.append(metric)
                best.update(val_loss, epoch, model, history)
                bar.update(val=f"{val_loss:.4f}" + (f" acc {metric:.3f}" if options.classify else ""))
            if best.patience_ran_out:
                history.stopped_early = epoch + 1 < options.epochs
                break
    best.restore(model)
    history.seconds = time.perf_counter() - started
    history.samples_per_second = train_samples / max(train_seconds, 1e-9)
    return history


def _training_data(X: Any, y: Any, loss: str | LossFn) -> tuple[torch.Tensor, torch.Tensor]:
    """``X`` and ``y`` as tensors (targets typed for ``loss``), checked: paired, not empty, finite."""
    X, y = as_tensor(X, "X"), _targets(as_tensor(y, "y"), loss)
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} samples but y has {len(y)}: they must pair up one to one")
    if len(X) == 0:
        raise ValueError("no training data: X and y are empty")
    _check_finite(X, "X")
    _check_finite(y, "y")
    return X, y


def _check_counts(y: torch.Tensor, what: str, loss: str | LossFn) -> None:
    """A ``ValueError`` when nothing in ``y`` (not empty) counts toward the loss: every class index is
    the ignored padding index, and cross-entropy's mean over no target does not exist."""
    if loss_weight(y, loss) == 0:
        raise ValueError(f"no target of {what} counts: every one is the ignored index {IGNORE}")


def _split(
    X: torch.Tensor,
    y: torch.Tensor,
    validation: tuple[Any, Any] | None,
    options: FitOptions,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(X, y, X_val, y_val)``: the given validation data checked, or a seeded ``val_fraction`` held out."""
    if validation is not None:
        if not isinstance(validation, tuple | list) or len(validation) != 2:
            raise ValueError("validation must be a pair (X_val, y_val)")
        X_val = as_tensor(validation[0], "X_val")
        y_val = _targets(as_tensor(validation[1], "y_val"), options.loss)
        if len(X_val) != len(y_val):
            raise ValueError(f"X_val has {len(X_val)} samples but y_val has {len(y_val)}")
        _check_finite(X_val, "X_val")
        _check_finite(y_val, "y_val")
        return X, y, X_val, y_val
    n_val = round(options.val_fraction * len(X))
    if options.val_fraction > 0:
        n_val = max(1, n_val)  # a fraction asked for holds out at least one sample, never silently none
    if n_val >= len(X):
        raise ValueError(
            f"val_fraction={options.val_fraction} leaves no training data out of {len(X)} samples "
            "(val_fraction=0: no validation)"
        )
    order = torch.randperm(len(X), generator=generator)
    return X[order[n_val:]], y[order[n_val:]], X[order[:n_val]], y[order[:n_val]]


class _BestWeights:
    """The epoch of the lowest validation loss and, with early stopping, its weights."""

    def __init__(self, patience: int | None) -> None:
        self.patience = patience
        self.best_loss = math.inf
        self.state: dict[str, Any] | None = None
        self.waited = 0

    def update(self, val_loss: float, epoch: int, model: nn.Module, history: History) -> None:
        if val_loss < self.best_loss:
            self.best_loss, self.waited, history.best_epoch = val_loss, 0, epoch
            if self.patience is not None:
                self.state = copy.deepcopy(model.state_dict())
        else:
            self.waited += 1

    @property
    def patience_ran_out(self) -> bool:
        return self.patience is not None and self.waited >= self.patience

    def restore(self, model: nn.Module) -> None:
        if self.state is not None:
            model.load_state_dict(self.state)
