"""Optimizer helpers shared by the neural agents: Adam's fastest CPU options, and flat buffers that
let a hand-written training step clip and apply Adam to all parameters in a few calls."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import torch


@functools.cache
def _adam_takes_fused() -> bool:
    """Whether this torch builds ``Adam(fused=True)`` on the CPU (asked once per process)."""
    try:
        torch.optim.Adam([torch.zeros(1, requires_grad=True)], fused=True)
    except (RuntimeError, TypeError, ValueError):
        return False
    return True


def fast_adam_options() -> dict[str, Any]:
    """Adam's fused CPU kernel where this torch has one (one call per step instead of a few per
    tensor: for the lab's small networks the per-call overhead is much of a step), else foreach."""
    return {"fused": True} if _adam_takes_fused() else {"foreach": True}


def total_grad_norm(grads: list[torch.Tensor]) -> torch.Tensor:
    """``clip_grad_norm_``'s total norm, a 0-d tensor: torch's 2-norm of each gradient, then of those."""
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def clip_coefficient(norm: torch.Tensor, max_norm: float) -> np.float32:
    """``clip_grad_norm_``'s factor for the gradients, ``max_norm / (norm + 1e-6)`` clamped at 1, as
    torch computes it on a float32 ``norm`` (``max_norm / t`` is ``reciprocal(t) * max_norm``) but in
    numpy: exactly rounded arithmetic on one number, cheaper than three torch calls. NaN stays NaN."""
    coef = np.float32(1.0) / (norm.numpy() + np.float32(1e-6)) * np.float32(max_norm)
    return np.minimum(coef, np.float32(1.0))


class FlatParameters:
    """A network's trained parameters, their gradients and Adam's two moment estimates, each in one
    flat buffer; the torch parameters and the optimizer's state tensors become views of them.

    The optimizer, its ``state_dict()``, checkpoints and the torch forward pass keep working on the
    same numbers, while a hand-written training step fills :attr:`grads` (through :meth:`grad` views)
    and steps all parameters at once. The optimizer must be a ``torch.optim.Adam`` over exactly
    ``params`` in one group, without weight decay, AMSGrad or ``maximize``. After its state is
    replaced (a checkpoint loaded), call :meth:`bind_optimizer_state` again.
    """

    def __init__(self, params: list[torch.Tensor], optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self.params = params
        sizes = [p.numel() for p in params]
        self.values = torch.zeros(sum(sizes))
        self.grads = torch.zeros_like(self.values)
        self.exp_avg, self.exp_avg_sq = torch.zeros_like(self.values), torch.zeros_like(self.values)
        self.steps = torch.zeros(())  # one counter: the parameters always step together
        self._work = np.empty(len(self.values), np.float32)
        self._denom = torch.from_numpy(self._work)  # the "torch" kernel's scratch: the same memory
        self._numpy = [b.numpy() for b in (self.values, self.grads, self.exp_avg, self.exp_avg_sq)]
        self._slices: dict[int, slice] = {}
        offset = 0
        with torch.no_grad():
            for p, size in zip(params, sizes, strict=True):
                self._slices[id(p)] = slice(offset, offset + size)
                view = self.view(p)
                view.copy_(p)
                p.data = view  # the parameter now lives in the flat buffer
                offset += size
        self.bind_optimizer_state()

    @staticmethod
    def supports(optimizer: torch.optim.Optimizer) -> bool:
        """Whether ``optimizer`` is the plain Adam whose step :meth:`adam_step` reproduces."""
        group = optimizer.param_groups[0]
        return (
            type(optimizer) is torch.optim.Adam
            and len(optimizer.param_groups) == 1
            and not group["weight_decay"]
            and not group["amsgrad"]
            and not group["maximize"]
        )

    def view(self, p: torch.Tensor) -> torch.Tensor:
        """``p``'s values (a view of :attr:`values` shaped like ``p``)."""
        return self.values[self._slices[id(p)]].view_as(p)

    def grad(self, p: torch.Tensor) -> torch.Tensor:
        """``p``'s gradient (a view of :attr:`grads` shaped like ``p``)."""
        return self.grads[self._slices[id(p)]].view_as(p)

    def bind_optimizer_state(self) -> None:
        """Make Adam's state of every parameter views of the flat buffers, keeping its values (a
        parameter Adam has not stepped yet starts at zero, as in torch)."""
        state = self.optimizer.state
        steps = [float(state[p]["step"]) for p in self.params if "step" in state[p]]
        self.steps.fill_(max(steps, default=0.0))
        for p in self.params:
            where = self._slices[id(p)]
            saved = state[p]
            for key, buffer in (("exp_avg", self.exp_avg), ("exp_avg_sq", self.exp_avg_sq)):
                view = buffer[where].view_as(p)
                view.copy_(saved[key] if key in saved else torch.zeros_like(p))
                saved[key] = view
            saved["step"] = self.steps

    def adam_step(self, kernel: str) -> None:
        """``torch.optim.Adam``'s step on every parameter from :attr:`grads`, with the optimizer's
        current learning rate, betas and eps. ``kernel``:

        - ``"fused"``: torch's fused CPU kernel on the whole buffer, in one call (the same numbers as
          ``Adam(fused=True)``);
        - ``"torch"``: the element-wise operations of torch's default CPU Adam (its for-loop and
          ``foreach`` implementations round alike), applied to the whole buffer: the same numbers as
          ``Adam()``, as stable-baselines3 builds it;
        - ``"numpy"``: numpy, a dozen passes that cost little for small networks (equal to the
          others up to rounding).
        """
        if kernel not in ("fused", "torch", "numpy"):
            raise ValueError(f"kernel must be 'fused', 'torch' or 'numpy'; got {kernel!r}")
        group = self.optimizer.param_groups[0]
        lr, (beta1, beta2), eps = float(group["lr"]), group["betas"], group["eps"]
        self.steps += 1.0
        if kernel == "fused":
            torch._fused_adam_(
                [self.values], [self.grads], [self.exp_avg], [self.exp_avg_sq], [], [self.steps],
                lr=lr, beta1=beta1, beta2=beta2, weight_decay=0.0, eps=eps, amsgrad=False, maximize=False,
            )  # fmt: skip
            return
        if kernel == "torch":  # torch.optim.adam._single_tensor_adam, line for line
            t = float(self.steps)
            self.exp_avg.lerp_(self.grads, 1 - beta1)
            self.exp_avg_sq.mul_(beta2).addcmul_(self.grads, self.grads, value=1 - beta2)
            denom = torch.sqrt(self.exp_avg_sq, out=self._denom)  # (sqrt(v) / sqrt(1 - beta2^t)) + eps
            denom.div_((1 - beta2**t) ** 0.5).add_(eps)
            self.values.addcdiv_(self.exp_avg, denom, value=-(lr / (1 - beta1**t)))
            return
        t = float(self.steps)
        (flat, grad, m, v), work = self._numpy, self._work
        m *= np.float32(beta1)  # exp_avg.lerp_(grad, 1 - beta1)
        np.multiply(grad, np.float32(1.0 - beta1), out=work)
        m += work
        v *= np.float32(beta2)  # exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2)
        np.multiply(grad, grad, out=work)
        work *= np.float32(1.0 - beta2)
        v += work
        np.sqrt(v, out=work)  # denominator: sqrt(v) / sqrt(1 - beta2^t) + eps
        work *= np.float32(1.0 / math.sqrt(1.0 - beta2**t))
        work += np.float32(eps)
        np.divide(m, work, out=work)
        work *= np.float32(-lr / (1.0 - beta1**t))
        flat += work


def has_fused_adam_kernel() -> bool:
    """Whether this torch has the fused CPU Adam kernel that :meth:`FlatParameters.adam_step` calls."""
    return _adam_takes_fused() and hasattr(torch, "_fused_adam_")


def adam_kernel(optimizer: torch.optim.Optimizer) -> str:
    """The :meth:`FlatParameters.adam_step` kernel that rounds as ``optimizer`` does."""
    return "fused" if optimizer.defaults.get("fused") and has_fused_adam_kernel() else "torch"
