"""Training diagnostics: the figures are right (against their formulas on fixed batches), and ``lab
train`` writes every one of them, finite, to ``train.csv`` and to TensorBoard."""

from __future__ import annotations

import csv
import math
import struct

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents import AGENTS
from agents.common.diagnostics import TrainingFigures, explained_variance
from agents.common.rollout import Rollout
from lab.spec import spec_from_dict
from lab.train import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PPO_KEYS = {
    "train/policy_gradient_loss", "train/value_loss", "train/entropy_loss", "train/approx_kl",
    "train/clip_fraction", "train/explained_variance", "train/learning_rate", "train/grad_norm",
    "train/loss", "train/clip_range", "train/n_updates", "train/early_stop", "time/fps",
}  # fmt: skip
A2C_KEYS = {
    "train/policy_loss", "train/value_loss", "train/entropy_loss", "train/explained_variance",
    "train/learning_rate", "train/grad_norm", "train/loss", "train/n_updates", "time/fps",
}  # fmt: skip
DQN_KEYS = {
    "train/loss", "train/mean_q", "train/grad_norm", "train/learning_rate", "rollout/exploration_rate",
    "train/n_updates", "time/fps",
}  # fmt: skip


def tensorboard_scalars(folder) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in a folder's event files, read from the TFRecord framing (length, its CRC, the
    ``Event`` protobuf, its CRC) with tensorboardX's own protobuf classes."""
    from tensorboardX.proto.event_pb2 import Event

    scalars: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        at = 0
        while at < len(data):
            (length,) = struct.unpack("<Q", data[at : at + 8])
            event = Event.FromString(data[at + 12 : at + 12 + length])
            at += 12 + length + 4
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


def run_and_read(tmp_path, spec: dict) -> tuple[list[dict[str, str]], dict[str, list[tuple[int, float]]]]:
    [(run, _)] = train(spec_from_dict(spec), runs_dir=tmp_path, progress=False)
    with run.training_log.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return rows, tensorboard_scalars(run.tensorboard)


def check_logged(rows, scalars, keys: set[str]) -> None:
    assert rows, "no training rows"
    assert set(rows[0]) == {"timestep", *keys}
    steps = [int(r["timestep"]) for r in rows]
    assert steps == sorted(steps)
    for key in keys:
        column = [float(r[key]) for r in rows]
        assert all(math.isfinite(v) for v in column), key
        logged = scalars[key]
        assert len(logged) == len(rows) and all(math.isfinite(v) for _, v in logged), key
        assert [s for s, _ in logged] == steps
        np.testing.assert_allclose([v for _, v in logged], column, rtol=1e-6)  # TB keeps float32
    updates = [float(r["train/n_updates"]) for r in rows]
    assert updates == sorted(updates) and updates[0] >= 1


QUIET = {"eval_interval": 0, "eval_episodes": 1, "record_episodes": 0, "checkpoint_interval": 0, "seed": 0}


def test_a_ppo_run_logs_every_diagnostic_to_csv_and_tensorboard(tmp_path):
    spec = {
        "name": "ppo", "env": "CartPole-v1", "agent": "ppo", "total_timesteps": 768, **QUIET,
        "hyperparameters": {"n_steps": 64, "batch_size": 32, "n_epochs": 2, "n_envs": 2},
    }  # fmt: skip
    rows, scalars = run_and_read(tmp_path, spec)
    check_logged(rows, scalars, PPO_KEYS)
    assert float(rows[-1]["train/n_updates"]) % 2 == 0  # SB3 counts epochs
    assert all(0.0 <= float(r["train/clip_fraction"]) <= 1.0 for r in rows)
    assert {float(r["train/learning_rate"]) for r in rows} == {3e-4}


@pytest.mark.parametrize(
    ("agent", "hyperparameters", "keys"),
    [
        ("a2c", {}, A2C_KEYS),
        ("reinforce", {"n_episodes": 2}, A2C_KEYS),
        ("reinforce", {"n_episodes": 2, "baseline": False},
         A2C_KEYS - {"train/value_loss", "train/explained_variance"}),  # no critic
    ],
)  # fmt: skip
def test_a2c_and_reinforce_runs_log_every_diagnostic(tmp_path, agent, hyperparameters, keys):
    spec = {"name": agent, "env": "CartPole-v1", "agent": agent, "total_timesteps": 400, **QUIET,
            "hyperparameters": hyperparameters}  # fmt: skip
    check_logged(*run_and_read(tmp_path, spec), keys)


def test_a_dqn_run_logs_every_diagnostic_to_csv_and_tensorboard(tmp_path):
    spec = {
        "name": "dqn", "env": "CartPole-v1", "agent": "dqn", "total_timesteps": 1500, **QUIET,
        "hyperparameters": {"learning_starts": 200, "train_freq": 2, "exploration_fraction": 0.5,
                            "learning_rate": "lin_1e-3", "policy_kwargs": {"net_arch": [32]}},
    }  # fmt: skip
    rows, scalars = run_and_read(tmp_path, spec)
    check_logged(rows, scalars, DQN_KEYS)
    epsilon = [float(r["rollout/exploration_rate"]) for r in rows]
    rates = [float(r["train/learning_rate"]) for r in rows]
    assert len(rows) > 10 and epsilon == sorted(epsilon, reverse=True) and 1.0 > epsilon[0] > epsilon[-1]
    assert epsilon[-1] == pytest.approx(0.05)  # reached half way through
    assert rates == sorted(rates, reverse=True) and 1e-3 > rates[0] > rates[-1]


def test_explained_variance_is_its_formula():
    target = np.array([1.0, 2.0, 3.0, 6.0])  # mean 3, variance 3.5
    assert explained_variance(target, target) == 1.0
    assert explained_variance(np.full(4, 3.0), target) == 0.0  # the mean predicts nothing
    # errors [0, 0, 0, 2]: variance 0.75, so 1 - 0.75 / 3.5
    predicted = np.array([1.0, 2.0, 3.0, 4.0])
    assert explained_variance(predicted, target) == pytest.approx(1 - 0.75 / 3.5, abs=1e-15)
    assert math.isnan(explained_variance(target, np.ones(4)))
    assert math.isnan(explained_variance(np.zeros(0), np.zeros(0)))


def test_figures_are_means_since_the_last_read():
    figures = TrainingFigures()
    assert figures.pop() == {}
    figures.add({"train/loss": 1.0, "train/explained_variance": math.nan}, 3, {"train/learning_rate": 0.1})
    figures.add({"train/loss": 2.0, "train/explained_variance": 0.5}, 3, {"train/learning_rate": 0.2})
    assert figures.pop() == {
        "train/loss": 1.5, "train/explained_variance": 0.5, "train/learning_rate": 0.2, "train/n_updates": 6.0
    }  # fmt: skip
    assert figures.pop() == {}


def test_ppos_approx_kl_clip_fraction_and_explained_variance_on_a_fixed_batch():
    """One epoch, one mini-batch: its figures are read before the step, from the policy as built, so
    they follow from the formulas on the batch with log-probabilities and values computed here."""
    agent = AGENTS["ppo"](gym.make("CartPole-v1"), seed=3, n_steps=16, batch_size=64, n_epochs=1,
                          clip_range=0.1, gamma=0.9, gae_lambda=0.8)  # fmt: skip
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, size=(16, 1, 4)).astype(np.float32)
    actions = rng.integers(0, 2, size=(16, 1))
    with torch.no_grad():
        logits, _, values = agent.policy(torch.from_numpy(obs.reshape(16, 4)))
    new_log_probs = torch.log_softmax(logits, -1).gather(1, torch.as_tensor(actions)).squeeze(1).numpy()
    old_log_probs = (new_log_probs + rng.normal(0, 0.2, 16)).astype(np.float32)  # a policy that moved
    rewards = rng.normal(size=(16, 1)).astype(np.float32)
    zeros = np.zeros((16, 1), np.float32)
    rollout = Rollout(
        obs=obs, actions=actions, log_probs=old_log_probs[:, None], values=values.numpy()[:, None],
        rewards=rewards, terminated=zeros, done=zeros, valid=np.ones((16, 1), bool),
        last_values=np.zeros(1, np.float32),
    )  # fmt: skip
    agent._update(rollout)
    figures = agent.training_figures()
    log_ratio = new_log_probs.astype(np.float64) - old_log_probs
    ratio = np.exp(log_ratio)
    assert figures["train/approx_kl"] == pytest.approx(np.mean(ratio - 1 - log_ratio), rel=1e-4)
    assert figures["train/clip_fraction"] == np.mean(np.abs(ratio - 1) > 0.1)
    # the returns by hand: GAE(0.8) with gamma 0.9 and a final value of 0
    v = values.numpy().astype(np.float64)
    next_v = np.append(v[1:], 0.0)
    deltas = rewards[:, 0] + 0.9 * next_v - v
    advantages = np.zeros(16)
    for t in reversed(range(16)):
        advantages[t] = deltas[t] + (0.9 * 0.8 * advantages[t + 1] if t < 15 else 0.0)
    returns = advantages + v
    expected = 1 - np.var(returns - v) / np.var(returns)
    assert figures["train/explained_variance"] == pytest.approx(expected, rel=1e-5)
    assert figures["train/n_updates"] == 1 and figures["train/early_stop"] == 0.0


class Killed(Exception):
    pass


def test_a_killed_dqn_run_resumes_to_the_same_weights_and_diagnostics(tmp_path, monkeypatch):
    """``lab train --resume`` of a DQN run killed after its checkpoint at 500 steps: with the replay
    buffer in the checkpoint (the default) the model is bit-identical to the uninterrupted run's, and
    ``train.csv`` has the same rows (``time/fps`` aside: it is a clock), those after the checkpoint
    dropped and written again."""
    from lab.runs import RunDir
    from lab.train import Trainer, resume

    spec = {
        "name": "dqn", "env": "CartPole-v1", "agent": "dqn", "total_timesteps": 1200, **QUIET,
        "checkpoint_interval": 500,
        "hyperparameters": {"learning_starts": 200, "train_freq": 2, "target_update_interval": 100,
                            "policy_kwargs": {"net_arch": [32]}},
    }  # fmt: skip
    [(whole, _)] = train(spec_from_dict(spec), runs_dir=tmp_path / "a", progress=False)
    original = Trainer.on_episode

    def dies(self, event):
        if event["timestep"] > 800:
            raise Killed
        return original(self, event)

    monkeypatch.setattr(Trainer, "on_episode", dies)
    with pytest.raises(Killed):
        train(spec_from_dict(spec), runs_dir=tmp_path / "b", progress=False)
    monkeypatch.undo()
    killed = RunDir(tmp_path / "b" / "dqn")
    assert killed.latest_checkpoint() is not None
    resumed, _ = resume(killed.path, progress=False)
    from agents import load_agent

    ours, theirs = load_agent(resumed.model), load_agent(whole.model)
    for a, b in zip(ours.q_net.parameters(), theirs.q_net.parameters(), strict=True):
        assert torch.equal(a, b)

    def without_clock(path):
        with path.open(newline="") as f:
            return [{k: v for k, v in row.items() if k != "time/fps"} for row in csv.DictReader(f)]

    assert without_clock(resumed.training_log) == without_clock(whole.training_log)
    assert len(without_clock(whole.training_log)) > 10


def test_ppos_figures_average_mini_batches_of_unequal_sizes_as_sb3_does():
    """SB3 averages the per-mini-batch means; a shorter last mini-batch weighs as much as the others."""
    from agents.ppo import mean_of_means

    parts = [torch.tensor([1.0, 0.0, 0.0, 0.0]), torch.tensor([1.0, 1.0, 1.0, 1.0]), torch.tensor([0.0])]
    values, lengths = torch.cat(parts), [len(p) for p in parts]
    assert float(mean_of_means(values, lengths)) == pytest.approx((0.25 + 1.0 + 0.0) / 3)
    assert float(mean_of_means(values[:8], lengths[:2])) == pytest.approx(0.625)


@pytest.mark.parametrize(
    "content, reason, resume_refuses",
    [
        (b"\xff\xfe\x00garbage\n", "not UTF-8 text", True),
        (b"timestep,mean_return\nx,1.0\n", "could not convert string to float: 'x'", True),
        (b"timestep,mean_return\n1000,zz\n", "could not convert string to float: 'zz'", False),
        (b"timestep,mean_return\n1000,1.0,7\n", "line 2 has more cells than the header", False),
    ],
)
def test_a_damaged_csv_log_is_one_lab_error_naming_it(tmp_path, content, reason, resume_refuses):
    from lab.core.errors import LabError
    from lab.run_logs import keep_rows_until, read_csv

    path = tmp_path / "eval.csv"
    path.write_bytes(content)
    with pytest.raises(LabError, match=rf"eval.csv is damaged \({reason}"):
        read_csv(path)
    if resume_refuses:  # a resume reads the steps only: it keeps a row whose step is a number
        with pytest.raises(LabError, match=r"eval.csv is damaged"):
            keep_rows_until(path, ["timestep", "mean_return"], 5000)
        assert path.read_bytes() == content  # nothing rewritten
