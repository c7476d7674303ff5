"""The step-by-step part of :func:`lab.nets.fit`: the optimiser with its learning-rate schedule over
every epoch's batches, the guard that puts the last finite weights back when training diverges, and
the progress bar."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from lab.nets.inference import IGNORE
from lab.nets.training_choices import (
    LossFn,
    flush_denormals,
    lr_factor,
    make_optimizer,
    set_learning_rate,
)

if TYPE_CHECKING:
    from lab.nets.fit import FitOptions


def index_batches(order: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    """Index batches of ``order``; a lone last sample joins the batch before it, since BatchNorm
    cannot normalise a batch of one."""
    n = len(order)
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else n
        yield order[start:end]


def loss_weight(targets: torch.Tensor, loss: str | LossFn) -> int:
    """What a batch's mean loss averages over, up to a factor every batch of one data set shares: for
    cross-entropy on class indices its targets that count (padding left out), else its samples."""
    if loss == "cross_entropy" and not targets.is_floating_point():
        return int((targets != IGNORE).sum())
    return len(targets)


class ProgressBar:
    """A rich progress bar over all optimisation steps with the live training and validation loss;
    rich is imported only when it is shown."""

    def __init__(self, enabled: bool, epochs: int, steps: int) -> None:
        self.bar: Any = None
        if not enabled:
            return
        from rich.progress import BarColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        from lab.core.progress_lines import LineProgress

        self.bar = LineProgress(
            TextColumn("[bold]fit[/] epoch {task.fields[epoch]}/" + str(epochs)),
            BarColumn(),
            TextColumn("train {task.fields[train]}  val {task.fields[val]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        self.task = self.bar.add_task("fit", total=steps, epoch=1, train="-", val="-")

    def __enter__(self) -> ProgressBar:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def update(self, **fields: Any) -> None:
        if self.bar is not None:
            self.bar.update(self.task, **fields)


class WeightGuard:
    """The weights (and buffers, such as BatchNorm's running statistics) before the latest step,
    which gave a finite loss: put back when the weights after it give a non-finite one (or are
    themselves non-finite)."""

    def __init__(self, model: nn.Module, params: list[nn.Parameter]) -> None:
        self.tensors = [*params, *model.buffers()]
        self.backup = [t.detach().clone() for t in self.tensors]

    @torch.no_grad()
    def save(self) -> None:
        for t, saved in zip(self.tensors, self.backup, strict=True):
            saved.copy_(t)

    def diverged(self, what: str, value: float, where: str, restore: bool = True) -> FloatingPointError:
        """The error to raise, after putting the saved weights back (unless ``restore`` is False)."""
        if restore:
            with torch.no_grad():
                for t, saved in zip(self.tensors, self.backup, strict=True):
                    t.copy_(saved)
        return FloatingPointError(
            f"the {what} became {value} at {where}: lower the learning rate, clip the gradients "
            "(grad_clip=...) or check the model and loss; the model keeps its last weights with a finite loss"
        )


class TrainingLoop:
    """The optimiser, the learning-rate schedule and the step count over all epochs of one fit."""

    def __init__(self, model: nn.Module, loss_fn: LossFn, options: FitOptions, n_train: int) -> None:
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("the model has no trainable parameters")
        o = options
        self.model, self.loss_fn, self.options, self.params = model, loss_fn, o, params
        assert o.weight_decay is not None  # filled in by FitOptions.checked
        self.opt = make_optimizer(o.optimizer, params, o.lr, o.weight_decay, o.momentum, o.nesterov)
        self.steps_per_epoch = sum(1 for _ in index_batches(torch.arange(n_train), o.batch_size))
        self.total_steps = self.steps_per_epoch * o.epochs
        self.warmup = max(1, round(0.05 * self.total_steps)) if o.warmup_steps is None else o.warmup_steps
        self.guard = WeightGuard(model, params)
        self.step = 0

    def where(self, epoch: int, batch: int) -> str:
        batches = f"batch {batch + 1}/{self.steps_per_epoch}"
        return f"epoch {epoch + 1}/{self.options.epochs}, {batches} (step {self.step})"

    def epoch_end(self, epoch: int) -> str:
        return f"the end of epoch {epoch + 1}/{self.options.epochs}"

    @flush_denormals()  # Adam's state of silent weights would otherwise stick at slow subnormals
    def epoch(
        self, epoch: int, X: torch.Tensor, y: torch.Tensor, order: torch.Tensor, bar: ProgressBar
    ) -> tuple[float, int]:
        """One pass over ``order``'s batches: the mean training loss and the number of samples seen.
        The mean weighs each batch's loss by what it averages: its samples, or for cross-entropy on
        class indices its targets that count (padding left out), so a language model's is per token;
        a batch of padding alone is passed over without a step."""
        o, opt, params = self.options, self.opt, self.params
        self.model.train()
        running, weighed, seen = 0.0, 0, 0
        for batch, index in enumerate(index_batches(order, o.batch_size)):
            weight = loss_weight(y[index], o.loss)
            if weight == 0:  # only padding: nothing to learn (cross-entropy's mean over no target is NaN)
                self.step += 1  # the schedule still moves on by the batch, as its total counts it
                bar.update(advance=1, epoch=epoch + 1)
                continue
            factor = lr_factor(o.schedule, self.step, self.total_steps, self.warmup)
            set_learning_rate(opt, o.lr * factor)
            batch_loss = self.loss_fn(self.model(X[index]), y[index])
            value = float(batch_loss.detach())
            if not math.isfinite(value):
                raise self.guard.diverged("training loss", value, self.where(epoch, batch))
            opt.zero_grad(set_to_none=True)
            batch_loss.backward()
            if o.grad_clip is not None:
                norm = float(nn.utils.clip_grad_norm_(params, o.grad_clip))
                if not math.isfinite(norm):
                    # No step was taken: the weights are those that gave a finite loss.
                    raise self.guard.diverged("gradient norm", norm, self.where(epoch, batch), restore=False)
            self.guard.save()
            opt.step()
            self.step += 1
            running, weighed, seen = running + value * weight, weighed + weight, seen + len(index)
            bar.update(advance=1, epoch=epoch + 1, train=f"{running / weighed:.4f}")
        if not all(bool(torch.isfinite(p).all()) for p in params):
            raise self.guard.diverged("weights", float("nan"), self.epoch_end(epoch))
        return running / weighed, seen
