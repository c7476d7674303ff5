"""First-visit Monte Carlo control with an epsilon-soft policy (Sutton & Barto, section 5.4).

The agent plays a whole episode epsilon-greedily, then walks it backwards accumulating the return
``G``; at the first visit of each state-action pair in the episode::

    Q(s, a) += alpha * (G - Q(s, a))

With ``learning_rate="1/N"`` (the default here) ``Q(s, a)`` is the average of its first-visit
returns, the textbook algorithm. Acting greedily on the updated Q is the policy improvement.

A time limit is not part of the task, so a truncated episode's return is completed with the
current estimate of its last state's value under the epsilon-greedy policy,
``(1 - eps) * max_a Q(s_T, a) + eps * mean_a Q(s_T, a)``; a terminated episode's tail is 0. An
episode cut short by ``learn``'s ``total_timesteps`` teaches nothing (its return is unknown).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from agents.common.config import ONE_OVER_N, AgentConfig
from agents.common.schedules import Schedule
from agents.tabular.base import TabularAgent, TabularConfig, step_size


@dataclass(frozen=True)
class MonteCarloConfig(TabularConfig):
    """As every tabular agent's, but the step size defaults to ``"1/N"``: the sample average."""

    learning_rate: Schedule | str = step_size(ONE_OVER_N)


class MonteCarlo(TabularAgent):
    """On-policy first-visit Monte Carlo control, epsilon-soft (epsilon-greedy) policy."""

    name: ClassVar[str] = "monte_carlo"
    config_class: ClassVar[type[AgentConfig]] = MonteCarloConfig

    def _episode(self, observation: Any, max_steps: int) -> tuple[float, int, bool, bool]:
        q = self._rows[0]
        update = self._step_size_update()
        step, draw, epsilon_at, gamma, n_actions, obs_start, action_start, t0 = self._loop_locals()

        # Play the episode, remembering (state, action, reward) and each pair's first visit.
        s = observation - obs_start
        states: list[int] = []
        actions: list[int] = []
        rewards: list[float] = []
        first_visit: dict[int, int] = {}
        terminated = truncated = False
        for i in range(max_steps):
            row = q[s]
            epsilon = epsilon_at(t0 + i)
            a = int(draw() * n_actions) if draw() < epsilon else row.index(max(row))
            observation, reward, terminated, truncated, _ = step(a + action_start)
            states.append(s)
            actions.append(a)
            rewards.append(reward)
            first_visit.setdefault(s * n_actions + a, i)
            s = observation - obs_start
            if terminated or truncated:
                break
        length = len(rewards)
        episode_return = float(sum(rewards))
        if not (terminated or truncated):
            return episode_return, length, False, False

        # Walk it backwards: G_t = r_t + gamma * G_{t+1}, updating at first visits.
        if terminated:
            g = 0.0
        else:
            row = q[s]
            g = (1.0 - epsilon) * max(row) + epsilon * sum(row) / n_actions
        t_last = t0 + length - 1  # every update takes the step size of the episode's last step
        for t in range(length - 1, -1, -1):
            g = rewards[t] + gamma * g
            s, a = states[t], actions[t]
            if first_visit[s * n_actions + a] == t:
                update(s, a, g, t_last)
        return episode_return, length, terminated, True
