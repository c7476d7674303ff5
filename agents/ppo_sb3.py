"""PPO's ``seeding="sb3"``: stable-baselines3's PPO, computed as it computes it, so that the same seed
and hyperparameters repeat an SB3 run observation for observation and weight for weight.

What that takes, beyond SB3's random numbers (:mod:`agents.sb3_random`; action samples from torch's
generator as it stands after the initial weights): SB3's ``DummyVecEnv`` (``n_envs`` separate copies
of the env, each reset within the step that ends its episode, copy ``i`` seeded ``seed + i`` at its
first reset), a truncated episode's bootstrap added to its last reward, SB3's GAE in float32 numpy,
the rollout flattened copy by copy and shuffled with ``np.random.permutation``, and the loss built
from the same torch operations in the same order, so that autograd's gradients are SB3's; then
``clip_grad_norm_`` and the default Adam's arithmetic, on flat buffers. The speed comes from
leaving out the layers around those operations (modules, distribution objects, buffers, callbacks),
not from changing any of them.

For Discrete actions and a plain MLP policy (:func:`agents.policies.plain_mlp_policy`), without
observation or reward normalisation: the settings SB3's ``MlpPolicy`` has.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch
from torch.nn import functional as F

from agents.base import Callback
from agents.errors import AgentError
from agents.optim import FlatParameters, clip_coefficient, total_grad_norm
from agents.policies import mlp_tower
from agents.sb3_random import SB3Random
from agents.vector import non_finite, report_episodes

if TYPE_CHECKING:
    from agents.ppo import PPO


@dataclasses.dataclass
class SB3Rollout:
    """``(n_steps, n_envs)`` arrays as SB3's ``RolloutBuffer`` holds them, advantages included."""

    obs: np.ndarray
    actions: np.ndarray
    values: np.ndarray
    log_probs: np.ndarray
    advantages: np.ndarray
    returns: np.ndarray


class SB3PPOReplica:
    """Collection and updates for a :class:`~agents.ppo.PPO` with ``seeding="sb3"``."""

    def __init__(self, agent: PPO, torch_state: torch.Tensor) -> None:
        self.agent = agent
        policy = agent.policy
        self.generator = torch.Generator().manual_seed(0)
        self.generator.set_state(torch_state)  # where torch's generator stands after the initial weights
        self.random = SB3Random(agent.seed)
        pi, activation = mlp_tower(policy.pi_body, policy.action_head)  # type: ignore[misc]
        vf, _ = mlp_tower(policy.vf_body, policy.value_head)  # type: ignore[misc]
        self.pi, self.vf = pi, vf
        self.activation = torch.tanh if activation == "tanh" else torch.relu
        self.flat = FlatParameters(agent._trained, agent.optimizer)
        self.flat_grads = self.flat.grads.numpy()
        # the same weights outside autograd (views of the flat buffer), for acting and the hand-written step
        self.pi_values = [(w.detach(), b.detach()) for w, b in pi]
        self.vf_values = [(w.detach(), b.detach()) for w, b in vf]
        self.grad_views = [self.flat.grad(p) for p in agent._trained]
        for p, view in zip(agent._trained, self.grad_views, strict=True):
            p.grad = view  # autograd adds into these views: the flat buffer gets the gradients
        self.pi_grads = [(self.flat.grad(w), self.flat.grad(b)) for w, b in pi]
        self.vf_grads = [(self.flat.grad(w), self.flat.grad(b)) for w, b in vf]
        if activation == "tanh":
            self.activation_backward: Any = torch.ops.aten.tanh_backward
        else:
            self.activation_backward = lambda grad, out: torch.ops.aten.threshold_backward(grad, out, 0.0)
        self.envs: list[gym.Env] | None = None
        self.obs: np.ndarray | None = None  # None: the next collection starts with a reset

    # ----- the policy, as SB3's ActorCriticPolicy computes it -----

    def _inputs(self, layers: list[tuple[torch.Tensor, torch.Tensor]], x: torch.Tensor) -> list[torch.Tensor]:
        """The input of each layer of an MLP tower (its hidden layers' outputs after ``x``)."""
        inputs = [x]
        for w, b in layers[:-1]:
            inputs.append(self.activation(F.linear(inputs[-1], w, b)))
        return inputs

    def values(self, obs: np.ndarray) -> torch.Tensor:
        """``predict_values``: ``(N, 1)``."""
        return F.linear(self._inputs(self.vf_values, torch.as_tensor(obs).float())[-1], *self.vf_values[-1])

    def _act(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """SB3's ``policy(obs)``: sampled actions, values ``(N,)`` and log-probabilities, as numpy arrays.

        ``torch.multinomial`` draws one sample a row as ``argmax(probs / q)`` with ``q`` exponential
        draws from the generator (its fast path for one sample): the same draws and the same
        division here, without its checks' half-dozen calls. The log-probabilities are picked out
        of the logits in numpy (a gather computes nothing)."""
        x = torch.from_numpy(obs).float()
        latent_pi, latent_vf = self._inputs(self.pi_values, x)[-1], self._inputs(self.vf_values, x)[-1]
        values = F.linear(latent_vf, *self.vf_values[-1])
        logits = _log_softmax(F.linear(latent_pi, *self.pi_values[-1]).numpy())  # torch's Categorical
        probs = F.softmax(torch.from_numpy(logits), dim=-1).numpy()
        exponential = torch.empty(probs.shape).exponential_(generator=self.generator).numpy()
        if not np.isfinite(probs).all():
            raise AgentError(
                f"non-finite action probabilities at step {self.agent.num_timesteps + 1}: "
                "the policy's weights are not finite"
            )
        actions = (probs / exponential).argmax(axis=1)
        return actions, values.numpy().ravel(), logits[np.arange(len(actions)), actions]

    # ----- collection, as SB3's collect_rollouts over a DummyVecEnv -----

    def _reset(self) -> np.ndarray:
        agent = self.agent
        n = agent.hyperparameters["n_envs"]
        if self.envs is None:
            spec = agent.env.spec
            assert spec is not None
            self.envs = [gym.make(spec) for _ in range(n)]
            seeds: list[int | None] = [agent.seed + i for i in range(n)]
        else:
            seeds = [None] * n
        self.obs = np.stack([env.reset(seed=s)[0] for env, s in zip(self.envs, seeds, strict=True)])
        self.episode_starts = np.ones(n, dtype=bool)
        self.episode_return = np.zeros(n)
        self.episode_length = np.zeros(n, dtype=np.int64)
        return self.obs

    def collect(self, callback: Callback | None) -> SB3Rollout | None:
        """One rollout of ``n_steps`` steps of every copy; ``None`` when the callback said stop."""
        agent = self.agent
        hp = agent.hyperparameters
        if self.obs is None:
            self._reset()
        assert self.envs is not None and self.obs is not None
        n, n_steps, gamma = len(self.envs), hp["n_steps"], agent.gamma
        shape = (n_steps, n)
        record = {k: np.zeros(shape, np.float32) for k in ("rewards", "starts", "values", "log_probs")}
        obs_record = np.zeros((n_steps, *self.obs.shape), self.obs.dtype)
        actions_record = np.zeros(shape, np.int64)
        dones, start = np.zeros(n, dtype=bool), agent._action_start
        for t in range(n_steps):
            actions, values, log_probs = self._act(self.obs)
            # DummyVecEnv.step_wait: each copy steps, and resets at once when its episode ends
            results = [env.step(action) for env, action in zip(self.envs, actions + start, strict=True)]
            rewards = np.array([result[1] for result in results], np.float32)
            terminations = np.array([result[2] for result in results], bool)
            truncations = np.array([result[3] for result in results], bool)
            dones = terminations | truncations
            next_obs_list = [result[0] for result in results]
            final_obs = {}
            for i in np.flatnonzero(dones):
                final_obs[i] = next_obs_list[i]
                next_obs_list[i] = self.envs[i].reset()[0]
            next_obs = np.array(next_obs_list, self.obs.dtype)
            self._check_finite(next_obs, rewards, final_obs)
            self.episode_return += rewards
            self.episode_length += 1
            for i, obs_i in final_obs.items():
                if truncations[i] and not terminations[i]:  # SB3: the bootstrap joins the last reward
                    rewards[i] += gamma * self.values(np.asarray(obs_i)[None])[0]
            agent.num_timesteps += n
            if self._report(dones, terminations, callback):
                return None
            obs_record[t], actions_record[t] = self.obs, actions
            record["rewards"][t], record["starts"][t] = rewards, self.episode_starts
            record["values"][t], record["log_probs"][t] = values, log_probs
            self.obs, self.episode_starts = next_obs, dones.copy()
        last_values = self.values(self.obs).numpy().flatten()
        advantages = sb3_gae(record, last_values, dones, gamma, hp["gae_lambda"])
        return SB3Rollout(
            obs_record,
            actions_record,
            record["values"],
            record["log_probs"],
            advantages,
            advantages + record["values"],
        )

    def _check_finite(self, next_obs: np.ndarray, rewards: np.ndarray, final_obs: dict[int, Any]) -> None:
        """Stop at a non-finite reward or observation (a finished episode's last one included)."""
        finite = np.isfinite(rewards).all() and np.isfinite(next_obs).all()
        if finite and all(np.isfinite(obs).all() for obs in final_obs.values()):
            return
        for i in range(len(rewards)):
            obs_i = final_obs.get(i, next_obs[i])
            if not (np.isfinite(rewards[i]) and np.isfinite(obs_i).all()):
                what = "reward" if not np.isfinite(rewards[i]) else "observation"
                raise non_finite(what, self.agent.num_timesteps + i + 1, i, int(self.episode_length[i]) + 1)

    def _report(self, dones: np.ndarray, terminations: np.ndarray, callback: Callback | None) -> bool:
        """Count and report finished episodes, as :class:`agents.vector.VectorSteps` does."""
        if report_episodes(
            self.agent, dones, terminations, self.episode_return, self.episode_length, callback
        ):
            self.obs = None  # the next collection starts with a reset
            return True
        self.episode_return[dones] = 0.0
        self.episode_length[dones] = 0
        return False

    # ----- the update, as SB3's PPO.train -----

    def update(self, rollout: SB3Rollout, progress_remaining: float) -> dict[str, float]:
        """SB3's ``PPO.train`` on one rollout: the update's approximate KL and clip fraction, and
        whether the target KL stopped it."""
        agent = self.agent
        hp = agent.hyperparameters
        lr = agent._base_lr * progress_remaining if agent._lr_decays else agent._base_lr
        agent.optimizer.param_groups[0]["lr"] = lr
        clip = agent._base_clip * progress_remaining if agent._clip_decays else agent._base_clip
        clip_vf, size = hp["clip_range_vf"], hp["batch_size"]
        hand = hp["ent_coef"] == 0.0  # the entropy term's gradient is then exactly zero: written out
        fields = {field.name: getattr(rollout, field.name) for field in dataclasses.fields(rollout)}
        if clip_vf is None:
            del fields["values"]  # the old values only serve value clipping
        flat = {k: _swap_and_flatten(v) for k, v in fields.items()}
        n = len(flat["advantages"])
        target_kl, stopped = hp["target_kl"], False
        kls, ratios = [], []  # per mini-batch: approximate KL (SB3's), and what the clip fraction needs
        with torch.set_grad_enabled(not hand):
            for _ in range(hp["n_epochs"]):
                order = self.random.numpy.permutation(n)
                for start in range(0, n, size):
                    part = {k: v[order[start : start + size]] for k, v in flat.items()}
                    if hand:
                        f: _HandForward | _Forward = self._hand_forward(part, clip, clip_vf)
                        ratio, log_ratio = f.ratio, f.log_ratio
                    else:
                        f = self._forward({k: torch.from_numpy(v) for k, v in part.items()}, clip, clip_vf)
                        ratio, log_ratio = f.ratio.detach().numpy(), f.log_ratio.detach().numpy()
                    ratios.append(ratio)
                    if target_kl is None:  # the KL only informs last_update: worked out after the loop
                        kls.append(log_ratio)
                    else:  # SB3's mean((ratio - 1) - log_ratio): torch's sum, the rest exactly rounded
                        kls.append(float(torch.mean(torch.from_numpy((ratio - np.float32(1.0)) - log_ratio))))
                        if kls[-1] > 1.5 * target_kl:
                            stopped = True
                            break
                    agent._check_loss(f.loss)
                    if isinstance(f, _HandForward):  # writes every gradient
                        self._hand_backward(f, clip, clip_vf)
                    else:
                        self.flat.grads.zero_()
                        f.loss.backward()
                    self._clip_gradients(hp["max_grad_norm"])
                    self.flat.adam_step("torch")
                if stopped:
                    break
        ratio = np.concatenate(ratios)  # over the whole update (the mini-batch means' mean when equal-sized)
        kl = float(np.mean((ratio - 1) - np.concatenate(kls))) if target_kl is None else float(np.mean(kls))
        clip_fraction = float(np.mean(np.abs(ratio - 1) > clip))
        return {"approx_kl": kl, "clip_fraction": clip_fraction, "early_stop": float(stopped)}

    def _clip_gradients(self, max_norm: float) -> None:
        """``clip_grad_norm_`` on the flat gradient buffer."""
        self.flat_grads *= clip_coefficient(total_grad_norm(self.grad_views), max_norm)

    def _forward(self, part: dict[str, torch.Tensor], clip: float, clip_vf: float | None) -> _Forward:
        """SB3's loss on one mini-batch, entropy bonus included, in torch for autograd."""
        hp = self.agent.hyperparameters
        obs = part["obs"].float()
        pi_x, vf_x = self._inputs(self.pi, obs), self._inputs(self.vf, obs)
        raw = F.linear(pi_x[-1], *self.pi[-1])
        logits = raw - raw.logsumexp(dim=-1, keepdim=True)  # torch's Categorical
        log_prob = _gather(logits, part["actions"].long().flatten())
        values = F.linear(vf_x[-1], *self.vf[-1])
        floor = torch.finfo(logits.dtype).min
        entropies = -(torch.clamp(logits, min=floor) * F.softmax(logits, dim=-1)).sum(-1)
        values = values.flatten()
        advantages = part["advantages"]
        if hp["normalize_advantage"] and len(advantages) > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        log_ratio = log_prob - part["log_probs"]
        ratio = torch.exp(log_ratio)
        loss_1 = advantages * ratio
        loss_2 = advantages * torch.clamp(ratio, 1 - clip, 1 + clip)
        policy_loss = -torch.min(loss_1, loss_2).mean()
        values_pred = values
        if clip_vf is not None:
            values_pred = part["values"] + torch.clamp(values - part["values"], -clip_vf, clip_vf)
        value_loss = F.mse_loss(part["returns"], values_pred)
        loss = policy_loss + hp["ent_coef"] * -torch.mean(entropies) + hp["vf_coef"] * value_loss
        return _Forward(log_ratio, ratio, loss)

    def _hand_forward(self, part: dict[str, np.ndarray], clip: float, clip_vf: float | None) -> _HandForward:
        """:meth:`_forward` without the entropy term (ent_coef 0), keeping what :meth:`_hand_backward`
        reads. torch computes what it rounds its own way (products of matrices, tanh, exp, log,
        sums); numpy the exactly rounded per-sample arithmetic, which then gives torch's numbers at a
        fraction of a torch call's cost on a few hundred of them. The loss serves only the finiteness
        check: numpy's sums there may round otherwise than SB3's."""
        hp = self.agent.hyperparameters
        n = len(part["advantages"])
        obs = torch.from_numpy(part["obs"]).float()
        pi_x, vf_x = self._inputs(self.pi_values, obs), self._inputs(self.vf_values, obs)
        logits = _log_softmax(F.linear(pi_x[-1], *self.pi_values[-1]).numpy())  # torch's Categorical
        actions = part["actions"].reshape(n)
        log_prob = logits[np.arange(n), actions]
        values = F.linear(vf_x[-1], *self.vf_values[-1]).numpy()[:, 0]
        advantages = part["advantages"]
        if hp["normalize_advantage"] and n > 1:
            torch_advantages = torch.from_numpy(advantages)
            mean, std = torch_advantages.mean().numpy(), torch_advantages.std().numpy()
            advantages = (advantages - mean) / (std + np.float32(1e-8))
        log_ratio = log_prob - part["log_probs"]
        ratio = torch.exp(torch.from_numpy(log_ratio)).numpy()
        loss_1 = advantages * ratio
        loss_2 = advantages * _clamp(ratio, 1 - clip, 1 + clip)
        values_pred = values
        if clip_vf is not None:
            old = part["values"]
            values_pred = old + _clamp(values - old, -clip_vf, clip_vf)
        error = part["returns"] - values_pred
        policy_loss = -float(np.add.reduce(np.minimum(loss_1, loss_2))) / n
        loss = policy_loss + hp["vf_coef"] * float(np.dot(error, error)) / n
        return _HandForward(
            log_ratio, ratio, loss, pi_x, vf_x, logits, actions, advantages, loss_1, loss_2, values,
            values_pred, part,
        )  # fmt: skip

    def _hand_backward(self, f: _HandForward, clip: float, clip_vf: float | None) -> None:
        """Autograd's backward pass of :meth:`_forward` with ent_coef 0, operation for operation, so the
        same numbers: each line is the formula torch's derivatives.yaml gives for a forward
        operation, and a tensor with two gradients adds them (in either order: the same sum). As in
        :meth:`_hand_forward`, numpy does the exactly rounded per-sample arithmetic, and torch the
        rest (note that torch's fused kernels, such as ``tanh_backward``'s ``g * (1 - y * y)``,
        round once where numpy would round twice)."""
        n = len(f.ratio)
        adv, ratio, loss_1, loss_2 = f.advantages, f.ratio, f.loss_1, f.loss_2
        # loss = policy_loss + 0 * entropy_loss + vf_coef * value_loss; policy_loss = -mean(min(l1, l2))
        grad_min = np.float32(-1.0) / np.float32(n)  # mean's backward: the gradient over n
        half = grad_min / np.float32(2.0)  # minimum's backward halves the gradient on ties
        tie = loss_1 == loss_2
        grad_1 = np.where(tie, half, grad_min)
        grad_1[loss_1 > loss_2] = 0.0
        grad_2 = np.where(tie, half, grad_min)
        grad_2[loss_1 < loss_2] = 0.0
        inside = (ratio >= np.float32(1 - clip)) & (ratio <= np.float32(1 + clip))  # the clamp passes these
        grad_ratio = grad_1 * adv + np.where(inside, grad_2 * adv, np.float32(0.0))
        grad_log_prob = grad_ratio * ratio  # through exp
        # log_prob gathers from logits = raw - logsumexp(raw): scatter-add into zeros, then both paths
        picked = np.float32(0.0) + grad_log_prob
        grad_logits = np.zeros(f.logits.shape, np.float32)
        grad_logits[np.arange(n), f.actions] = picked
        grad_lse = -picked  # the row sum of -grad_logits: one entry, the others zero
        softmax = torch.exp(torch.from_numpy(f.logits)).numpy()  # logsumexp's backward: exp(raw - lse)
        grad_raw = torch.from_numpy(grad_logits + grad_lse[:, None] * softmax)
        # mse_loss(returns, values_pred)'s backward, times vf_coef: 2/n * (values_pred - returns) * vf_coef
        vf_coef = np.float32(self.agent.hyperparameters["vf_coef"])
        grad_values = np.float32(2.0 / n) * (f.values_pred - f.part["returns"]) * vf_coef
        if clip_vf is not None:
            d = f.values - f.part["values"]
            passes = (d >= np.float32(-clip_vf)) & (d <= np.float32(clip_vf))
            grad_values = np.where(passes, grad_values, np.float32(0.0))
        for layers, inputs, grad, grads in (
            (self.pi_values, f.pi_x, grad_raw, self.pi_grads),
            (self.vf_values, f.vf_x, torch.from_numpy(grad_values.reshape(n, 1)), self.vf_grads),
        ):
            for layer in range(len(layers) - 1, -1, -1):
                w_grad, b_grad = grads[layer]
                below = inputs[layer]
                w_grad.copy_(grad.t().mm(below))  # as autograd; mm(out=) into the buffer can round otherwise
                torch.sum(grad, 0, out=b_grad)
                if layer:
                    grad = self.activation_backward(grad.mm(layers[layer][0]), below)


@dataclasses.dataclass
class _Forward:
    """One mini-batch's loss through autograd, and its ratios."""

    log_ratio: torch.Tensor
    ratio: torch.Tensor
    loss: torch.Tensor


@dataclasses.dataclass
class _HandForward:
    """One mini-batch's loss (ent_coef 0) and what the hand-written backward pass reads of it."""

    log_ratio: np.ndarray
    ratio: np.ndarray
    loss: float
    pi_x: list[torch.Tensor]
    vf_x: list[torch.Tensor]
    logits: np.ndarray
    actions: np.ndarray
    advantages: np.ndarray
    loss_1: np.ndarray
    loss_2: np.ndarray
    values: np.ndarray
    values_pred: np.ndarray
    part: dict[str, np.ndarray]


def _log_softmax(raw: np.ndarray) -> np.ndarray:
    """``raw - raw.logsumexp(-1, keepdim=True)``, as torch computes it: ``amax`` (infinities taken as
    0), then ``exp`` of the differences, their sum, and ``log``, in torch (which rounds these its own
    way), the subtractions and the addition (exactly rounded) in numpy, which costs less for a few
    rows than torch's half-dozen calls. (The maximum is taken column by column: numpy's reduction
    along a short last axis is slow.)"""
    maxes = functools.reduce(np.maximum, [raw[..., j] for j in range(raw.shape[-1])])[..., None]
    maxes = np.where(np.isinf(maxes), np.float32(0.0), maxes)  # a new array: one column is a view of raw
    exp = torch.exp(torch.from_numpy(raw - maxes))
    return raw - (torch.log(exp.sum(-1, keepdim=True)).numpy() + maxes)


def _clamp(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """``torch.clamp(x, low, high)`` of a float32 array (bounds rounded to float32, NaN kept); for a
    few hundred numbers ``np.clip``'s argument handling costs more than these two passes."""
    return np.minimum(np.maximum(x, np.float32(low)), np.float32(high))


def _gather(log_pmf: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """torch's ``Categorical.log_prob`` (its ``broadcast_tensors`` of equal shapes changes nothing)."""
    return log_pmf.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)


def sb3_gae(
    record: dict[str, np.ndarray], last_values: np.ndarray, dones: np.ndarray, gamma: float, gae_lambda: float
) -> np.ndarray:
    """``RolloutBuffer.compute_returns_and_advantage``: the advantages, in its float32 arithmetic."""
    rewards, starts, values = record["rewards"], record["starts"], record["values"]
    advantages = np.zeros_like(rewards)
    last_gae_lam: Any = 0
    for step in reversed(range(len(rewards))):
        if step == len(rewards) - 1:
            next_non_terminal = 1.0 - dones.astype(np.float32)
            next_values = last_values
        else:
            next_non_terminal = 1.0 - starts[step + 1]
            next_values = values[step + 1]
        delta = rewards[step] + gamma * next_values * next_non_terminal - values[step]
        last_gae_lam = delta + gamma * gae_lambda * next_non_terminal * last_gae_lam
        advantages[step] = last_gae_lam
    return advantages


def _swap_and_flatten(array: np.ndarray) -> np.ndarray:
    """``(n_steps, n_envs, ...)`` -> ``(n_envs * n_steps, ...)``, copy by copy, as SB3's buffer."""
    return array.swapaxes(0, 1).reshape(array.shape[0] * array.shape[1], *array.shape[2:])
