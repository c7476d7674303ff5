"""DQN (Mnih et al., 2015): Q-learning with a neural network, experience replay and a target network.

Each env step the agent acts epsilon-greedily on ``Q(s, .)`` and stores the transition in a replay
buffer. Every ``train_freq`` steps (after ``learning_starts``) it takes ``gradient_steps`` steps
of gradient descent on the (Huber) TD error of random mini-batches:

    target = r + discount * Q_target(s', argmax_a Q_online(s', a))   (Double DQN)
    target = r + discount * max_a Q_target(s', a)                    (plain DQN)

where ``discount`` is ``gamma ** n`` for an n-step return, 0 after a termination. The target
network is a copy of the online one, refreshed every ``target_update_interval`` steps (hard copy,
``tau=1``) or averaged in (Polyak, ``tau < 1``). Hyperparameters carry stable-baselines3's names,
so an rl-baselines3-zoo DQN entry works unchanged.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from torch import nn
from torch.nn import functional as F

from agents.base import Agent
from agents.errors import AgentError
from agents.replay_buffer import ReplayBuffer
from agents.schedules import LinearSchedule


class QNetwork(nn.Module):
    """Observations -> one value per action; ``dueling`` splits it into V(s) + A(s, a) - mean_a A."""

    def __init__(self, space: spaces.Space, n_actions: int, net_arch: list[int], dueling: bool) -> None:
        super().__init__()
        from lab.nets import MLP, encoder_for_space

        if isinstance(space, spaces.Box) and len(space.shape) == 1:
            self.encoder: nn.Module = nn.Flatten()
            features = space.shape[0]
        else:
            self.encoder = encoder_for_space(space, features=net_arch[0] if net_arch else 64)
            features = self.encoder.out_features
        hidden = (
            tuple(net_arch)
            if isinstance(space, spaces.Box) and len(space.shape) == 1
            else tuple(net_arch[1:])
        )
        self.dueling = dueling
        self.head = MLP(features, n_actions + (1 if dueling else 0), hidden=hidden)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = self.encoder(obs if obs.dtype != torch.float64 else obs.float())
        if x.dtype != torch.float32:
            x = x.float()
        out = self.head(x)
        if not self.dueling:
            return out
        value, advantage = out[:, :1], out[:, 1:]
        return value + advantage - advantage.mean(dim=1, keepdim=True)


def linear_schedule_value(spec: Any) -> tuple[float, bool]:
    """An SB3/rl-zoo learning rate: a float, or ``"lin_<x>"`` (from x to 0 over training)."""
    if isinstance(spec, str) and spec.startswith("lin_"):
        return float(spec[4:]), True
    return float(spec), False


class DQN(Agent):
    """Deep Q-learning on any Discrete-action env, from vectors, state numbers or pixels."""

    name: ClassVar[str] = "dqn"
    defaults: ClassVar[dict[str, Any]] = {
        "learning_rate": 1e-4,
        "buffer_size": 100_000,
        "learning_starts": 100,
        "batch_size": 32,
        "tau": 1.0,
        "train_freq": 4,
        "gradient_steps": 1,
        "target_update_interval": 10_000,
        "exploration_fraction": 0.1,
        "exploration_initial_eps": 1.0,
        "exploration_final_eps": 0.05,
        "max_grad_norm": 10.0,
        "policy_kwargs": {"net_arch": [64, 64]},
        "double_q": False,
        "dueling": False,
        "n_step": 1,
        "loss": "huber",
        "save_replay_buffer": False,
    }

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        if not isinstance(env.action_space, spaces.Discrete):
            raise AgentError(f"DQN needs a Discrete action space; this env has {env.action_space}")

    def _check_hyperparameter(self, name: str, value: Any) -> Any:
        positive_ints = ("buffer_size", "batch_size", "train_freq", "target_update_interval", "n_step")
        if name in positive_ints and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise AgentError(f"{name} must be a whole number >= 1; got {value!r}")
        if name in ("learning_starts", "gradient_steps") and (not isinstance(value, int) or value < 0):
            raise AgentError(f"{name} must be a whole number >= 0; got {value!r}")
        if name in ("tau", "exploration_fraction", "exploration_initial_eps", "exploration_final_eps"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise AgentError(f"{name} must be a number in [0, 1]; got {value!r}")
            return float(value)
        if name == "learning_rate":
            try:
                rate, _ = linear_schedule_value(value)
            except ValueError:
                rate = -1.0
            if not (math.isfinite(rate) and rate > 0):
                raise AgentError(f"learning_rate must be a positive number or 'lin_<number>'; got {value!r}")
        if name == "loss" and value not in ("huber", "mse"):
            raise AgentError(f"loss must be 'huber' or 'mse'; got {value!r}")
        if name == "policy_kwargs":
            if not isinstance(value, dict) or set(value) - {"net_arch"}:
                raise AgentError(
                    f"policy_kwargs takes net_arch only (e.g. dict(net_arch=[64, 64])); got {value!r}"
                )
            arch = value.get("net_arch", [64, 64])
            if not isinstance(arch, list) or not all(isinstance(w, int) and w > 0 for w in arch):
                raise AgentError(f"net_arch must be a list of layer widths; got {arch!r}")
            return {"net_arch": list(arch)}
        return value

    def _setup(self) -> None:
        hp = self.hyperparameters
        torch.manual_seed(self.seed)
        space = self.env.observation_space
        n_actions = int(self.env.action_space.n)
        arch = hp["policy_kwargs"]["net_arch"]
        self.q_net = QNetwork(space, n_actions, arch, hp["dueling"])
        self.target_net = QNetwork(space, n_actions, arch, hp["dueling"])
        self.target_net.load_state_dict(self.q_net.state_dict())
        self.target_net.requires_grad_(False)
        self._base_lr, self._lr_decays = linear_schedule_value(hp["learning_rate"])
        self._epsilon = LinearSchedule(
            hp["exploration_initial_eps"], hp["exploration_final_eps"], hp["exploration_fraction"]
        )
        self.optimizer = torch.optim.Adam(self.q_net.parameters(), lr=self._base_lr)
        shape = space.shape if space.shape else ()
        dtype = space.dtype if space.dtype is not None else np.int64
        self.buffer = ReplayBuffer(hp["buffer_size"], shape, dtype, hp["n_step"], self.gamma)
        self._sampler = np.random.Generator(np.random.PCG64(self.seed + 1))
        self._n_actions = n_actions
        self._action_start = int(self.env.action_space.start)

    # ----- acting -----

    def exploration_rate(self) -> float:
        """The current epsilon (see :meth:`exploration_rate_at`)."""
        return self.exploration_rate_at(self.num_timesteps)

    @torch.no_grad()
    def q_values(self, observation: Any) -> np.ndarray:
        """``Q(s, .)`` for one observation ``(n_actions,)`` or a batch ``(N, n_actions)``."""
        obs = np.asarray(observation)
        single = obs.shape == tuple(self.env.observation_space.shape or ())
        batch = torch.as_tensor(obs[None] if single else obs)
        values = self.q_net(batch).numpy()
        return values[0] if single else values

    def predict(
        self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ):
        values = self.q_values(observation)
        greedy = values.argmax(axis=-1) + self._action_start
        if not deterministic:
            explore = self._sampler.random(np.shape(greedy)) < self.exploration_rate()
            random_actions = (
                self._sampler.integers(0, self._n_actions, size=np.shape(greedy)) + self._action_start
            )
            greedy = np.where(explore, random_actions, greedy)
        return (int(greedy), None) if np.ndim(greedy) == 0 else (greedy, None)

    # ----- learning -----

    def _run_episode(self, observation: Any, max_steps: int) -> tuple[float, int, bool, bool]:
        hp = self.hyperparameters
        step = self.env.step
        draw = self._stream.draw
        episode_return = 0.0
        for i in range(max_steps):
            t = self.num_timesteps + i
            if draw() < self.exploration_rate_at(t):
                action = int(draw() * self._n_actions)
            else:
                action = int(self.q_values(observation).argmax())
            next_observation, reward, terminated, truncated, _ = step(action + self._action_start)
            episode_return += float(reward)
            self.buffer.add(observation, action, reward, next_observation, terminated, truncated)
            t += 1
            if t > hp["learning_starts"] and t % hp["train_freq"] == 0:
                self._train(hp["gradient_steps"], t)
            if t % hp["target_update_interval"] == 0:
                self._update_target()
            if terminated or truncated:
                return episode_return, i + 1, terminated, True
            observation = next_observation
        return episode_return, max_steps, False, False

    def exploration_rate_at(self, t: int) -> float:
        """SB3's linear epsilon: from initial to final over the first ``exploration_fraction`` of training."""
        return self._epsilon.value(t, self._total_timesteps)

    def _update_target(self) -> None:
        tau = self.hyperparameters["tau"]
        with torch.no_grad():
            for target, online in zip(self.target_net.parameters(), self.q_net.parameters(), strict=True):
                target.mul_(1.0 - tau).add_(online, alpha=tau)
            for target, online in zip(self.target_net.buffers(), self.q_net.buffers(), strict=True):
                target.copy_(online)

    def _train(self, gradient_steps: int, t: int) -> None:
        hp = self.hyperparameters
        if len(self.buffer) < hp["batch_size"]:
            return
        if self._lr_decays:  # rl-zoo's "lin_<x>": from x to 0 over training
            for group in self.optimizer.param_groups:
                group["lr"] = LinearSchedule(self._base_lr, 0.0, 1.0).value(t, self._total_timesteps)
        loss_fn = F.smooth_l1_loss if hp["loss"] == "huber" else F.mse_loss
        for _ in range(gradient_steps):
            obs, actions, rewards, next_obs, discounts = (
                torch.as_tensor(a) for a in self.buffer.sample(hp["batch_size"], self._sampler)
            )
            with torch.no_grad():
                next_target = self.target_net(next_obs)
                if hp["double_q"]:
                    best = self.q_net(next_obs).argmax(dim=1, keepdim=True)
                    next_value = next_target.gather(1, best).squeeze(1)
                else:
                    next_value = next_target.max(dim=1).values
                target = rewards + discounts * next_value
            predicted = self.q_net(obs).gather(1, actions.unsqueeze(1)).squeeze(1)
            loss = loss_fn(predicted, target)
            if not torch.isfinite(loss):
                raise AgentError(
                    f"non-finite loss ({loss.item()}) at step {t}: lower learning_rate or check the rewards "
                    "and observations (the network keeps its last good weights)"
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.q_net.parameters(), hp["max_grad_norm"])
            self.optimizer.step()

    # ----- checkpoints: weights, target and optimizer state as plain arrays -----

    def _checkpoint_arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"q.{k}": v.numpy().copy() for k, v in self.q_net.state_dict().items()}
        arrays.update({f"target.{k}": v.numpy().copy() for k, v in self.target_net.state_dict().items()})
        for i, state in self.optimizer.state_dict()["state"].items():
            for key, value in state.items():
                arrays[f"adam.{i}.{key}"] = np.asarray(value.numpy() if torch.is_tensor(value) else value)
        if self.hyperparameters["save_replay_buffer"]:
            b = self.buffer
            arrays.update({"buffer.obs": b.obs[: b.size], "buffer.next_obs": b.next_obs[: b.size],
                           "buffer.actions": b.actions[: b.size], "buffer.rewards": b.rewards[: b.size],
                           "buffer.discounts": b.discounts[: b.size]})  # fmt: skip
        return arrays

    def _restore_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        for prefix, net in (("q.", self.q_net), ("target.", self.target_net)):
            saved = {k[len(prefix) :]: torch.as_tensor(v) for k, v in arrays.items() if k.startswith(prefix)}
            expected = net.state_dict()
            if set(saved) != set(expected) or any(saved[k].shape != expected[k].shape for k in expected):
                raise AgentError(
                    "the checkpoint's network does not fit this DQN (another net_arch, dueling setting or "
                    "observation space); load it with the hyperparameters it was saved with"
                )
            net.load_state_dict(saved)
        state = self.optimizer.state_dict()
        params = state["param_groups"][0]["params"]
        state["state"] = {
            i: {key: torch.as_tensor(arrays[f"adam.{i}.{key}"]) for key in ("step", "exp_avg", "exp_avg_sq")}
            for i in params
            if f"adam.{i}.exp_avg" in arrays
        }
        self.optimizer.load_state_dict(state)
        if "buffer.obs" in arrays:
            b = self.buffer
            n = min(len(arrays["buffer.obs"]), b.capacity)
            b.obs[:n], b.next_obs[:n] = arrays["buffer.obs"][:n], arrays["buffer.next_obs"][:n]
            b.actions[:n], b.rewards[:n] = arrays["buffer.actions"][:n], arrays["buffer.rewards"][:n]
            b.discounts[:n] = arrays["buffer.discounts"][:n]
            b.size, b._next = n, n % b.capacity
