"""A2C (Mnih et al., 2016, synchronous): one gradient step per short rollout of every env::

    L = -mean(log pi(a|s) * A) + vf_coef * mean((V(s) - R)^2) - ent_coef * mean(entropy)

with n-step (``gae_lambda=1``) or GAE advantages, RMSprop (alpha 0.99, eps 1e-5) as in the paper
and stable-baselines3 (``use_rms_prop=False`` for Adam), gradient clipping and stable-baselines3's
defaults and names.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from agents.common.on_policy import COMMON_DEFAULTS, OnPolicyAgent, Rollout, gae


class A2C(OnPolicyAgent):
    name: ClassVar[str] = "a2c"
    defaults: ClassVar[dict[str, Any]] = {
        **COMMON_DEFAULTS,
        "learning_rate": 7e-4,
        "n_steps": 5,
        "gae_lambda": 1.0,
        "normalize_advantage": False,
        "use_rms_prop": True,
    }

    def _make_optimizer(self) -> torch.optim.Optimizer:
        if self.hyperparameters["use_rms_prop"]:
            return torch.optim.RMSprop(self.policy.parameters(), lr=self._base_lr, alpha=0.99, eps=1e-5)
        return super()._make_optimizer()

    def _update(self, rollout: Rollout) -> None:
        advantages, returns = gae(rollout, self.gamma, self.hyperparameters["gae_lambda"])
        policy_gradient_step(self, rollout, advantages, returns)


def policy_gradient_step(agent: OnPolicyAgent, rollout: Rollout, advantages: Any, returns: Any) -> None:
    """One step on the whole rollout: the vanilla policy-gradient loss plus value and entropy terms."""
    hp = agent.hyperparameters
    batch = agent._flat_batch(rollout, advantages, returns)
    if len(batch["advantages"]) == 0:
        return
    adv = batch["advantages"]
    if hp["normalize_advantage"] and len(adv) > 1:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    params, log_std, values = agent.policy(batch["obs"])
    log_probs, entropy = agent.policy.log_prob_entropy(params, log_std, batch["actions"])
    loss = -(log_probs * adv).mean() - hp["ent_coef"] * entropy.mean()
    if hp.get("baseline", True):
        loss = loss + hp["vf_coef"] * (batch["returns"] - values).square().mean()
    agent._step(loss)
