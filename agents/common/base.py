"""The API every agent shares: construction with checked hyperparameters (a typed config,
:mod:`agents.common.config`), the episode loop of
``learn``, ``predict``, and checkpoints that resume exactly.

Reproducibility is by construction. Episode ``k`` of an agent's life starts with
``env.reset(seed=episode_seed(agent.seed, k))``, a pure function of the two numbers, and the
agent's own random numbers come from one :class:`~agents.common.random_stream.RandomStream` whose state is
saved. So an agent stopped at an episode boundary, saved, loaded and trained on continues exactly as
if it had never stopped.
"""

from __future__ import annotations

import math
import os
import secrets
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import gymnasium as gym
import numpy as np

from agents.common.arguments import Callback, learning_budget
from agents.common.checkpoint import (
    describe_space,
    env_record,
    make_saved_env,
    read_checkpoint,
    space_name,
    write_checkpoint,
)
from agents.common.config import AgentConfig, whole_number
from agents.common.diagnostics import TrainingFigures
from agents.common.errors import AgentError
from agents.common.random_stream import RandomStream
from envs.grid.rng import GOLDEN, MASK64, mix64
from envs.seeding import is_seed
from lab.core.version import lab_version

if TYPE_CHECKING:
    from typing_extensions import Self


def episode_seed(seed: int, episode: int) -> int:
    """The ``reset`` seed of episode ``episode`` (0-based, over the agent's life) of an agent seeded ``seed``.

    A pure function (SplitMix64 mixing of the two numbers, 32 bits out): no state to save, so resuming
    at episode ``k`` needs only ``k``. Seeds are taken modulo 2**64.
    """
    return mix64(mix64((seed + 1) * GOLDEN) ^ mix64(((episode & MASK64) + 1) * GOLDEN)) >> 32


class Agent(ABC):
    """An RL agent on one gymnasium environment.

    Subclasses set ``name`` (the registry key), ``config_class`` (the dataclass of every hyperparameter
    other than ``seed`` and ``gamma``, :mod:`agents.common.config`) and implement the hooks below the
    public API. The checked hyperparameters are ``self.config``.
    """

    name: ClassVar[str]
    config_class: ClassVar[type[AgentConfig]] = AgentConfig

    env: gym.Env
    seed: int
    gamma: float
    config: AgentConfig
    num_timesteps: int
    num_episodes: int

    def __init__(
        self,
        env: gym.Env | gym.vector.VectorEnv | str,
        *more: Any,
        seed: int | None = None,
        gamma: float = 0.99,
        **hyperparameters: Any,
    ) -> None:
        from agents.common.vector import as_single_env  # vector.py imports this module

        if more:  # stable-baselines3's PPO("MlpPolicy", env) is the likely reason
            name = type(self).__name__
            if isinstance(env, str) and env.endswith("Policy"):
                raise AgentError(
                    f"{name} takes the env first, without stable-baselines3's policy name {env!r} (an "
                    "agent builds its network or table from the env's spaces; policy_kwargs shapes a "
                    f"network): {name}(env, ...)"
                )
            raise AgentError(f"{name} takes one positional argument, the env; give the others by name")
        # an env id or a VectorEnv, as SB3 and gymnasium users pass
        env, vector_env = as_single_env(env, type(self))
        if vector_env is not None:
            if "n_envs" not in self.config_class.names():
                raise AgentError(f"{type(self).__name__} learns from one env: pass one env, not a VectorEnv")
            n_envs = hyperparameters.setdefault("n_envs", vector_env.num_envs)
            if n_envs != vector_env.num_envs:
                raise AgentError(f"the VectorEnv given has {vector_env.num_envs} copies; n_envs is {n_envs}")
        self.check_env(env)
        self.env = env
        self.seed = self._resolve_seed(seed)
        self.gamma = self._resolve_gamma(gamma)
        self.config = self.config_class.from_kwargs(type(self).__name__, hyperparameters)
        self.num_timesteps = 0
        self.num_episodes = 0
        self._total_timesteps: int | None = None  # what the latest learn() trains up to
        self._stream = RandomStream(self.seed)
        self._figures = TrainingFigures()
        self._setup()

    # ----- hyperparameters -----

    @classmethod
    def hyperparameter_names(cls) -> list[str]:
        return ["seed", "gamma", *cls.config_class.names()]

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """Every hyperparameter in its JSON form (what checkpoints save and ``lab train`` records)."""
        return {"seed": self.seed, "gamma": self.gamma, **self.config.to_dict()}

    @staticmethod
    def _resolve_seed(seed: Any) -> int:
        if seed is None:
            return secrets.randbits(32)
        if not is_seed(seed):
            raise AgentError(
                f"seed must be a whole number from 0 to 2**64 - 1 (or None for a random one); got {seed!r}"
            )
        return int(seed)

    @staticmethod
    def _resolve_gamma(gamma: Any) -> float:
        if (
            isinstance(gamma, bool)
            or not isinstance(gamma, (int, float, np.floating))
            or not math.isfinite(gamma)
            or not 0.0 <= gamma <= 1.0
        ):
            raise AgentError(f"gamma (the discount) must be a number in [0, 1]; got {gamma!r}")
        return float(gamma)

    # ----- learning -----

    def learn(
        self, total_timesteps: int, callback: Callback | None = None, reset_num_timesteps: bool = True
    ) -> Self:
        """Train for ``total_timesteps`` env steps.

        ``callback(event)`` runs at the end of every episode with ``{"agent", "timestep", "episode",
        "return", "length", "terminated"}``; returning ``False`` stops learning there. An episode cut
        short by the budget is abandoned: it is not counted, and the next ``learn`` starts a new
        episode with its index. ``reset_num_timesteps=True`` starts both counts (and so the episode
        seeds) from 0, keeping what was learned; with ``False`` the counts carry on and, as in
        stable-baselines3, ``total_timesteps`` more steps are taken: training runs until
        ``num_timesteps`` reaches the count so far plus ``total_timesteps``, and the schedules run
        over that whole count (:func:`learning_budget`).
        """
        total = learning_budget(self, total_timesteps, reset_num_timesteps, callback)
        env = self.env
        self._start_learning(total)
        try:
            while self.num_timesteps < total:
                episode = self.num_episodes
                observation, _ = env.reset(seed=self._reset_seed(episode))
                episode_return, length, terminated, finished = self._run_episode(
                    observation, total - self.num_timesteps
                )
                self.num_timesteps += length
                if not finished:
                    break
                self.num_episodes = episode + 1
                if callback is not None:
                    event = {
                        "agent": self,
                        "timestep": self.num_timesteps,
                        "episode": episode,
                        "return": float(episode_return),
                        "length": length,
                        "terminated": bool(terminated),
                    }
                    keep_going = callback(event)
                    self._after_callback()
                    if keep_going is False:
                        break
        finally:
            self._stop_learning()
        return self

    def training_figures(self) -> dict[str, float]:
        """The training diagnostics under stable-baselines3's names (``train/loss``,
        ``train/approx_kl``, ``rollout/exploration_rate``...): each figure's mean over the updates since
        the last call, and ``train/n_updates``; empty when there was no update since (and for agents
        that report none). See :mod:`agents.common.diagnostics`."""
        return self._figures.pop()

    # ----- hooks for subclasses -----

    @classmethod
    @abstractmethod
    def check_env(cls, env: gym.Env) -> None:
        """Raise :class:`AgentError` when this algorithm cannot work on ``env``."""

    @abstractmethod
    def _setup(self) -> None:
        """Build the learned state from ``self.config`` (the end of ``__init__``)."""

    def _reset_seed(self, episode: int) -> int | None:
        """The seed of the ``reset`` that starts episode ``episode`` (see the module docstring)."""
        return episode_seed(self.seed, episode)

    def _start_learning(self, total_timesteps: int) -> None:  # noqa: B027  (optional hook)
        """Before the first episode of a ``learn`` call."""

    @abstractmethod
    def _run_episode(self, observation: Any, max_steps: int) -> tuple[float, int, bool, bool]:
        """Play and learn from one episode of at most ``max_steps`` steps, starting at ``observation``.

        Returns ``(return, length, terminated, finished)``; ``finished`` is ``False`` when the episode
        was cut at ``max_steps`` before it terminated or was truncated.
        """

    def _after_callback(self) -> None:  # noqa: B027  (optional hook)
        """After the callback ran (it may have looked at or changed the agent)."""

    def _stop_learning(self) -> None:  # noqa: B027  (optional hook)
        """When ``learn`` returns or raises."""

    @abstractmethod
    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray | int, None]:
        """Actions for one observation or a batch (stable-baselines3's signature; no recurrent state)."""

    def _checkpoint_arrays(self) -> dict[str, np.ndarray]:
        """The learned arrays to save."""
        return {}

    def _restore_arrays(self, arrays: dict[str, np.ndarray]) -> None:  # noqa: B027  (optional hook)
        """Put saved arrays back (``AgentError`` when they do not fit)."""

    def _checkpoint_meta(self) -> dict[str, Any]:
        """More JSON a checkpoint needs to rebuild this agent besides its hyperparameters."""
        return {}

    @classmethod
    def _from_checkpoint(
        cls, env: gym.Env, seed: Any, gamma: Any, hyperparameters: dict[str, Any], meta: dict[str, Any]
    ) -> Agent:
        """The agent a checkpoint's ``meta`` describes, before its arrays are put back."""
        return cls(env, seed=seed, gamma=gamma, **hyperparameters)

    # ----- checkpoints -----

    def save(self, path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> Path:
        """Write one ``.npz`` checkpoint (``.npz`` appended if missing), atomically; returns its path.

        ``metadata`` (JSON) is stored under the checkpoint's ``"metadata"`` key: a trainer's own state.
        """
        meta = {
            "algorithm": self.name,
            "lab_version": lab_version(),
            "hyperparameters": self.hyperparameters,
            "env": env_record(self.env),
            "observation_space": describe_space(self.env.observation_space),
            "action_space": describe_space(self.env.action_space),
            "num_timesteps": self.num_timesteps,
            "num_episodes": self.num_episodes,
            "total_timesteps": self._total_timesteps,
            "rng": self._stream.get_state(),
            **self._checkpoint_meta(),
        }
        if metadata is not None:
            meta["metadata"] = metadata
        return write_checkpoint(path, meta, self._checkpoint_arrays())

    @classmethod
    def load(cls, path: str | os.PathLike, env: gym.Env | gym.vector.VectorEnv | str | None = None) -> Agent:
        """An agent from a checkpoint, ready to predict or to ``learn(..., reset_num_timesteps=False)``.

        ``Agent.load`` (or :func:`agents.load_agent`) returns the saved algorithm's class; a subclass's
        ``load`` insists on its own algorithm. ``env`` is what the constructor takes (an env, an env
        id or a ``VectorEnv``, whose number of copies then becomes ``n_envs``); without it the saved
        env id and kwargs make one.
        """
        from agents.common.vector import as_single_env  # vector.py imports this module
        from agents.registry import AGENTS  # the registry imports the algorithms, which import this

        vector_env = None
        if env is not None:
            env, vector_env = as_single_env(env, cls)

        meta, arrays = read_checkpoint(path)
        for key, array in arrays.items():  # NaN or inf weights would make every prediction garbage
            if key.startswith("buffer."):  # a replay buffer holds what the env gave, not the model
                continue
            if array.dtype.kind in "fc" and not np.isfinite(array).all():
                raise AgentError(
                    f"{path}: its {key!r} array holds NaN or infinite values (a diverged or damaged "
                    "model); load an earlier checkpoint"
                )
        try:
            algorithm = meta["algorithm"]
            hyperparameters = dict(meta["hyperparameters"])
            saved_spaces = (meta["observation_space"], meta["action_space"])
            counts = tuple(whole_number(key, meta[key], 0) for key in ("num_timesteps", "num_episodes"))
            total = meta.get("total_timesteps")
            total = None if total is None else whole_number("total_timesteps", total, 0)
            rng_state = meta["rng"]
        except (KeyError, TypeError, ValueError, AgentError) as exc:
            raise AgentError(f"{path} is not a complete agent checkpoint (missing or bad {exc})") from None
        target = AGENTS.get(algorithm)
        if target is None:
            raise AgentError(
                f"{path} holds a {algorithm!r} agent, which this lab does not know "
                f"(known: {', '.join(AGENTS)})"
            )
        if not issubclass(target, cls):
            raise AgentError(
                f"{path} holds a {algorithm!r} agent ({target.__name__}), not a {cls.__name__}: "
                f"load it with {target.__name__}.load or agents.load_agent"
            )
        remade = env is None
        if remade:
            env = make_saved_env(meta.get("env"), path)
        target.check_env(env)
        for what, saved, space in zip(
            ("observations", "actions"), saved_spaces, (env.observation_space, env.action_space), strict=True
        ):
            if describe_space(space) != saved:
                hint = (  # wrappers are not saved: the id alone makes the bare env
                    f" (made again from its saved id {env.spec.id!r}, without the wrappers it trained "
                    "behind: pass that env as load(path, env=...))"
                    if remade and env.spec is not None
                    else ""
                )
                raise AgentError(
                    f"the model was trained on {space_name(saved)} {what}; "
                    f"this env has {space_name(describe_space(space))}{hint}"
                )
        if vector_env is not None:  # the agent collects from its copies (as_single_env keeps it)
            if "n_envs" not in target.config_class.names():
                raise AgentError(f"{target.__name__} learns from one env: pass one env, not a VectorEnv")
            hyperparameters["n_envs"] = vector_env.num_envs
        seed = hyperparameters.pop("seed", None)
        gamma = hyperparameters.pop("gamma", 0.99)
        try:
            agent = target._from_checkpoint(env, seed, gamma, hyperparameters, meta)
        except AgentError as exc:
            # a checkpoint of an older lab, or settings the env given does not allow (n_step, n_envs)
            version = meta.get("lab_version", "?")
            raise AgentError(f"cannot load {path} (saved by rl-lab {version}): {exc}") from None
        agent._restore_arrays(arrays)
        agent.num_timesteps, agent.num_episodes = counts
        agent._total_timesteps = total
        agent._stream.set_state(rng_state)
        return agent
