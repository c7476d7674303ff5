"""SARSA (Rummery & Niranjan, 1994): on-policy TD control.

The next action ``a'`` is chosen epsilon-greedily in ``s'`` before the update, and then taken::

    Q(s, a) += alpha * (r + gamma * Q(s', a') - Q(s, a))

with no bootstrap when ``s'`` is terminal; a truncated episode (a time limit) bootstraps from
``Q(s', a')`` with ``a'`` drawn as usual. SARSA learns the value of the policy it follows, so its
greedy policy reaches the optimal one only as epsilon decays toward 0.
"""

from __future__ import annotations

from typing import Any, ClassVar

from agents.tabular.base import TabularAgent


class Sarsa(TabularAgent):
    """Tabular SARSA with epsilon-greedy exploration."""

    name: ClassVar[str] = "sarsa"

    def _episode(self, observation: Any, max_steps: int) -> tuple[float, int, bool, bool]:
        q = self._rows[0]
        update = self._step_size_update()
        step, draw, epsilon_at, gamma, n_actions, obs_start, action_start, t0 = self._loop_locals()

        s = observation - obs_start
        row = q[s]
        a = int(draw() * n_actions) if draw() < epsilon_at(t0) else row.index(max(row))
        episode_return = 0.0
        for i in range(max_steps):
            observation, reward, terminated, truncated, _ = step(a + action_start)
            s_next = observation - obs_start
            episode_return += reward

            if terminated:
                target = reward
            else:
                # The action the agent will take next (epsilon read at the step that takes it).
                row_next = q[s_next]
                if draw() < epsilon_at(t0 + i + 1):
                    a_next = int(draw() * n_actions)
                else:
                    a_next = row_next.index(max(row_next))
                target = reward + gamma * row_next[a_next]
            update(s, a, target, t0 + i)

            if terminated or truncated:
                return episode_return, i + 1, terminated, True
            s, a, row = s_next, a_next, row_next
        return episode_return, max_steps, False, False
