"""REINFORCE (Williams, 1992): the Monte Carlo policy gradient, from whole episodes::

    L = -mean(log pi(a_t|s_t) * (G_t - b(s_t)))      G_t = r_t + gamma * r_t+1 + ...

Each update waits for ``n_episodes`` complete episodes (from ``n_envs`` envs at once; episodes still
running then are dropped and every env starts afresh, so each update is strictly on-policy).
``baseline=True`` learns a state value ``b(s) = V(s)`` by regression on the returns (a variance
reducer that leaves the gradient unbiased). With ``normalize_advantage`` (the default) the weights
``G_t - b(s_t)`` (or ``G_t`` without a baseline) are normalised over the batch; the value targets are
the returns as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from agents.a2c import policy_gradient_loss, policy_gradient_step
from agents.common.config import AgentConfig, count, flag, rate
from agents.common.on_policy import OnPolicyAgent, OnPolicyConfig
from agents.common.rollout import Rollout, gae
from agents.common.schedules import Schedule


@dataclass(frozen=True)
class ReinforceConfig(OnPolicyConfig):
    learning_rate: Schedule = rate(1e-3)
    n_episodes: int = count(8)
    baseline: bool = flag(True)


class Reinforce(OnPolicyAgent):
    name: ClassVar[str] = "reinforce"
    config_class: ClassVar[type[AgentConfig]] = ReinforceConfig
    config: ReinforceConfig

    def _rollout_length(self) -> int:
        return 0  # unused: a REINFORCE rollout ends on episodes, not steps

    def loss(self, batch: dict[str, torch.Tensor], *settings: Any) -> tuple[Any, ...]:
        return policy_gradient_loss(self, batch)

    def _update(self, rollout: Rollout) -> None:
        # Only whole episodes: the steps of each env after its last finished episode are dropped.
        done = rollout.done.astype(bool)
        finished_after = done[::-1].cumsum(axis=0)[::-1] > 0  # an episode end at or after this step
        rollout.valid = rollout.valid & finished_after
        returns, _ = gae(rollout, self.gamma, 1.0, bootstrap=False)
        advantages = returns - rollout.values if self.config.baseline else returns
        policy_gradient_step(self, rollout, advantages, returns)
        assert self._steps is not None
        self._steps.obs = None  # every env starts a fresh episode for the next batch
