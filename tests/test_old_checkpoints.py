"""Checkpoints written by rl-lab 0.1.0 (tests/data/v0.1.0, made with the code before the agents'
redesign) still load and act as they did; one made with the removed ``seeding: sb3`` mode is a
one-line error naming both versions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agents import load_agent
from agents.common.errors import AgentError

OLD = Path(__file__).resolve().parent / "data" / "v0.1.0"
EXPECTED = json.loads((OLD / "expected.json").read_text())


def test_a_dqn_checkpoint_from_0_1_0_loads_with_its_q_values_and_trains_on():
    agent = load_agent(OLD / "dqn.npz")
    obs = np.asarray(EXPECTED["obs"], dtype=np.float32)
    np.testing.assert_allclose(agent.q_values(obs), EXPECTED["dqn_q"], rtol=1e-5, atol=1e-6)
    steps = agent.num_timesteps
    agent.learn(100, reset_num_timesteps=False)
    assert agent.num_timesteps == steps + 100


def test_a_ppo_checkpoint_from_0_1_0_loads_with_its_policy_and_trains_on():
    agent = load_agent(OLD / "ppo.npz")
    probs = [agent.action_probabilities(o) for o in np.asarray(EXPECTED["obs"], dtype=np.float32)]
    np.testing.assert_allclose(probs, EXPECTED["ppo_probs"], rtol=1e-5, atol=1e-6)
    steps = agent.num_timesteps
    agent.learn(64, reset_num_timesteps=False)
    assert agent.num_timesteps >= steps + 64


def test_a_checkpoint_of_the_removed_seeding_mode_is_a_one_line_error_naming_the_versions():
    with pytest.raises(AgentError) as info:
        load_agent(OLD / "ppo-seeding-sb3.npz")
    message = str(info.value)
    assert "\n" not in message
    assert "saved by rl-lab 0.1.0" in message and "removed in rl-lab 0.2.0" in message
