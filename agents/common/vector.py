"""Collecting from ``n_envs`` copies of an agent's env at once, for DQN and the policy-gradient agents.

Gymnasium's vector envs reset a finished episode on the *next* step: that step ignores its action
and returns the new episode's first observation with reward 0. It is not a real transition, so
:class:`VectorSteps` marks it invalid (agents drop it and it is not counted as a step), while the
final observation it carries over is what a truncated episode bootstraps from. It also keeps each
copy's episode return and length and reports finished episodes through the agent's callback, as
the single-env agents do, and stops on a non-finite observation or reward naming the step.

Agents take what stable-baselines3 and gymnasium users hand them (:func:`as_single_env`): an env,
an env id, or a gymnasium ``VectorEnv``, whose copies are then the ones collected from. Given one
env and ``n_envs=1``, an agent steps that env itself; more copies are made from its spec
(:func:`make_vector_env`).

An env wrapped in gymnasium's ``FlattenObservation`` (the lab's text env, as ``make_env`` gives it)
still gets its batched implementation: the copies are made without the wrapper and the batch is
flattened at once (:class:`FlattenBatch`), to the very arrays the wrapped single envs would give.
"""

from __future__ import annotations

import dataclasses
import weakref
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.spaces import Box
from gymnasium.vector import AutoresetMode

from agents.common.arguments import Callback, learning_budget
from agents.common.base import Agent, episode_seed
from agents.common.errors import AgentError

# The vector envs users gave, by the single env an agent holds in their place (see as_single_env).
_GIVEN: weakref.WeakKeyDictionary[gym.Env, gym.vector.VectorEnv] = weakref.WeakKeyDictionary()


def as_single_env(env: Any, agent: type[Agent] | None = None) -> tuple[gym.Env, gym.vector.VectorEnv | None]:
    """``(one env, the vector env given or None)`` for what a user passed as an agent's env: an env, an
    env id (``gym.make``), or a ``VectorEnv`` (the single env is made from its spec; the agent reads
    the spaces and saves the id from it, and :func:`make_vector_env` then returns the given copies)."""
    if isinstance(env, str):
        if env.startswith("lab/"):
            import envs  # noqa: F401  (registers the lab/ ids)
        try:
            return gym.make(env), None
        except Exception as exc:  # gymnasium raises many kinds; say which id failed
            raise AgentError(f"could not make the env {env!r}: {exc}") from exc
    if not isinstance(env, gym.vector.VectorEnv):
        check_single_env(env, agent)
        return env, None
    check_autoreset(env)
    spec = env.spec
    if spec is None:
        raise AgentError("a VectorEnv without a spec cannot be saved with an agent: use gym.make_vec")
    vector_only = ("num_envs", "vectorization_mode", "vector_kwargs", "wrappers", "render_mode")
    kwargs = {k: v for k, v in (spec.kwargs or {}).items() if k not in vector_only}
    # make_vec records its max_episode_steps among the env's kwargs; it is the spec's own field
    limit = kwargs.pop("max_episode_steps", spec.max_episode_steps)
    try:  # the spec keeps the wrappers around each copy (a FlattenObservation changes the spaces)
        single = gym.make(dataclasses.replace(spec, kwargs=kwargs, max_episode_steps=limit))
        for wrapper in (spec.kwargs or {}).get("wrappers") or ():  # make_vec's wrappers=, around each copy
            single = wrapper(single)
    except Exception as exc:
        raise AgentError(f"could not make one {spec.id} to stand for the VectorEnv: {exc}") from exc
    for what, mine, theirs in (
        ("observation", single.observation_space, env.single_observation_space),
        ("action", single.action_space, env.single_action_space),
    ):
        if mine != theirs:
            raise AgentError(
                f"the VectorEnv's copies have {what} space {theirs}, but one {spec.id} made from its spec "
                f"has {mine}: make the copies with gym.make_vec from an id (wrappers= included)"
            )
    _GIVEN[single] = env
    return single, env


def given_vector_env(env: gym.Env) -> gym.vector.VectorEnv | None:
    """The ``VectorEnv`` a user gave in place of ``env`` (see :func:`as_single_env`), or None."""
    return _GIVEN.get(env)


def check_single_env(env: Any, agent: type[Agent] | None = None) -> None:
    """Refuse what is not an env (``None``, a number, an env's class) in one line naming ``agent``'s
    class, before anything reads its spaces: an env is anything with ``reset``, ``step`` and the two
    spaces, as gymnasium's are."""
    if agent is None or agent is Agent:  # Agent.load: the saved algorithm is not known yet
        name, others = "An agent", "an env id, or for the neural agents a gymnasium VectorEnv"
    else:
        vector = "n_envs" in agent.config_class.names()
        name, others = agent.__name__, "an env id or a gymnasium VectorEnv" if vector else "an env id"
    if isinstance(env, type):
        raise AgentError(
            f"{name} learns on a gymnasium env (or {others}), not the class {env.__name__}: make one "
            f"(gym.make(id) or {env.__name__}(...))"
        )
    needed = ("reset", "step", "observation_space", "action_space")
    if not all(hasattr(env, attribute) for attribute in needed):
        raise AgentError(f"{name} learns on a gymnasium env (or {others}); got {env!r:.80}")


def check_autoreset(env: gym.vector.VectorEnv) -> None:
    """Refuse a vector env that does not reset finished episodes on the next step (gymnasium's
    default, which the agents' collection reads: see the module docstring)."""
    mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    if mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.NEXT_STEP.value):
        name = getattr(mode, "name", mode)
        raise AgentError(
            f"the VectorEnv given resets finished episodes in {name} mode; the agents collect from "
            "gymnasium's default, NEXT_STEP: make it without vector_kwargs autoreset_mode"
        )


class FlattenBatch(gym.wrappers.vector.FlattenObservation):
    """gymnasium's vector ``FlattenObservation`` that flattens a ``Dict`` of ``Box`` observations with
    one concatenation per step instead of one ``flatten`` per copy (which costs more than a text
    env's batched step); the rows are what ``gymnasium.spaces.flatten`` gives each copy's Dict."""

    def __init__(self, env: gym.vector.VectorEnv) -> None:
        super().__init__(env)
        space = env.single_observation_space
        boxes = isinstance(space, gym.spaces.Dict) and all(isinstance(s, Box) for s in space.values())
        self._boxes = [(key, sub.dtype) for key, sub in space.spaces.items()] if boxes else None

    def observations(self, observations: Any) -> Any:
        if self._boxes is None:
            return super().observations(observations)
        n = self.num_envs
        parts = [np.asarray(observations[key], dtype=dtype).reshape(n, -1) for key, dtype in self._boxes]
        return np.concatenate(parts, axis=1).astype(self.single_observation_space.dtype, copy=False)


# Wrappers of a single env that have a batched equivalent, by the entry point a spec records.
_BATCHED_WRAPPERS = {"gymnasium.wrappers.transform_observation:FlattenObservation": FlattenBatch}


def make_vector_env(env: gym.Env, n_envs: int) -> gym.vector.VectorEnv:
    """The vector env an agent collects from. For an agent built on a ``VectorEnv``, that one; with
    ``n_envs=1``, the env the agent was given, as it is (as stable-baselines3 and the lab's DQN
    step it); else ``n_envs`` copies of ``env``, made again from its spec (time limit included), in
    the best vector env it has: its registered batched implementation (our ``GridVectorEnv``,
    ``TextVectorEnv``, gymnasium's ``CartPoleVectorEnv``), with a ``FlattenObservation`` around the
    env done on the batch, else a ``SyncVectorEnv`` (which keeps an ``rgb_array`` render mode for
    wrappers that observe the frames; copies never open ``human`` windows)."""
    given = given_vector_env(env)
    if given is not None:  # Agent.__init__ has checked that n_envs is its num_envs
        return given
    if n_envs == 1:  # its wrappers and any change the user made to it count, as nothing is copied
        return gym.vector.SyncVectorEnv([lambda: env])
    spec = env.spec
    if spec is None:
        raise AgentError("collecting from several envs makes copies of the env from its id: use gym.make")
    if spec.id.startswith("lab/"):
        import envs  # noqa: F401  (registers the lab/ ids)
    kwargs = {k: v for k, v in (spec.kwargs or {}).items() if k not in ("render_mode", "num_envs")}
    render_mode = (spec.kwargs or {}).get("render_mode")
    spec = dataclasses.replace(spec, kwargs=kwargs)
    # other wrappers around a user's env have no batched form: then the copies are made one by one
    wrappers = [None if w.kwargs else _BATCHED_WRAPPERS.get(w.entry_point) for w in spec.additional_wrappers]
    batched = spec.vector_entry_point is not None and None not in wrappers
    try:
        if not batched:
            if render_mode not in (None, "human"):
                spec = dataclasses.replace(spec, kwargs={**kwargs, "render_mode": render_mode})
            return gym.make_vec(spec, num_envs=n_envs, vectorization_mode="sync")
        bare = dataclasses.replace(spec, additional_wrappers=())
        vec = gym.make_vec(bare, num_envs=n_envs, vectorization_mode="vector_entry_point")
    except Exception as exc:  # gymnasium raises many kinds; say which env could not be copied
        raise AgentError(f"could not make {n_envs} copies of {spec.id} for collection: {exc}") from exc
    for wrapper in wrappers:
        vec = wrapper(vec)
    return vec


@dataclasses.dataclass
class Step:
    """One step of every copy: ``valid`` marks real transitions, ``done`` the episodes that ended."""

    next_obs: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    valid: np.ndarray
    done: np.ndarray


class VectorSteps:
    """Steps ``vec`` for ``agent``, keeping the episode bookkeeping (see the module docstring)."""

    def __init__(self, agent: Any, vec: gym.vector.VectorEnv) -> None:
        self.agent, self.vec = agent, vec
        self.obs: np.ndarray | None = None  # None: the next step starts with a reset

    def reset(self) -> np.ndarray:
        """Fresh episodes in every copy (seeded by the agent's episode count, as single envs are)."""
        obs, info = self.vec.reset(seed=episode_seed(self.agent.seed, self.agent.num_episodes))
        n = self.vec.num_envs
        self.obs = np.asarray(obs)
        self.info = info
        self.ended = np.zeros(n, dtype=bool)  # the previous step ended this copy's episode
        self.episode_return = np.zeros(n)
        self.episode_length = np.zeros(n, dtype=np.int64)
        return self.obs

    def step(self, actions: np.ndarray) -> Step:
        """Step every copy; counts the real steps in ``agent.num_timesteps``."""
        next_obs, rewards, terminated, truncated, self.info = self.vec.step(actions)
        rewards = np.asarray(rewards, dtype=np.float64)
        self._check_finite(next_obs, rewards)
        valid = ~self.ended
        terminated, truncated = np.asarray(terminated, bool), np.asarray(truncated, bool)
        done = (terminated | truncated) & valid
        self.episode_return += np.where(valid, rewards, 0.0)
        self.episode_length += valid
        self.agent.num_timesteps += int(valid.sum())
        self.obs, self.ended = np.asarray(next_obs), terminated | truncated
        return Step(self.obs, rewards, terminated, truncated, valid, done)

    def action_masks(self) -> np.ndarray:
        """The copies' ``info["action_mask"]`` for the observations in :attr:`obs`: ``(n_envs, n)``
        booleans, True where an action is allowed (the lab's text envs give them)."""
        masks = self.info.get("action_mask")
        if masks is None:
            raise AgentError(
                "use_masking needs an env that gives info['action_mask'] at every reset and step "
                "(the lab's text envs do, unless made with action_mask=False)"
            )
        masks = np.asarray(masks, dtype=bool)
        rows, n = self.vec.num_envs, int(self.vec.single_action_space.n)
        if masks.size != rows * n:
            raise AgentError(f"info['action_mask'] needs {n} entries a copy; got {masks.size} for {rows}")
        masks = masks.reshape(rows, n)
        blocked = ~masks.any(axis=1) & ~self.ended  # an ended copy's next action is not taken: it resets
        if blocked.any():
            raise AgentError(
                f"the env's info['action_mask'] allows no action in a state whose episode goes on (copy "
                f"{int(np.flatnonzero(blocked)[0])}): the env must allow at least one action there"
            )
        return masks

    def report(self, step: Step, callback: Callback | None) -> bool:
        """Count and report the episodes that ended at ``step``; True when the callback said stop."""
        if report_episodes(
            self.agent, step.done, step.terminated, self.episode_return, self.episode_length, callback
        ):
            self.obs = None  # the next learn() starts afresh
            return True
        self.episode_return[self.ended] = 0.0
        self.episode_length[self.ended] = 0
        return False

    def _check_finite(self, obs: Any, rewards: np.ndarray) -> None:
        obs = np.asarray(obs)
        floating = np.issubdtype(obs.dtype, np.floating)
        if np.isfinite(rewards).all() and (not floating or np.isfinite(obs).all()):
            return  # every step but a bad one: two whole-array checks, then nothing to locate
        bad_rewards = ~np.isfinite(rewards)
        if bad_rewards.any():
            what, bad = "reward", bad_rewards
        else:  # then a float observation is not finite
            what, bad = "observation", ~np.isfinite(obs).reshape(len(rewards), -1).all(axis=1)
        i = int(np.flatnonzero(bad)[0])
        raise non_finite(what, self.agent.num_timesteps + 1, i, int(self.episode_length[i]) + 1)


def report_episodes(
    agent: Any,
    done: np.ndarray,
    terminated: np.ndarray,
    episode_return: np.ndarray,
    episode_length: np.ndarray,
    callback: Callback | None,
) -> bool:
    """Count the episodes of the copies marked ``done`` in ``agent.num_episodes`` and pass each to
    ``callback`` as the single-env agents do; True when the callback said stop (the caller then
    starts afresh; otherwise it zeroes the finished copies' return and length)."""
    for i in np.flatnonzero(done):
        episode = agent.num_episodes
        agent.num_episodes += 1
        if callback is not None:
            event = {
                "agent": agent, "timestep": agent.num_timesteps, "episode": episode,
                "return": float(episode_return[i]), "length": int(episode_length[i]),
                "terminated": bool(terminated[i]),
            }  # fmt: skip
            if callback(event) is False:
                return True
    return False


def non_finite(what: str, step: int, copy: int, episode_step: int) -> AgentError:
    """The error for a non-finite observation or reward from env copy ``copy``."""
    return AgentError(
        f"the env returned a non-finite {what} at step {step} (env copy {copy}, "
        f"episode step {episode_step}): check the env"
    )


def begin_vector_learning(
    agent: Any, total_timesteps: int, reset_num_timesteps: bool, callback: Callback | None
) -> tuple[VectorSteps, int]:
    """The start of ``learn`` for an agent that collects from ``agent.config.n_envs`` copies of its
    env: its arguments checked, the copies (made on the first call), the counts started again or
    carried on as ``reset_num_timesteps`` says (:func:`~agents.common.arguments.learning_budget`).
    Returns the copies' steps and the step count to train up to."""
    total = learning_budget(agent, total_timesteps, reset_num_timesteps, callback)
    steps = agent._steps  # VectorSteps, or None until the first learn()
    if steps is None:
        steps = agent._steps = VectorSteps(agent, make_vector_env(agent.env, agent.config.n_envs))
    if reset_num_timesteps:
        steps.obs = None
    agent._start_learning(total)
    return steps, total
