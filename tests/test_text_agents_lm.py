"""An agent whose policy started from a language model file loads without that file: its checkpoint
records the model's architecture, and its weights (the model's among them) are the checkpoint's."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from agents import load_agent
from agents.common.checkpoint import read_checkpoint, write_checkpoint
from agents.common.errors import AgentError
from agents.ppo import PPO
from lab.cli import main
from lab.core.environments import make_env

DYCK4 = {"language": "dyck", "max_length": 4}
# "(", "( (", "( )", "( ( )" and an empty prefix, flattened: [length, tokens...], padding 3
OBS = np.array([[1, 1, 3, 3, 3], [2, 1, 1, 3, 3], [2, 1, 2, 3, 3], [3, 1, 1, 2, 3], [0, 3, 3, 3, 3]])


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def language_model(tmp_path_factory):
    """A tiny Dyck language model trained by ``lab lm train``."""
    runs = tmp_path_factory.mktemp("lm")
    small = ["hyperparameters.width=16", "hyperparameters.layers=1", "checkpoint_interval=10",
             "validation_size=20", "eval_samples=20", "eval_held_out=20"]  # fmt: skip
    argv = ["lm", "train", "--language", "dyck", "--steps", "10", "--runs-dir", str(runs), "--no-progress"]
    assert main([*argv, *(a for pair in small for a in ("--set", pair))]) == 0
    return runs / "lm-dyck" / "model.npz"


def probabilities(agent) -> np.ndarray:
    return np.stack([agent.action_probabilities(o) for o in OBS])


def trained_agent(lm_path, tmp_path):
    """A PPO from ``lm_path`` that has learned a little (so its weights are no longer the file's), saved."""
    env = make_env("lab/TextGen-v0", DYCK4)
    policy = {"language_model": str(lm_path), "features_dim": 8, "net_arch": [8]}
    agent = PPO(env, seed=0, n_steps=32, batch_size=32, n_epochs=2, learning_rate=1e-2, policy_kwargs=policy)
    start = probabilities(agent)
    agent.learn(64)
    assert np.abs(probabilities(agent) - start).max() > 1e-4
    return agent, agent.save(tmp_path / "agent.npz")


def test_a_saved_language_model_agent_acts_the_same_without_the_model_file(language_model, tmp_path):
    lm = tmp_path / "lm.npz"
    shutil.copy(language_model, lm)
    agent, saved = trained_agent(lm, tmp_path)
    expected = probabilities(agent)
    lm.unlink()
    for loaded in (load_agent(saved), load_agent(saved, env=make_env("lab/TextGen-v0", DYCK4))):
        np.testing.assert_array_equal(probabilities(loaded), expected)
        assert loaded.hyperparameters == agent.hyperparameters  # it still names the file it started from
        assert loaded.policy.language_model.model.config == agent.policy.language_model.model.config
    # saved again and loaded again, still without the file; and it learns on
    again = load_agent(loaded.save(tmp_path / "again.npz"))
    np.testing.assert_array_equal(probabilities(again), expected)
    again.learn(32, reset_num_timesteps=False)


def _without_architecture(saved, path):
    """The checkpoint as the lab wrote it before checkpoints recorded the language model's architecture."""
    meta, arrays = read_checkpoint(saved)
    del meta["language_model"]
    return write_checkpoint(path, meta, arrays)


def test_an_older_checkpoint_needs_the_model_file_and_says_so_in_one_line(language_model, tmp_path):
    lm = tmp_path / "lm.npz"
    shutil.copy(language_model, lm)
    agent, saved = trained_agent(lm, tmp_path)
    old = _without_architecture(saved, tmp_path / "old.npz")
    np.testing.assert_array_equal(probabilities(load_agent(old)), probabilities(agent))  # the file is there
    lm.unlink()
    with pytest.raises(AgentError) as info:
        load_agent(old)
    message = str(info.value)
    assert "\n" not in message and str(lm) in message and "put that file back" in message


def test_an_edited_architecture_is_refused_in_one_line(language_model, tmp_path):
    _, saved = trained_agent(language_model, tmp_path)
    meta, arrays = read_checkpoint(saved)
    for architecture, words in (
        ({**meta["language_model"], "width": 40_000, "layers": 40}, "at most 50,000,000"),
        ({**meta["language_model"], "depth": 2}, "architecture is a mapping"),
        ({**meta["language_model"], "width": 32}, "does not fit"),  # buildable, but not the saved weights
    ):
        forged = write_checkpoint(tmp_path / "forged.npz", {**meta, "language_model": architecture}, arrays)
        with pytest.raises(AgentError) as info:
            load_agent(forged)
        assert words in str(info.value) and "\n" not in str(info.value)


def test_lab_eval_runs_a_language_model_run_whose_model_file_is_gone(language_model, tmp_path, capsys):
    lm = tmp_path / "lm.npz"
    shutil.copy(language_model, lm)
    argv = ["train", "--env", "TextDyck", "--agent", "ppo", "--steps", "64", "--runs-dir", str(tmp_path),
            "--name", "from-lm", "--no-progress", "--set", "hyperparameters.n_steps=32",
            "--set", f"hyperparameters.policy_kwargs={{language_model: {lm}, features_dim: 8}}"]  # fmt: skip
    assert main(argv) == 0
    lm.unlink()
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "from-lm"), "--episodes", "3"]) == 0
    assert "return" in capsys.readouterr().out
