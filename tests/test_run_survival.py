"""Run directories that survive: Ctrl-C, a kill at any point, two runs at once, damaged checkpoints, a
full disk, ``--force``, the best model beside the last, and a progress bar that fits 80 columns."""

from __future__ import annotations

import csv
import errno
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from agents import load_agent
from lab.cli import main
from lab.core.errors import LabError
from lab.evaluation import EvalResult
from lab.progress import progress_fields, training_progress
from lab.runs import RunDir, RunStopped, resolve_model_path
from lab.spec import spec_from_dict
from lab.train import Trainer, resume, run_summary, train

SPEC = {
    "name": "cliff",
    "env": "lab/CliffWalk-v0",
    "agent": "q_learning",
    "hyperparameters": {"learning_rate": 0.5, "epsilon": 0.1, "gamma": 1.0},
    "total_timesteps": 6000,
    "seed": 3,
    "eval_interval": 1000,
    "eval_episodes": 3,
    "record_episodes": 0,
    "checkpoint_interval": 1000,
}


class Killed(Exception):
    pass


def rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """The uninterrupted run every survivor must end as."""
    [(run, result)] = train(spec_from_dict(SPEC), runs_dir=tmp_path_factory.mktemp("whole"), progress=False)
    return run, result


def assert_same_run(run, whole):
    reference, _ = whole
    np.testing.assert_array_equal(load_agent(run.model).q_table, load_agent(reference.model).q_table)
    assert rows(run.metrics) == rows(reference.metrics)
    assert rows(run.evals) == rows(reference.evals)
    assert run.read_status()["status"] == "finished" and run.curve.is_file()
    np.testing.assert_array_equal(load_agent(run.best).q_table, load_agent(reference.best).q_table)


def kill_between_episodes(monkeypatch, after):
    original = Trainer.on_episode

    def dies(self, event):
        if event["timestep"] > after:
            raise Killed
        return original(self, event)

    monkeypatch.setattr(Trainer, "on_episode", dies)


# ----- 1. Ctrl-C -----


def lab(*args, cwd, **kwargs):
    return subprocess.Popen(
        [sys.executable, "-m", "lab.cli", *args], cwd=cwd, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs,
    )  # fmt: skip


def test_ctrl_c_writes_a_checkpoint_prints_the_resume_command_and_exits_130(tmp_path, monkeypatch, capsys):
    long = {**SPEC, "total_timesteps": 10**8, "eval_interval": 0}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(long))
    process = lab("train", "spec.yaml", "--no-progress", cwd=tmp_path)
    checkpoints = tmp_path / "runs" / "cliff" / "checkpoints"
    deadline = time.monotonic() + 120
    while not (checkpoints.is_dir() and any(checkpoints.glob("ckpt-*.npz"))):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("lab: stopped at step ") and last.endswith(
        "continue with: lab train --resume runs/cliff"
    )
    run = RunDir(tmp_path / "runs" / "cliff")
    stopped_at = int(run.latest_checkpoint().stem.removeprefix("ckpt-"))
    assert f"step {stopped_at:,} ({run.latest_checkpoint().name} written)" in last
    assert run.read_status()["status"] == "stopped"
    # A hundred million steps would take long: the resumed run is told to end soon after the stop.
    shorter = {**yaml.safe_load(run.spec.read_text()), "total_timesteps": stopped_at + 2000}
    run.spec.write_text(yaml.safe_dump(shorter))
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--resume", "runs/cliff", "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith("runs/cliff: mean return")
    assert run.read_status()["status"] == "finished"
    assert load_agent(run.model).num_timesteps == stopped_at + 2000


def test_a_run_stopped_with_ctrl_c_resumes_exactly(tmp_path, monkeypatch, whole):
    original = Trainer.on_episode

    def presses_ctrl_c(self, event):
        if event["timestep"] > 2500 and not self.stop.requested:
            os.kill(os.getpid(), signal.SIGINT)  # the handler only sets a flag: the episode ends normally
        return original(self, event)

    monkeypatch.setattr(Trainer, "on_episode", presses_ctrl_c)
    before = signal.getsignal(signal.SIGINT)  # Python's default, or SIG_IGN in a background job
    with pytest.raises(RunStopped, match="continue with: lab train --resume"):
        train(spec_from_dict(SPEC), runs_dir=tmp_path, progress=False)
    monkeypatch.undo()
    run = RunDir(tmp_path / "cliff")
    assert 2500 < int(run.latest_checkpoint().stem.removeprefix("ckpt-")) < 3000  # off the 1000-step grid
    assert signal.getsignal(signal.SIGINT) is before  # the handler is put back
    resume(run.path, progress=False)
    assert_same_run(run, whole)


# ----- 2. a kill after the final checkpoint, or before the first -----


@pytest.mark.parametrize("where", ["after_the_final_checkpoint", "after_model_npz"])
def test_resume_finishes_a_run_killed_at_its_end(tmp_path, monkeypatch, whole, where):
    if where == "after_the_final_checkpoint":
        original = Trainer.checkpoint

        def dies(self):
            path = original(self)
            if self.final_done:
                raise Killed
            return path

        monkeypatch.setattr(Trainer, "checkpoint", dies)
    else:
        monkeypatch.setattr(Trainer, "_plot", lambda self: (_ for _ in ()).throw(Killed()))
    with pytest.raises(Killed):
        train(spec_from_dict(SPEC), runs_dir=tmp_path, progress=False)
    monkeypatch.undo()
    run = RunDir(tmp_path / "cliff")
    assert run.read_status()["status"] == "running" and not run.curve.exists()
    _, result = resume(run.path, progress=False)
    assert_same_run(run, whole)
    assert result.returns == whole[1].returns and result.gap == whole[1].gap
    with pytest.raises(LabError, match="already finished"):
        resume(run.path, progress=False)


def test_a_run_killed_past_its_total_in_a_last_rollout_resumes_to_its_end(tmp_path, monkeypatch):
    # PPO finishes its last rollout past the total (as SB3's does), and checkpoints at episode ends
    # there: resuming from such a checkpoint has no steps left, and only finishes the run.
    spec = {
        "name": "ppo", "env": "CartPole-v1", "agent": "ppo", "total_timesteps": 100, "seed": 0,
        "hyperparameters": {"n_envs": 2, "n_steps": 32, "batch_size": 64, "n_epochs": 1},
        "eval_interval": 0, "eval_episodes": 2, "record_episodes": 0, "checkpoint_interval": 10,
    }  # fmt: skip
    original = Trainer.checkpoint

    def dies_past_the_total(self):
        path = original(self)
        if self.agent.num_timesteps > 100 and not self.final_done:
            raise Killed
        return path

    monkeypatch.setattr(Trainer, "checkpoint", dies_past_the_total)
    with pytest.raises(Killed):
        train(spec_from_dict(spec), runs_dir=tmp_path, progress=False)
    monkeypatch.undo()
    run = RunDir(tmp_path / "ppo")
    stopped_at = int(run.latest_checkpoint().stem.removeprefix("ckpt-"))
    assert stopped_at > 100
    resume(run.path, progress=False)
    assert run.read_status()["status"] == "finished"
    assert load_agent(run.model).num_timesteps == stopped_at


def test_a_run_killed_before_its_first_checkpoint_starts_again(tmp_path, monkeypatch, whole, capsys):
    kill_between_episodes(monkeypatch, after=500)
    with pytest.raises(Killed):
        train(spec_from_dict(SPEC), runs_dir=tmp_path, progress=False)
    monkeypatch.undo()
    run = RunDir(tmp_path / "cliff")
    assert run.latest_checkpoint() is None and len(rows(run.metrics)) > 1
    resume(run.path, progress=False)
    assert f"lab: {run.path} has no checkpoint yet: starting it again from step 0" in capsys.readouterr().err
    assert_same_run(run, whole)


# ----- 3. everything that decides the future is in the checkpoint -----


def test_the_evaluation_counter_comes_from_the_checkpoint_not_run_json(tmp_path, monkeypatch, whole):
    kill_between_episodes(monkeypatch, after=3500)
    with pytest.raises(Killed):
        train(spec_from_dict(SPEC), runs_dir=tmp_path, progress=False)
    monkeypatch.undo()
    run = RunDir(tmp_path / "cliff")
    run.status_file.write_text("{}")  # run.json lost: the checkpoint alone must decide
    resume(run.path, progress=False)
    assert_same_run(run, whole)


# ----- 4. two runs of one name at once -----


def test_a_second_run_on_the_same_directory_is_refused(tmp_path):
    other = RunDir(tmp_path / "cliff")
    with other.claim(fresh=True):  # another process training runs/cliff (flock is per open file)
        with pytest.raises(LabError, match=r"is being trained by another process \(pid \d+\)"):
            train(spec_from_dict(SPEC), runs_dir=tmp_path, progress=False)
        other.spec.write_text("env: lab/CliffWalk-v0\n")
    with (
        pytest.raises(LabError, match="created by another run just now"),
        RunDir(tmp_path / "cliff").claim(True),
    ):
        pass


# ----- 5. damaged checkpoints, leftovers, how many are kept, a full disk -----


def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, monkeypatch, whole, capsys):
    kill_between_episodes(monkeypatch, after=3500)
    with pytest.raises(Killed):
        train(spec_from_dict(SPEC), runs_dir=tmp_path, progress=False)
    monkeypatch.undo()
    run = RunDir(tmp_path / "cliff")
    latest, previous = run.checkpoint_files()[:2]
    latest.write_bytes(latest.read_bytes()[:100])
    (run.checkpoints / f".{latest.name}.x1y2.tmp").write_bytes(b"half a file")
    resume(run.path, progress=False)
    err = capsys.readouterr().err
    assert f"lab: cannot resume from {latest.name} (" in err and f"trying {previous.name}" in err
    assert_same_run(run, whole)
    assert not list(run.path.rglob("*.tmp"))


def test_every_checkpoint_damaged_is_one_error_and_changes_nothing(tmp_path, monkeypatch):
    kill_between_episodes(monkeypatch, after=2500)
    with pytest.raises(Killed):
        train(spec_from_dict(SPEC), runs_dir=tmp_path, progress=False)
    monkeypatch.undo()
    run = RunDir(tmp_path / "cliff")
    for path in run.checkpoint_files():
        path.write_bytes(path.read_bytes()[:100])
    before = {p: p.read_bytes() for p in run.path.rglob("*") if p.is_file()}
    with pytest.raises(LabError, match="truncated"):
        resume(run.path, progress=False)
    assert before == {p: p.read_bytes() for p in run.path.rglob("*") if p.is_file()}


@pytest.mark.parametrize(("keep", "expected"), [(2, [6000, 5001]), (0, None)])
def test_keep_checkpoints(tmp_path, keep, expected):
    [(run, _)] = train(spec_from_dict({**SPEC, "keep_checkpoints": keep}), runs_dir=tmp_path, progress=False)
    steps = [int(p.stem.removeprefix("ckpt-")) for p in run.checkpoint_files()]
    if expected is None:  # 0 keeps every one
        assert len(steps) == 6 and steps[0] == 6000
    else:
        assert steps == expected
    assert run.best.is_file()


def test_a_full_disk_is_one_line_and_keeps_the_earlier_checkpoints(tmp_path, monkeypatch, whole):
    import lab.core.archive

    real_savez = np.savez
    written = []

    def savez(file, *args, **kwargs):
        if '"metadata"' in str(kwargs["meta"]):  # a checkpoint: it carries the trainer's state
            written.append(1)
            if len(written) == 3:
                file.write(b"PK\x03\x04 a few bytes")
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_savez(file, *args, **kwargs)

    monkeypatch.setattr(lab.core.archive.np, "savez", savez)
    with pytest.raises(LabError) as info:
        train(spec_from_dict(SPEC), runs_dir=tmp_path, progress=False)
    monkeypatch.undo()
    run = RunDir(tmp_path / "cliff")
    message = str(info.value)
    assert "\n" not in message
    latest = run.latest_checkpoint()
    assert message == (
        f"no space left on the disk; the last good checkpoint is {latest.name}: "
        f"free some space, then 'lab train --resume {run.path}'"
    )
    assert [p.name for p in run.checkpoint_files()] == [latest.name, "ckpt-000001004.npz"]
    assert load_agent(latest).num_timesteps == int(latest.stem.removeprefix("ckpt-"))
    assert not list(run.path.rglob("*.tmp"))
    resume(run.path, progress=False)
    assert_same_run(run, whole)


# ----- 6. --force -----


def test_force_moves_the_old_run_aside(tmp_path, capsys):
    spec = {**SPEC, "total_timesteps": 1000}
    [(old, _)] = train(spec_from_dict(spec), runs_dir=tmp_path, progress=False)
    with pytest.raises(LabError, match=r"already exists; continue it with 'lab train --resume .*--force"):
        train(spec_from_dict(spec), runs_dir=tmp_path, progress=False)
    [(new, _)] = train(spec_from_dict(spec), runs_dir=tmp_path, progress=False, force=True)
    [aside] = [p for p in tmp_path.iterdir() if p.name.startswith("cliff.old-")]
    assert f"lab: moved the old run {old.path} aside to {aside}" in capsys.readouterr().err
    assert (aside / "model.npz").is_file() and new.read_status()["status"] == "finished"


# ----- 7. the best model beside the last -----


def test_best_npz_is_the_best_evaluation_and_eval_takes_best(whole, capsys):
    run, _ = whole
    best = run.read_status()["best"]
    evaluated = rows(run.evals)[1:]
    first_best = next(r for r in evaluated if float(r[1]) == max(float(e[1]) for e in evaluated))
    assert best == {"mean_return": float(first_best[1]), "timestep": int(first_best[0])}
    assert load_agent(run.best).num_timesteps == best["timestep"]
    assert resolve_model_path(run.path, best=True) == run.best
    assert resolve_model_path(run.path) == run.model
    with pytest.raises(LabError, match="--best takes a run directory"):
        resolve_model_path(run.model, best=True)
    assert main(["eval", str(run.path), "--best", "--episodes", "2"]) == 0
    assert "over 2 episodes" in capsys.readouterr().out


def test_a_final_model_far_below_the_best_says_so(tmp_path):
    run = RunDir(tmp_path / "r")
    run.write_status(best={"mean_return": 0.587, "timestep": 72_000})
    far = EvalResult(returns=[-10.0], lengths=[5], successes=None)
    assert run_summary(run, far).endswith(
        f"; final -10 is far below the best 0.587 at step 72,000: lab eval {run.path} --best"
    )
    assert "far below" not in run_summary(run, EvalResult(returns=[0.55], lengths=[5], successes=None))


# ----- 8. the progress bar -----


@pytest.mark.parametrize(
    ("timestep", "total", "episodes", "mean"),
    [(72_500, 1_000_000, 12_345, -1234.5), (10**9, 10**9, 10**8, -123_456.0), (0, 50_000, 0, float("nan"))],
)
def test_the_training_bar_fits_80_columns_with_labelled_times(timestep, total, episodes, mean):
    from lab.progress import render

    bar = training_progress()
    bar.add_task("x", total=total, completed=timestep, **progress_fields(timestep, total, episodes, mean))
    text = render(bar, width=80)
    [line] = text.splitlines()  # one line, not wrapped
    assert len(line) <= 80 and "…" not in line
    assert " elapsed 0:00:00 left " in line
    fields = progress_fields(timestep, total, episodes, mean)
    assert f"{fields['steps']} ep {fields['episodes']} return {fields['mean_return']}" in line


@pytest.mark.parametrize("terminal", [False, True])
def test_the_bar_prints_lines_where_the_output_is_no_terminal(terminal, monkeypatch):
    import io

    from rich.console import Console

    from lab.core import progress_lines

    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=terminal, force_jupyter=False)
    readings = [0.0, 5.0, 31.0, 40.0, 62.0]  # the bar's start, then one reading per update
    clock = iter(readings)
    monkeypatch.setattr(progress_lines, "monotonic", lambda: next(clock))
    with training_progress(console=console) as bar:
        task = bar.add_task("x", total=100, **progress_fields(0, 100, 0, float("nan")))
        for step in (10, 20, 30, 40):  # at 5 s, 31 s, 40 s and 62 s: a line at 31 s and at 62 s
            bar.update(task, completed=step, **progress_fields(step, 100, step // 10, 1.0))
    if terminal:  # rich's live bar redraws in place; no line is printed, nor the clock read for one
        assert len(list(clock)) == len(readings) - 1
    else:
        lines = [line for line in out.getvalue().splitlines() if "/100" in line]
        assert [line.split()[1] for line in lines] == ["20/100", "40/100", "40/100"]  # 31 s, 62 s, the end


def test_a_budget_that_ends_inside_a_rollout_shows_the_steps_run_on_the_bar(tmp_path):
    # PPO finishes the rollout it is in (as stable-baselines3 does): 100 steps run two rollouts of 64
    spec = {
        "name": "short", "env": "CartPole-v1", "agent": "ppo", "total_timesteps": 100, "seed": 0,
        "hyperparameters": {"n_steps": 64, "batch_size": 64, "n_epochs": 1},
        "eval_interval": 0, "eval_episodes": 1, "record_episodes": 0, "checkpoint_interval": 0,
    }  # fmt: skip
    trainer = Trainer(spec_from_dict(spec), RunDir.new(tmp_path, "short"), progress=True)
    trainer.fit()
    [task] = trainer.bar.tasks
    ran = int(trainer.agent.num_timesteps)
    assert ran > 100 and task.completed == task.total == ran
    assert task.fields["steps"] == f"{ran}/{ran}"


def test_watch_best_hands_the_viewer_best_npz(whole, monkeypatch):
    import lab.watch

    given = []
    monkeypatch.setattr(lab.watch, "watch", lambda target, **kwargs: given.append(target) or [])
    run, _ = whole
    assert main(["watch", str(run.path), "--best", "--episodes", "1"]) == 0
    assert main(["watch", str(run.path), "--episodes", "1"]) == 0
    assert given == [str(run.best), str(run.path)]


def test_ctrl_c_in_a_run_of_several_seeds_names_the_seeds_not_started(tmp_path, monkeypatch):
    original = Trainer.on_episode

    def presses_ctrl_c(self, event):
        if not self.stop.requested:
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, event)

    monkeypatch.setattr(Trainer, "on_episode", presses_ctrl_c)
    spec = spec_from_dict({**SPEC, "seeds": [4, 5, 6]})
    with pytest.raises(RunStopped) as info:
        train(spec, runs_dir=tmp_path, progress=False)
    assert str(info.value).endswith(
        f"continue with: lab train --resume {tmp_path / 'cliff-seed4'}; "
        "not started: cliff-seed5, cliff-seed6 (start them with --set 'seeds=[5, 6]')"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["cliff-seed4"]


def test_a_run_of_another_kind_is_answered_with_the_command_for_it(tmp_path):
    from lab.gen.train import resume as resume_generative
    from lab.lm.train import resume as resume_language_model
    from lab.targets import resolve_target

    specs = {
        "agent": "env: lab/Maze-v0\nagent: q_learning\n",
        "gen": "model: vae\ndataset: digits\n",
        "lm": "language: english\nmodel: transformer\n",
    }
    for name, text in specs.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "spec.yaml").write_text(text)
    gen, lm, agent = tmp_path / "gen", tmp_path / "lm", tmp_path / "agent"
    for call, message in (
        (lambda: resume(gen), "of a generative model, not of an agent: use 'lab gen train --resume"),
        (lambda: resolve_target(lm), "of a language model, not of an agent: use 'lab lm eval"),
        (lambda: resolve_target(lm, action="watch"), "use 'lab lm sample"),
        (lambda: resume_generative(agent), "of an agent, not of a generative model: use 'lab train"),
        (lambda: resume_language_model(gen), "not of a language model: use 'lab gen train --resume"),
    ):
        with pytest.raises(LabError, match=re.escape(message)):
            call()


@pytest.mark.parametrize("status", ["[1, 2]", '"finished"', "null", "{bad"])
def test_a_run_json_that_is_no_object_reads_as_no_status(tmp_path, whole, status):
    """A damaged run.json is no status: resume goes on from the checkpoints to the same run."""
    import shutil

    run = RunDir(shutil.copytree(whole[0].path, tmp_path / "cliff"))
    run.status_file.write_text(status)
    assert run.read_status() == {}
    resume(run.path, progress=False)
    assert_same_run(run, whole)
