"""PPO (Schulman et al., 2017): several epochs of mini-batch updates on each rollout, each step's
policy change held in by the clipped surrogate objective::

    ratio = pi(a|s) / pi_old(a|s)
    L     = -mean(min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A))
            + vf_coef * mean((V(s) - R)^2) - ent_coef * mean(entropy)

with GAE advantages (normalised per mini-batch), optional value clipping around the old values
(``clip_range_vf``), gradient clipping, rl-zoo's ``lin_`` schedules for the learning rate and the
clip range, and an early stop of the epochs once the approximate KL divergence from the rollout's
policy passes ``1.5 * target_kl``. Hyperparameters are stable-baselines3's, defaults included, and
one mini-batch step computes what SB3's ``PPO.train`` computes (``tests/test_policy_gradient.py``
checks the loss, the gradients and the step against it).

An update reads as CleanRL's ``ppo.py``: GAE over the rollout, then per epoch a permutation of the
samples, and per mini-batch the loss, ``backward()``, ``clip_grad_norm_`` and ``optimizer.step()``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from agents.common.on_policy import COMMON_DEFAULTS, OnPolicyAgent, Rollout, gae
from agents.common.schedules import zoo_schedule


class PPO(OnPolicyAgent):
    name: ClassVar[str] = "ppo"
    defaults: ClassVar[dict[str, Any]] = {
        **COMMON_DEFAULTS,
        "n_steps": 2048,
        "batch_size": 64,
        "n_epochs": 10,
        "gae_lambda": 0.95,
        "clip_range": 0.2,
        "clip_range_vf": None,
        "target_kl": None,
    }

    def _setup(self) -> None:
        super()._setup()
        self._base_clip, self._clip_decays = zoo_schedule(self.hyperparameters["clip_range"])
        self.last_update: dict[str, float] = {}

    def loss(
        self, part: dict[str, torch.Tensor], clip: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """PPO's loss on one mini-batch, as SB3's ``train`` computes it: ``(loss, ratio, log_ratio)``."""
        hp, policy = self.hyperparameters, self.policy
        adv = part["advantages"]
        if hp["normalize_advantage"] and len(adv) > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        params, log_std, values = policy(part["obs"])
        log_probs, entropy = policy.log_prob_entropy(params, log_std, part["actions"])
        log_ratio = log_probs - part["log_probs"]
        ratio = log_ratio.exp()
        policy_loss = -torch.min(adv * ratio, adv * ratio.clamp(1.0 - clip, 1.0 + clip)).mean()
        if hp["clip_range_vf"] is not None:  # the new value may move at most clip_range_vf from the old
            old = part["values"]
            values = old + (values - old).clamp(-hp["clip_range_vf"], hp["clip_range_vf"])
        value_loss = (part["returns"] - values).square().mean()
        loss = policy_loss - hp["ent_coef"] * entropy.mean() + hp["vf_coef"] * value_loss
        return loss, ratio.detach(), log_ratio.detach()

    def _update(self, rollout: Rollout) -> None:
        hp = self.hyperparameters
        advantages, returns = gae(rollout, self.gamma, hp["gae_lambda"])
        batch = self._flat_batch(rollout, advantages, returns)
        n, size = len(batch["advantages"]), hp["batch_size"]
        clip = self._base_clip * (1.0 - self._progress) if self._clip_decays else self._base_clip
        kls: list[float] = []
        clip_fractions: list[float] = []
        stopped = False
        for _epoch in range(hp["n_epochs"]):
            order = torch.randperm(n, generator=self._generator)
            for start in range(0, n, size):
                # one mini-batch covering the rollout needs no gather: its order changes nothing
                part = batch if size >= n else {k: v[order[start : start + size]] for k, v in batch.items()}
                loss, ratio, log_ratio = self.loss(part, clip)
                kl = float(((ratio - 1.0) - log_ratio).mean())
                kls.append(kl)
                clip_fractions.append(float(((ratio - 1.0).abs() > clip).float().mean()))
                if hp["target_kl"] is not None and kl > 1.5 * hp["target_kl"]:
                    stopped = True  # as SB3: stop before stepping on a mini-batch that went too far
                    break
                self._step(loss)
            if stopped:
                break
        self.last_update = {
            "approx_kl": float(np.mean(kls)) if kls else 0.0,
            "clip_fraction": float(np.mean(clip_fractions)) if clip_fractions else 0.0,
            "early_stop": float(stopped),
        }
