"""Expected SARSA (van Seijen et al., 2009): TD control on the expectation over the next action.

The target averages ``Q(s', .)`` over the epsilon-greedy policy instead of sampling ``a'``::

    Q(s, a) += alpha * (r + gamma * [(1 - eps) * max_a' Q(s', a') + eps * mean_a' Q(s', a')] - Q(s, a))

(epsilon is the one used for this step's action). No bootstrap when ``s'`` is terminal; a
truncated episode bootstraps. Removing the sampling noise of ``a'`` lets it use larger step sizes
than SARSA; with epsilon at 0 it is Q-learning.
"""

from __future__ import annotations

from typing import Any, ClassVar

from agents.tabular.base import TabularAgent


class ExpectedSarsa(TabularAgent):
    """Tabular Expected SARSA with an epsilon-greedy behaviour and target policy."""

    name: ClassVar[str] = "expected_sarsa"

    def _episode(self, observation: Any, max_steps: int) -> tuple[float, int, bool, bool]:
        q = self._rows[0]
        update = self._step_size_update()
        step, draw, epsilon_at, gamma, n_actions, obs_start, action_start, t0 = self._loop_locals()

        s = observation - obs_start
        episode_return = 0.0
        for i in range(max_steps):
            row = q[s]
            epsilon = epsilon_at(t0 + i)
            a = int(draw() * n_actions) if draw() < epsilon else row.index(max(row))
            observation, reward, terminated, truncated, _ = step(a + action_start)
            s_next = observation - obs_start
            episode_return += reward

            if terminated:
                target = reward
            else:
                row_next = q[s_next]
                expected = (1.0 - epsilon) * max(row_next) + epsilon * sum(row_next) / n_actions
                target = reward + gamma * expected
            update(s, a, target, t0 + i)

            if terminated or truncated:
                return episode_return, i + 1, terminated, True
            s = s_next
        return episode_return, max_steps, False, False
