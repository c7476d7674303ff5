"""A rollout of collected steps and its advantages, which REINFORCE, A2C and PPO compute alike.

Advantages are GAE(lambda) (Schulman et al., 2016)::

    delta_t = r_t + gamma * (1 - terminated_t) * V(s_t+1) - V(s_t)
    A_t     = delta_t + gamma * lambda * (1 - done_t) * A_t+1

so a time limit cuts the sum but keeps the bootstrap, and a termination does neither.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from agents.common.errors import AgentError
from lab.core.limits import MAX_BUFFER_BYTES

ROLLOUT_KEYS = ("obs", "actions", "log_probs", "values", "rewards", "terminated", "done", "valid")


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
    masks: np.ndarray  # (T, N, n) booleans, with use_masking only


def check_rollout_size(n_steps: int, n_envs: int, obs_space: spaces.Space, act_space: spaces.Space) -> None:
    """An :class:`AgentError` when a rollout of ``n_steps`` on ``n_envs`` envs would pass the replay
    buffer's memory bound, before it is collected for hours."""
    # float32 rows of the observation, the action and five figures, held twice (the rows, the batch)
    row = 8 * (spaces.flatdim(obs_space) + spaces.flatdim(act_space) + 5) * n_envs
    if n_steps * row > MAX_BUFFER_BYTES:
        raise AgentError(
            f"a rollout of n_steps={n_steps:,} on {n_envs} env(s) would take "
            f"{n_steps * row / 2**30:.3g} GiB; n_steps is at most {MAX_BUFFER_BYTES // row:,} here"
        )


def gae(rollout: Rollout, gamma: float, lam: float, bootstrap: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(advantages, returns)`` by GAE(lambda); ``bootstrap=False`` gives Monte Carlo returns-to-go
    (REINFORCE: no value of the next state, time limits end the sum like terminations)."""
    values = rollout.values if bootstrap else np.zeros_like(rollout.values)
    next_values = np.concatenate([values[1:], rollout.last_values[None]]) if bootstrap else values
    keep = 1.0 - rollout.terminated if bootstrap else 1.0 - rollout.done
    deltas = rollout.rewards + gamma * keep * next_values - values
    carry = gamma * lam * (1.0 - rollout.done)
    advantages = np.zeros_like(deltas)
    running = np.zeros_like(deltas[0])
    for t in reversed(range(len(deltas))):
        running = deltas[t] + carry[t] * running
        advantages[t] = running
    return advantages, advantages + values
