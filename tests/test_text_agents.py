"""Agents on the text environment: the token encoder every agent gets, and language-model policies."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from agents.dqn import DQN
from agents.ppo import PPO
from agents.reinforce import Reinforce
from lab.core.environments import make_env
from lab.nets import encoder_for_space
from lab.nets.encoders import TokenSequenceEncoder, token_layout
from lab.nets.language_model import LanguageModel, LanguageModelActor, save_language_model

DYCK4 = {"language": "dyck", "max_length": 4}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_text_observation_comes_flattened_and_gets_the_token_encoder():
    env = make_env("lab/TextPositive-v0")
    assert token_layout(env.observation_space) == (47, 12)
    obs, _ = env.reset(seed=0)
    assert obs[0] == 0 and (obs[1:] == 47).all()
    encoder = encoder_for_space(env.observation_space, features=8)
    assert isinstance(encoder, TokenSequenceEncoder)
    # the features at a prefix do not depend on the padding after it
    a = torch.tensor([[2, 5, 7, 47, 47], [2, 5, 7, 3, 9]])
    torch.manual_seed(0)
    small = TokenSequenceEncoder(spaces.Box(0, np.array([4, 47, 47, 47, 47]), (5,), np.int64), 8)
    out = small(a)
    torch.testing.assert_close(out[0], out[1])
    # ordinary integer vectors are not token sequences
    assert token_layout(spaces.Box(0, 9, (4,), np.int64)) is None
    assert token_layout(spaces.Box(0.0, 1.0, (4,))) is None


@pytest.mark.parametrize("agent_class", [PPO, Reinforce, DQN])
def test_every_agent_runs_on_the_text_env(agent_class):
    env = make_env("lab/TextPositive-v0")
    kwargs = {"learning_starts": 50} if agent_class is DQN else {"n_steps": 64} if agent_class is PPO else {}
    agent = agent_class(env, seed=0, **kwargs).learn(200)
    action, _ = agent.predict(env.reset(seed=1)[0])
    assert env.action_space.contains(int(action))


def success_rate(agent, env, n: int = 100) -> float:
    wins = 0
    for i in range(n):
        obs, _ = env.reset(seed=10_000 + i)
        done = False
        while not done:
            action, _ = agent.predict(obs, deterministic=False)
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        wins += bool(info.get("success", False))
    return wins / n


def test_ppo_learns_a_tiny_text_task_over_seeds():
    """Balanced brackets within 4 tokens: a random policy succeeds about 4% of the time."""
    before, after = [], []
    for seed in (0, 1, 2):
        env, evaluation = make_env("lab/TextGen-v0", DYCK4), make_env("lab/TextGen-v0", DYCK4)
        agent = PPO(env, seed=seed, n_steps=128, batch_size=64, n_epochs=4, learning_rate=3e-3,
                    policy_kwargs={"features_dim": 32, "net_arch": [32]})  # fmt: skip
        before.append(success_rate(agent, evaluation))
        agent.learn(1200)
        after.append(success_rate(agent, evaluation))
    assert max(before) < 0.15
    assert np.mean(after) > np.mean(before) + 0.3
    assert sum(a > b + 0.3 for a, b in zip(after, before, strict=True)) >= 2


def _saved_model(tmp_path, vocabulary):
    torch.manual_seed(0)
    model = LanguageModel(len(vocabulary), "transformer", context=16, width=16, layers=1, heads=2)
    return model, save_language_model(
        tmp_path / "lm.npz", model, {"vocabulary": vocabulary, "language": "dyck"}
    )


@pytest.mark.parametrize("agent_class", [PPO, Reinforce])
def test_a_language_model_policy_starts_as_the_model(tmp_path, agent_class):
    env = make_env("lab/TextGen-v0", DYCK4)
    vocabulary = list(env.unwrapped.vocabulary.tokens)
    model, path = _saved_model(tmp_path, vocabulary)
    agent = agent_class(env, seed=0, policy_kwargs={"language_model": str(path)})
    obs = np.array([2, 1, 1, 3, 3])  # "( (" then padding
    expected = torch.softmax(model(torch.tensor([[0, 1, 1]]))[0, -1], -1).detach().numpy()
    np.testing.assert_allclose(np.ravel(agent.action_probabilities(obs)), expected, rtol=1e-5, atol=1e-6)
    assert isinstance(agent.policy.language_model, LanguageModelActor)


def test_a_language_model_of_another_vocabulary_is_refused_in_one_line(tmp_path, capsys):
    from lab.cli import main

    _, path = _saved_model(tmp_path, ["<eos>", "a", "b", "c"])
    argv = ["train", "--env", "TextPositive", "--agent", "ppo", "--steps", "10", "--runs-dir", str(tmp_path),
            "--set", f"hyperparameters.policy_kwargs={{language_model: {path}}}"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "vocabulary of 4 tokens but this env has 47" in err and len(err.splitlines()) == 1


def test_evaluation_reports_the_text_tasks_success_rate():
    """lab eval's success rate on a text env is the share of episodes whose end says success (a
    sentence cut at max_length failed); it was missing before (only grid worlds had one)."""
    from lab.evaluation import eval_seed, evaluate, greedy_action

    env = make_env("lab/TextPositive-v0")
    agent = PPO(env, seed=0, use_masking=True)
    result = evaluate(agent, env, 20, seed=3)
    wins = []
    for k in range(20):  # the same episodes by hand
        obs, info = env.reset(seed=eval_seed(3, 0, k))
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(greedy_action(agent, obs, info))
            done = terminated or truncated
        wins.append(bool(info.get("success", False)))
    assert result.success_rate == pytest.approx(np.mean(wins))
    assert f"success {100 * np.mean(wins):.1f}%" in result.summary()


def test_a_run_on_a_relative_grammar_file_is_evaluated_from_another_folder(tmp_path, monkeypatch, capsys):
    """The run records the grammar's absolute path (its spec.yaml is read again by lab eval)."""
    from lab.cli import main

    (tmp_path / "ab.pcfg").write_text('S -> "a" S [0.4] | "b" [0.6]\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--env", "TextGen", "--agent", "ppo", "--steps", "64", "--name", "ab", "--no-progress",
            "--set", "env_kwargs={language: ab.pcfg, max_length: 4}", "--set", "eval_interval=0",
            "--set", "hyperparameters.n_steps=32"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(["eval", str(tmp_path / "runs" / "ab"), "--episodes", "2"]) == 0, capsys.readouterr().err
    assert str(tmp_path / "ab.pcfg") in (tmp_path / "runs" / "ab" / "spec.yaml").read_text()
