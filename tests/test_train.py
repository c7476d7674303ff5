"""``lab train``, ``--resume`` and ``lab eval``: what a run writes, exact resumption, and clear errors."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest

from agents import load_agent
from lab.core.errors import LabError
from lab.replays import load_episode, verify_episode
from lab.runs import RunDir
from lab.spec import spec_from_dict
from lab.targets import evaluate_target
from lab.train import Trainer, resume, train

SPEC = {
    "name": "cliff",
    "env": "lab/CliffWalk-v0",
    "agent": "q_learning",
    "hyperparameters": {"learning_rate": 0.5, "epsilon": 0.1, "gamma": 1.0},
    "total_timesteps": 6000,
    "seed": 3,
    "eval_interval": 2000,
    "eval_episodes": 3,
    "record_episodes": 1,
    "checkpoint_interval": 1000,
}


def rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_a_run_writes_everything_it_promises(tmp_path):
    [(run, result)] = train(spec_from_dict(SPEC), runs_dir=tmp_path, progress=False)
    assert run.path == tmp_path / "cliff"
    for path in (run.spec, run.status_file, run.metrics, run.evals, run.model, run.curve):
        assert path.is_file(), path
    assert any(run.tensorboard.iterdir())
    assert run.read_status()["status"] == "finished"
    episodes = rows(run.metrics)
    assert episodes[0] == ["timestep", "episode", "return", "length"]
    steps = [int(r[0]) for r in episodes[1:]]
    assert steps == sorted(steps) and steps[-1] <= 6000
    assert sum(int(r[3]) for r in episodes[1:]) == steps[-1]  # every step belongs to one logged episode
    evals = rows(run.evals)[1:]
    assert [int(r[0]) for r in evals][-1] == 6000 and len(evals) == 3  # 2 periodic + the final one
    checkpoints = sorted(p.name for p in run.checkpoints.iterdir())
    assert len(checkpoints) == 3 and checkpoints[-1] == "ckpt-000006000.npz"  # keep_checkpoints: 3
    assert run.best.is_file() and run.read_status()["best"]["mean_return"] == -13.0
    modes = {p.stat().st_mode & 0o777 for p in run.path.rglob("*") if p.is_file()}
    assert len(modes) == 1, modes  # checkpoints, CSVs, plots, events and the lock alike
    # the resolved spec records the agent's defaults as well as what was given
    resolved = spec_from_dict(__import__("yaml").safe_load(run.spec.read_text()))
    assert resolved.hyperparameters["learning_rate"] == 0.5 and "initial_q" in resolved.hyperparameters
    # recorded evaluation episodes replay exactly
    replays = sorted(run.replays.iterdir())
    assert len(replays) == 3
    for path in replays:
        assert verify_episode(load_episode(path)).ok
    # the model is the final agent, and it is optimal on the cliff by now: the exact gap is 0
    agent = load_agent(run.model)
    assert agent.num_timesteps == 6000
    assert result.optimal_value == -13.0 and result.gap == 0.0 and result.success_rate == 1.0


class Killed(Exception):
    pass


@pytest.mark.parametrize("kill", ["between_episodes", "inside_a_checkpoint"])
def test_resume_after_a_kill_equals_an_uninterrupted_run(tmp_path, monkeypatch, kill):
    spec = {**SPEC, "eval_interval": 1000}  # evaluations and checkpoints fall on the same episode ends
    [(whole, _)] = train(spec_from_dict(spec), runs_dir=tmp_path / "a", progress=False)

    if kill == "between_episodes":
        original = Trainer.on_episode

        def dies(self, event):
            if event["timestep"] > 3500:
                raise Killed
            return original(self, event)

        monkeypatch.setattr(Trainer, "on_episode", dies)
    else:  # killed while writing the 4th checkpoint, after that episode's evaluation
        original = Trainer.checkpoint
        calls = []

        def dies(self):
            calls.append(1)
            if len(calls) == 4:
                raise Killed
            return original(self)

        monkeypatch.setattr(Trainer, "checkpoint", dies)
    with pytest.raises(Killed):
        train(spec_from_dict(spec), runs_dir=tmp_path / "b", progress=False)
    monkeypatch.undo()
    killed = RunDir(tmp_path / "b" / "cliff")
    assert not killed.model.is_file()
    assert 2000 <= int(killed.latest_checkpoint().stem.removeprefix("ckpt-")) <= 3500
    assert killed.read_status()["status"] == "running"

    resumed, _ = resume(killed.path, progress=False)
    np.testing.assert_array_equal(load_agent(resumed.model).q_table, load_agent(whole.model).q_table)
    assert rows(resumed.metrics) == rows(whole.metrics)  # rows after the checkpoint were dropped and redone
    assert rows(resumed.evals) == rows(whole.evals)
    assert sorted(p.name for p in resumed.checkpoints.iterdir()) == sorted(
        p.name for p in whole.checkpoints.iterdir()
    )


def test_resume_refuses_what_is_not_a_run(tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(LabError, match="is not a run directory"):
        resume(tmp_path / "plain", progress=False)


def test_lab_eval_on_a_run_and_on_a_model(tmp_path, capsys):
    [(run, _)] = train(spec_from_dict({**SPEC, "total_timesteps": 6000}), runs_dir=tmp_path, progress=False)
    by_run = evaluate_target(run.path, episodes=5)
    shown = capsys.readouterr().out
    assert "episodes" in shown and "5/5" in shown  # the bar counting the episodes
    by_model = evaluate_target(run.model, episodes=5, progress=False)
    assert capsys.readouterr().out == ""
    assert by_run.returns == by_model.returns == [-13.0] * 5
    assert by_run.gap == 0.0
    with pytest.raises(
        LabError, match="trained on Discrete\\(48\\) observations; this env has Discrete\\(16\\)"
    ):
        evaluate_target(run.model, env_id="IceLake", episodes=1)


def run_lab(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "lab.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("train",), "give a spec file"),
        (
            ("train", "--env", "CliffWalk", "--agent", "q_lerning"),
            "unknown agent 'q_lerning'; did you mean 'q_learning'?",
        ),
        (
            ("train", "--env", "CliffWalk", "--agent", "sarsa", "--set", "total_timestep=5"),
            "did you mean 'total_timesteps'?",
        ),
        (("train", "--env", "Nope", "--agent", "sarsa"), "unknown environment 'Nope'"),
        (("train", "missing.yaml"), "no spec file at missing.yaml"),
        (("train", "--resume", "."), "is not a run directory"),
        (
            ("train", "--env", "CliffWalk", "--agent", "sarsa", "--set", "hyperparameters.epsiln=0.1"),
            "epsilon",
        ),
        (("train", "--env", "Maze", "--agent", "sarsa", "--set", "env_kwargs.size=4"), "maze size"),
        (("train", "--env", "Maze", "--agent", "sarsa", "--set", "env_kwargs.obs_type=pixels"), "Discrete"),
        (("eval", "nothing-here"), "neither a run directory nor a model file"),
        (
            ("train", "--env", "CliffWalk", "--agent", "sarsa", "--steps", "2.5"),
            "'2.5' is not a whole number",
        ),
        (("train", "--env", "CliffWalk", "--agent", "sarsa", "--steps", "0"), "a whole number >= 1; got 0"),
        (("train", "--resume", "runs/x", "--runs-dir", "elsewhere"), "leave out --runs-dir"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, args, message):
    result = run_lab(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_whole_number_flags_read_1e5_as_specs_do():
    from lab.cli_types import step_count

    assert step_count("1e5") == 100_000 and step_count("300") == 300 and step_count("2.0") == 2


def test_cli_train_from_a_spec_file_then_eval(tmp_path):
    import yaml

    (tmp_path / "spec.yaml").write_text(yaml.safe_dump({**SPEC, "total_timesteps": 3000}))
    result = run_lab("train", "spec.yaml", "--no-progress", "--set", "eval_episodes=2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "runs/cliff:" in result.stdout
    again = run_lab("train", "spec.yaml", "--no-progress", cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert "lab train --resume runs/cliff" in again.stderr and "--force" in again.stderr
    evaluated = run_lab("eval", "runs/cliff", "--episodes", "3", cwd=tmp_path)
    assert evaluated.returncode == 0 and "over 3 episodes" in evaluated.stdout


def test_seeds_whose_later_run_exists_are_refused_before_any_trains(tmp_path):
    """``seeds: [0, 1]`` with ``<name>-seed1`` already there: refused before seed 0 trains, not after."""
    spec = {**SPEC, "total_timesteps": 200, "eval_interval": 0, "checkpoint_interval": 0}
    train(spec_from_dict({**spec, "seeds": [1]}), runs_dir=tmp_path, progress=False)
    with pytest.raises(LabError, match="cliff-seed1 already exists"):
        train(spec_from_dict({**spec, "seeds": [0, 1]}), runs_dir=tmp_path, progress=False)
    assert not (tmp_path / "cliff-seed0").exists()


def test_seed_flag_with_a_spec_that_lists_seeds_is_refused(tmp_path):
    """``--seed 5`` on a spec with ``seeds: [0, 1]`` ran seeds 0 and 1 and dropped the flag unsaid."""
    from lab.train import spec_from_args

    path = tmp_path / "spec.yaml"
    path.write_text("env: lab/CliffWalk-v0\nagent: q_learning\nseeds: [0, 1]\n")
    with pytest.raises(LabError, match=r"--seed 5 and the spec's seeds: \[0, 1\] disagree"):
        spec_from_args(str(path), None, None, None, 5, None, [])
    one = spec_from_args(str(path), None, None, None, 5, None, ["seeds=null"])
    assert [s.seed for s in one.per_seed()] == [5]
    assert [s.seed for s in spec_from_args(str(path), None, None, None, None, None, []).per_seed()] == [0, 1]


def test_the_seed_is_the_specs_top_level_field_only(tmp_path):
    """hyperparameters.seed was dropped without a word; a spec.yaml of an earlier run repeats its seed
    there, and it still re-runs (with another seed too) and sweeps."""
    import yaml

    from lab.sweeps.grid import known_values
    from lab.train import spec_from_args

    with pytest.raises(
        LabError, match=r"hyperparameters.seed \(4\) is not the run's seed \(3\): set the seed"
    ):
        spec_from_dict({**SPEC, "hyperparameters": {**SPEC["hyperparameters"], "seed": 4}})
    spec = {**SPEC, "total_timesteps": 200, "eval_interval": 0, "checkpoint_interval": 0}
    [(run, _)] = train(spec_from_dict(spec), runs_dir=tmp_path, progress=False)
    saved = yaml.safe_load(run.spec.read_text())
    assert saved["seed"] == 3 and "seed" not in saved["hyperparameters"]
    earlier = tmp_path / "earlier.yaml"  # as runs wrote it before: the seed repeated
    earlier.write_text(yaml.safe_dump({**saved, "hyperparameters": {**saved["hyperparameters"], "seed": 3}}))
    assert spec_from_args(str(earlier), None, None, None, None, None, []).seed == 3
    again = spec_from_args(str(earlier), None, None, None, 7, "again", [])
    assert again.seed == 7 and "seed" not in again.hyperparameters
    assert train(again, runs_dir=tmp_path, progress=False)[0][0].path.name == "again"
    assert (
        known_values(spec_from_dict(yaml.safe_load(earlier.read_text())))["seed"] == 3
    )  # lab sweep reads it


def test_an_agent_name_in_capitals_suggests_the_lab_name():
    """SB3 spells its classes DQN and PPO; the lab's names are lower case."""
    from lab.train import agent_class

    with pytest.raises(LabError, match="unknown agent 'DQN'; did you mean 'dqn'"):
        agent_class("DQN")
