"""``compile: true``: each neural agent's loss goes through ``torch.compile`` and learns what the eager
agent learns, to rounding (the fused kernels round differently, nothing else changes)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from agents import load_agent
from agents.a2c import A2C
from agents.common.errors import AgentError
from agents.dqn.dqn import DQN
from agents.ppo import PPO

pytestmark = pytest.mark.slow  # each compiles (a few seconds, the first one more)

SMALL = {"policy_kwargs": {"net_arch": [16]}}
PPO_SET = {"n_envs": 4, "n_steps": 64, "batch_size": 100, "n_epochs": 2, "clip_range": "lin_0.2"}
GAUSSIAN_SET = {"n_envs": 2, "n_steps": 64, "batch_size": 64, "clip_range_vf": 0.2}
DQN_SET = {"learning_starts": 100, "train_freq": 4, "batch_size": 32, "double_q": True}
# (agent, env, hyperparameters, steps). CartPole's episode ends change the batch sizes, which compiles
# a second time (for dynamic sizes); Pendulum's first 200 steps keep them fixed, one compile each
CASES = {
    "ppo": (PPO, "CartPole-v1", PPO_SET, 800),
    "ppo-gaussian": (PPO, "Pendulum-v1", GAUSSIAN_SET, 384),
    "a2c": (A2C, "Pendulum-v1", {"n_envs": 4}, 760),  # A2C's loss function is REINFORCE's
    "dqn-double": (DQN, "CartPole-v1", DQN_SET, 800),
}


def _weights(agent: object) -> list[np.ndarray]:
    net = agent.q_net if isinstance(agent, DQN) else agent.policy  # type: ignore[attr-defined]
    return [p.detach().numpy().copy() for p in net.parameters()]


def _distance(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """The Euclidean distance between two networks' weights, all tensors together."""
    return float(np.sqrt(sum(((x - y).astype(np.float64) ** 2).sum() for x, y in zip(a, b, strict=True))))


@pytest.mark.parametrize("case", CASES)
def test_a_compiled_agent_learns_what_the_eager_one_learns(case: str) -> None:
    cls, env_id, hp, steps = CASES[case]
    eager = cls(gym.make(env_id), seed=3, **SMALL, **hp).learn(steps)
    fast = cls(gym.make(env_id), seed=3, compile=True, **SMALL, **hp).learn(steps)
    name = "td_loss" if cls is DQN else "loss"
    assert getattr(eager, "_" + name) == getattr(eager, name)  # eager: the method itself
    assert getattr(fast, "_" + name).__wrapped__ == getattr(fast, name)  # torch.compile's wrapper of it
    assert fast._figures.n_updates == eager._figures.n_updates > 0
    start = _weights(cls(gym.make(env_id), seed=3, **SMALL, **hp))
    # The compiled run's weights stay within a hundredth of how far training moved the eager one's (a
    # wrong loss would be off by the whole move). Not element by element: rounding that puts a sample's
    # ratio on the other side of PPO's clip, or flips the sign of a near-zero gradient under Adam, moves
    # a weight by a step's size. Where both runs compute tanh alike they differ by about 1e-7 of the
    # move. On an Intel CPU the eager tanh is torch's and the compiled one lab.nets' sigmoid form
    # (agreeing to 2.5e-7), and PPO on CartPole differs by 9e-4 of the move here (3.7e-4 to 2.9e-3
    # over seeds 0-7); with torch's kernels without vector units (ATEN_CPU_CAPABILITY=default) by 1.2e-3.
    learned = _weights(eager)
    moved = _distance(learned, start)
    assert moved > 0  # it learned
    assert _distance(_weights(fast), learned) <= 1e-2 * moved
    figures_eager, figures_fast = eager.training_figures(), fast.training_figures()
    assert figures_fast.keys() == figures_eager.keys()
    for key, value in figures_eager.items():
        # the clip fraction counts samples past the clip: a few of them can fall either side (0.213 and
        # 0.218 without vector units)
        tolerance = {"abs": 0.02} if key == "train/clip_fraction" else {"rel": 1e-3, "abs": 1e-5}
        assert figures_fast[key] == pytest.approx(value, **tolerance), key


def test_a_compiled_agent_saves_loads_and_learns_on(tmp_path) -> None:
    agent = PPO("CartPole-v1", seed=0, compile=True, n_envs=2, n_steps=32, batch_size=64, **SMALL).learn(200)
    agent.save(tmp_path / "ppo.npz")
    loaded = load_agent(tmp_path / "ppo.npz")
    assert loaded.config.compile is True
    before = _weights(loaded)
    steps = loaded.num_timesteps
    loaded.learn(250, reset_num_timesteps=False)  # 250 more steps, as stable-baselines3
    assert loaded.num_timesteps >= steps + 250
    assert any(not np.array_equal(a, b) for a, b in zip(before, _weights(loaded), strict=True))
    assert all(np.isfinite(w).all() for w in _weights(loaded))


def test_compile_without_a_cpp_compiler_is_one_clear_error(monkeypatch) -> None:
    monkeypatch.setattr("agents.common.networks.shutil.which", lambda name: None)
    for cls in (PPO, DQN):
        with pytest.raises(AgentError, match="compile: true needs a C\\+\\+ compiler"):
            cls("CartPole-v1", compile=True)
    PPO("CartPole-v1", compile=False)  # off: nothing is asked of the machine


def test_compile_is_a_flag() -> None:
    with pytest.raises(AgentError, match="compile must be true or false"):
        PPO("CartPole-v1", compile="yes")
