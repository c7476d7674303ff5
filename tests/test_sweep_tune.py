"""lab tune: the search space syntax, median pruning on the evaluation curve, a resumable journal,
bad input as one line."""

from __future__ import annotations

import os
import socket

import pytest
import yaml

from lab.cli import main
from lab.core.errors import LabError
from lab.sweeps.tune import Param, fail_dead_trials, open_study, parse_param, run_tune

optuna = pytest.importorskip("optuna")

CLIFF = {
    "name": "cliff",
    "env": "lab/CliffWalk-v0",
    "agent": "q_learning",
    "hyperparameters": {"learning_rate": 0.5, "epsilon": 0.1},
    "total_timesteps": 4000,
    "eval_interval": 1000,
    "eval_episodes": 1,
    "record_episodes": 0,
    "checkpoint_interval": 0,
}
LEARNING_RATE = "hyperparameters.learning_rate=float:0.0001:1:log"


def test_search_space_syntax():
    assert parse_param(LEARNING_RATE) == Param(
        "hyperparameters.learning_rate", "float", 0.0001, 1.0, log=True
    )
    assert parse_param("total_timesteps=int:100:900") == Param("total_timesteps", "int", 100, 900)
    assert parse_param("hyperparameters.initial_q=choice:0,1.5").choices == (0, 1.5)
    for bad in (
        "x=float:1",
        "x=float:2:1",
        "x=float:0:1:log",
        "x=normal:0:1",
        "x",
        "x=choice:1",
        "x=int:a:b",
    ):
        with pytest.raises(LabError, match="--param"):
            parse_param(bad)


def test_a_falling_behind_trial_is_pruned_and_the_study_resumes(tmp_path):
    # Five trials that find the cliff's edge path, then one whose tiny step size leaves it wandering:
    # at its second evaluation it is below the median of the others there, and is stopped.
    study = open_study(tmp_path / "cliff", "cliff")
    for rate in (0.5, 0.6, 0.7, 0.8, 0.9, 0.001):
        study.enqueue_trial({"hyperparameters.learning_rate": rate})
    study = run_tune(CLIFF, [parse_param(LEARNING_RATE)], 6, tmp_path)
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE"] * 5 + ["PRUNED"]
    assert len(study.trials[-1].intermediate_values) < len(study.trials[0].intermediate_values)
    assert study.best_value == -13.0  # the optimal path along the cliff
    run = tmp_path / "cliff" / "trials" / "cliff-trial5"
    assert yaml.safe_load((run / "run.json").read_text())["status"] == "pruned"
    # rerun to 7: one more trial; the six before are kept as they are
    study.enqueue_trial({"hyperparameters.learning_rate": 0.8})
    again = run_tune(CLIFF, [parse_param(LEARNING_RATE)], 7, tmp_path)
    assert [t.state.name for t in again.trials] == [*states, "COMPLETE"]
    assert again.trials[6].intermediate_values == study.trials[3].intermediate_values  # same rate, same curve
    with pytest.raises(LabError, match=r"another spec \(it differs in: eval_episodes\)"):
        run_tune({**CLIFF, "eval_episodes": 3}, [parse_param(LEARNING_RATE)], 8, tmp_path)
    # another search space or metric would mix its trials with these: refused, naming the study's flags
    recorded = r"--param hyperparameters.learning_rate=float:0.0001:1:log --metric mean_return"
    wider = [parse_param(LEARNING_RATE), parse_param("hyperparameters.gamma=float:0.9:1")]
    for params, metric in ((wider, "mean_return"), ([parse_param(LEARNING_RATE)], "policy_value")):
        with pytest.raises(LabError, match=f"another search \\({recorded}\\)"):
            run_tune(CLIFF, params, 8, tmp_path, metric=metric)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--param", "hyperparameters.learnin_rate=float:0.1:1"],
            "'hyperparameters.learnin_rate' in --param; did you mean 'hyperparameters.learning_rate'",
        ),
        (
            ["--param", "hyperparameters.initial_q=choice:0,zero"],
            "initial_q must be a finite number; got 'zero'",
        ),
        (
            ["--param", "hyperparameters.learning_rate=float:0.1:7"],
            "learning_rate must be a number in (0, 1]",
        ),
        ([], "give at least one --param"),
        (["--param", LEARNING_RATE, "--trials", "0"], "--trials must be at least 1"),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, args, message):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(CLIFF))
    argv = ["tune", str(spec), "--tunes-dir", str(tmp_path), *args]
    assert main(argv if "--trials" in args else [*argv, "--trials", "1"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_damaged_journal_is_one_line(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(CLIFF))
    (tmp_path / "cliff").mkdir()
    (tmp_path / "cliff" / "journal.log").write_text('{"op_code": 0, "study_name": \n')
    assert (
        main(["tune", str(spec), "--trials", "1", "--param", LEARNING_RATE, "--tunes-dir", str(tmp_path)])
        == 2
    )
    err = capsys.readouterr().err
    assert "is not a readable Optuna journal" in err and err.count("\n") == 1


def test_a_trial_left_running_by_a_killed_worker_is_marked_failed(tmp_path):
    import subprocess
    import sys

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    study = open_study(tmp_path / "cliff", "cliff")
    orphan = study.ask()  # as a worker killed mid-trial leaves it
    orphan.set_user_attr("worker", f"{socket.gethostname()}:{int(gone.stdout)}")
    alive = study.ask()
    alive.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    assert fail_dead_trials(study) == [0]
    assert [t.state.name for t in study.trials] == ["FAIL", "RUNNING"]


def test_a_journal_naming_an_impossible_worker_pid_marks_its_trial_failed(tmp_path):
    """A hand-edited journal's worker pid too large for the system is no live process (its trial
    fails), not an internal error; one in non-ASCII digits is no pid (its trial is left alone)."""
    study = open_study(tmp_path / "cliff", "cliff")
    huge = study.ask()
    huge.set_user_attr("worker", f"{socket.gethostname()}:{'9' * 30}")
    other = study.ask()
    other.set_user_attr("worker", f"{socket.gethostname()}:\u0661\u0662")  # Arabic-Indic digits
    assert fail_dead_trials(study) == [0]
    assert [t.state.name for t in study.trials] == ["FAIL", "RUNNING"]
