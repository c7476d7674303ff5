"""DQN: the algorithm (``dqn.py``), its hyperparameters (``config.py``) and its Q-network
(``q_network.py``)."""

from agents.dqn.config import DQNConfig
from agents.dqn.dqn import DQN
from agents.dqn.q_network import QNetwork

__all__ = ["DQN", "DQNConfig", "QNetwork"]
