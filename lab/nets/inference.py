"""A model's outputs on a data set (:func:`predict`) and its classification accuracy
(:func:`accuracy`), batch by batch in evaluation mode."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from lab.nets.layers import check_size

IGNORE = -100
"""The target of a position that does not count (padding): ``F.cross_entropy``'s default
``ignore_index``, also left out of :func:`accuracy`."""


def as_tensor(a: Any, what: str) -> torch.Tensor:
    """A tensor of ``a``, float64 made float32 (the dtype of the networks' weights)."""
    try:
        tensor = a if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{what} cannot be made a tensor: {exc}") from None
    if tensor.dtype == torch.float64:
        tensor = tensor.float()
    if tensor.dim() == 0:
        raise ValueError(f"{what} must have a leading sample axis; got a scalar")
    return tensor


EVAL_OUTPUTS = 1 << 22
"""Output values an evaluation holds at once where the batch is the lab's choice: a language model's
outputs over many sentences (sentences x steps x vocabulary) take gigabytes at a large vocabulary."""


def model_device(model: nn.Module) -> torch.device:
    """Where the model's weights are: its first parameter's device (the CPU for a model without any)."""
    for tensor in model.parameters():
        return tensor.device
    return torch.device("cpu")


@torch.no_grad()
def predict(model: nn.Module, X: Any, batch_size: int = 1024) -> torch.Tensor:
    """The model's outputs on ``X``, batch by batch in evaluation mode (dropout off, BatchNorm's
    running statistics), returned on the CPU; the model's mode is left as it was."""
    X = as_tensor(X, "X")
    batch_size = check_size("batch_size", batch_size)
    device = model_device(model)
    was_training = model.training
    model.eval()
    try:
        outputs = [model(X[i : i + batch_size].to(device)).cpu() for i in range(0, len(X), batch_size)]
    finally:
        model.train(was_training)
    if not outputs:
        raise ValueError("predict needs at least one sample")
    return torch.cat(outputs)


def correct(outputs: torch.Tensor, y: torch.Tensor, binary: bool | None = None) -> torch.Tensor:
    """The correctness of each prediction that counts, flattened (positions whose target is
    :data:`IGNORE` left out). Binary (``binary_cross_entropy``, or one output per sample): the
    logit's sign against the 0/1 target. Otherwise the argmax class against the class index (or the
    argmax of class probabilities shaped like the outputs). Shapes that do not pair up one
    prediction with one target are a ``ValueError``, never broadcast."""
    if len(outputs) != len(y):
        raise ValueError(f"{len(outputs)} predictions but {len(y)} targets: they must pair up one to one")
    if binary is None:
        binary = outputs.dim() == 1 or outputs.shape[-1] == 1
    if binary:
        if outputs.numel() != y.numel():
            raise ValueError(
                f"one logit per target is needed for a 0/1 accuracy; got outputs of shape "
                f"{tuple(outputs.shape)} for targets of shape {tuple(y.shape)}"
            )
        return ((outputs > 0).reshape(y.shape) == (y > 0.5)).reshape(-1)
    if y.is_floating_point() and y.shape == outputs.shape:
        return (outputs.argmax(-1) == y.argmax(-1)).reshape(-1)
    if y.dim() == outputs.dim() and y.shape[-1] == 1:
        y = y.squeeze(-1)  # a column of class indices
    if y.shape != outputs.shape[:-1]:
        raise ValueError(
            f"class indices of shape {tuple(y.shape)} do not match outputs of shape "
            f"{tuple(outputs.shape)} (indices need the outputs' shape without its last axis)"
        )
    counts = y != IGNORE
    return (outputs.argmax(-1) == y)[counts]


def accuracy(model: nn.Module, X: Any, y: Any, batch_size: int = 1024) -> float:
    """The fraction of samples (or sequence steps, padding left out) whose predicted class is the
    target's: argmax of the logits, or the sign of a single logit per sample against 0/1 targets."""
    targets = as_tensor(y, "y")
    hits = correct(predict(model, X, batch_size), targets)
    if hits.numel() == 0:
        raise ValueError("no target counts: every one is the ignored index -100")
    return float(hits.float().mean())
