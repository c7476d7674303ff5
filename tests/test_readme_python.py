"""The README's Python examples run as written (with a smaller training budget), and ``from agents
import PPO`` works as stable-baselines3's import does without making ``import agents`` need torch."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_the_environment_and_the_agent_examples() -> None:
    blocks = python_blocks()
    assert any("transition_model()" in b for b in blocks)
    assert any("from agents import PPO" in b and "PPO.load" in b for b in blocks)


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_readme_python_block_runs(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = python_blocks()[index]
    # One PPO rollout instead of the README's budget: the test checks the API, not the learning.
    code = re.sub(r"total_timesteps=[\d_]+", "total_timesteps=2_048", code)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme"}
    exec(compile(code, f"README.md python block {index}", "exec"), namespace)
    if "PPO.load" in code:
        assert (tmp_path / "cartpole-ppo.npz").is_file()
        assert namespace["env"].action_space.contains(namespace["action"])


def test_neural_agents_import_by_name_and_lazily() -> None:
    script = (
        "import sys, agents\n"
        "assert 'torch' not in sys.modules\n"
        "from agents import A2C, DQN, PPO, QLearning, Reinforce\n"
        "from agents.a2c import A2C as a2c\n"
        "from agents.dqn import DQN as dqn\n"
        "from agents.ppo import PPO as ppo\n"
        "assert (PPO, DQN, A2C) == (ppo, dqn, a2c) and Reinforce.name == 'reinforce'\n"
        "assert {'PPO', 'DQN', 'A2C', 'Reinforce', 'QLearning'} <= set(dir(agents))\n"
        "try:\n"
        "    from agents import Nonexistent\n"
        "except ImportError:\n"
        "    pass\n"
        "else:\n"
        "    raise AssertionError('an unknown name imported')\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
