"""PPO's loss and its gradient for a plain MLP actor-critic, written out by hand.

For the networks PPO usually trains (two small tanh MLPs on a vector observation) a mini-batch step
is a few dozen tiny tensor operations, and autograd's bookkeeping costs more than their arithmetic.
This computes the same loss as :meth:`agents.ppo.PPO._update`'s autograd path, and its gradient by
the chain rule, in about a third of the calls (``tests/test_policy_gradient.py`` checks both against
each other for categorical and Gaussian policies, with value clipping and an entropy bonus):

- clipped surrogate ``-mean(min(r A, clip(r) A))``: d/d log pi = ``-A r / N`` where the unclipped
  term is the minimum or the ratio is inside the clip range, else 0;
- categorical: d log pi(a) / d logits = ``onehot(a) - p``; entropy ``H = -sum p log p`` has
  d H / d logits = ``-p (log p + H)``;
- Gaussian with a state-independent log std: d log pi / d mean = ``(a - mu) / sigma^2``,
  d log pi / d log sigma = ``z^2 - 1``, d H / d log sigma = 1;
- value ``mean((R - V)^2)`` (or of the clipped value): ``2 (V - R) / N`` where not clipped.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from agents.policies import ActorCritic, mlp_tower, plain_mlp_policy


class HandPPOGradient:
    """Loss and gradients of PPO for an :class:`ActorCritic` it :meth:`supports`."""

    def __init__(self, policy: ActorCritic) -> None:
        pi, vf = mlp_tower(policy.pi_body, policy.action_head), mlp_tower(policy.vf_body, policy.value_head)
        assert pi is not None and vf is not None
        (self.pi, act_pi), (self.vf, act_vf) = pi, vf
        self.activations = (act_pi, act_vf)
        self.discrete = policy.discrete
        self.log_std = None if policy.discrete else policy.log_std

    @staticmethod
    def supports(policy: ActorCritic) -> bool:
        return plain_mlp_policy(policy)

    @staticmethod
    def _forward(
        x: torch.Tensor, layers: list[tuple[torch.Tensor, torch.Tensor]], activation: str
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        inputs = [x]
        for w, b in layers[:-1]:
            x = torch.addmm(b, x, w.t())
            if activation == "tanh":  # numpy's tanh, in place: several times faster than torch's on CPU
                np.tanh(x.numpy(), out=x.numpy())
            else:
                x.relu_()
            inputs.append(x)
        w, b = layers[-1]
        return torch.addmm(b, x, w.t()), inputs

    @staticmethod
    def _backward(
        grad: torch.Tensor,
        layers: list[tuple[torch.Tensor, torch.Tensor]],
        inputs: list[torch.Tensor],
        activation: str,
    ) -> None:
        for i in range(len(layers) - 1, -1, -1):
            w, b = layers[i]
            below = inputs[i]
            w.grad = grad.t().mm(below)
            b.grad = grad.sum(0)
            if i:
                grad = grad.mm(w)
                grad = grad * (1.0 - below.square()) if activation == "tanh" else grad * (below > 0)

    @torch.no_grad()
    def __call__(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        old_log_probs: torch.Tensor,
        advantages: torch.Tensor,
        returns: torch.Tensor,
        old_values: torch.Tensor,
        clip: float,
        clip_vf: float | None,
        ent_coef: float,
        vf_coef: float,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Set every parameter's ``.grad``; returns ``(loss, ratio, log_ratio)``."""
        x = obs if obs.dtype == torch.float32 else obs.float()
        n = x.shape[0]
        out, pi_inputs = self._forward(x, self.pi, self.activations[0])
        values, vf_inputs = self._forward(x, self.vf, self.activations[1])
        values = values.squeeze(1)
        if self.discrete:
            log_p = torch.log_softmax(out, dim=-1)
            p = log_p.exp()
            column = actions.long().view(-1, 1)
            log_probs = log_p.gather(1, column).squeeze(1)
            entropy = -(p * log_p).sum(-1)
        else:
            log_std = self.log_std
            assert log_std is not None
            inv_var = torch.exp(-2.0 * log_std)
            diff = actions - out
            z2 = diff.square() * inv_var
            log_probs = (-0.5 * z2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
            entropy = (log_std + 0.5 * (1.0 + math.log(2 * math.pi))).sum().expand(n)
        log_ratio = log_probs - old_log_probs
        ratio = log_ratio.exp()
        surrogate = ratio * advantages
        clipped = ratio.clamp(1.0 - clip, 1.0 + clip) * advantages
        policy_loss = -torch.minimum(surrogate, clipped).mean()
        inside = (ratio >= 1.0 - clip) & (ratio <= 1.0 + clip)
        grad_log_probs = torch.where((surrogate <= clipped) | inside, -surrogate / n, 0.0)
        if clip_vf is not None:
            delta = values - old_values
            predicted = old_values + delta.clamp(-clip_vf, clip_vf)
            passes = (delta >= -clip_vf) & (delta <= clip_vf)
        else:
            predicted, passes = values, None
        value_loss = (returns - predicted).square().mean()
        grad_values = (2.0 * vf_coef / n) * (predicted - returns)
        if passes is not None:
            grad_values = grad_values * passes
        loss = policy_loss + vf_coef * value_loss - ent_coef * entropy.mean()
        if self.discrete:
            grad_out = -grad_log_probs.unsqueeze(1) * p
            grad_out.scatter_add_(1, column, grad_log_probs.unsqueeze(1))
            if ent_coef:
                grad_out += (ent_coef / n) * p * (log_p + entropy.unsqueeze(1))
        else:
            grad_out = grad_log_probs.unsqueeze(1) * diff * inv_var
            self.log_std.grad = (grad_log_probs.unsqueeze(1) * (z2 - 1.0)).sum(0) - ent_coef
        self._backward(grad_out, self.pi, pi_inputs, self.activations[0])
        self._backward(grad_values.unsqueeze(1), self.vf, vf_inputs, self.activations[1])
        return loss, ratio, log_ratio
