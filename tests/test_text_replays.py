"""Text episodes are replays that verify by re-simulation: agents see (and replays store) the flattened
observation ``[length, tokens...]``, and the replay's env is made again the same way."""

from __future__ import annotations

import numpy as np
import pytest

from agents.dqn import DQN
from lab.cli import main
from lab.core.environments import make_env
from lab.evaluation import evaluate
from lab.replays import episode_frames, load_episode, save_episode, verify_episode

REVERSE = "lab/TextReverse-v0"  # prompts "abc|", answers "cba", V = 5 tokens (padding 5)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def recorded(tmp_path):
    """Three greedy evaluation episodes of an untrained DQN, recorded as ``lab eval`` and training do."""
    env = make_env(REVERSE)
    agent = DQN(env, seed=0, policy_kwargs={"net_arch": [16]})
    result = evaluate(agent, env, episodes=3, seed=1, record=3, record_dir=tmp_path, source="eval-dqn")
    assert len(result.replays) == 3
    return [load_episode(path) for path in result.replays]


def test_a_recorded_text_episode_holds_the_flattened_observations_and_verifies(recorded):
    for episode in recorded:
        assert episode.env_id == REVERSE and episode.observations.shape == (episode.length + 1, 11)
        length, tokens = episode.observations[:, 0], episode.observations[:, 1:]
        np.testing.assert_array_equal(length[1:] - length[:-1], 1)  # one token a step
        np.testing.assert_array_equal(tokens[np.arange(1, episode.length + 1), length[:-1]], episode.actions)
        assert tokens[0, length[0] - 1] == 4  # the prompt ends with "|"
        assert "action_mask" in episode.infos  # re-checked at every step too
        result = verify_episode(episode)
        assert result.ok, str(result)
        assert str(result) == f"matches exactly ({episode.length} steps)"
        assert len(episode_frames(episode)) == episode.length + 1  # re-rendered by re-simulation


def test_a_tampered_text_replay_fails_verification_at_the_step(recorded):
    episode = max(recorded, key=lambda e: e.length)
    t = episode.length - 1  # change the last token (the end token or a letter) to another letter
    episode.actions[t] = 1 if episode.actions[t] != 1 else 2
    result = verify_episode(episode)
    assert not result.ok and (result.difference.step, result.difference.field) == (t + 1, "observations")

    episode = recorded[0]
    episode.observations[0, 1] = (episode.observations[0, 1] % 3) + 1  # another first prompt letter
    result = verify_episode(episode)
    assert (result.difference.step, result.difference.field) == (0, "observations")

    episode = recorded[1]
    episode.rewards[-1] += 1.0
    result = verify_episode(episode)
    assert (result.difference.step, result.difference.field) == (episode.length, "rewards")


def test_text_runs_record_replays_that_lab_replay_verifies(tmp_path, capsys):
    run = tmp_path / "reverse"
    argv = ["train", "--env", "TextReverse", "--agent", "dqn", "--steps", "100", "--runs-dir", str(tmp_path),
            "--name", "reverse", "--no-progress", "--set", "eval_episodes=2", "--set", "record_episodes=2",
            "--set", "hyperparameters.learning_starts=50"]  # fmt: skip
    assert main(argv) == 0
    watched = tmp_path / "watched"
    assert main(["watch", str(run), "--record", "--episodes", "2", "--replays", str(watched)]) == 0
    files = sorted((run / "replays").glob("*.npz")) + sorted(watched.glob("*.npz"))
    assert len(files) == 4
    capsys.readouterr()
    for path in files:
        assert main(["replay", str(path), "--verify"]) == 0
        assert "matches exactly" in capsys.readouterr().out
    tampered = load_episode(files[-1])
    tampered.observations[-1, 0] += 1
    save_episode(tampered, tmp_path / "tampered.npz")
    assert main(["replay", str(tmp_path / "tampered.npz"), "--verify"]) == 1
    assert "differs at step" in capsys.readouterr().out
