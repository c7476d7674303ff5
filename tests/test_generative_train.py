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
    from lab.gen.train import build_model, step_generator

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
