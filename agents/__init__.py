"""The lab's agents: tabular methods today, with exact planners (``agents.planning``) as ground truth.

Importing this package is light (numpy and gymnasium, no torch). ``AGENTS`` maps the names
``lab train`` accepts to classes; :func:`load_agent` loads a checkpoint of any of them.
"""

from agents.common.base import Agent, episode_seed
from agents.common.errors import AgentError
from agents.registry import AGENTS, load_agent
from agents.tabular import DoubleQLearning, ExpectedSarsa, MonteCarlo, QLearning, Sarsa, TabularAgent

__all__ = [
    "AGENTS",
    "Agent",
    "AgentError",
    "DoubleQLearning",
    "ExpectedSarsa",
    "MonteCarlo",
    "QLearning",
    "Sarsa",
    "TabularAgent",
    "episode_seed",
    "load_agent",
]
