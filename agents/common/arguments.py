"""The checks of an agent's ``learn`` and ``predict`` arguments, made before any step is taken,
and ``learn``'s step budget."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from agents.common.config import whole_number
from agents.common.errors import AgentError

Callback = Callable[[dict[str, Any]], "bool | None"]


def check_total_timesteps(total_timesteps: Any) -> int:
    """``learn``'s budget: a whole number >= 0, or an :class:`AgentError`."""
    return whole_number("total_timesteps", total_timesteps, 0)


def check_callback(callback: Any) -> None:
    """``learn``'s callback: ``None`` or a function of one argument (the episode's event dict), or an
    :class:`AgentError` before any step is taken."""
    if callback is None:
        return
    usage = "a function called with one dict at each episode's end (return False to stop)"
    if not callable(callback):
        raise AgentError(f"callback must be {usage}; got a {type(callback).__name__}")
    try:
        signature = inspect.signature(callback)
    except (TypeError, ValueError):  # some builtins have none: they are called as they are
        return
    try:
        signature.bind({})
    except TypeError:
        name = getattr(callback, "__name__", type(callback).__name__)
        raise AgentError(f"callback must be {usage}; {name}{signature} cannot take one argument") from None


def check_observation(space: gym.Space, observation: Any) -> bool:
    """True when ``observation`` is one observation of ``space``, False when it is a batch of them
    (one more leading axis); an :class:`AgentError` naming both shapes otherwise, or naming values
    that are not finite numbers (or, for a ``Discrete`` space, not its whole state numbers)."""
    shape, given = tuple(space.shape or ()), np.shape(observation)
    if given == shape:
        single = True
    elif given[1:] == shape and len(given) == len(shape) + 1:
        single = False
    else:
        raise AgentError(
            f"this agent's observations have shape {shape} (a batch: (n, {', '.join(map(str, shape))})); "
            f"got shape {given}"
        )
    values = np.asarray(observation)
    if values.dtype.kind not in "biuf":
        raise AgentError(f"observations must be numbers; got {values.dtype} values")
    if values.dtype.kind == "f" and not np.isfinite(values).all():  # as learn refuses them from an env
        raise AgentError("observations must be finite; got NaN or infinite values")
    if isinstance(space, gym.spaces.Discrete) and values.size:  # state numbers index an embedding
        start, n = int(space.start), int(space.n)
        if values.dtype.kind == "f" and not (values == np.round(values)).all():
            raise AgentError(f"observations of {space} are whole state numbers; got {values.ravel()[:8]}")
        low, high = values.min(), values.max()
        if low < start or high >= start + n:
            raise AgentError(
                f"observations of {space} lie in [{start}, {start + n}); got values from {low} to {high}"
            )
    return single


def learning_budget(agent: Any, total_timesteps: Any, reset_num_timesteps: bool, callback: Any = None) -> int:
    """The start of every ``learn``: its arguments checked, the counts started again
    (``reset_num_timesteps``) or carried on, and the step count to train up to, recorded as the
    agent's ``_total_timesteps`` (what the schedules run over). Carrying on adds ``total_timesteps``
    to the steps already taken, as stable-baselines3 does, so that ``learn(n,
    reset_num_timesteps=False)`` in a loop trains ``n`` more steps each time; a run resumed from a
    checkpoint passes the steps it has left."""
    check_callback(callback)
    total = check_total_timesteps(total_timesteps)
    if reset_num_timesteps:
        agent.num_timesteps = agent.num_episodes = 0
    else:
        total += agent.num_timesteps
    agent._total_timesteps = total
    return total
