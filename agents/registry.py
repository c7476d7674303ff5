"""The agents by name: the keys ``lab train`` accepts, and loading a checkpoint of any of them."""

from __future__ import annotations

import os

import gymnasium as gym

from agents.base import Agent
from agents.tabular.double_q_learning import DoubleQLearning
from agents.tabular.expected_sarsa import ExpectedSarsa
from agents.tabular.monte_carlo import MonteCarlo
from agents.tabular.q_learning import QLearning
from agents.tabular.sarsa import Sarsa

AGENTS: dict[str, type[Agent]] = {
    cls.name: cls for cls in (QLearning, Sarsa, ExpectedSarsa, DoubleQLearning, MonteCarlo)
}


def load_agent(path: str | os.PathLike, env: gym.Env | None = None) -> Agent:
    """The agent saved at ``path``, of whichever registered class saved it."""
    return Agent.load(path, env=env)
