"""DQN's hyperparameters (:class:`DQNConfig`): stable-baselines3's names and defaults, so that an
rl-baselines3-zoo DQN entry works unchanged, plus the lab's n-step, prioritized replay, dueling and
Double DQN options; checked once, when the agent is built (:mod:`agents.common.config`).

One default differs: ``buffer_size`` is 100,000 (SB3: 1,000,000), since the buffer's arrays are
allocated when the agent is built: a million rows of a 36x36 pixel maze would take 7.8 GB."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

from agents.common.config import AgentConfig, choice, count, flag, fraction, mapping, positive, rate
from agents.common.errors import AgentError
from agents.common.schedules import LinearSchedule, Schedule
from agents.dqn.q_network import check_policy_kwargs, check_replay_buffer_kwargs


@dataclass(frozen=True)
class DQNConfig(AgentConfig):
    """DQN's hyperparameters: stable-baselines3's names and defaults (``buffer_size`` aside: see the
    module docstring), plus n-step, prioritized replay, dueling and Double DQN options."""

    renamed: ClassVar[dict[str, str]] = {"n_step": "n_steps"}

    learning_rate: Schedule = rate(1e-4)
    buffer_size: int = count(100_000)
    learning_starts: int = count(100, minimum=0)
    batch_size: int = count(32)
    tau: float = fraction(1.0)
    train_freq: int = count(4)
    # SB3: -1 means as many gradient steps as env steps since the last burst
    gradient_steps: int = count(1, -1, "gradient_steps must be a whole number >= 0, or -1 (= train_freq)")
    target_update_interval: int = count(10_000)
    exploration_fraction: float = fraction(0.1)
    exploration_initial_eps: float = fraction(1.0)
    exploration_final_eps: float = fraction(0.05)
    max_grad_norm: float = positive(10.0)
    policy_kwargs: dict[str, Any] = mapping({"net_arch": [64, 64]}, check_policy_kwargs)
    double_q: bool = flag(False)
    dueling: bool = flag(False)
    n_steps: int = count(1)  # n-step returns (SB3's name; rl-lab 0.2.0 called it n_step)
    prioritized: bool = flag(False)
    per_alpha: float = fraction(0.6)
    per_beta: float = fraction(0.4)
    loss: str = choice("huber", ("huber", "mse"))
    save_replay_buffer: bool = flag(True)  # checkpoints resume exactly; False: smaller, not exact
    n_envs: int = count(1)
    # SB3's handle_timeout_termination=False: a truncation ends the return like a termination (for
    # envs whose observation holds the step count, such as the text env: no step follows the limit)
    replay_buffer_kwargs: dict[str, Any] = mapping({}, check_replay_buffer_kwargs)
    # torch.compile the TD loss (forward passes, loss and backward): see agents.common.networks.compiled
    compile: bool = flag(False)

    def check(self) -> None:
        if self.tau == 0.0:
            raise AgentError("tau must be in (0, 1]: 0 would never update the target network")
        if self.batch_size > self.buffer_size:
            raise AgentError(
                f"batch_size ({self.batch_size}) must be at most buffer_size ({self.buffer_size}): "
                "a mini-batch is drawn once the buffer holds batch_size transitions, so DQN would never train"
            )
        if self.n_envs > 1 and self.n_steps > 1:
            raise AgentError(
                "n-step returns (n_steps > 1) need one env (n_envs=1): the buffer folds in one stream of "
                "steps"
            )

    @cached_property
    def exploration(self) -> LinearSchedule:
        """SB3's epsilon: from initial to final over the first ``exploration_fraction`` of training."""
        initial, final = self.exploration_initial_eps, self.exploration_final_eps
        return LinearSchedule(initial, final, self.exploration_fraction)
