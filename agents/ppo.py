"""PPO (Schulman et al., 2017): several epochs of mini-batch updates on each rollout, each step's
policy change held in by the clipped surrogate objective::

    ratio = pi(a|s) / pi_old(a|s)
    L     = -mean(min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A))
            + vf_coef * mean((V(s) - R)^2) - ent_coef * mean(entropy)

with GAE advantages (normalised per mini-batch), optional value clipping around the old values
(``clip_range_vf``), gradient clipping, rl-zoo's ``lin_`` schedules for the learning rate and the
clip range, and an early stop of the epochs once the approximate KL divergence from the rollout's
policy passes ``1.5 * target_kl``. Hyperparameters are stable-baselines3's, defaults included.

``seeding="sb3"`` computes stable-baselines3's PPO exactly (:mod:`agents.ppo_sb3`): with the same
seed and hyperparameters a run repeats SB3's, observation for observation and weight for weight.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from agents.base import Callback, check_total_timesteps
from agents.errors import AgentError
from agents.on_policy import COMMON_DEFAULTS, OnPolicyAgent, Rollout, gae
from agents.policies import numpy_actor, plain_mlp_policy
from agents.ppo_grad import HandPPOStep
from agents.ppo_sb3 import SB3PPOReplica
from agents.sb3_random import check_seeding
from agents.schedules import zoo_schedule

if TYPE_CHECKING:
    from typing_extensions import Self

Minibatch = tuple[float, float, Callable[[], None]]  # (approximate KL, clip fraction, take the step)


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
        "seeding": "lab",
    }

    def _check_hyperparameter(self, name: str, value: Any) -> Any:
        if name == "seeding":
            return check_seeding(value)
        return super()._check_hyperparameter(name, value)

    def _make_optimizer(self) -> torch.optim.Optimizer:
        if self.hyperparameters["seeding"] == "sb3":  # SB3's Adam: default arithmetic, not the fused kernel
            return torch.optim.Adam(self.policy.parameters(), lr=self._base_lr, eps=1e-5)
        return super()._make_optimizer()

    def _setup(self) -> None:
        super()._setup()
        hp = self.hyperparameters
        self._base_clip, self._clip_decays = zoo_schedule(hp["clip_range"])
        self.last_update: dict[str, float] = {}
        self._hand = None
        self._sb3: SB3PPOReplica | None = None
        if hp["seeding"] == "sb3":
            unlike = [
                what
                for what, off in (
                    ("Discrete actions", not self._discrete),
                    ("an MLP policy on vector observations", not plain_mlp_policy(self.policy)),
                    ("no observation normalisation", hp["normalize_observations"]),
                    ("no reward normalisation", hp["normalize_reward"]),
                )
                if off
            ]
            if unlike:
                raise AgentError(
                    f"seeding='sb3' repeats SB3's MlpPolicy PPO, which needs {', '.join(unlike)}"
                )
            self._sb3 = SB3PPOReplica(self, self._rng_after_init)
            self._numpy_act = None
        elif HandPPOStep.supports(self.policy, self.optimizer):  # the whole mini-batch step in numpy
            self._hand = HandPPOStep(self.policy, self.optimizer)
            self._numpy_act = numpy_actor(self.policy)  # its weight views follow the moved parameters

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

    def learn(
        self, total_timesteps: int, callback: Callback | None = None, reset_num_timesteps: bool = True
    ) -> Self:
        if self._sb3 is None:
            return super().learn(total_timesteps, callback, reset_num_timesteps)
        total = check_total_timesteps(total_timesteps)  # SB3's learn loop, with its progress for lin_
        if reset_num_timesteps:
            self.num_timesteps = self.num_episodes = 0
            self._sb3.obs = None
        self._total_timesteps = total
        while self.num_timesteps < total:
            rollout = self._sb3.collect(callback)
            if rollout is None:
                break
            self._progress = float(self.num_timesteps) / float(total)
            self._update(rollout)
        return self

    def _restore_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        super()._restore_arrays(arrays)
        if self._hand is not None:  # the loaded optimizer state back into the numpy step's buffers
            self._hand.bind_optimizer_state()
        if self._sb3 is not None:
            self._sb3.flat.bind_optimizer_state()
            if "sb3.mt19937" in arrays:
                self._sb3.random.restore(arrays, "sb3")
            if "sb3.torch" in arrays:
                self._sb3.generator.set_state(torch.as_tensor(arrays["sb3.torch"], dtype=torch.uint8))

    def _checkpoint_arrays(self) -> dict[str, np.ndarray]:
        arrays = super()._checkpoint_arrays()
        if self._sb3 is not None:
            arrays.update(self._sb3.random.state_arrays("sb3"))
            arrays["sb3.torch"] = self._sb3.generator.get_state().numpy()
        return arrays

    def _autograd_minibatch(self, part: dict[str, torch.Tensor], clip: float) -> Minibatch:
        """The loss of one mini-batch through autograd: ``(approx. KL, clip fraction, step)``."""
        adv = part["advantages"]
        if self.hyperparameters["normalize_advantage"] and len(adv) > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        loss, ratio, log_ratio = self._loss(part, adv, clip, self.hyperparameters["clip_range_vf"])
        with torch.no_grad():
            kl = float(((ratio - 1.0) - log_ratio).mean())
            clip_fraction = float(((ratio - 1.0).abs() > clip).float().mean())

        def apply() -> None:
            self._check_loss(loss)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self._clip_and_step()

        return kl, clip_fraction, apply

    def _hand_minibatch(self, part: dict[str, np.ndarray], clip: float) -> Minibatch:
        """The same in numpy (``agents/ppo_grad.py``): the gradient now, the clipped Adam step on demand."""
        hp, hand = self.hyperparameters, self._hand
        assert hand is not None
        adv = part["advantages"]
        if hp["normalize_advantage"] and len(adv) > 1:
            centred = adv - np.add.reduce(adv) / len(adv)
            std = math.sqrt(float(np.dot(centred, centred)) / (len(adv) - 1))  # unbiased, as torch's std
            adv = centred / np.float32(std + 1e-8)
        loss, ratio, log_ratio = hand.gradient(
            part["obs"], part["actions"], part["log_probs"], adv, part["returns"], part["values"], clip,
            hp["clip_range_vf"], hp["ent_coef"], hp["vf_coef"],
        )  # fmt: skip
        n = len(ratio)
        kl = float(np.add.reduce((ratio - 1.0) - log_ratio)) / n
        clip_fraction = np.count_nonzero(np.abs(ratio - 1.0) > clip) / n

        def apply() -> None:
            self._check_loss(loss)
            hand.step(hp["max_grad_norm"])

        return kl, clip_fraction, apply

    def _update(self, rollout: Rollout) -> None:
        if self._sb3 is not None:
            self.last_update = self._sb3.update(rollout, 1.0 - self._progress)  # type: ignore[arg-type]
            return
        hp = self.hyperparameters
        advantages, returns = gae(rollout, self.gamma, hp["gae_lambda"])
        batch = self._flat_batch(rollout, advantages, returns)
        n = len(batch["advantages"])
        clip = self._base_clip * (1.0 - self._progress) if self._clip_decays else self._base_clip
        size = hp["batch_size"]
        minibatch_step = self._hand_minibatch if self._hand is not None else self._autograd_minibatch
        if self._hand is not None:
            batch = {k: v.numpy() for k, v in batch.items()}
        kls: list[float] = []
        clipped: list[float] = []
        stopped = False
        for _ in range(hp["n_epochs"]):
            order = torch.randperm(n, generator=self._generator)
            if self._hand is not None:
                order = order.numpy()
            for start in range(0, n, size):
                index = order[start : start + size]
                # one mini-batch of the whole rollout: no shuffle
                part = batch if size >= n else {k: v[index] for k, v in batch.items()}
                kl, clip_fraction, apply = minibatch_step(part, clip)
                kls.append(kl)
                clipped.append(clip_fraction)
                if hp["target_kl"] is not None and kl > 1.5 * hp["target_kl"]:
                    stopped = True  # SB3: stop before stepping on a mini-batch that went too far
                    break
                apply()
            if stopped:
                break
        self.last_update = {
            "approx_kl": float(np.mean(kls)) if kls else 0.0,
            "clip_fraction": float(np.mean(clipped)) if clipped else 0.0,
            "early_stop": float(stopped),
        }
