"""Double Q-learning (van Hasselt, 2010): two tables, each judged by the other.

Q-learning's ``max`` over noisy estimates is biased upward. Double Q-learning keeps tables A and
B; after each step a fair coin picks one to update, choosing the next action with it and valuing
that action with the other::

    A(s, a) += alpha * (r + gamma * B(s', argmax_a' A(s', a')) - A(s, a))      (or B and A swapped)

The agent acts epsilon-greedily on ``(A + B) / 2``, which is ``q_table``; both tables are saved.
With ``learning_rate="1/N"`` each table counts its own updates.
"""

from __future__ import annotations

from operator import add
from typing import Any, ClassVar

import numpy as np

from agents.tabular.base import TabularAgent


class DoubleQLearning(TabularAgent):
    """Tabular Double Q-learning with epsilon-greedy exploration on the average of its tables."""

    name: ClassVar[str] = "double_q_learning"
    table_names: ClassVar[tuple[str, ...]] = ("q_table_a", "q_table_b")

    @property
    def q_table(self) -> np.ndarray:
        """``(A + B) / 2``, the table the agent acts on (a new array each time)."""
        a, b = self._synced_tables()
        return (a + b) / 2.0

    @property
    def q_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """The two tables A and B themselves."""
        a, b = self._synced_tables()
        return a, b

    def _action_values(self, states: np.ndarray) -> np.ndarray:
        a, b = self._synced_tables()
        return a[states] + b[states]  # same argmax and ties as the average: halving is exact

    def _episode(self, observation: Any, max_steps: int) -> tuple[float, int, bool, bool]:
        qa, qb = self._rows
        update_a, update_b = self._step_size_update(0), self._step_size_update(1)
        step, draw, epsilon_at, gamma, n_actions, obs_start, action_start, t0 = self._loop_locals()

        s = observation - obs_start
        episode_return = 0.0
        for i in range(max_steps):
            if draw() < epsilon_at(t0 + i):
                a = int(draw() * n_actions)
            else:
                both = list(map(add, qa[s], qb[s]))
                a = both.index(max(both))
            observation, reward, terminated, truncated, _ = step(a + action_start)
            s_next = observation - obs_start
            episode_return += reward

            # The coin: update A (judged by B) or B (judged by A).
            if draw() < 0.5:
                table, judge, update = qa, qb, update_a
            else:
                table, judge, update = qb, qa, update_b
            if terminated:
                target = reward
            else:
                chooser = table[s_next]
                target = reward + gamma * judge[s_next][chooser.index(max(chooser))]
            update(s, a, target, t0 + i)

            if terminated or truncated:
                return episode_return, i + 1, terminated, True
            s = s_next
        return episode_return, max_steps, False, False
