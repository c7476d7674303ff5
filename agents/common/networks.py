"""What the neural agents do alike with their networks: compile the loss, make Adam, clip the
gradients' norm, stop before a non-finite step, and save and restore the weights with the
optimizer's state as plain checkpoint arrays."""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch
from torch import nn

from agents.common.errors import AgentError

LossFunction = TypeVar("LossFunction", bound=Callable[..., object])


def compiled(loss: LossFunction, enabled: bool) -> LossFunction:
    """``loss`` through ``torch.compile`` when ``enabled`` (the ``compile: true`` hyperparameter),
    else ``loss`` itself.

    Compiled, the network's forward pass and the loss become a few fused kernels (TorchInductor
    writes them in C++), and so does their backward pass (AOTAutograd), whatever the ``nn.Module``.
    The first call compiles, which takes seconds (about 20 on the first run on a machine, before
    TorchInductor's on-disk cache holds the kernels; more for bigger networks), and a batch of a new
    size (a rollout's last mini-batch) compiles once more, for sizes that vary. It pays off on long
    runs with large mini-batches, where the many small element-wise operations of an eager step
    dominate (a PPO step of 2,048 grid-env samples: a quarter off on an AMD EPYC, about a tenth on
    an Intel Xeon, whose MKL tanh makes the eager step cheaper); on CartPole-sized steps the
    compile time is more than a whole run. Results match the eager ones to rounding.
    """
    if not enabled:
        return loss
    if not any(shutil.which(c) for c in (os.environ.get("CXX") or "c++", "g++", "clang++")):
        raise AgentError(
            "compile: true needs a C++ compiler (g++ or clang++) for torch.compile's CPU kernels; "
            "install one or leave compile off"
        )
    return torch.compile(loss)  # type: ignore[return-value]


def clip_grad_norm(params: list[torch.Tensor], max_norm: float) -> tuple[torch.Tensor, float]:
    """``torch.nn.utils.clip_grad_norm_`` in its two public halves: the gradients' total norm, then
    every gradient scaled by ``min(1, max_norm / (norm + 1e-6))``, a scaling skipped where it is
    surely 1. Returns the norm before clipping, as a tensor (to read with other figures later) and as
    the number read once here (NaN or inf when a gradient is: the caller's check before stepping).

    The gradients are clip_grad_norm_'s to the bit: the scaling is skipped only when ``norm + 1e-6``
    is below ``max_norm`` by a margin (1e-5, relative) that float32 rounding of the factor cannot
    cross, and left to ``clip_grads_with_norm_`` otherwise. Skipping the multiplications of gradients
    within bounds takes a twentieth off a DQN step on CartPole."""
    norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None], foreach=True)
    value = float(norm)
    if not value + 1e-6 < max_norm * (1.0 - 1e-5):  # NaN too
        torch.nn.utils.clip_grads_with_norm_(params, max_norm, norm, foreach=True)
    return norm, value


def check_finite_step(loss: float, norm: float, step: int, advice: str) -> None:
    """Raise an :class:`AgentError` naming the non-finite loss or gradient norm (NaN or inf) and the
    env ``step``, with the agent's ``advice``; called before ``optimizer.step()``, so the network keeps
    its last good weights."""
    if math.isfinite(loss + norm):
        return
    what = f"loss ({loss})" if not math.isfinite(loss) else f"gradient norm ({norm})"
    raise AgentError(f"non-finite {what} at step {step}: {advice} (the network keeps its last good weights)")


def make_adam(params: list[torch.Tensor], lr: float, eps: float = 1e-8) -> torch.optim.Adam:
    """torch's Adam in one fused kernel for all parameters (a public option, on the CPU since torch
    2.4), else its foreach form: for networks this small, the per-tensor calls of the default form
    are much of a gradient step."""
    try:
        return torch.optim.Adam(params, lr=lr, eps=eps, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, eps=eps, foreach=True)


def network_arrays(
    nets: dict[str, nn.Module], optimizer: torch.optim.Optimizer, optimizer_key: str
) -> dict[str, np.ndarray]:
    """Each network's weights as ``<name>.<tensor>`` and the optimizer's per-parameter state as
    ``<optimizer_key>.<index>.<state>`` arrays."""
    arrays = {
        f"{prefix}.{k}": v.numpy().copy() for prefix, net in nets.items() for k, v in net.state_dict().items()
    }
    for i, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            value = value.numpy() if torch.is_tensor(value) else value
            arrays[f"{optimizer_key}.{i}.{key}"] = np.array(value)
    return arrays


def restore_networks(
    arrays: dict[str, np.ndarray],
    nets: dict[str, nn.Module],
    optimizer: torch.optim.Optimizer,
    optimizer_key: str,
    agent: str,
) -> None:
    """Put :func:`network_arrays` back into the existing tensors (views of them stay valid); a network
    of another shape is an :class:`AgentError` naming ``agent``."""
    for prefix, net in nets.items():
        saved = {
            k[len(prefix) + 1 :]: torch.as_tensor(v) for k, v in arrays.items() if k.startswith(prefix + ".")
        }
        expected = net.state_dict()
        if set(saved) != set(expected) or any(saved[k].shape != expected[k].shape for k in expected):
            raise AgentError(
                f"the checkpoint's network does not fit this {agent} (another net_arch, policy option or "
                "observation/action space); load it with the hyperparameters it was saved with"
            )
        net.load_state_dict(saved)
    state = optimizer.state_dict()
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in arrays.items():
        if key.startswith(optimizer_key + "."):
            _, index, name = key.split(".", 2)
            per_param.setdefault(int(index), {})[name] = torch.as_tensor(value)
    state["state"] = per_param
    optimizer.load_state_dict(state)
