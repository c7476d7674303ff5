"""Q-learning (Watkins, 1989): off-policy TD control.

After each step ``(s, a, r, s')`` of the epsilon-greedy behaviour policy::

    Q(s, a) += alpha * (r + gamma * max_a' Q(s', a') - Q(s, a))

with no bootstrap when ``s'`` is terminal. A truncated episode (a time limit) still bootstraps:
the limit is not part of the task, so ``s'`` keeps its value. The greedy policy converges to the
optimal one whatever the behaviour policy, given enough exploration and decaying step sizes.
"""

from __future__ import annotations

from typing import Any, ClassVar

from agents.tabular.base import TabularAgent


class QLearning(TabularAgent):
    """Tabular Q-learning with epsilon-greedy exploration."""

    name: ClassVar[str] = "q_learning"

    def _episode(self, observation: Any, max_steps: int) -> tuple[float, int, bool, bool]:
        q = self._rows[0]
        update = self._step_size_update()
        step, draw, epsilon_at, gamma, n_actions, obs_start, action_start, t0 = self._loop_locals()

        s = observation - obs_start
        episode_return = 0.0
        for i in range(max_steps):
            row = q[s]
            # Epsilon-greedy: explore with probability epsilon, else the first action of highest value.
            a = int(draw() * n_actions) if draw() < epsilon_at(t0 + i) else row.index(max(row))
            observation, reward, terminated, truncated, _ = step(a + action_start)
            s_next = observation - obs_start
            episode_return += reward

            target = reward if terminated else reward + gamma * max(q[s_next])
            update(s, a, target, t0 + i)

            if terminated or truncated:
                return episode_return, i + 1, terminated, True
            s = s_next
        return episode_return, max_steps, False, False
