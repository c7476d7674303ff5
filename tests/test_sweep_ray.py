"""lab sweep --backend ray: the trials run as a Ray Tune experiment and give the same numbers as the
serial backend; a trial that fails is reported with its reason. Skipped without Ray (the ``ray``
extra). One local Ray instance serves the module (about 10 s to start); the backend uses a Ray that
is already running as it is."""

from __future__ import annotations

import pytest

from lab.sweeps.runner import run_jobs
from lab.sweeps.sweep import run_sweep

ray = pytest.importorskip("ray")
pytest.importorskip("ray.tune")

SPEC = {
    "name": "tiny",
    "env": "lab/IceLake-v0",
    "agent": "q_learning",
    "hyperparameters": {"learning_rate": 0.5, "epsilon": 0.2, "initial_q": 1.0},
    "total_timesteps": 800,
    "eval_interval": 400,
    "eval_episodes": 20,
    "record_episodes": 0,
    "checkpoint_interval": 0,
}


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except Exception as exc:  # a machine where Ray's processes cannot start (no shared memory, ...)
        pytest.skip(f"Ray could not start on this machine: {str(exc).splitlines()[0]}")
    yield
    ray.shutdown()


@pytest.mark.slow
def test_ray_tune_and_serial_give_identical_metrics(tmp_path):
    result = run_sweep(SPEC, [0, 1], {}, tmp_path / "ray", backend="ray")
    serial = run_sweep(SPEC, [0, 1], {}, tmp_path / "serial", backend="serial")
    assert (result.ran, result.failed, serial.ran) == (2, {}, 2)
    for seed in (0, 1):
        for file in ("eval.csv", "metrics.csv"):
            trial = f"trials/tiny-seed{seed}/{file}"
            assert (result.path / trial).read_bytes() == (serial.path / trial).read_bytes()
    # it was Tune that ran them: its experiment state names both trials
    (experiment,) = (result.path / "ray_tune").iterdir()
    assert sorted(p.name for p in experiment.iterdir() if p.is_dir()) == ["tiny-seed0", "tiny-seed1"]


@pytest.mark.slow
def test_a_trial_that_fails_on_ray_tune_is_reported_with_its_reason(tmp_path):
    ended: dict[str, str | None] = {}
    jobs = [
        ("good", {**SPEC, "name": "good"}, str(tmp_path)),
        ("bad", {**SPEC, "name": "bad", "total_timesteps": -1}, str(tmp_path)),
    ]
    run_jobs(jobs, ended.__setitem__, "ray", workers=2)
    assert ended["good"] is None
    assert "total_timesteps must be a whole number >= 1" in ended["bad"]
    assert (tmp_path / "good" / "model.npz").is_file() and not (tmp_path / "bad").exists()
