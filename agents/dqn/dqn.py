"""DQN (Mnih et al., 2015): Q-learning with a neural network, experience replay and a target network.

Each env step the agent acts epsilon-greedily on ``Q(s, .)`` and stores the transition in a replay
buffer (:mod:`agents.common.replay_buffer`: n-step returns, uniform or prioritized). Every ``train_freq``
steps (after ``learning_starts``) it takes ``gradient_steps`` steps on mini-batches drawn from it:

    target = r + discount * max_a Q_target(s', a)                    (plain DQN)
    target = r + discount * Q_target(s', argmax_a Q_online(s', a))   (Double DQN)
    loss   = mean(weight * huber(Q_online(s, a) - target))           (weight 1 unless prioritized)

then clips the gradient norm to ``max_grad_norm`` and takes an Adam step. ``discount`` is
``gamma ** n`` for an n-step return, 0 after a termination. The target network is refreshed every
``target_update_interval`` steps: copied (``tau=1``) or averaged in (Polyak, ``tau < 1``).
Hyperparameters (:class:`DQNConfig`) are stable-baselines3's (``tests/test_dqn.py`` checks a gradient
step against SB3's). For speed, greedy actions run the MLP in numpy (:meth:`QNetwork.numpy_greedy`)
and a burst draws all its mini-batches and their ``Q_target(s', .)`` at once. Each burst reports its
mean TD loss, gradient norm and ``Q(s, a)``; checkpoints hold the replay buffer by default, so a
resumed run repeats the uninterrupted one exactly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from torch.nn import functional as F

from agents.common.arguments import Callback, check_observation
from agents.common.base import Agent
from agents.common.config import AgentConfig
from agents.common.errors import AgentError
from agents.common.networks import (
    check_finite_step,
    clip_grad_norm,
    compiled,
    make_adam,
    network_arrays,
    restore_networks,
)
from agents.common.random_stream import pcg_state_array, set_pcg_state
from agents.common.replay_buffer import PrioritizedReplayBuffer, ReplayBuffer
from agents.common.vector import VectorSteps, begin_vector_learning, given_vector_env
from agents.dqn.config import DQNConfig
from agents.dqn.q_network import QNetwork
from lab.nets.training_choices import flush_denormals, set_learning_rate

if TYPE_CHECKING:
    from typing_extensions import Self


class DQN(Agent):
    """Deep Q-learning on any Discrete-action env, from vectors, state numbers or pixels."""

    name: ClassVar[str] = "dqn"
    config_class: ClassVar[type[AgentConfig]] = DQNConfig
    config: DQNConfig

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        if not isinstance(env.action_space, spaces.Discrete):
            raise AgentError(f"DQN needs a Discrete action space; this env has {env.action_space}")

    def _setup(self) -> None:
        config = self.config
        space, n_actions = self.env.observation_space, int(self.env.action_space.n)
        net_arch = config.policy_kwargs["net_arch"]
        with torch.random.fork_rng(devices=[]):  # seeded initial weights, torch's global RNG untouched
            torch.manual_seed(self.seed)
            try:
                self.q_net = QNetwork(space, n_actions, net_arch, config.dueling)
            except ValueError as exc:
                raise AgentError(f"DQN cannot read this env's observations: {exc}") from None
            self.target_net = QNetwork(space, n_actions, net_arch, config.dueling)
        self.target_net.load_state_dict(self.q_net.state_dict())
        self.target_net.requires_grad_(False)
        self._params = list(self.q_net.parameters())
        # What the target update (every few steps) pairs up, listed once: modules list their tensors slowly
        self._target_params = list(zip(self.target_net.parameters(), self._params, strict=True))
        self._target_buffers = list(zip(self.target_net.buffers(), self.q_net.buffers(), strict=True))
        self.optimizer = make_adam(self._params, config.learning_rate.value(0))
        self._td_loss = compiled(self.td_loss, config.compile)
        self._learning_rate_at = config.learning_rate.bind(None)
        self._numpy_greedy = self.q_net.numpy_greedy()  # one or a batch; None: through torch
        self._epsilon_at = config.exploration.bind(None)
        shape, dtype = space.shape or (), space.dtype if space.dtype is not None else np.int64
        layout = (config.buffer_size, shape, dtype, config.n_steps, self.gamma)
        if config.prioritized:
            self.buffer: ReplayBuffer = PrioritizedReplayBuffer(*layout, alpha=config.per_alpha)
        else:
            self.buffer = ReplayBuffer(*layout)
        self._sampler = np.random.Generator(np.random.PCG64(self.seed + 1))  # mini-batches, n_envs > 1
        self._steps: VectorSteps | None = None  # n_envs > 1 or a VectorEnv: made on the first learn()
        if config.n_steps > 1 and given_vector_env(self.env) is not None:
            raise AgentError(
                "n-step returns (n_steps > 1) need one env: the buffer folds in one stream of steps "
                "(pass the env, not a VectorEnv)"
            )
        self._n_actions, self._action_start = n_actions, int(self.env.action_space.start)
        self._bootstrap_timeouts = config.replay_buffer_kwargs.get("handle_timeout_termination", True)

    # ----- acting -----

    def exploration_rate_at(self, t: int) -> float:
        """SB3's linear epsilon: from initial to final over the first ``exploration_fraction`` of training."""
        return self.config.exploration.value(t, self._total_timesteps)

    @torch.inference_mode()
    def q_values(self, observation: Any) -> np.ndarray:
        """``Q(s, .)`` for one observation ``(n_actions,)`` or a batch ``(N, n_actions)``."""
        obs = np.asarray(observation)
        single = check_observation(self.env.observation_space, obs)
        values = self.q_net(torch.as_tensor(obs[None] if single else obs)).numpy()
        return values[0] if single else values

    def _greedy_actions(self, observation: Any) -> Any:
        """``argmax_a Q(s, a)`` for one observation (an int) or a batch: the numpy forward pass where
        it applies (several times cheaper than torch's for a few rows), else torch's."""
        if self._numpy_greedy is not None:
            return self._numpy_greedy(observation)
        greedy = self.q_values(observation).argmax(axis=-1)
        return int(greedy) if greedy.ndim == 0 else greedy

    def predict(
        self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ) -> tuple[np.ndarray | int, None]:
        check_observation(self.env.observation_space, observation)
        greedy = self._greedy_actions(observation) + self._action_start
        if not deterministic:
            explore = self._sampler.random(np.shape(greedy)) < self.exploration_rate_at(self.num_timesteps)
            random_actions = self._sampler.integers(0, self._n_actions, size=np.shape(greedy))
            greedy = np.where(explore, random_actions + self._action_start, greedy)
        return (int(greedy), None) if np.ndim(greedy) == 0 else (greedy, None)

    # ----- learning -----

    def _start_learning(self, total_timesteps: int) -> None:
        self._epsilon_at = self.config.exploration.bind(total_timesteps)
        self._learning_rate_at = self.config.learning_rate.bind(total_timesteps)

    def _run_episode(self, observation: Any, max_steps: int) -> tuple[float, int, bool, bool]:
        config = self.config
        learning_starts, train_freq = config.learning_starts, config.train_freq
        target_every = config.target_update_interval
        gradient_steps = config.gradient_steps if config.gradient_steps >= 0 else train_freq
        coin, epsilon_at, env_step = self._stream.draw, self._epsilon_at, self.env.step
        self.buffer.start_episode()
        episode_return, t = 0.0, self.num_timesteps
        for i in range(max_steps):
            if t < learning_starts or coin() < epsilon_at(t):  # SB3: random actions until learning starts
                action = int(coin() * self._n_actions)
            else:
                action = self._greedy_actions(observation)
            next_observation, reward, terminated, truncated, _ = env_step(action + self._action_start)
            episode_return += float(reward)
            ends = terminated or (truncated and not self._bootstrap_timeouts)
            self.buffer.add(observation, action, reward, next_observation, ends, truncated)
            t += 1
            if t > learning_starts and t % train_freq == 0:
                self._train(gradient_steps, t)
            if t % target_every == 0:
                self._update_target()
            if terminated or truncated:
                return episode_return, i + 1, terminated, True
            observation = next_observation
        return episode_return, max_steps, False, False

    @flush_denormals()  # Adam's state of dead ReLU units would otherwise stick at slow subnormals
    def _train(self, gradient_steps: int, t: int) -> None:
        """A burst of ``gradient_steps`` gradient steps at env step ``t``."""
        config, buffer = self.config, self.buffer
        if len(buffer) < config.batch_size or gradient_steps == 0:
            return
        set_learning_rate(self.optimizer, self._learning_rate_at(t))  # its schedule at env step t
        prioritized = isinstance(buffer, PrioritizedReplayBuffer)
        if prioritized:  # beta annealed to 1 over training (Schaul et al.)
            beta = config.per_beta + (1.0 - config.per_beta) * min(1.0, t / self._total_timesteps)
        else:  # the priorities never change: every mini-batch of the burst in one draw and one gather
            index = buffer.sample_indices((gradient_steps, config.batch_size), self._sampler)
            burst = [torch.from_numpy(a) for a in buffer.gather(index)]
            burst_next_q = self._target_q(burst[3])
        weights = None
        sums = [0.0, 0.0, 0.0]  # loss, gradient norm, mean Q over the burst, for the diagnostics
        for g in range(gradient_steps):
            if prioritized:  # drawn one at a time: each step updates the priorities of its batch
                index = buffer.sample_indices(config.batch_size, self._sampler)
                batch = [torch.from_numpy(a) for a in buffer.gather(index)]
                weights = torch.from_numpy(buffer.weights(index, beta))
                next_q = self._target_q(batch[3][None])[0]
            else:
                batch, next_q = [b[g] for b in burst], burst_next_q[g]
            step_figures, td_error = self._gradient_step(*batch, next_q, weights, t)
            sums = [a + b for a, b in zip(sums, step_figures, strict=True)]
            if prioritized:
                buffer.update_priorities(index, td_error.numpy())
        loss, norm, q = (x / gradient_steps for x in sums)
        settings = {"train/learning_rate": self.optimizer.param_groups[0]["lr"]}
        settings["rollout/exploration_rate"] = self._epsilon_at(t)
        figures = {"train/loss": loss, "train/grad_norm": norm, "train/mean_q": q}
        self._figures.add(figures, gradient_steps, settings)

    @torch.no_grad()
    def _target_q(self, next_obs: torch.Tensor) -> torch.Tensor:
        """``Q_target(s', .)`` for mini-batches ``(steps, batch, *obs)``: a whole burst's in products of
        1,024 rows, not one small product per step, as the target network holds still during a burst."""
        rows = next_obs.flatten(0, 1)
        values = torch.cat([self.target_net(chunk) for chunk in rows.split(1024)])
        return values.view(*next_obs.shape[:2], -1)

    def td_loss(
        self, obs: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor, next_obs: torch.Tensor,
        discounts: torch.Tensor, next_q: torch.Tensor, weights: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
        """The TD loss on one mini-batch (called as ``self._td_loss``: compiled with ``compile: true``),
        ``next_q`` its ``Q_target(s', .)`` (:meth:`_target_q`): ``(loss, Q(s, a), target)``."""
        config = self.config
        with torch.no_grad():
            if config.double_q:  # the online network picks the action, the target network values it
                next_value = next_q.gather(1, self.q_net(next_obs).argmax(dim=1, keepdim=True)).squeeze(1)
            else:
                next_value = next_q.max(dim=1).values
            target = rewards + discounts * next_value
        q = self.q_net(obs).gather(1, actions.unsqueeze(1)).squeeze(1)
        loss_fn = F.smooth_l1_loss if config.loss == "huber" else F.mse_loss
        if weights is None:
            loss = loss_fn(q, target)
        else:  # importance-sampling weights of prioritized replay
            loss = (weights * loss_fn(q, target, reduction="none")).mean()
        return loss, q, target

    def _gradient_step(
        self, obs: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor, next_obs: torch.Tensor,
        discounts: torch.Tensor, next_q: torch.Tensor, weights: torch.Tensor | None = None, t: int = 0,
    ) -> tuple[list[float], torch.Tensor]:  # fmt: skip
        """One gradient step on one mini-batch: ``([loss, gradient norm before clipping, mean Q(s, a)],
        the TD errors Q(s, a) - target)``."""
        loss, q, target = self._td_loss(obs, actions, rewards, next_obs, discounts, next_q, weights)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        _, norm = clip_grad_norm(self._params, self.config.max_grad_norm)  # the norm before clipping
        # one read of the loss and mean Q: the check needs the loss, the diagnostics both
        loss_value, mean_q = torch.stack([loss.detach(), q.detach().mean()]).tolist()
        check_finite_step(loss_value, norm, t, "lower learning_rate or check the rewards and observations")
        self.optimizer.step()
        return [loss_value, norm, mean_q], (q - target).detach()

    @torch.no_grad()
    def _update_target(self) -> None:
        tau = self.config.tau
        for target, online in self._target_params:
            target.copy_(online) if tau == 1.0 else target.lerp_(online, tau)  # += tau (online - target)
        for target, online in self._target_buffers:  # normalisation statistics, if any: copied, as SB3 does
            target.copy_(online)

    # ----- collecting from n_envs copies of the env -----

    def learn(
        self, total_timesteps: int, callback: Callback | None = None, reset_num_timesteps: bool = True
    ) -> Self:
        """As :meth:`Agent.learn`; with ``n_envs > 1`` the steps come from that many copies of the env
        in a vector env, with SB3's meaning of the step counts: ``train_freq`` and
        ``target_update_interval // n_envs`` count steps of all copies at once, ``gradient_steps=-1``
        is one per transition collected; a ``VectorEnv`` given is stepped so, whatever its number of
        copies. (Exact resume holds for ``n_envs=1`` on one env.)"""
        if self.config.n_envs == 1 and given_vector_env(self.env) is None:
            return super().learn(total_timesteps, callback, reset_num_timesteps)
        steps, total = begin_vector_learning(self, total_timesteps, reset_num_timesteps, callback)
        config = self.config
        n, train_freq, rng = config.n_envs, config.train_freq, self._sampler
        gradient_steps = config.gradient_steps if config.gradient_steps >= 0 else train_freq * n
        target_every, calls = max(config.target_update_interval // n, 1), 0
        while self.num_timesteps < total:
            obs = np.array(steps.obs if steps.obs is not None else steps.reset())
            t = self.num_timesteps
            explore = rng.random(n) < (1.0 if t < config.learning_starts else self._epsilon_at(t))
            actions = rng.integers(0, self._n_actions, size=n)
            if not explore.all():
                actions = np.where(explore, actions, self._greedy_actions(obs))
            step = steps.step(actions + self._action_start)
            ends = step.terminated if self._bootstrap_timeouts else step.terminated | step.truncated
            v = step.valid
            self.buffer.add_many(obs[v], actions[v], step.rewards[v], step.next_obs[v], ends[v])
            calls += 1
            if steps.report(step, callback):
                break
            if self.num_timesteps > config.learning_starts and calls % train_freq == 0:
                self._train(gradient_steps, self.num_timesteps)
            if calls % target_every == 0:
                self._update_target()
        return self

    # ----- checkpoints: weights, target, optimizer, sampler and (by default) the replay buffer -----

    def _checkpoint_arrays(self) -> dict[str, np.ndarray]:
        arrays = network_arrays({"q": self.q_net, "target": self.target_net}, self.optimizer, "adam")
        arrays["sampler"] = pcg_state_array(self._sampler)
        arrays["n_updates"] = np.array(self._figures.n_updates)
        if self.config.save_replay_buffer:
            arrays.update({f"buffer.{k}": v for k, v in self.buffer.state_arrays().items()})
        return arrays

    def _restore_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        restore_networks(arrays, {"q": self.q_net, "target": self.target_net}, self.optimizer, "adam", "DQN")
        if "sampler" in arrays:
            set_pcg_state(self._sampler, arrays["sampler"])
        self._figures.n_updates = int(arrays.get("n_updates", 0))
        if "buffer.obs" in arrays:
            self.buffer.restore(
                {k[len("buffer.") :]: v for k, v in arrays.items() if k.startswith("buffer.")}
            )
