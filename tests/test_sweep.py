"""lab sweep and lab report: trials as ordinary run directories, the index, resuming after a kill,
the same numbers on every backend, bad input as one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from lab.cli import main
from lab.core.errors import LabError
from lab.sweeps import statistics
from lab.sweeps.grid import expand, parse_grid, parse_seeds, split_values
from lab.sweeps.report import Config, make_report, summarize
from lab.sweeps.sweep import read_index, run_sweep, write_index

SPEC = {
    "name": "tiny",
    "env": "lab/IceLake-v0",
    "agent": "q_learning",
    "hyperparameters": {"learning_rate": 0.1, "epsilon": 0.2, "initial_q": 1.0},
    "total_timesteps": 1200,
    "eval_interval": 400,
    "eval_episodes": 20,
    "record_episodes": 0,
    "checkpoint_interval": 0,
}
GRID = {"hyperparameters.learning_rate": [0.1, 0.5]}


def files_of(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in folder.rglob("*")
        if p.is_file()
    }


@pytest.fixture(scope="module")
def serial_sweep(tmp_path_factory) -> Path:
    """2 learning rates x 2 seeds, run one after another in this process."""
    root = tmp_path_factory.mktemp("sweeps")
    result = run_sweep(SPEC, [0, 1], GRID, root, backend="serial")
    assert (result.ran, result.skipped, result.failed) == (4, 0, {})
    return result.path


def test_seeds_and_grid_parse():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("5,0-2,2") == [0, 1, 2, 5]
    assert split_values("0.1, {type: linear, start: 1, end: 0}, 1/N") == [
        "0.1",
        "{type: linear, start: 1, end: 0}",
        "1/N",
    ]
    assert parse_grid(["hyperparameters.epsilon=0.1,0.2", "env_kwargs.slippery=true,false"]) == {
        "hyperparameters.epsilon": [0.1, 0.2],
        "env_kwargs.slippery": [True, False],
    }


def test_every_trial_is_a_run_directory_in_the_index(serial_sweep):
    index = read_index(serial_sweep)
    assert [t["name"] for t in index["trials"]] == [
        "tiny-learning_rate-0.1-seed0",
        "tiny-learning_rate-0.1-seed1",
        "tiny-learning_rate-0.5-seed0",
        "tiny-learning_rate-0.5-seed1",
    ]
    for trial in index["trials"]:
        assert trial["status"] == "finished"
        run = serial_sweep / "trials" / trial["name"]
        spec = yaml.safe_load((run / "spec.yaml").read_text())
        assert spec["seed"] == trial["seed"]
        assert spec["hyperparameters"]["learning_rate"] == trial["overrides"]["hyperparameters.learning_rate"]
        assert (run / "model.npz").is_file()
        last = (run / "eval.csv").read_text().splitlines()[-1].split(",")
        assert float(last[1]) == trial["final"]["mean_return"]
        assert trial["final"]["timestep"] == 1200


def test_a_grid_value_takes_the_type_of_its_key(tmp_path):
    result = run_sweep(SPEC, [0], {"hyperparameters.learning_rate": [1]}, tmp_path, backend="serial")
    (trial,) = read_index(result.path)["trials"]
    assert trial["overrides"] == {"hyperparameters.learning_rate": 1.0}
    assert isinstance(trial["overrides"]["hyperparameters.learning_rate"], float)


def test_rerun_finishes_only_the_missing_trials_and_touches_no_finished_one(serial_sweep, tmp_path):
    sweep = tmp_path / "tiny"
    shutil.copytree(serial_sweep, sweep)
    victim = sweep / "trials" / "tiny-learning_rate-0.5-seed1"
    expected_curve = (victim / "eval.csv").read_bytes()
    # as a kill leaves it: status running, no final model, the evaluation file cut short
    status = json.loads((victim / "run.json").read_text())
    (victim / "run.json").write_text(json.dumps({**status, "status": "running"}))
    (victim / "model.npz").unlink()
    (victim / "eval.csv").write_bytes(expected_curve[:30])
    others = {p.name: files_of(p) for p in (sweep / "trials").iterdir() if p != victim}
    ran: list[str] = []
    result = run_sweep(
        SPEC, [0, 1], GRID, tmp_path, backend="serial", on_trial=lambda n, e, d, t: ran.append(n)
    )
    assert ran == [victim.name] and (result.ran, result.skipped) == (1, 3)
    assert {p.name: files_of(p) for p in (sweep / "trials").iterdir() if p != victim} == others
    assert (victim / "eval.csv").read_bytes() == expected_curve  # rerun from scratch: the same numbers
    assert all(t["status"] == "finished" for t in read_index(sweep)["trials"])
    again = run_sweep(SPEC, [0, 1], GRID, tmp_path, backend="serial")
    assert (again.ran, again.skipped) == (0, 4)


def test_more_seeds_later_add_trials(serial_sweep, tmp_path):
    shutil.copytree(serial_sweep, tmp_path / "tiny")
    result = run_sweep(SPEC, [0, 1, 2], {"hyperparameters.learning_rate": [0.5]}, tmp_path, backend="serial")
    assert (result.ran, result.skipped) == (1, 2)
    assert len(read_index(result.path)["trials"]) == 5


def test_serial_and_process_pool_give_identical_metrics(serial_sweep, tmp_path):
    result = run_sweep(
        SPEC, [0, 1], {"hyperparameters.learning_rate": [0.5]}, tmp_path, backend="pool", workers=2
    )
    assert (result.ran, result.failed) == (2, {})
    for seed in (0, 1):
        name = f"tiny-learning_rate-0.5-seed{seed}"
        for file in ("eval.csv", "metrics.csv"):
            assert (result.path / "trials" / name / file).read_bytes() == (
                serial_sweep / "trials" / name / file
            ).read_bytes()
        q_pool = np.load(result.path / "trials" / name / "model.npz")
        q_serial = np.load(serial_sweep / "trials" / name / "model.npz")
        assert np.array_equal(q_pool["q_table"], q_serial["q_table"])


def test_report_figures_match_the_statistics(serial_sweep, tmp_path):
    sweep = tmp_path / "tiny"
    shutil.copytree(serial_sweep, sweep)
    report = make_report(sweep, reps=300)
    assert list(report["configurations"]) == ["learning_rate=0.1", "learning_rate=0.5"]
    index = read_index(sweep)
    for label, row in report["configurations"].items():
        finals = np.array([t["final"]["mean_return"] for t in index["trials"] if t["config"] == label])
        assert row["runs"] == 2
        assert row["iqm"] == statistics.bootstrap_ci(finals, statistics.iqm, reps=300).as_dict()
        assert row["mean"]["value"] == pytest.approx(finals.mean())
    (pair,) = report["probability_of_improvement"]
    assert 0.0 <= pair["probability"]["value"] <= 1.0
    for picture in ("performance_profile.png", "learning_curves.png"):
        assert (sweep / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((sweep / "report.json").read_text()) == report


def test_a_sweep_section_in_the_spec(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        yaml.safe_dump({**SPEC, "total_timesteps": 300, "sweep": {"seeds": "3-4", "backend": "serial"}})
    )
    assert main(["sweep", str(spec), "--sweeps-dir", str(tmp_path / "out")]) == 0
    index = read_index(tmp_path / "out" / "tiny")
    assert [t["seed"] for t in index["trials"]] == [3, 4]
    assert "2 trial(s) run" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--grid", "hyperparameters.learning_rat=0.1,0.2"], "did you mean 'hyperparameters.learning_rate'"),
        (["--grid", "total_timestep=10,20"], "did you mean 'total_timesteps'"),
        (["--grid", "total_timesteps=10,lots"], "'lots' is not a number"),
        (["--grid", "hyperparameters.learning_rate=0.1,7"], "learning_rate must be a number in (0, 1]"),
        (["--grid", "seed=1,2"], "cannot vary 'seed'"),
        (["--seeds", "3-1"], "must go up"),
        (["--seeds", "a"], "--seeds takes whole numbers"),
        (["--backend", "nope"], "unknown backend 'nope'"),
        (["--address", "auto"], "use it with --backend ray"),
        (["--workers", "0"], "--workers must be a whole number >= 1; got 0"),
        (["--grid", "hyperparameters.learning_rate=1,1.0"], "learning_rate lists the value 1.0 twice"),
        (["--backend", "ray", "--address", "127.0.0.1:9"], "no Ray cluster answers at 127.0.0.1:9"),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, args, message):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    pytest.importorskip("ray") if "ray" in args else None
    assert main(["sweep", str(spec), "--seeds", "0", "--sweeps-dir", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    if "127.0.0.1:9" not in args:  # only a cluster's answer is learned by trying
        assert not (tmp_path / "out").exists()  # checked before anything is written


def test_a_seed_the_spec_lists_twice_runs_once(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({**SPEC, "total_timesteps": 300, "seeds": [1, 0, 1]}))
    assert main(["sweep", str(spec), "--backend", "serial", "--sweeps-dir", str(tmp_path / "out")]) == 0
    assert [t["seed"] for t in read_index(tmp_path / "out" / "tiny")["trials"]] == [0, 1]
    spec.write_text(yaml.safe_dump({**SPEC, "sweep": {"seeds": [0, 1.5]}}))
    assert main(["sweep", str(spec), "--sweeps-dir", str(tmp_path / "other")]) == 2
    assert "sweep: seeds must list whole numbers >= 0" in capsys.readouterr().err


def test_a_trial_without_a_final_figure_is_left_out_of_the_report(serial_sweep, tmp_path):
    sweep = tmp_path / "tiny"
    shutil.copytree(serial_sweep, sweep)
    evals = sweep / "trials" / "tiny-learning_rate-0.5-seed1" / "eval.csv"
    lines = evals.read_text().splitlines()
    header, last = lines[0].split(","), lines[-1].split(",")
    last[header.index("mean_return")] = "nan"  # a diverged run, or an env that does not report it
    evals.write_text("\n".join([*lines[:-1], ",".join(last)]) + "\n")
    report = make_report(sweep, reps=100)
    assert report["configurations"]["learning_rate=0.5"]["runs"] == 1 and report["trials_left_out"] == 1
    with pytest.raises(ValueError, match="scores must be finite"):
        statistics.probability_of_improvement([float("nan")], [1.0])


def test_a_sweep_of_another_spec_is_refused(serial_sweep, tmp_path):
    shutil.copytree(serial_sweep, tmp_path / "tiny")
    with pytest.raises(LabError, match=r"another spec \(it differs in: total_timesteps\)"):
        run_sweep({**SPEC, "total_timesteps": 99}, [0], GRID, tmp_path, backend="serial")


def test_a_damaged_index_and_a_folder_that_is_no_sweep(tmp_path, capsys):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "sweep.json").write_text("{not json")
    assert main(["report", str(tmp_path / "bad")]) == 2
    assert "is damaged" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2
    assert "is not a sweep directory" in capsys.readouterr().err


def test_a_failed_trial_is_recorded_the_others_go_on_and_a_rerun_retries_it(tmp_path, monkeypatch, capsys):
    import lab.train

    real_train = lab.train.train

    def train(spec, **kwargs):
        if spec.seed == 1:
            raise LabError("training stopped: the loss is not finite")
        return real_train(spec, **kwargs)

    monkeypatch.setattr(lab.train, "train", train)
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({**SPEC, "total_timesteps": 300}))
    argv = ["sweep", str(spec), "--seeds", "0-2", "--backend", "serial", "--sweeps-dir", str(tmp_path)]
    assert main(argv) == 2
    assert "1 trial(s) failed" in capsys.readouterr().err
    index = read_index(tmp_path / "tiny")
    assert [t["status"] for t in index["trials"]] == ["finished", "failed", "finished"]
    assert index["trials"][1]["error"] == "training stopped: the loss is not finite"
    monkeypatch.setattr(lab.train, "train", real_train)
    assert main(argv) == 0
    assert "1 trial(s) run, 2 already finished" in capsys.readouterr().out


def test_a_second_sweep_on_the_same_folder_is_refused(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    (tmp_path / "tiny").mkdir()
    with (tmp_path / "tiny" / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.raises(LabError, match="another 'lab sweep' is running on"):
            run_sweep(SPEC, [0], {}, tmp_path, backend="serial")


def test_a_folder_that_is_no_sweep_is_not_written_to(tmp_path):
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "notes.txt").write_text("mine")
    with pytest.raises(LabError, match="exists and is not a sweep directory"):
        run_sweep(SPEC, [0], {}, tmp_path, backend="serial")
    assert [p.name for p in (tmp_path / "tiny").iterdir()] == ["notes.txt"]


def test_a_grid_over_agents_and_env_arguments_is_a_product():
    trials = expand(
        {**SPEC, "seed": 0},
        [0, 1],
        {"agent": ["q_learning", "sarsa"], "env_kwargs.slippery": [True, False]},
    )
    assert len(trials) == 8 and len({t.name for t in trials}) == 8
    assert trials[0].name == "tiny-agent-q_learning_slippery-True-seed0"
    assert trials[-1].config == "agent=sarsa,slippery=False"
    assert trials[-1].spec_data(SPEC)["env_kwargs"] == {"slippery": False}
    with pytest.raises(LabError, match="takes no argument 'is_slippery'"):
        expand({**SPEC, "seed": 0}, [0], {"env_kwargs.is_slippery": [True]})


def test_report_compares_the_better_configuration_first():
    configs = [
        Config("low", [1.0, 2.0, 3.0]),
        Config("high", [10.0, 11.0, 12.0]),
        Config("mid", [5.0, 6.0, 7.0]),
    ]
    summary = summarize(configs, reps=200, seed=0)
    assert [(p["x"], p["y"]) for p in summary["probability_of_improvement"]] == [
        ("high", "mid"),
        ("high", "low"),
        ("mid", "low"),
    ]
    for pair in summary["probability_of_improvement"]:  # no overlap: certain in every resample
        assert pair["probability"] == {"value": 1.0, "low": 1.0, "high": 1.0}
    assert summary["configurations"]["mid"]["iqm"]["value"] == 6.0


def test_report_of_many_configurations_compares_each_with_the_best():
    configs = [Config(f"c{i}", [float(i), i + 0.5]) for i in range(7)]  # 21 pairs: over MAX_PAIRS
    pairs = summarize(configs, reps=100, seed=0)["probability_of_improvement"]
    assert [(p["x"], p["y"]) for p in pairs] == [("c6", f"c{i}") for i in range(5, -1, -1)]


def test_an_unfinished_trial_is_left_out_of_the_report(serial_sweep, tmp_path):
    sweep = tmp_path / "tiny"
    shutil.copytree(serial_sweep, sweep)
    index = read_index(sweep)
    index["trials"][0]["status"] = "pending"  # its eval.csv holds a figure, but it may be partial
    write_index(sweep, index)
    report = make_report(sweep, reps=100)
    label = index["trials"][0]["config"]
    assert report["configurations"][label]["runs"] == 1 and report["trials_left_out"] == 1


def test_a_grid_value_overrides_one_hyperparameter_and_keeps_the_others():
    (low, high) = expand({**SPEC, "seed": 0}, [3], {"hyperparameters.learning_rate": [0.2, 0.9]})
    data = high.spec_data(SPEC)
    assert data["hyperparameters"] == {"learning_rate": 0.9, "epsilon": 0.2, "initial_q": 1.0}
    assert (data["seed"], data["name"]) == (3, "tiny-learning_rate-0.9-seed3")
    assert SPEC["hyperparameters"]["learning_rate"] == 0.1  # the base spec is left as it was
    assert low.spec_data(SPEC)["hyperparameters"]["learning_rate"] == 0.2


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda index: index.update(trials=[5, None]), "its trial 0 is not a record"),
        (lambda index: index["trials"][0].update(name=5), "its trial 0 is not a record"),
        (lambda index: index["trials"][1].update(name="../../elsewhere"), "its trial 1 is not a record"),
        (lambda index: index["trials"][0].pop("config"), "its trial 0 is not a record"),
        (lambda index: index.update(grid=5), "its grid is not lists of values"),
    ],
)
def test_a_hand_damaged_index_is_one_line_for_report_and_rerun(
    serial_sweep, tmp_path, capsys, damage, message
):
    sweep = tmp_path / "tiny"
    shutil.copytree(serial_sweep, sweep)
    index = json.loads((sweep / "sweep.json").read_text())
    damage(index)
    (sweep / "sweep.json").write_text(json.dumps(index))
    before = files_of(sweep)
    before.pop(".lock", None)  # the rerun takes the sweep's lock: it writes nothing else
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    rerun = ["sweep", str(spec), "--seeds", "0-1", "--grid", "hyperparameters.learning_rate=0.1,0.5"]
    for argv in (["report", str(sweep)], [*rerun, "--sweeps-dir", str(tmp_path)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "sweep.json is damaged (" + message in err and err.count("\n") == 1, err
    after = files_of(sweep)
    after.pop(".lock", None)
    assert after == before
