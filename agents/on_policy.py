"""What REINFORCE, A2C and PPO share: collecting rollouts from a vector env, advantages, and the API.

The agent is built on one env (its spaces, its id for saving) and collects from ``n_envs`` copies
of it in a gymnasium vector env (:mod:`agents.vector`: the env's own batched implementation when it
registers one). The reset step after an episode's end is masked out of training and not counted,
while the value of the final observation it carries is what a time-limited (truncated) episode
bootstraps from.

Advantages are GAE(lambda) (Schulman et al., 2016)::

    delta_t = r_t + gamma * (1 - terminated_t) * V(s_t+1) - V(s_t)
    A_t     = delta_t + gamma * lambda * (1 - done_t) * A_t+1

so a time limit cuts the sum but keeps the bootstrap, and a termination does neither.
Observation and reward normalisation (running mean/std, as SB3's ``VecNormalize``) are options;
their statistics are saved with the model.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from agents.base import Agent, Callback, check_total_timesteps, whole_number
from agents.errors import AgentError
from agents.optim import clip_coefficient, fast_adam_options, total_grad_norm
from agents.policies import POLICY_KWARGS, ActorCritic, RunningMeanStd, numpy_actor, split_net_arch
from agents.random_stream import pcg_state_array, set_pcg_state
from agents.schedules import zoo_schedule
from agents.vector import VectorSteps, make_vector_env

if TYPE_CHECKING:
    from typing_extensions import Self

COMMON_DEFAULTS: dict[str, Any] = {
    "n_envs": 1,
    "learning_rate": 3e-4,
    "ent_coef": 0.0,
    "vf_coef": 0.5,
    "max_grad_norm": 0.5,
    "normalize_advantage": True,
    "normalize_observations": False,
    "normalize_reward": False,
    "policy_kwargs": {},
}


class Rollout:
    """One batch of collected steps, ``(T, N, ...)`` arrays; ``valid`` marks the real transitions."""

    def __init__(self, **arrays: np.ndarray) -> None:
        self.__dict__.update(arrays)

    obs: np.ndarray
    actions: np.ndarray
    log_probs: np.ndarray
    values: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    done: np.ndarray
    valid: np.ndarray
    last_values: np.ndarray


def gae(rollout: Rollout, gamma: float, lam: float, bootstrap: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(advantages, returns)`` by GAE(lambda); ``bootstrap=False`` gives Monte Carlo returns-to-go
    (REINFORCE: no value of the next state, time limits end the sum like terminations)."""
    T = rollout.rewards.shape[0]
    values = rollout.values if bootstrap else np.zeros_like(rollout.values)
    next_values = np.concatenate([values[1:], rollout.last_values[None]]) if bootstrap else values
    keep = 1.0 - rollout.terminated if bootstrap else 1.0 - rollout.done
    deltas = rollout.rewards + gamma * keep * next_values - values
    carry = gamma * lam * (1.0 - rollout.done)
    advantages = np.zeros_like(deltas)
    running = np.zeros_like(deltas[0])
    for t in range(T - 1, -1, -1):
        running = deltas[t] + carry[t] * running
        advantages[t] = running
    return advantages, advantages + values


class OnPolicyAgent(Agent):
    """The shared machinery; subclasses set ``defaults`` and implement :meth:`_update`."""

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        space = env.action_space
        if not (
            isinstance(space, spaces.Discrete) or (isinstance(space, spaces.Box) and len(space.shape) == 1)
        ):
            raise AgentError(f"{cls.__name__} needs a Discrete or 1-D Box action space; this env has {space}")
        if isinstance(space, spaces.Box) and not (
            np.isfinite(space.low).all() and np.isfinite(space.high).all()
        ):
            raise AgentError(f"{cls.__name__} needs finite bounds on Box actions; this env has {space}")

    # ----- hyperparameters -----

    def _check_hyperparameter(self, name: str, value: Any) -> Any:
        def number(v: Any) -> bool:
            return not isinstance(v, bool) and isinstance(v, (int, float, np.number)) and math.isfinite(v)

        if name in ("n_envs", "n_steps", "batch_size", "n_epochs", "n_episodes"):
            return whole_number(name, value, 1)
        if name in ("learning_rate", "clip_range"):
            try:
                rate, _ = zoo_schedule(value)
            except ValueError:
                rate = -1.0
            if not (math.isfinite(rate) and rate > 0):
                raise AgentError(f"{name} must be a positive number or 'lin_<number>'; got {value!r}")
            return value if isinstance(value, str) else float(value)
        if name in ("ent_coef", "vf_coef"):
            if not number(value) or value < 0:
                raise AgentError(f"{name} must be a number >= 0; got {value!r}")
            return float(value)
        if name == "gae_lambda":
            if not number(value) or not 0.0 <= value <= 1.0:
                raise AgentError(f"gae_lambda must be a number in [0, 1]; got {value!r}")
            return float(value)
        if name in ("max_grad_norm", "target_kl", "clip_range_vf"):
            if value is None and name != "max_grad_norm":
                return None
            if not number(value) or value <= 0:
                nullable = " or null" if name != "max_grad_norm" else ""
                raise AgentError(f"{name} must be a positive number{nullable}; got {value!r}")
            return float(value)
        if name in (
            "normalize_advantage",
            "normalize_observations",
            "normalize_reward",
            "baseline",
            "use_rms_prop",
        ):
            if not isinstance(value, (bool, np.bool_)):
                raise AgentError(f"{name} must be true or false; got {value!r}")
            return bool(value)
        if name == "policy_kwargs":
            return self._check_policy_kwargs(value)
        return value

    def _check_policy_kwargs(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise AgentError(f"policy_kwargs must be a mapping (e.g. dict(net_arch=[64, 64])); got {value!r}")
        unknown = set(value) - set(POLICY_KWARGS)
        if unknown:
            raise AgentError(
                f"policy_kwargs has no {sorted(unknown)[0]!r} (it takes {', '.join(POLICY_KWARGS)})"
            )
        resolved = {**POLICY_KWARGS, **value}
        try:
            pi, vf = split_net_arch(resolved["net_arch"])
        except (TypeError, ValueError) as exc:
            raise AgentError(
                f"net_arch must be a list of widths or dict(pi=[...], vf=[...]): {exc}"
            ) from None
        if not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in [*pi, *vf]):
            raise AgentError(f"net_arch widths must be whole numbers >= 1; got {resolved['net_arch']!r}")
        from lab.nets.layers import ACTIVATIONS

        if resolved["activation_fn"] not in ACTIVATIONS:
            raise AgentError(
                f"activation_fn must be one of {', '.join(ACTIVATIONS)}; got {resolved['activation_fn']!r}"
            )
        for flag in ("ortho_init", "squash_output", "state_dependent_std", "shared_trunk"):
            if not isinstance(resolved[flag], bool):
                raise AgentError(f"policy_kwargs {flag} must be true or false; got {resolved[flag]!r}")
        for key in ("features_dim", "cnn_channels"):
            value_ = resolved[key]
            sizes = value_ if key == "cnn_channels" and isinstance(value_, (list, tuple)) else [value_]
            if value_ is not None and not all(
                isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in sizes
            ):
                raise AgentError(f"policy_kwargs {key} must be whole numbers >= 1; got {value_!r}")
        log_std = resolved["log_std_init"]
        if isinstance(log_std, bool) or not isinstance(log_std, (int, float)) or not math.isfinite(log_std):
            raise AgentError(f"log_std_init must be a number; got {log_std!r}")
        return {k: v for k, v in value.items()}

    # ----- set-up -----

    def _setup(self) -> None:
        hp = self.hyperparameters
        obs_space, act_space = self.env.observation_space, self.env.action_space
        with torch.random.fork_rng(devices=[]):  # seeded weights without touching torch's global RNG
            torch.manual_seed(self.seed)
            try:
                self.policy = ActorCritic(obs_space, act_space, **hp["policy_kwargs"])
            except ValueError as exc:
                raise AgentError(f"{type(self).__name__} cannot read this env: {exc}") from None
            self._rng_after_init = torch.get_rng_state()  # where SB3's action samples would start
        self._generator = torch.Generator().manual_seed(self.seed + 1)
        self._numpy_act = numpy_actor(self.policy)  # None unless a plain MLP policy
        self._np_rng = np.random.Generator(np.random.PCG64(self.seed + 2))
        self._base_lr, self._lr_decays = zoo_schedule(hp["learning_rate"])
        self.optimizer = self._make_optimizer()
        self._trained = [p for p in self.policy.parameters() if p.requires_grad]
        if hp["normalize_observations"] and not isinstance(obs_space, spaces.Box):
            raise AgentError(f"normalize_observations needs Box observations; this env has {obs_space}")
        shape = obs_space.shape if isinstance(obs_space, spaces.Box) else ()
        self.obs_rms = RunningMeanStd(shape)
        self.ret_rms = RunningMeanStd(())
        self._steps: VectorSteps | None = None  # made on the first learn()
        self._discrete = isinstance(act_space, spaces.Discrete)
        self._action_start = int(act_space.start) if self._discrete else 0

    def _make_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.policy.parameters(), lr=self._base_lr, eps=1e-5, **fast_adam_options())

    # ----- acting -----

    def _prepare(self, obs: np.ndarray) -> torch.Tensor:
        if self.hyperparameters["normalize_observations"]:
            return torch.from_numpy(self.obs_rms.normalize(obs))
        return torch.as_tensor(obs)

    def predict(
        self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ) -> tuple[np.ndarray | int, None]:
        obs = np.asarray(observation)
        single = obs.shape == tuple(self.env.observation_space.shape or ())
        batch = obs[None] if single else obs
        raw, _, _ = self.policy.sample(self._prepare(batch), self._generator, deterministic=deterministic)
        actions = self.policy.to_env(raw)
        if self._discrete:
            actions = actions + self._action_start
        return (actions[0] if not self._discrete else int(actions[0])) if single else actions, None

    @torch.no_grad()
    def action_probabilities(self, observation: Any) -> np.ndarray:
        """Discrete actions: the policy's probability of each action in this state."""
        params, _, _ = self.policy(self._prepare(np.asarray(observation)[None]))
        return torch.softmax(params, -1)[0].numpy()

    @torch.no_grad()
    def action_distribution(self, observation: Any) -> tuple[np.ndarray, np.ndarray]:
        """Box actions: the Gaussian's mean and standard deviation (before any squashing)."""
        params, log_std, _ = self.policy(self._prepare(np.asarray(observation)[None]))
        return params[0].numpy(), log_std.exp()[0].numpy()

    @torch.no_grad()
    def value(self, observation: Any) -> float:
        """The critic's estimate of this state's value."""
        return float(self.policy.value(self._prepare(np.asarray(observation)[None]))[0])

    # ----- learning -----

    def _run_episode(self, observation: Any, max_steps: int) -> tuple[float, int, bool, bool]:
        raise NotImplementedError("policy-gradient agents collect from a vector env in learn()")

    def learn(
        self, total_timesteps: int, callback: Callback | None = None, reset_num_timesteps: bool = True
    ) -> Self:
        """Collect rollouts and update until ``num_timesteps >= total_timesteps`` (the last rollout is
        finished, as in SB3). ``callback`` runs at each episode's end, as for every agent; returning
        ``False`` stops there (the unfinished rollout is dropped)."""
        total = check_total_timesteps(total_timesteps)
        if self._steps is None:
            self._steps = VectorSteps(self, make_vector_env(self.env, self.hyperparameters["n_envs"]))
        if reset_num_timesteps:
            self.num_timesteps = self.num_episodes = 0
            self._steps.obs = None
        self._total_timesteps = total
        while self.num_timesteps < total:
            self._set_progress(self.num_timesteps / total if total else 1.0)
            rollout = self._collect(callback)
            if rollout is None:
                break
            self._update(rollout)
        return self

    def _set_progress(self, fraction: float) -> None:
        """rl-zoo's ``lin_`` schedules: the value at this fraction of training."""
        self._progress = min(1.0, max(0.0, fraction))
        if self._lr_decays:
            for group in self.optimizer.param_groups:
                group["lr"] = self._base_lr * (1.0 - self._progress)

    def _rollout_length(self) -> int:
        return self.hyperparameters["n_steps"]

    def _collect(self, callback: Callback | None) -> Rollout | None:
        """``n_steps`` steps of every env (or until enough episodes for REINFORCE); ``None`` when the
        callback asked to stop."""
        hp = self.hyperparameters
        steps = self._steps
        assert steps is not None
        if steps.obs is None:
            steps.reset()
            self._ret = np.zeros(steps.vec.num_envs)  # discounted return so far, for reward normalisation
        normalize_obs, normalize_reward = hp["normalize_observations"], hp["normalize_reward"]
        record: dict[str, list[np.ndarray]] = {
            k: [] for k in ("obs", "actions", "log_probs", "values", "rewards", "terminated", "done", "valid")
        }
        episodes_needed = hp.get("n_episodes")
        finished_episodes = 0
        t = 0
        while True:
            raw_obs = steps.obs
            assert raw_obs is not None
            if normalize_obs:
                self.obs_rms.update(raw_obs[~steps.ended] if steps.ended.any() else raw_obs)
            x, actions, log_probs, values, env_actions = self._act(raw_obs)
            step = steps.step(env_actions)
            valid, done = step.valid, step.done
            train_rewards = step.rewards
            if normalize_reward:
                self._ret = self._ret * self.gamma + step.rewards
                self.ret_rms.update(self._ret[valid])
                train_rewards = np.clip(step.rewards / math.sqrt(self.ret_rms.var + 1e-8), -10, 10)
                self._ret[done | ~valid] = 0.0
            record["obs"].append(x)
            record["actions"].append(actions)
            record["log_probs"].append(log_probs)
            record["values"].append(values)
            record["rewards"].append(np.where(valid, train_rewards, 0.0).astype(np.float32))
            record["terminated"].append((step.terminated & valid).astype(np.float32))
            record["done"].append(done.astype(np.float32))
            record["valid"].append(valid)
            t += 1
            finished_episodes += int(done.sum())
            if steps.report(step, callback):
                return None
            if episodes_needed is None:
                if t >= self._rollout_length():
                    break
            elif finished_episodes >= episodes_needed:
                break
        arrays = {k: np.stack(v) for k, v in record.items()}
        with torch.no_grad():
            last_values = self.policy.value(self._prepare(steps.obs)).numpy()
        return Rollout(last_values=last_values, **arrays)

    def _act(self, raw_obs: np.ndarray) -> tuple[np.ndarray, ...]:
        """``(observations as trained on, raw actions, log-probabilities, values, env actions)``."""
        obs = self.obs_rms.normalize(raw_obs) if self.hyperparameters["normalize_observations"] else raw_obs
        if self._numpy_act is not None:
            actions, log_probs, values = self._numpy_act(obs, self._np_rng)
            if self._discrete:
                env_actions = actions + self._action_start
            else:
                low, high = self.policy.low.numpy(), self.policy.high.numpy()
                env_actions = np.clip(actions, low, high)
            return obs, actions, log_probs, values, env_actions
        raw, log_probs_t, values_t = self.policy.sample(torch.as_tensor(obs), self._generator)
        env_actions = self.policy.to_env(raw)
        if self._discrete and self._action_start:
            env_actions = env_actions + self._action_start
        return obs, raw.numpy(), log_probs_t.numpy(), values_t.numpy(), env_actions

    # ----- updates -----

    def _update(self, rollout: Rollout) -> None:
        raise NotImplementedError

    def _flat_batch(
        self, rollout: Rollout, advantages: np.ndarray, returns: np.ndarray
    ) -> dict[str, torch.Tensor]:
        """The valid steps of a rollout as flat tensors."""
        valid = rollout.valid
        return {
            "obs": torch.as_tensor(rollout.obs[valid]),
            "actions": torch.as_tensor(rollout.actions[valid]),
            "log_probs": torch.as_tensor(rollout.log_probs[valid]),
            "values": torch.as_tensor(rollout.values[valid]),
            "advantages": torch.as_tensor(advantages[valid], dtype=torch.float32),
            "returns": torch.as_tensor(returns[valid], dtype=torch.float32),
        }

    def _step(self, loss: torch.Tensor) -> None:
        """One optimiser step; a non-finite loss stops before it, keeping the last good weights."""
        self._check_loss(loss)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self._clip_and_step()

    def _check_loss(self, loss: torch.Tensor | float) -> None:
        value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
        if not math.isfinite(value):
            raise AgentError(
                f"non-finite loss ({value}) at step {self.num_timesteps}: lower learning_rate or "
                "normalise observations/rewards (the network keeps its last good weights)"
            )

    def _clip_and_step(self) -> None:
        """Clip the gradients to ``max_grad_norm`` and take the optimiser step.

        clip_grad_norm_'s arithmetic in two foreach calls (its own checks cost more than the math here).
        """
        grads = [p.grad for p in self._trained if p.grad is not None]
        coef = clip_coefficient(total_grad_norm(grads), self.hyperparameters["max_grad_norm"])
        torch._foreach_mul_(grads, float(coef))
        self.optimizer.step()

    # ----- checkpoints -----

    def _checkpoint_arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"policy.{k}": v.numpy().copy() for k, v in self.policy.state_dict().items()}
        for i, state in self.optimizer.state_dict()["state"].items():
            for key, value in state.items():
                arrays[f"optim.{i}.{key}"] = np.array(value.numpy() if torch.is_tensor(value) else value)
        arrays.update(self.obs_rms.arrays("obs_rms"))
        arrays.update(self.ret_rms.arrays("ret_rms"))
        arrays["generator"] = self._generator.get_state().numpy()
        arrays["np_rng"] = pcg_state_array(self._np_rng)
        return arrays

    def _restore_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        saved = {
            k[len("policy.") :]: torch.as_tensor(v) for k, v in arrays.items() if k.startswith("policy.")
        }
        expected = self.policy.state_dict()
        if set(saved) != set(expected) or any(saved[k].shape != expected[k].shape for k in expected):
            raise AgentError(
                "the checkpoint's network does not fit this agent (another net_arch, policy option or "
                "observation/action space); load it with the hyperparameters it was saved with"
            )
        self.policy.load_state_dict(saved)
        state = self.optimizer.state_dict()
        per_param: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in arrays.items():
            if key.startswith("optim."):
                _, index, name = key.split(".", 2)
                per_param.setdefault(int(index), {})[name] = torch.as_tensor(value)
        state["state"] = per_param
        self.optimizer.load_state_dict(state)
        self.obs_rms.restore(arrays, "obs_rms")
        self.ret_rms.restore(arrays, "ret_rms")
        if "generator" in arrays:
            self._generator.set_state(torch.as_tensor(arrays["generator"], dtype=torch.uint8))
        if "np_rng" in arrays:
            set_pcg_state(self._np_rng, arrays["np_rng"])
