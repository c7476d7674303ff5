"""A2C (Mnih et al., 2016, synchronous): one gradient step per short rollout of every env::

    L = -mean(log pi(a|s) * A) + vf_coef * mean((V(s) - R)^2) - ent_coef * mean(entropy)

with n-step (``gae_lambda=1``) or GAE advantages, RMSprop (alpha 0.99, eps 1e-5) as in the paper
and stable-baselines3 (``use_rms_prop=False`` for Adam), gradient clipping and stable-baselines3's
defaults and names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from agents.common.config import AgentConfig, count, flag, fraction, rate
from agents.common.on_policy import OnPolicyAgent, OnPolicyConfig
from agents.common.rollout import Rollout, gae
from agents.common.schedules import Schedule


@dataclass(frozen=True)
class A2CConfig(OnPolicyConfig):
    learning_rate: Schedule = rate(7e-4)
    normalize_advantage: bool = flag(False)
    n_steps: int = count(5)
    gae_lambda: float = fraction(1.0)
    use_rms_prop: bool = flag(True)


class A2C(OnPolicyAgent):
    name: ClassVar[str] = "a2c"
    config_class: ClassVar[type[AgentConfig]] = A2CConfig
    config: A2CConfig

    def _make_optimizer(self, lr: float) -> torch.optim.Optimizer:
        if self.config.use_rms_prop:
            return torch.optim.RMSprop(self.policy.parameters(), lr=lr, alpha=0.99, eps=1e-5)
        return super()._make_optimizer(lr)

    def loss(self, batch: dict[str, torch.Tensor], *settings: Any) -> tuple[Any, ...]:
        return policy_gradient_loss(self, batch)

    def _update(self, rollout: Rollout) -> None:
        advantages, returns = gae(rollout, self.gamma, self.config.gae_lambda)
        policy_gradient_step(self, rollout, advantages, returns)


def policy_gradient_step(agent: OnPolicyAgent, rollout: Rollout, advantages: Any, returns: Any) -> None:
    """One step on the whole rollout: the vanilla policy-gradient loss plus value and entropy terms."""
    batch = agent._flat_batch(rollout, advantages, returns)
    if len(batch["advantages"]) == 0:
        return
    loss, figures = agent._loss(batch)
    figures["train/grad_norm"] = agent._step(loss)
    agent._report(batch, figures)


def policy_gradient_loss(
    agent: OnPolicyAgent, batch: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """A2C's and REINFORCE's loss: ``(loss, figures)``, the figures detached, under SB3's names."""
    config = agent.config
    adv = batch["advantages"]
    if config.normalize_advantage and len(adv) > 1:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    params, log_std, values = agent.policy(batch["obs"])
    log_probs, entropy = agent.policy.log_prob_entropy(params, log_std, batch["actions"], batch.get("masks"))
    policy_loss = -(log_probs * adv).mean()
    entropy_loss = -entropy.mean()
    loss = policy_loss
    if config.ent_coef:  # a zero coefficient's term would only lengthen the backward pass
        loss = loss + config.ent_coef * entropy_loss
    figures = {"train/policy_loss": policy_loss.detach(), "train/entropy_loss": entropy_loss.detach()}
    if getattr(config, "baseline", True):  # REINFORCE without a baseline learns no value
        value_loss = (batch["returns"] - values).square().mean()
        loss = loss + config.vf_coef * value_loss
        figures["train/value_loss"] = value_loss.detach()
    figures["train/loss"] = loss.detach()
    return loss, figures
