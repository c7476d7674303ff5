"""PPO's mini-batch step for a plain MLP actor-critic, in numpy: the loss, its gradient by hand,
gradient clipping and Adam.

For the networks PPO usually trains (two small tanh MLPs on a vector observation) a mini-batch step
is a few dozen tiny array operations, and torch's per-call overhead and autograd's bookkeeping cost
more than their arithmetic. :class:`HandPPOStep` computes the same loss as
:meth:`agents.ppo.PPO._loss` and its gradient by the chain rule (``tests/test_policy_gradient.py``
checks both against autograd for categorical and Gaussian policies, with value clipping and an
entropy bonus), then clips and applies Adam exactly as ``torch.optim.Adam`` does:

- clipped surrogate ``-mean(min(r A, clip(r) A))``: d/d log pi = ``-A r / N`` where the unclipped
  term is the minimum or the ratio is inside the clip range, else 0;
- categorical: d log pi(a) / d logits = ``onehot(a) - p``; entropy ``H = -sum p log p`` has
  d H / d logits = ``-p (log p + H)``;
- Gaussian with a state-independent log std: d log pi / d mean = ``(a - mu) / sigma^2``,
  d log pi / d log sigma = ``z^2 - 1``, d H / d log sigma = 1;
- value ``mean((R - V)^2)`` (or of the clipped value): ``2 (V - R) / N`` where not clipped.

The trained parameters and Adam's two moment estimates live in flat buffers
(:class:`agents.optim.FlatParameters`), and the torch parameters and the optimizer's state tensors
are views of them: numpy updates them in place in a handful of calls, while ``state_dict()``,
checkpoints and the torch forward pass see the same numbers. After the optimizer's state is replaced
(a checkpoint loaded), :meth:`bind_optimizer_state` points it at the buffers again.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from agents.numpy_mlp import Layers, log_softmax, mlp_forward
from agents.optim import FlatParameters
from agents.policies import ActorCritic, mlp_tower, plain_mlp_policy


class HandPPOStep:
    """Loss, gradient and optimiser step of PPO for an :class:`ActorCritic` it :meth:`supports`."""

    def __init__(self, policy: ActorCritic, optimizer: torch.optim.Optimizer) -> None:
        self.params = [p for p in policy.parameters() if p.requires_grad]
        self.buffers = FlatParameters(self.params, optimizer)
        self.grad = self.buffers.grads.numpy()
        pi, vf = mlp_tower(policy.pi_body, policy.action_head), mlp_tower(policy.vf_body, policy.value_head)
        assert pi is not None and vf is not None
        self.pi, self.pi_grad, self.pi_activation = self._tower(*pi)
        self.vf, self.vf_grad, self.vf_activation = self._tower(*vf)
        self.discrete = policy.discrete
        self.log_std = self.log_std_grad = None
        if not policy.discrete:
            self.log_std, self.log_std_grad = self._numpy(policy.log_std), self._grad_view(policy.log_std)

    @staticmethod
    def supports(policy: ActorCritic, optimizer: torch.optim.Optimizer) -> bool:
        """A plain MLP policy trained by Adam without weight decay or AMSGrad, in one param group."""
        return plain_mlp_policy(policy) and FlatParameters.supports(optimizer)

    # ----- buffers -----

    def _numpy(self, p: torch.Tensor) -> np.ndarray:
        return self.buffers.view(p).numpy()

    def _grad_view(self, p: torch.Tensor) -> np.ndarray:
        return self.buffers.grad(p).numpy()

    def _tower(self, layers: list[tuple[torch.Tensor, torch.Tensor]], activation: str) -> tuple:
        values = [(self._numpy(w), self._numpy(b)) for w, b in layers]
        grads = [(self._grad_view(w), self._grad_view(b)) for w, b in layers]
        return values, grads, activation

    def gradients(self) -> list[np.ndarray]:
        """The last computed gradient of each trained parameter (views), in ``policy.parameters()`` order."""
        return [self._grad_view(p) for p in self.params]

    def bind_optimizer_state(self) -> None:
        """After the optimizer's state was replaced: see :meth:`FlatParameters.bind_optimizer_state`."""
        self.buffers.bind_optimizer_state()

    # ----- the step -----

    @staticmethod
    def _backward(
        grad: np.ndarray, layers: Layers, grads: Layers, inputs: list[np.ndarray], activation: str
    ) -> None:
        for i in range(len(layers) - 1, -1, -1):
            below = inputs[i]
            np.matmul(grad.T, below, out=grads[i][0])
            np.add.reduce(grad, axis=0, out=grads[i][1])
            if i:
                grad = grad @ layers[i][0]
                grad *= (1.0 - below * below) if activation == "tanh" else (below > 0)

    def gradient(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        old_log_probs: np.ndarray,
        advantages: np.ndarray,
        returns: np.ndarray,
        old_values: np.ndarray,
        clip: float,
        clip_vf: float | None,
        ent_coef: float,
        vf_coef: float,
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """Fill the gradient buffer; returns ``(loss, ratio, log_ratio)``. Nothing is stepped."""
        x = obs.reshape(len(obs), -1).astype(np.float32, copy=False)
        n = len(x)
        pi_inputs: list[np.ndarray] = []
        vf_inputs: list[np.ndarray] = []
        out = mlp_forward(x, self.pi, self.pi_activation, pi_inputs)
        values = mlp_forward(x, self.vf, self.vf_activation, vf_inputs)[:, 0]
        rows = np.arange(n)
        if self.discrete:
            chosen = actions.astype(np.int64, copy=False).reshape(n)
            log_p = log_softmax(out)
            p = np.exp(log_p)
            log_probs = log_p[rows, chosen]
            entropy = -np.add.reduce(p * log_p, axis=1)
        else:
            log_std = self.log_std
            assert log_std is not None
            inv_var = np.exp(-2.0 * log_std)
            diff = actions - out
            z2 = diff * diff * inv_var
            log_probs = (-0.5 * z2 - log_std - 0.5 * math.log(2 * math.pi)).sum(axis=1)
            entropy = np.full(n, (log_std + 0.5 * (1.0 + math.log(2 * math.pi))).sum(), np.float32)
        log_ratio = log_probs - old_log_probs
        ratio = np.exp(log_ratio)
        surrogate = ratio * advantages
        clipped = np.clip(ratio, 1.0 - clip, 1.0 + clip) * advantages
        policy_loss = -float(np.add.reduce(np.minimum(surrogate, clipped))) / n
        inside = (ratio >= 1.0 - clip) & (ratio <= 1.0 + clip)
        grad_log_probs = np.where((surrogate <= clipped) | inside, surrogate * np.float32(-1.0 / n), 0.0)
        grad_log_probs = grad_log_probs.astype(np.float32, copy=False)
        if clip_vf is not None:
            delta = values - old_values
            predicted = old_values + np.clip(delta, -clip_vf, clip_vf)
            passes = (delta >= -clip_vf) & (delta <= clip_vf)
        else:
            predicted, passes = values, None
        error = predicted - returns
        value_loss = float(np.dot(error, error)) / n
        grad_values = error * np.float32(2.0 * vf_coef / n)
        if passes is not None:
            grad_values *= passes
        loss = policy_loss + vf_coef * value_loss - ent_coef * float(np.add.reduce(entropy)) / n
        if self.discrete:
            grad_out = -grad_log_probs[:, None] * p
            grad_out[rows, chosen] += grad_log_probs
            if ent_coef:
                grad_out += np.float32(ent_coef / n) * p * (log_p + entropy[:, None])
        else:
            grad_out = grad_log_probs[:, None] * diff * inv_var
            assert self.log_std_grad is not None
            self.log_std_grad[:] = (grad_log_probs[:, None] * (z2 - 1.0)).sum(axis=0) - ent_coef
        self._backward(grad_out.astype(np.float32, copy=False), self.pi, self.pi_grad, pi_inputs,
                       self.pi_activation)  # fmt: skip
        self._backward(grad_values[:, None], self.vf, self.vf_grad, vf_inputs, self.vf_activation)
        return loss, ratio, log_ratio

    def step(self, max_grad_norm: float) -> None:
        """Clip the gradient's global norm to ``max_grad_norm`` (as ``clip_grad_norm_``) and take
        ``torch.optim.Adam``'s step with the optimizer's current learning rate, betas and eps."""
        grad = self.grad
        norm = math.sqrt(float(np.dot(grad, grad)))
        scale = min(1.0, max_grad_norm / (norm + 1e-6))
        if scale < 1.0:
            grad *= np.float32(scale)
        self.buffers.adam_step("numpy")  # numpy: for networks this size no slower than the kernel
