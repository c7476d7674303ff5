"""What every tabular agent shares: Q tables, epsilon-greedy acting, step sizes, checkpoints.

Speed. A grid-world step costs about a microsecond, so the learning loops (one per algorithm
module) work on Python lists, not numpy arrays: indexing a list of floats is several times faster
than indexing an array, and nothing is allocated per step. While ``learn`` runs the lists hold the
truth; the numpy tables are refreshed from them only when someone looks (``q_table``, ``predict``,
``save``, in a callback or after ``learn``), and if a callback looked, the lists are refreshed
back from the tables, so a callback may even edit them.

Hyperparameters (besides ``seed`` and ``gamma``; :class:`TabularConfig`):

- ``learning_rate``: the step size, a number in (0, 1], a schedule dict whose values stay in (0, 1]
  (so not rl-zoo's ``"lin_<x>"``, which ends at 0), or ``"1/N"``
  for one over the number of updates of that state-action pair so far (for Monte Carlo: the
  sample average of its returns). A decaying step size settles the noisy estimates of stochastic
  worlds (IceLake), which a constant one keeps stirring.
- ``epsilon``: the exploration rate, a number in [0, 1] or a schedule (see :mod:`agents.common.schedules`:
  a dict, or rl-zoo's ``"lin_<x>"``),
  read at the current env step. Acting draws a uniform ``u``; if ``u < epsilon`` the action is
  uniform over all actions (a second draw), otherwise greedy.
- ``initial_q``: the initial value of every Q entry (optimistic values explore).

Greedy means the highest Q value, ties broken toward the lowest action index, always.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from agents.common.base import Agent
from agents.common.config import ONE_OVER_N, AgentConfig, number, schedule
from agents.common.errors import AgentError
from agents.common.schedules import Schedule


def step_size(default: float | str) -> Any:
    """The tabular ``learning_rate`` field: a schedule with values in (0, 1], or ``"1/N"``."""
    error = (
        "learning_rate must be a number in (0, 1], a schedule dict whose values lie in (0, 1], "
        "or the string '1/N'"
    )
    return schedule(default, 0.0, 1.0, open_low=True, one_over_n=True, error=error)


@dataclass(frozen=True)
class TabularConfig(AgentConfig):
    """The step size, the exploration rate and the tables' initial value."""

    learning_rate: Schedule | str = step_size(0.1)
    epsilon: Schedule = schedule(
        0.1, 0.0, 1.0, range_error="epsilon is a probability: its values must lie in [0, 1]"
    )
    initial_q: float = number(0.0)


class EpisodeLocals(NamedTuple):
    """The hot loop's view of the agent (see :meth:`TabularAgent._loop_locals`)."""

    step: Callable[[Any], tuple[Any, Any, bool, bool, dict]]
    draw: Callable[[], float]
    epsilon_at: Callable[[int], float]
    gamma: float
    n_actions: int
    obs_start: int
    action_start: int
    t0: int


class TabularAgent(Agent):
    """An agent with one (or, for Double Q-learning, two) ``[n_states, n_actions]`` tables."""

    config_class: ClassVar[type[AgentConfig]] = TabularConfig
    config: TabularConfig
    table_names: ClassVar[tuple[str, ...]] = ("q_table",)

    n_states: int
    n_actions: int

    # ----- set-up -----

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        obs_space = getattr(env, "observation_space", None)
        act_space = getattr(env, "action_space", None)
        if obs_space is None or act_space is None:
            raise AgentError(f"{cls.__name__} learns on a gymnasium env (or an env id); got {env!r}")
        if not isinstance(obs_space, spaces.Discrete):
            raise AgentError(
                f"{cls.__name__} needs a Discrete observation space; this env has {obs_space}. "
                "Make the env with obs_type='index' (the lab's grid worlds) or wrap it to number its states"
            )
        if not isinstance(act_space, spaces.Discrete):
            raise AgentError(f"{cls.__name__} needs a Discrete action space; this env has {act_space}")

    def _setup(self) -> None:
        obs_space, act_space = self.env.observation_space, self.env.action_space
        self.n_states, self.n_actions = int(obs_space.n), int(act_space.n)
        self._obs_start, self._action_start = int(obs_space.start), int(act_space.start)
        config = self.config
        self._epsilon_schedule: Schedule = config.epsilon
        self._one_over_n = config.learning_rate == ONE_OVER_N
        self._learning_rate_schedule = None if isinstance(config.learning_rate, str) else config.learning_rate
        shape = (self.n_states, self.n_actions)
        self._tables = [np.full(shape, config.initial_q, dtype=np.float64) for _ in self.table_names]
        self._counts = [np.zeros(shape, dtype=np.int64) for _ in self.table_names] if self._one_over_n else []
        # While learn() runs: the tables and counts as lists (the truth), and whether the arrays lag.
        self._rows: list[list[list[float]]] | None = None
        self._count_rows: list[list[list[int]]] | None = None
        self._stale = False
        self._exposed = False

    # ----- the tables -----

    def _synced_tables(self) -> list[np.ndarray]:
        """The numpy tables, brought up to date with the learning loop's lists if need be."""
        if self._rows is not None:
            if self._stale:
                for table, rows in zip(self._tables, self._rows, strict=True):
                    table[...] = rows
                for counts, rows in zip(self._counts, self._count_rows or [], strict=True):
                    counts[...] = rows
                self._stale = False
            self._exposed = True
        return self._tables

    @property
    def q_table(self) -> np.ndarray:
        """``Q[s, a]``, float64 ``(n_states, n_actions)``: the table the agent acts greedily on."""
        return self._synced_tables()[0]

    def _action_values(self, states: np.ndarray) -> np.ndarray:
        """The rows of ``q_table`` for ``states`` (or anything with the same argmax and ties)."""
        return self._synced_tables()[0][states]

    def values(self) -> np.ndarray:
        """``V(s) = max_a Q(s, a)``."""
        return self.q_table.max(axis=1)

    def greedy_policy(self) -> np.ndarray:
        """The greedy action of every state (lowest index among ties)."""
        return self.q_table.argmax(axis=1)

    @property
    def epsilon(self) -> float:
        """The exploration rate at the current step (``num_timesteps``)."""
        return self._epsilon_schedule.value(self.num_timesteps, self._total_timesteps)

    # ----- acting -----

    def _states_of(self, observation: Any) -> tuple[np.ndarray, bool]:
        """Observations as 0-based state indices, and whether a single scalar was given."""
        obs = np.asarray(observation)
        if obs.dtype.kind not in "iu":
            if obs.dtype.kind == "f" and obs.size and np.all(obs == np.round(obs)):
                obs = obs.astype(np.int64)
            else:
                raise AgentError(
                    f"{type(self).__name__} observations are state numbers (integers) of "
                    f"Discrete({self.n_states}); got {observation!r}"
                )
        states = obs.astype(np.int64) - self._obs_start
        if states.size and (states.min() < 0 or states.max() >= self.n_states):
            bad = obs.reshape(-1)[((states < 0) | (states >= self.n_states)).reshape(-1)][0]
            raise AgentError(
                f"observation {bad} is outside the observation space Discrete({self.n_states}"
                + (f", start={self._obs_start})" if self._obs_start else ")")
            )
        return states, obs.ndim == 0

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray | int, None]:
        """The greedy action (``deterministic``) or an epsilon-greedy one, for one state or a batch.

        A scalar observation gives an ``int``; an array gives an array of the same shape. Epsilon-greedy
        draws from the agent's own random numbers (the ones ``learn`` uses, saved with it).
        """
        states, scalar = self._states_of(observation)
        flat = states.reshape(-1)
        actions = self._action_values(flat).argmax(axis=1) if flat.size else np.zeros(0, dtype=np.int64)
        if not deterministic:
            epsilon, draw, n = self.epsilon, self._stream.draw, self.n_actions
            for i in range(flat.size):
                if draw() < epsilon:
                    actions[i] = int(draw() * n)
        actions = actions.astype(np.int64) + self._action_start
        if scalar:
            return int(actions[0]), None
        return actions.reshape(states.shape), None

    # ----- the learning loop's hooks -----

    def _start_learning(self, total_timesteps: int) -> None:
        self._rows = [table.tolist() for table in self._tables]
        self._count_rows = [counts.tolist() for counts in self._counts]
        self._stale = False
        self._exposed = False
        self._epsilon_at = self._epsilon_schedule.bind(total_timesteps)
        if self._learning_rate_schedule is not None:
            self._learning_rate_at = self._learning_rate_schedule.bind(total_timesteps)

    def _run_episode(self, observation: Any, max_steps: int) -> tuple[float, int, bool, bool]:
        result = self._episode(observation, max_steps)
        self._stale = True
        return result

    def _episode(self, observation: Any, max_steps: int) -> tuple[float, int, bool, bool]:
        """One episode of the algorithm, on the lists ``self._rows`` (and ``self._count_rows``)."""
        raise NotImplementedError

    def _step_size_update(self, table: int = 0) -> Callable[[int, int, float, int], None]:
        """``update(s, a, target, t)`` on the lists of table ``table``: ``Q(s, a)`` moves toward ``target``
        by the step size at env step ``t`` (``learning_rate``), or, under ``"1/N"``, by one over the pair's
        number of updates so far (counted here)."""
        q = self._rows[table]
        if self._one_over_n:
            counts = self._count_rows[table]

            def update(s: int, a: int, target: float, t: int) -> None:
                row, n = q[s], counts[s][a] + 1
                counts[s][a] = n
                row[a] += (target - row[a]) / n

        else:
            alpha_at = self._learning_rate_at

            def update(s: int, a: int, target: float, t: int) -> None:
                row = q[s]
                row[a] += alpha_at(t) * (target - row[a])

        return update

    def _loop_locals(self) -> EpisodeLocals:
        """What an episode's loop reads every step, fetched once: locals are the fastest lookups."""
        return EpisodeLocals(
            step=self.env.step,
            draw=self._stream.draw,
            epsilon_at=self._epsilon_at,
            gamma=self.gamma,
            n_actions=self.n_actions,
            obs_start=self._obs_start,
            action_start=self._action_start,
            t0=self.num_timesteps,
        )

    def _after_callback(self) -> None:
        if self._exposed and self._rows is not None:
            # The callback saw the arrays (and might have changed them): the lists follow them.
            for table, rows in zip(self._tables, self._rows, strict=True):
                for row, values in zip(rows, table.tolist(), strict=True):
                    row[:] = values
            for counts, rows in zip(self._counts, self._count_rows or [], strict=True):
                for row, values in zip(rows, counts.tolist(), strict=True):
                    row[:] = values
            self._exposed = False

    def _stop_learning(self) -> None:
        self._synced_tables()
        self._rows = None
        self._count_rows = None
        self._exposed = False

    # ----- checkpoints -----

    def _array_names(self) -> list[tuple[str, str]]:
        """(table name, visit-count name) per table."""
        names = []
        for table_name in self.table_names:
            suffix = table_name.removeprefix("q_table")
            names.append((table_name, f"visit_counts{suffix}"))
        return names

    def _checkpoint_arrays(self) -> dict[str, np.ndarray]:
        tables = self._synced_tables()
        arrays: dict[str, np.ndarray] = {"q_table": self.q_table}
        for i, (table_name, count_name) in enumerate(self._array_names()):
            arrays[table_name] = tables[i]
            if self._counts:
                arrays[count_name] = self._counts[i]
        return arrays

    def _restore_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        shape = (self.n_states, self.n_actions)
        for i, (table_name, count_name) in enumerate(self._array_names()):
            wanted = [(table_name, self._tables[i], "f")]
            if self._counts:
                wanted.append((count_name, self._counts[i], "iu"))
            for key, target, kinds in wanted:
                array = arrays.get(key)
                if array is None:
                    raise AgentError(f"the checkpoint has no {key!r} array, which a {self.name} agent needs")
                if array.shape != shape or array.dtype.kind not in kinds:
                    raise AgentError(
                        f"the checkpoint's {key!r} is {array.dtype} {array.shape}; "
                        f"a {self.name} agent on this env needs {shape}"
                    )
                if (
                    kinds == "iu"
                    and array.size
                    and not 0 <= array.min() <= array.max() <= np.iinfo(np.int64).max
                ):
                    raise AgentError(f"the checkpoint's {key!r} holds counts outside 0..2**63 - 1")
                target[...] = array
