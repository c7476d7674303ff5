"""PPO (Schulman et al., 2017): several epochs of mini-batch updates on each rollout, each step's
policy change held in by the clipped surrogate objective::

    ratio = pi(a|s) / pi_old(a|s)
    L     = -mean(min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A))
            + vf_coef * mean((V(s) - R)^2) - ent_coef * mean(entropy)

with GAE advantages (normalised per mini-batch), optional value clipping around the old values
(``clip_range_vf``), gradient clipping, rl-zoo's ``lin_`` schedules for the learning rate and the
clip range, and an early stop of the epochs once the approximate KL divergence from the rollout's
policy passes ``1.5 * target_kl``. Hyperparameters are stable-baselines3's, defaults included.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from agents.on_policy import COMMON_DEFAULTS, OnPolicyAgent, Rollout, gae
from agents.ppo_grad import HandPPOGradient
from agents.schedules import zoo_schedule


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
        self._hand = HandPPOGradient(self.policy) if HandPPOGradient.supports(self.policy) else None

    def _loss(
        self, part: dict[str, torch.Tensor], adv: torch.Tensor, clip: float, clip_vf: float | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """PPO's loss through autograd: ``(loss, ratio, log_ratio)``."""
        hp, policy = self.hyperparameters, self.policy
        params, log_std, values = policy(part["obs"])
        log_probs, entropy = policy.log_prob_entropy(params, log_std, part["actions"])
        log_ratio = log_probs - part["log_probs"]
        ratio = log_ratio.exp()
        policy_loss = -torch.min(ratio * adv, ratio.clamp(1.0 - clip, 1.0 + clip) * adv).mean()
        if clip_vf is not None:
            old_values = part["values"]
            values = old_values + (values - old_values).clamp(-clip_vf, clip_vf)
        value_loss = (part["returns"] - values).square().mean()
        loss = policy_loss + hp["vf_coef"] * value_loss - hp["ent_coef"] * entropy.mean()
        return loss, ratio, log_ratio

    def _update(self, rollout: Rollout) -> None:
        hp = self.hyperparameters
        advantages, returns = gae(rollout, self.gamma, hp["gae_lambda"])
        batch = self._flat_batch(rollout, advantages, returns)
        n = len(batch["advantages"])
        clip = self._base_clip * (1.0 - self._progress) if self._clip_decays else self._base_clip
        clip_vf, target_kl = hp["clip_range_vf"], hp["target_kl"]
        size = hp["batch_size"]
        kls: list[float] = []
        clipped: list[float] = []
        stopped = False
        for _ in range(hp["n_epochs"]):
            order = torch.randperm(n, generator=self._generator)
            for start in range(0, n, size):
                index = order[start : start + size]
                part = (
                    batch if size >= n else {k: v[index] for k, v in batch.items()}
                )  # one batch: no shuffle
                obs, actions = part["obs"], part["actions"]
                old_log_probs, adv = part["log_probs"], part["advantages"]
                if hp["normalize_advantage"] and len(index) > 1:
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                if self._hand is not None:  # the same loss, its gradient by hand (agents/ppo_grad.py)
                    loss, ratio, log_ratio = self._hand(
                        obs, actions, old_log_probs, adv, part["returns"], part["values"], clip, clip_vf,
                        hp["ent_coef"], hp["vf_coef"],
                    )  # fmt: skip
                else:
                    loss, ratio, log_ratio = self._loss(part, adv, clip, clip_vf)
                with torch.no_grad():
                    kl = float(((ratio - 1.0) - log_ratio).mean())
                    clipped.append(float(((ratio - 1.0).abs() > clip).float().mean()))
                kls.append(kl)
                if target_kl is not None and kl > 1.5 * target_kl:
                    stopped = True  # SB3: stop before stepping on a mini-batch that went too far
                    break
                self._check_loss(loss)
                if self._hand is None:
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                self._clip_and_step()
            if stopped:
                break
        self.last_update = {
            "approx_kl": float(np.mean(kls)) if kls else 0.0,
            "clip_fraction": float(np.mean(clipped)) if clipped else 0.0,
            "early_stop": float(stopped),
        }
