"""``lab gen train``: the run directory, checkpoints that round-trip, exact resume, failures that
leave the disk as it was."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from generative.checkpoint import load_model, read_model_file
from generative.diffusion import Diffusion
from lab.core.errors import LabError
from lab.gen.spec import gen_spec_from_dict, load_gen_spec
from lab.gen.train import GenTrainer, resume, train
from lab.runs import RunDir

pytestmark = pytest.mark.usefixtures("one_torch_thread")


SPEC = {
    "name": "tiny",
    "model": "diffusion",
    "hyperparameters": {"conditional": True, "channels": 8, "timesteps": 20, "sample_steps": 4, "warmup": 3},
    "steps": 12,
    "eval_interval": 4,
    "checkpoint_interval": 4,
    "log_interval": 2,
    "samples": 20,
    "measure": False,
}


def spec(**changes):
    return gen_spec_from_dict({**SPEC, **changes})


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    trainer = GenTrainer(spec(), RunDir.new(runs, "tiny"), progress=False)
    trainer.fit()
    return trainer


def rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_run_directory_layout(finished):
    run = finished.run
    for path in (run.spec, run.status_file, run.metrics, run.evals, run.model, run.curve, run.tensorboard):
        assert path.exists(), path
    assert sorted(p.name for p in run.checkpoints.iterdir()) == [f"ckpt-{k:09d}.npz" for k in (4, 8, 12)]
    assert sorted(p.name for p in (run.path / "samples").iterdir()) == [
        "final.png", "step-0000004.png", "step-0000008.png", "step-0000012.png",
    ]  # fmt: skip
    metrics = rows(run.metrics)
    assert metrics[0] == ["step", "loss", "lr"] and [r[0] for r in metrics[1:]] == [
        "2",
        "4",
        "6",
        "8",
        "10",
        "12",
    ]
    assert [r[0] for r in rows(run.evals)[1:]] == ["4", "8", "12"]
    status = run.read_status()
    assert (
        status["status"] == "finished" and status["step"] == 12 and np.isfinite(status["final"]["test_loss"])
    )
    saved = gen_spec_from_dict(__import__("yaml").safe_load(run.spec.read_text()))
    assert saved.hyperparameters["guidance"] == Diffusion.DEFAULTS["guidance"]  # defaults resolved


def test_checkpoint_round_trip_gives_identical_samples(finished):
    loaded, meta = load_model(finished.run.model)
    assert meta["family"] == "diffusion" and loaded.step == 12
    labels = torch.arange(6) % 10
    ours = finished.model.sample(6, labels, torch.Generator().manual_seed(5))
    theirs = loaded.sample(6, labels, torch.Generator().manual_seed(5))
    assert torch.equal(ours, theirs)
    for name, module in finished.model.modules().items():
        for (key, a), b in zip(
            module.state_dict().items(), loaded.modules()[name].state_dict().values(), strict=True
        ):
            assert torch.equal(a, b), (name, key)
    _, arrays = read_model_file(finished.run.model)
    assert all(a.dtype != object for a in arrays.values())


def test_resume_repeats_the_uninterrupted_run_exactly(finished, tmp_path):
    killed = tmp_path / "tiny"
    shutil.copytree(finished.run.path, killed)
    (killed / "model.npz").unlink()
    for k in (8, 12):
        (killed / "checkpoints" / f"ckpt-{k:09d}.npz").unlink()
    run, _ = resume(killed, progress=False)
    _, original = read_model_file(finished.run.model)
    _, resumed = read_model_file(run.model)
    assert original.keys() == resumed.keys()
    for key in original:
        assert np.array_equal(original[key], resumed[key]), key
    assert rows(run.metrics) == rows(finished.run.metrics)
    assert rows(run.evals) == rows(finished.run.evals)
    with pytest.raises(LabError, match="already finished"):
        resume(killed, progress=False)


def test_a_run_directory_is_never_overwritten(finished):
    with pytest.raises(LabError, match=r"already exists; continue it with 'lab gen train --resume"):
        train(spec(), runs_dir=finished.run.path.parent, progress=False)


def test_nan_loss_stops_with_one_line_and_keeps_the_checkpoints(tmp_path, monkeypatch):
    real_loss = Diffusion.loss

    def loss(self, x0, y, generator):
        value = real_loss(self, x0, y, generator)
        return value * float("nan") if self.step >= 6 else value

    monkeypatch.setattr(Diffusion, "loss", loss)
    with pytest.raises(LabError) as info:
        train(spec(), runs_dir=tmp_path, progress=False)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("training stopped: the diffusion loss became nan at step 6")
    assert message.endswith("ckpt-000000004.npz")
    run = RunDir(tmp_path / "tiny")
    assert not run.model.exists() and run.read_status()["status"] == "failed"
    model, _ = load_model(run.latest_checkpoint())  # the last good checkpoint still loads
    assert model.step == 4
    assert not list(run.path.rglob("*.tmp"))  # no half-written file left behind


def test_resuming_from_a_checkpoint_of_another_family_is_an_error(finished, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(finished.run.path, other)
    (other / "model.npz").unlink()
    text = (other / "spec.yaml").read_text().replace("model: diffusion", "model: vae")
    (other / "spec.yaml").write_text(text)
    with pytest.raises(LabError, match="holds a diffusion model, not a vae"):
        resume(other, progress=False)


def test_time_limit_stops_early_and_still_saves(tmp_path):
    run, final = train(spec(minutes=1e-9, name="quick"), runs_dir=tmp_path, progress=False)
    assert run.read_status()["step"] == 0 and run.model.is_file() and np.isfinite(final["test_loss"])


CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("gen-*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_example_configs_are_valid_and_build_their_model(path, tmp_path):
    config = load_gen_spec(path)
    trainer = GenTrainer(config, RunDir.new(tmp_path, str(config.name)), progress=False)
    assert trainer.model.family == config.model
    translates = getattr(trainer.model, "translates", False)  # translation models have no labels
    assert trainer.model.conditional == (not path.stem.endswith("-uncond") and not translates)
    assert config.minutes is not None and config.minutes <= 10  # each trains within ten minutes
    assert not any(tmp_path.iterdir())  # building writes nothing


@pytest.mark.parametrize("family", ["diffusion", "vae", "gan"])
def test_every_family_round_trips_through_a_model_file(family, tmp_path):
    from generative.checkpoint import save_model
    from generative.data import load_dataset
    from lab.gen.models import build_model
    from lab.gen.seeding import step_generator

    data = load_dataset("digits", seed=0)
    tiny = {
        "diffusion": {"channels": 8, "timesteps": 20, "sample_steps": 3},
        "vae": {"channels": 4},
        "gan": {},
    }
    model = build_model(
        gen_spec_from_dict({"model": family, "hyperparameters": {**tiny[family], "conditional": True}}), data
    )
    x, y = torch.from_numpy(data.train_x[:16]), torch.from_numpy(data.train_y[:16])
    for step in range(3):
        model.train_step(x, y, step_generator(0, step))
    loaded, _ = load_model(save_model(tmp_path / "m.npz", model))
    labels = torch.arange(5)
    assert torch.equal(
        model.sample(5, labels, torch.Generator().manual_seed(1)),
        loaded.sample(5, labels, torch.Generator().manual_seed(1)),
    )
    # and training goes on identically: optimiser states and EMA counters came back too
    a = model.train_step(x, y, step_generator(0, 3))
    b = loaded.train_step(x, y, step_generator(0, 3))
    assert a == b
    for name, module in model.modules().items():
        for key, value in module.state_dict().items():
            assert torch.equal(value, loaded.modules()[name].state_dict()[key]), (name, key)


class Killed(Exception):
    pass


def same_as_finished(run, finished):
    _, original = read_model_file(finished.run.model)
    _, resumed = read_model_file(run.model)
    assert original.keys() == resumed.keys()
    for key in original:
        assert np.array_equal(original[key], resumed[key]), key
    assert rows(run.metrics) == rows(finished.run.metrics)
    assert rows(run.evals) == rows(finished.run.evals)
    assert run.read_status()["status"] == "finished" and run.curve.is_file()


def test_ctrl_c_between_two_metrics_rows_resumes_exactly(finished, tmp_path, monkeypatch):
    import os
    import signal

    from lab.gen.seeding import Batches
    from lab.runs import RunStopped

    real = Batches.indices

    def presses_ctrl_c(self, step):
        if step == 4:  # during step 5: metrics rows come every 2 steps, so one step's loss is pending
            os.kill(os.getpid(), signal.SIGINT)
        return real(self, step)

    monkeypatch.setattr(Batches, "indices", presses_ctrl_c)
    with pytest.raises(
        RunStopped, match=r"stopped at step 5 \(ckpt-000000005.npz written\); continue with: lab gen"
    ):
        train(spec(), runs_dir=tmp_path, progress=False)
    monkeypatch.undo()
    run = RunDir(tmp_path / "tiny")
    assert run.read_status()["status"] == "stopped"
    resume(run.path, progress=False)
    same_as_finished(run, finished)


@pytest.mark.parametrize("where", ["after_the_final_checkpoint", "after_the_final_row"])
def test_resume_finishes_a_run_killed_at_its_end(finished, tmp_path, monkeypatch, where):
    import lab.gen.train

    if where == "after_the_final_checkpoint":
        real = GenTrainer.checkpoint

        def dies(self, log, trainer):
            path = real(self, log, trainer)
            if trainer.get("final"):
                raise Killed
            return path

        monkeypatch.setattr(GenTrainer, "checkpoint", dies)
    else:  # model.npz and the final eval.csv row written, the plot and the status not
        monkeypatch.setattr(
            lab.gen.train, "plot_generative_curves", lambda *args: (_ for _ in ()).throw(Killed())
        )
    with pytest.raises(Killed):
        train(spec(), runs_dir=tmp_path, progress=False)
    monkeypatch.undo()
    run = RunDir(tmp_path / "tiny")
    assert run.read_status()["status"] == "running"
    resume(run.path, progress=False)
    same_as_finished(run, finished)


def test_a_run_killed_before_its_first_checkpoint_starts_again(finished, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(GenTrainer, "checkpoint", lambda self, log, trainer: (_ for _ in ()).throw(Killed()))
    with pytest.raises(Killed):
        train(spec(), runs_dir=tmp_path, progress=False)
    monkeypatch.undo()
    run = RunDir(tmp_path / "tiny")
    assert run.latest_checkpoint() is None
    resume(run.path, progress=False)
    assert "has no checkpoint yet: starting it again from step 0" in capsys.readouterr().err
    same_as_finished(run, finished)


def test_force_moves_the_old_run_aside(tmp_path):
    train(spec(minutes=1e-9), runs_dir=tmp_path, progress=False)
    with pytest.raises(LabError, match="--force"):
        train(spec(minutes=1e-9), runs_dir=tmp_path, progress=False)
    second, _ = train(spec(minutes=1e-9), runs_dir=tmp_path, progress=False, force=True)
    [aside] = [p for p in tmp_path.iterdir() if p.name.startswith("tiny.old-")]
    assert (aside / "model.npz").is_file() and second.read_status()["status"] == "finished"


def test_the_final_measurement_shows_a_bar_counting_every_image(tmp_path, monkeypatch):
    import lab.gen.train
    from generative.data import load_dataset
    from generative.metrics import DRAWS, load_classifier, measure
    from lab.gen.models import build_model
    from lab.gen.train import measure_with_progress

    data = load_dataset("digits", seed=0)
    classifier = load_classifier(data, tmp_path, seed=0, epochs=1)
    model = build_model(
        gen_spec_from_dict(
            {"model": "gan", "hyperparameters": {"conditional": True, "channels": 4, "z_dim": 8}}
        ),
        data,
    )
    bars = []
    real_bar = lab.gen.train.measuring_bar

    def keeps_the_bar(*args, **kwargs):
        bars.append(real_bar(*args, **kwargs))
        return bars[-1]

    monkeypatch.setattr(lab.gen.train, "measuring_bar", keeps_the_bar)
    shown = measure_with_progress(model, data, classifier, seed=0, progress=False)
    [task] = bars[0].tasks
    assert task.total == task.completed == len(data.test_x) * DRAWS + 10 * 50
    assert "sample" not in vars(model)  # the counting wrapper is gone
    plain = measure(model, data, classifier, seed=0, per_class=50)
    assert shown.as_row() == plain.as_row()


def test_every_file_of_a_run_has_one_mode(finished):
    modes = {p.stat().st_mode & 0o777 for p in finished.run.path.rglob("*") if p.is_file()}
    assert len(modes) == 1, modes


def test_a_second_process_on_the_run_is_refused(tmp_path):
    with RunDir(tmp_path / "tiny").claim(fresh=True), pytest.raises(LabError, match="another process"):
        train(spec(), runs_dir=tmp_path, progress=False)


def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_one(finished, tmp_path, capsys):
    killed = tmp_path / "tiny"
    shutil.copytree(finished.run.path, killed)
    (killed / "model.npz").unlink()
    RunDir(killed).write_status(status="running")
    latest = killed / "checkpoints" / f"ckpt-{12:09d}.npz"
    latest.write_bytes(latest.read_bytes()[:200])
    run, _ = resume(killed, progress=False)
    assert f"lab: cannot resume from {latest.name} (" in capsys.readouterr().err
    same_as_finished(run, finished)
