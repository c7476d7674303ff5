"""PPO (Schulman et al., 2017): several epochs of mini-batch updates on each rollout, each step's
policy change held in by the clipped surrogate objective::

    ratio = pi(a|s) / pi_old(a|s)
    L     = -mean(min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A))
            + vf_coef * mean((V(s) - R)^2) - ent_coef * mean(entropy)

with GAE advantages (normalised per mini-batch), optional value clipping around the old values
(``clip_range_vf``), gradient clipping, schedules (rl-zoo's ``lin_<x>`` among them) for the
learning rate and the clip range, and an early stop of the epochs once the approximate KL divergence
from the rollout's policy passes ``1.5 * target_kl``. Hyperparameters (:class:`PPOConfig`) are
stable-baselines3's, defaults included, and
one mini-batch step computes what SB3's ``PPO.train`` computes (``tests/test_policy_gradient.py``
checks the loss, the gradients and the step against it).

An update reads as CleanRL's ``ppo.py``: GAE over the rollout, then per epoch a permutation of the
samples, and per mini-batch the loss, ``backward()``, ``clip_grad_norm_`` and ``optimizer.step()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from agents.common.config import AgentConfig, count, fraction, positive, rate
from agents.common.on_policy import OnPolicyAgent, OnPolicyConfig
from agents.common.rollout import Rollout, gae
from agents.common.schedules import Schedule


@dataclass(frozen=True)
class PPOConfig(OnPolicyConfig):
    n_steps: int = count(2048)
    batch_size: int = count(64)
    n_epochs: int = count(10)
    gae_lambda: float = fraction(0.95)
    clip_range: Schedule = rate(0.2, "clip_range")
    clip_range_vf: Schedule | None = rate(None, "clip_range_vf", nullable=True)
    target_kl: float | None = positive(None, nullable=True)


class PPO(OnPolicyAgent):
    name: ClassVar[str] = "ppo"
    config_class: ClassVar[type[AgentConfig]] = PPOConfig
    config: PPOConfig

    def _setup(self) -> None:
        super()._setup()
        self._bind_clip_ranges(None)

    def _start_learning(self, total_timesteps: int) -> None:
        super()._start_learning(total_timesteps)
        self._bind_clip_ranges(total_timesteps)

    def _bind_clip_ranges(self, total_timesteps: int | None) -> None:
        vf = self.config.clip_range_vf
        self._clip_range_at = self.config.clip_range.bind(total_timesteps)
        self._clip_range_vf_at = None if vf is None else vf.bind(total_timesteps)

    def loss(
        self, part: dict[str, torch.Tensor], bounds: tuple[float, ...] | torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """PPO's loss on one mini-batch, as SB3's ``train`` computes it: ``(loss, ratio, log_ratio,
        terms)``, ``terms`` the detached policy, value and entropy losses under SB3's log names.
        ``bounds`` holds ``1 - clip_range``, ``1 + clip_range`` and, with value clipping,
        ``clip_range_vf``: numbers, or a tensor for a compiled loss, which then takes scheduled clip
        ranges as an input instead of compiling again for each value."""
        config, policy = self.config, self.policy
        adv = part["advantages"]
        if config.normalize_advantage and len(adv) > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        params, log_std, values = policy(part["obs"])
        log_probs, entropy = policy.log_prob_entropy(params, log_std, part["actions"], part.get("masks"))
        log_ratio = log_probs - part["log_probs"]
        ratio = log_ratio.exp()
        policy_loss = -torch.min(adv * ratio, adv * ratio.clamp(bounds[0], bounds[1])).mean()
        if config.clip_range_vf is not None:  # the new value may move at most clip_range_vf from the old
            old = part["values"]
            values = old + (values - old).clamp(-bounds[2], bounds[2])
        value_loss = (part["returns"] - values).square().mean()
        entropy_loss = -entropy.mean()
        loss = policy_loss + config.vf_coef * value_loss
        if config.ent_coef:  # a zero coefficient's term would only lengthen the backward pass
            loss = loss + config.ent_coef * entropy_loss
        terms = {
            "train/policy_gradient_loss": policy_loss.detach(),
            "train/value_loss": value_loss.detach(),
            "train/entropy_loss": entropy_loss.detach(),
        }
        return loss, ratio.detach(), log_ratio.detach(), terms

    def _update(self, rollout: Rollout) -> None:
        config = self.config
        advantages, returns = gae(rollout, self.gamma, config.gae_lambda)
        batch = self._flat_batch(rollout, advantages, returns)
        n, size = len(batch["advantages"]), config.batch_size
        if n == 0:  # every step was an env's reset step: nothing to learn from
            return
        clip = self._clip_range_at(self.num_timesteps)  # after collecting, as the learning rate
        bounds: tuple[float, ...] | torch.Tensor = (1.0 - clip, 1.0 + clip)
        clips = {"train/clip_range": clip}
        if self._clip_range_vf_at is not None:
            clips["train/clip_range_vf"] = self._clip_range_vf_at(self.num_timesteps)
            bounds = (*bounds, clips["train/clip_range_vf"])
        if config.compile:  # the same float32 values: clamp rounds a number to the tensor's type
            bounds = torch.tensor(bounds)
        # Per mini-batch figures stay tensors, computed and read once at the end: SB3's figures are the
        # means over the mini-batches (the approximate KL over the last epoch's: how far the update went)
        terms: list[dict[str, torch.Tensor]] = []
        ratios: list[torch.Tensor] = []
        log_ratios: list[torch.Tensor] = []
        stopped, epochs, last_epoch = False, 0, 0
        for _epoch in range(config.n_epochs):
            order = torch.randperm(n, generator=self._generator)
            epochs, last_epoch = epochs + 1, len(ratios)
            for start in range(0, n, size):
                # one mini-batch covering the rollout needs no gather (its order changes nothing);
                # index_select is torch's gather kernel, 3-9x faster on CPU than v[index] here
                index = order[start : start + size]
                part = batch if size >= n else {k: v.index_select(0, index) for k, v in batch.items()}
                loss, ratio, log_ratio, term = self._loss(part, bounds)
                term["train/loss"] = loss.detach()
                terms.append(term)
                ratios.append(ratio)
                log_ratios.append(log_ratio)
                if (
                    config.target_kl is not None
                    and float(kl_terms(ratio, log_ratio).mean()) > 1.5 * config.target_kl
                ):
                    stopped = True  # as SB3: stop before stepping on a mini-batch that went too far
                    break
                term["train/grad_norm"] = self._step(loss)
            if stopped:
                break
        keys = dict.fromkeys(key for term in terms for key in term)  # no grad_norm if it stopped at once
        figures = {key: torch.stack([t[key] for t in terms if key in t]).mean() for key in keys}
        lengths, ratio, log_ratio = [len(r) for r in ratios], torch.cat(ratios), torch.cat(log_ratios)
        figures["train/clip_fraction"] = mean_of_means(((ratio - 1.0).abs() > clip).float(), lengths)
        last = sum(lengths[last_epoch:])
        figures["train/approx_kl"] = mean_of_means(
            kl_terms(ratio[-last:], log_ratio[-last:]), lengths[last_epoch:]
        )
        figures["train/early_stop"] = torch.tensor(float(stopped))
        self._report(batch, figures, epochs, clips)


def kl_terms(ratio: torch.Tensor, log_ratio: torch.Tensor) -> torch.Tensor:
    """Per sample, ``(ratio - 1) - log(ratio)``: their mean estimates KL(pi_old || pi) without bias
    (Schulman's "k3"), as SB3's ``approx_kl``."""
    return (ratio - 1.0) - log_ratio


def mean_of_means(values: torch.Tensor, lengths: list[int]) -> torch.Tensor:
    """The mean of the means of the consecutive parts of ``values`` that ``lengths`` give, as SB3
    averages its per-mini-batch figures, in one reduction: each value weighs 1 / (its part's length
    x the number of parts), which is the plain mean when the parts are of one length."""
    if len(set(lengths)) == 1:
        return values.mean()
    shares = torch.tensor([1.0 / (k * len(lengths)) for k in lengths]).repeat_interleave(
        torch.tensor(lengths)
    )
    return (values * shares).sum()
