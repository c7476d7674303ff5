"""What REINFORCE, A2C and PPO share: collecting rollouts from a vector env, updates, and the API.

The agent is built on one env (its spaces, its id for saving), an env id, or a gymnasium
``VectorEnv``, and collects from ``n_envs`` copies in a vector env (:mod:`agents.common.vector`: the given
one, or the env's own batched implementation when it registers one). The reset step after an
episode's end is masked out of training and not counted, while the value of the final observation
it carries is what a time-limited (truncated) episode bootstraps from.

Advantages are GAE(lambda) (:mod:`agents.common.rollout`). Observation and reward normalisation
(running mean/std, as SB3's ``VecNormalize``) are options; their statistics are saved with the
model. Updates are plain autograd: ``loss.backward()``, ``clip_grad_norm_`` and Adam (torch's fused
kernel, a public option; A2C takes SB3's RMSprop by default). The learning rate is a schedule (a
number, rl-zoo's ``"lin_<x>"`` or a schedule dict), read after each rollout at the step count
reached, as stable-baselines3 reads its progress.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from agents.common.arguments import Callback, check_observation
from agents.common.base import Agent
from agents.common.config import AgentConfig, count, flag, mapping, non_negative, positive, rate
from agents.common.diagnostics import explained_variance
from agents.common.errors import AgentError
from agents.common.networks import (
    check_finite_step,
    clip_grad_norm,
    compiled,
    make_adam,
    network_arrays,
    restore_networks,
)
from agents.common.numpy_actor import numpy_actor
from agents.common.policies import ActorCritic, RunningMeanStd, check_policy_kwargs, mask_logits
from agents.common.random_stream import pcg_state_array, set_pcg_state
from agents.common.rollout import ROLLOUT_KEYS, Rollout, check_rollout_size
from agents.common.schedules import Schedule
from agents.common.vector import VectorSteps, begin_vector_learning
from lab.core.errors import LabError
from lab.nets.training_choices import flush_denormals, set_learning_rate

if TYPE_CHECKING:
    from typing_extensions import Self


@dataclass(frozen=True)
class OnPolicyConfig(AgentConfig):
    """What REINFORCE, A2C and PPO share (stable-baselines3's names and PPO's defaults)."""

    n_envs: int = count(1)
    learning_rate: Schedule = rate(3e-4)
    ent_coef: float = non_negative(0.0)
    vf_coef: float = non_negative(0.5)
    max_grad_norm: float = positive(0.5)
    normalize_advantage: bool = flag(True)
    normalize_observations: bool = flag(False)
    normalize_reward: bool = flag(False)
    policy_kwargs: dict[str, Any] = mapping({}, check_policy_kwargs)
    # Read info["action_mask"] at every step and act among the allowed actions only (Discrete), as
    # sb3-contrib's MaskablePPO does: masked actions get probability 0 in acting and in the loss
    use_masking: bool = flag(False)
    # torch.compile the loss (forward, loss and backward): see agents.common.networks.compiled
    compile: bool = flag(False)


class OnPolicyAgent(Agent):
    """The shared machinery; subclasses set ``config_class`` and implement :meth:`_update`."""

    config_class: ClassVar[type[AgentConfig]] = OnPolicyConfig
    config: OnPolicyConfig

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        space = env.action_space
        box = isinstance(space, spaces.Box) and len(space.shape) == 1
        if not (isinstance(space, spaces.Discrete) or box):
            raise AgentError(f"{cls.__name__} needs a Discrete or 1-D Box action space; this env has {space}")
        if box and not (np.isfinite(space.low).all() and np.isfinite(space.high).all()):
            raise AgentError(f"{cls.__name__} needs finite bounds on Box actions; this env has {space}")

    def _setup(self) -> None:
        config = self.config
        obs_space, act_space = self.env.observation_space, self.env.action_space
        if (length := getattr(config, "n_steps", None)) is not None:  # PPO, A2C (REINFORCE: episodes)
            check_rollout_size(length, config.n_envs, obs_space, act_space)
        with torch.random.fork_rng(devices=[]):  # seeded weights without touching torch's global RNG
            torch.manual_seed(self.seed)
            try:
                self.policy = ActorCritic(obs_space, act_space, **config.policy_kwargs)
            except ValueError as exc:
                raise AgentError(f"{type(self).__name__} cannot read this env: {exc}") from None
        self._generator = torch.Generator().manual_seed((self.seed + 1) % 2**64)  # sampling, mini-batch order
        self._np_rng = np.random.Generator(np.random.PCG64(self.seed + 2))  # numpy sampling
        self._numpy_act = numpy_actor(self.policy)  # None unless a plain MLP policy
        self._learning_rate_at = config.learning_rate.bind(None)
        self.optimizer = self._make_optimizer(config.learning_rate.value(0))
        self._trained = [p for p in self.policy.parameters() if p.requires_grad]  # listed once: cheaper
        self._loss = compiled(self.loss, config.compile)
        if config.normalize_observations and not isinstance(obs_space, spaces.Box):
            raise AgentError(f"normalize_observations needs Box observations; this env has {obs_space}")
        self.obs_rms = RunningMeanStd(obs_space.shape if isinstance(obs_space, spaces.Box) else ())
        self.ret_rms = RunningMeanStd(())
        self._steps: VectorSteps | None = None  # made on the first learn()
        self._discrete = isinstance(act_space, spaces.Discrete)
        self._action_start = int(act_space.start) if self._discrete else 0
        if config.use_masking and not self._discrete:
            raise AgentError(f"use_masking needs a Discrete action space; this env has {act_space}")

    def _make_optimizer(self, lr: float) -> torch.optim.Optimizer:
        return make_adam(list(self.policy.parameters()), lr, eps=1e-5)

    # ----- acting -----

    def _normalized(self, obs: np.ndarray) -> np.ndarray:
        """Observations as the policy reads them (normalised by the running statistics, if on)."""
        return self.obs_rms.normalize(obs) if self.config.normalize_observations else obs

    def _prepare(self, obs: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(self._normalized(obs))

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
        action_masks: Any = None,
    ) -> tuple[np.ndarray | int, None]:
        """SB3's ``predict``; ``action_masks`` (booleans, one row per observation), as sb3-contrib's
        ``MaskablePPO.predict`` takes them, restricts the choice to the allowed actions."""
        obs = np.asarray(observation)
        single = check_observation(self.env.observation_space, obs)
        rows = self._normalized(obs[None] if single else obs)
        if deterministic and action_masks is None and self._numpy_act is not None:
            # the numpy forward pass, as in collection: an evaluation step takes under a third of the
            # time it took through torch; greedy actions draw no random numbers
            actions = self._numpy_env_actions(self._numpy_act(rows, self._np_rng, True)[0])
        else:
            batch = torch.as_tensor(rows)
            mask = None if action_masks is None else self.policy.mask_rows(action_masks, len(batch))
            raw, _, _ = self.policy.sample(batch, self._generator, deterministic, mask)
            actions = self.policy.to_env(raw) + self._action_start
        return (int(actions[0]) if self._discrete else actions[0]) if single else actions, None

    def _one_observation(self, observation: Any, method: str) -> torch.Tensor:
        """One observation as a batch of one for the policy (an :class:`AgentError` for a batch or a
        shape the env does not give)."""
        obs = np.asarray(observation)
        if not check_observation(self.env.observation_space, obs):
            raise AgentError(f"{method} takes one observation, not a batch; got shape {obs.shape}")
        return self._prepare(obs[None])

    def _check_actions(self, method: str, discrete: bool) -> None:
        if self._discrete != discrete:
            other = "action_probabilities" if self._discrete else "action_distribution"
            raise AgentError(
                f"{method} is for {'Discrete' if discrete else 'Box'} actions; this agent's are "
                f"{self.env.action_space}: use {other}"
            )

    @torch.inference_mode()
    def action_probabilities(self, observation: Any, action_masks: Any = None) -> np.ndarray:
        """Discrete actions: the policy's probability of each action in this state (0 for the actions
        ``action_masks`` rules out)."""
        self._check_actions("action_probabilities", discrete=True)
        params, _, _ = self.policy(self._one_observation(observation, "action_probabilities"))
        if action_masks is not None:
            params = mask_logits(params, self.policy.mask_rows(action_masks, 1))
        return torch.softmax(params, -1)[0].numpy()

    @torch.inference_mode()
    def action_distribution(self, observation: Any) -> tuple[np.ndarray, np.ndarray]:
        """Box actions: the Gaussian's mean and standard deviation (before any squashing)."""
        self._check_actions("action_distribution", discrete=False)
        params, log_std, _ = self.policy(self._one_observation(observation, "action_distribution"))
        return params[0].numpy(), log_std.exp()[0].numpy()

    @torch.inference_mode()
    def value(self, observation: Any) -> float:
        """The critic's estimate of this state's value."""
        return float(self.policy.value(self._one_observation(observation, "value"))[0])

    def _numpy_env_actions(self, actions: np.ndarray) -> np.ndarray:
        """The numpy actor's raw actions as the env takes them (what ``policy.to_env`` does in torch:
        its policies are never squashed, so Box actions are clipped to the bounds)."""
        if self._discrete:
            return actions + self._action_start
        return np.clip(actions, self.policy.low.numpy(), self.policy.high.numpy())

    def _act(self, obs: np.ndarray, masks: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        """``(raw actions, log-probabilities, values, env actions)`` for a batch of (normalised) obs,
        among the actions ``masks`` allows (when given)."""
        if masks is not None:
            raw, log_probs_t, values_t = self.policy.sample(
                torch.as_tensor(obs), self._generator, mask=torch.from_numpy(masks)
            )
            return raw.numpy(), log_probs_t.numpy(), values_t.numpy(), raw.numpy() + self._action_start
        if self._numpy_act is not None:
            actions, log_probs, values = self._numpy_act(obs, self._np_rng)
            return actions, log_probs, values, self._numpy_env_actions(actions)
        raw, log_probs_t, values_t = self.policy.sample(torch.as_tensor(obs), self._generator)
        env_actions = self.policy.to_env(raw) + self._action_start
        return raw.numpy(), log_probs_t.numpy(), values_t.numpy(), env_actions

    # ----- learning -----

    def _run_episode(self, observation: Any, max_steps: int) -> tuple[float, int, bool, bool]:
        raise NotImplementedError("policy-gradient agents collect from a vector env in learn()")

    def learn(
        self, total_timesteps: int, callback: Callback | None = None, reset_num_timesteps: bool = True
    ) -> Self:
        """Collect rollouts and update for ``total_timesteps`` env steps (counted as
        :meth:`Agent.learn` counts them; the last rollout is finished, as in SB3). ``callback`` runs
        at each episode's end, as for every agent; returning ``False`` stops there (the unfinished
        rollout is dropped).

        A rollout holds ``n_steps`` rows per env, and the row of a vector env's reset after an
        episode's end is no transition (not trained on, not counted), so a rollout counts a little
        fewer than ``n_steps * n_envs`` steps (about 1% on CartPole). A budget that is a whole number
        of rollouts, such as ``learn(2048)`` with ``n_steps=2048``, then takes one rollout more than
        stable-baselines3, whose vector envs reset within the step."""
        _, total = begin_vector_learning(self, total_timesteps, reset_num_timesteps, callback)
        while self.num_timesteps < total:
            rollout = self._collect(callback)
            if rollout is None:
                break
            # schedules are read after collecting, at the fraction of training done (as SB3)
            set_learning_rate(self.optimizer, self._learning_rate_at(self.num_timesteps))
            with flush_denormals():  # subnormal floats take the CPU's slow path
                self._update(rollout)
        return self

    def _start_learning(self, total_timesteps: int) -> None:
        self._learning_rate_at = self.config.learning_rate.bind(total_timesteps)

    def _rollout_length(self) -> int:
        return self.config.n_steps  # type: ignore[attr-defined]  (PPO, A2C)

    def _collect(self, callback: Callback | None) -> Rollout | None:
        """``n_steps`` steps of every env (or until enough episodes for REINFORCE); ``None`` when the
        callback asked to stop."""
        config, steps = self.config, self._steps
        assert steps is not None
        if steps.obs is None:
            steps.reset()
            self._ret = np.zeros(steps.vec.num_envs)  # discounted return so far, for reward normalisation
        keys = (*ROLLOUT_KEYS, "masks") if config.use_masking else ROLLOUT_KEYS
        record: dict[str, list[np.ndarray]] = {k: [] for k in keys}
        episodes_needed, finished_episodes = getattr(config, "n_episodes", None), 0
        while True:
            raw_obs = steps.obs
            assert raw_obs is not None
            if config.normalize_observations:  # a reset step's row is the last episode's final observation
                self.obs_rms.update(raw_obs[~steps.ended] if steps.ended.any() else raw_obs)
                obs = self.obs_rms.normalize(raw_obs)
            else:
                obs = raw_obs
            masks = steps.action_masks() if config.use_masking else None
            actions, log_probs, values, env_actions = self._act(obs, masks)
            if masks is not None:
                record["masks"].append(masks)
            step = steps.step(env_actions)
            valid, done, rewards = step.valid, step.done, step.rewards
            if config.normalize_reward:
                self._ret = self._ret * self.gamma + step.rewards
                self.ret_rms.update(self._ret[valid])
                rewards = np.clip(step.rewards / math.sqrt(self.ret_rms.var + 1e-8), -10, 10)
                self._ret[done | ~valid] = 0.0
            for key, value in (
                ("obs", obs), ("actions", actions), ("log_probs", log_probs), ("values", values),
                ("rewards", np.where(valid, rewards, 0.0).astype(np.float32)),
                ("terminated", (step.terminated & valid).astype(np.float32)),
                ("done", done.astype(np.float32)), ("valid", valid),
            ):  # fmt: skip
                record[key].append(value)
            finished_episodes += int(done.sum())
            if steps.report(step, callback):
                return None
            if episodes_needed is None and len(record["obs"]) >= self._rollout_length():
                break
            if episodes_needed is not None and finished_episodes >= episodes_needed:
                break
        with torch.inference_mode():
            last_values = self.policy.value(self._prepare(steps.obs)).numpy()
        return Rollout(last_values=last_values, **{k: np.stack(v) for k, v in record.items()})

    # ----- updates -----

    def loss(self, batch: dict[str, torch.Tensor], *settings: Any) -> tuple[Any, ...]:
        """The algorithm's loss on a batch of samples (called as ``self._loss``: compiled with
        ``compile: true``), first the loss to minimise, then what its update reports."""
        raise NotImplementedError

    def _update(self, rollout: Rollout) -> None:
        raise NotImplementedError

    def _flat_batch(
        self, rollout: Rollout, advantages: np.ndarray, returns: np.ndarray
    ) -> dict[str, torch.Tensor]:
        """The valid steps of a rollout as flat tensors (with their action masks, if any)."""
        valid = rollout.valid
        masks = {"masks": torch.as_tensor(rollout.masks[valid])} if hasattr(rollout, "masks") else {}
        return {
            **masks,
            "obs": torch.as_tensor(rollout.obs[valid]),
            "actions": torch.as_tensor(rollout.actions[valid]),
            "log_probs": torch.as_tensor(rollout.log_probs[valid]),
            "values": torch.as_tensor(rollout.values[valid]),
            "advantages": torch.as_tensor(advantages[valid], dtype=torch.float32),
            "returns": torch.as_tensor(returns[valid], dtype=torch.float32),
        }

    def _step(self, loss: torch.Tensor) -> torch.Tensor:
        """One optimiser step; a non-finite loss or gradient stops before it, keeping the last good
        weights. Returns the gradient norm before clipping (a tensor: read it once per update)."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm, value = clip_grad_norm(self._trained, self.config.max_grad_norm)
        loss_value = float(loss.detach())
        check_finite_step(
            loss_value, value, self.num_timesteps, "lower learning_rate or normalise observations/rewards"
        )
        self.optimizer.step()
        return norm

    def _report(
        self,
        batch: dict[str, torch.Tensor],
        tensors: dict[str, torch.Tensor],
        updates: int = 1,
        settings: dict[str, float] | None = None,
    ) -> None:
        """One update's diagnostics: ``tensors`` (0-d, read in one go), the explained variance of the
        rollout's values, and the ``settings`` it ran with besides the learning rate; ``updates``
        counts in ``train/n_updates`` (SB3 counts PPO's epochs)."""
        if not self.policy.discrete and not self.policy.state_dependent_std:  # SB3's Gaussian spread
            tensors = {**tensors, "train/std": self.policy.log_std.detach().exp().mean()}
        values = torch.stack(list(tensors.values())).tolist() if tensors else []
        figures = dict(zip(tensors, values, strict=True))
        if getattr(self.config, "baseline", True):  # REINFORCE without a baseline has no critic
            figures["train/explained_variance"] = explained_variance(
                batch["values"].numpy(), batch["returns"].numpy()
            )
        learning_rate = {"train/learning_rate": self.optimizer.param_groups[0]["lr"]}
        self._figures.add(figures, updates, {**learning_rate, **(settings or {})})

    # ----- checkpoints -----

    def _checkpoint_meta(self) -> dict[str, Any]:
        lm = self.policy.language_model
        return {} if lm is None else {"language_model": dict(lm.model.config)}  # type: ignore[union-attr]

    @classmethod
    def _from_checkpoint(
        cls, env: gym.Env, seed: Any, gamma: Any, hyperparameters: dict[str, Any], meta: dict[str, Any]
    ) -> Agent:
        """A policy started from a language model file is rebuilt from the architecture the checkpoint
        records, and its weights (the model's among them) come from the checkpoint: the file is not read."""
        policy_kwargs = hyperparameters.get("policy_kwargs")
        source = policy_kwargs.get("language_model") if isinstance(policy_kwargs, dict) else None
        architecture = meta.get("language_model")
        if not isinstance(source, str):
            return super()._from_checkpoint(env, seed, gamma, hyperparameters, meta)
        if architecture is None:  # written before checkpoints recorded it: the file gives the architecture
            if not Path(source).is_file():
                raise AgentError(
                    f"this checkpoint predates those that hold their language model's architecture, and "
                    f"its policy_kwargs language_model {source} is not there: put that file back (only its "
                    "architecture is read; the weights are the checkpoint's), then save the agent again"
                )
            return super()._from_checkpoint(env, seed, gamma, hyperparameters, meta)
        rebuilt = {**hyperparameters, "policy_kwargs": {**policy_kwargs, "language_model": architecture}}
        try:
            agent = super()._from_checkpoint(env, seed, gamma, rebuilt, meta)
        except LabError as exc:  # an architecture the lab cannot build (an edited file)
            raise AgentError(str(exc)) from None
        agent.config = dataclasses.replace(agent.config, policy_kwargs=policy_kwargs)  # as saved: the file
        return agent

    def _checkpoint_arrays(self) -> dict[str, np.ndarray]:
        arrays = network_arrays({"policy": self.policy}, self.optimizer, "optim")
        arrays.update(self.obs_rms.arrays("obs_rms"))
        arrays.update(self.ret_rms.arrays("ret_rms"))
        arrays["generator"] = self._generator.get_state().numpy()
        arrays["np_rng"] = pcg_state_array(self._np_rng)
        arrays["n_updates"] = np.array(self._figures.n_updates)
        return arrays

    def _restore_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        restore_networks(arrays, {"policy": self.policy}, self.optimizer, "optim", type(self).__name__)
        self.obs_rms.restore(arrays, "obs_rms")
        self.ret_rms.restore(arrays, "ret_rms")
        if "generator" in arrays:
            self._generator.set_state(torch.as_tensor(arrays["generator"], dtype=torch.uint8))
        if "np_rng" in arrays:
            set_pcg_state(self._np_rng, arrays["np_rng"])
        self._figures.n_updates = int(arrays.get("n_updates", 0))
