"""Tabular agents: Q-learning, SARSA, Expected SARSA, Double Q-learning, Monte Carlo control."""

from agents.tabular.base import TabularAgent
from agents.tabular.double_q_learning import DoubleQLearning
from agents.tabular.expected_sarsa import ExpectedSarsa
from agents.tabular.monte_carlo import MonteCarlo
from agents.tabular.q_learning import QLearning
from agents.tabular.sarsa import Sarsa

__all__ = ["DoubleQLearning", "ExpectedSarsa", "MonteCarlo", "QLearning", "Sarsa", "TabularAgent"]
