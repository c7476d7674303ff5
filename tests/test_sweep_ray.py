"""lab sweep --backend ray gives the same numbers as the serial backend (skipped without Ray, the
``ray`` extra; it starts a local Ray instance, about 10 s)."""

from __future__ import annotations

import pytest

from lab.sweeps.sweep import run_sweep

pytest.importorskip("ray")

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


@pytest.mark.slow
def test_ray_and_serial_give_identical_metrics(tmp_path):
    ray = run_sweep(SPEC, [0, 1], {}, tmp_path / "ray", backend="ray")
    serial = run_sweep(SPEC, [0, 1], {}, tmp_path / "serial", backend="serial")
    assert (ray.ran, ray.failed, serial.ran) == (2, {}, 2)
    for seed in (0, 1):
        for file in ("eval.csv", "metrics.csv"):
            trial = f"trials/tiny-seed{seed}/{file}"
            assert (ray.path / trial).read_bytes() == (serial.path / trial).read_bytes()
