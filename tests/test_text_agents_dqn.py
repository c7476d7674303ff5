"""DQN on the text env: truncations that end the return (SB3's handle_timeout_termination), and
learning exact arithmetic answers with the GRU token encoder (configs/text-arithmetic-dqn.yaml)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agents.common.errors import AgentError
from agents.dqn import DQN
from lab.core.environments import make_env
from lab.spec import load_spec_file

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "text-arithmetic-dqn.yaml"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("n_envs", [1, 3])
@pytest.mark.parametrize("handle", [True, False])
def test_a_truncation_bootstraps_only_while_timeouts_are_handled(handle, n_envs):
    """One token per episode: the end token terminates (discount 0), any other token truncates."""
    env = make_env("lab/TextArithmetic-v0", {"max_operand": 4, "max_length": 1, "action_mask": False})
    agent = DQN(env, seed=0, gamma=0.9, n_envs=n_envs, learning_starts=10_000,
                replay_buffer_kwargs={"handle_timeout_termination": handle})  # fmt: skip
    agent.learn(300)  # random tokens only (before learning starts)
    buffer = agent.buffer
    actions, discounts = buffer.actions[: buffer.size], buffer.discounts[: buffer.size]
    assert buffer.size >= 300 and (actions == 0).any() and (actions != 0).any()
    np.testing.assert_array_equal(discounts[actions == 0], 0.0)
    np.testing.assert_allclose(discounts[actions != 0], 0.9 if handle else 0.0)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [({"handle_timeout_termination": "no"}, "must be true or false"), ({"size": 3}, "takes handle_timeout")],
)
def test_bad_replay_buffer_kwargs_are_one_line(kwargs, words):
    with pytest.raises(AgentError) as info:
        DQN(make_env("lab/TextArithmetic-v0"), replay_buffer_kwargs=kwargs)
    assert words in str(info.value) and "\n" not in str(info.value)


def greedy_success(agent, env, n: int = 100) -> float:
    wins = 0
    for i in range(n):
        obs, _ = env.reset(seed=50_000 + i)
        done = False
        while not done:
            action, _ = agent.predict(obs, deterministic=True)
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        wins += bool(info.get("success", False))
    return wins / n


@pytest.mark.slow
def test_dqn_learns_exact_arithmetic_answers_over_seeds():
    """The config's settings at 20,000 of its 40,000 steps (epsilon falls over the first 4,000).
    Pass rule: every untrained agent succeeds on under 10% of 100 prompts drawn, and 2 of seeds 0, 1, 2
    reach 40%. Measured on seeds 0-4: 83%, 54%, 83%, 55%, 52% with AVX-512 kernels, and 60%, 58%,
    60%, 57%, 60% with torch's and MKL's scalar ones (ATEN_CPU_CAPABILITY=default,
    MKL_ENABLE_INSTRUCTIONS=SSE4_2). At 12,000 steps the seeds spread over 26-75%, too wide for a
    bar with a margin (the scalar kernels' seeds 1 and 2 reached 37% and 34%); the config's 40,000
    steps reach 88-100%."""
    spec = load_spec_file(CONFIG)
    hyperparameters = dict(spec["hyperparameters"])
    outcomes, passed = [], 0
    for seed in (0, 1, 2):
        env, evaluation = make_env(spec["env"], spec["env_kwargs"]), make_env(spec["env"], spec["env_kwargs"])
        agent = DQN(env, seed=seed, **hyperparameters)
        before = greedy_success(agent, evaluation)
        assert before < 0.1, f"seed {seed}: the untrained agent already succeeds on {before:.0%}"
        agent.learn(20_000)
        after = greedy_success(agent, evaluation)
        passed += after >= 0.4
        outcomes.append(f"seed {seed}: {before:.0%} -> {after:.0%}")
        if passed == 2 or len(outcomes) - passed == 2:
            break
    assert passed >= 2, "; ".join(outcomes)
