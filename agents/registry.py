"""The agents by name: the keys ``lab train`` accepts, and loading a checkpoint of any of them."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator, Mapping

import gymnasium as gym

from agents.common.base import Agent
from agents.tabular.double_q_learning import DoubleQLearning
from agents.tabular.expected_sarsa import ExpectedSarsa
from agents.tabular.monte_carlo import MonteCarlo
from agents.tabular.q_learning import QLearning
from agents.tabular.sarsa import Sarsa


class AgentRegistry(Mapping[str, type[Agent]]):
    """Names to agent classes; neural agents load on first use, so ``import agents`` stays torch-free."""

    def __init__(self, classes: dict[str, type[Agent]], lazy: dict[str, str]) -> None:
        self._classes = dict(classes)
        self._lazy = dict(lazy)  # name -> "module:Class"

    def __getitem__(self, name: str) -> type[Agent]:
        if name not in self._classes and name in self._lazy:
            module, _, attribute = self._lazy[name].partition(":")
            self._classes[name] = getattr(importlib.import_module(module), attribute)
        return self._classes[name]

    def __iter__(self) -> Iterator[str]:
        return iter([*self._classes, *(n for n in self._lazy if n not in self._classes)])

    def __len__(self) -> int:
        return len(set(self._classes) | set(self._lazy))

    def __contains__(self, name: object) -> bool:
        return name in self._classes or name in self._lazy


AGENTS = AgentRegistry(
    {cls.name: cls for cls in (QLearning, Sarsa, ExpectedSarsa, DoubleQLearning, MonteCarlo)},
    {
        "dqn": "agents.dqn:DQN",
        "ppo": "agents.ppo:PPO",
        "a2c": "agents.a2c:A2C",
        "reinforce": "agents.reinforce:Reinforce",
    },
)


def load_agent(path: str | os.PathLike, env: gym.Env | gym.vector.VectorEnv | str | None = None) -> Agent:
    """The agent saved at ``path``, of whichever registered class saved it (``env`` as
    :meth:`Agent.load` takes it)."""
    return Agent.load(path, env=env)
