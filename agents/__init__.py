"""The lab's agents: tabular methods, DQN and the policy-gradient family, with exact planners
(``agents.planning``) as ground truth.

``from agents import PPO`` works as ``from stable_baselines3 import PPO`` does. Importing this package
stays light (numpy and gymnasium): the torch agents (``DQN``, ``PPO``, ``A2C``, ``Reinforce``) load on
first use. ``AGENTS`` maps the names ``lab train`` accepts to classes; :func:`load_agent` loads a
checkpoint of any of them.
"""

from agents.common.base import Agent, episode_seed
from agents.common.errors import AgentError
from agents.registry import AGENTS, load_agent
from agents.tabular import DoubleQLearning, ExpectedSarsa, MonteCarlo, QLearning, Sarsa, TabularAgent

# The torch agents, imported when first named (PEP 562), so that ``import agents`` needs no torch.
_NEURAL = {"DQN": "dqn", "PPO": "ppo", "A2C": "a2c", "Reinforce": "reinforce"}


def __getattr__(name: str) -> type[Agent]:
    if name in _NEURAL:
        return AGENTS[_NEURAL[name]]
    raise AttributeError(f"module 'agents' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "A2C",
    "AGENTS",
    "DQN",
    "PPO",
    "Agent",
    "AgentError",
    "DoubleQLearning",
    "ExpectedSarsa",
    "MonteCarlo",
    "QLearning",
    "Reinforce",
    "Sarsa",
    "TabularAgent",
    "episode_seed",
    "load_agent",
]
