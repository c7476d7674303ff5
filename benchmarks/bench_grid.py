"""Grid-world speed, side by side with gymnasium's FrozenLake in one process, pinned to one core.

    python benchmarks/bench_grid.py            # full run (about a minute)
    python benchmarks/bench_grid.py --quick    # smaller counts, for a smoke test

Measures:
- steps per second of one environment (index observations, random actions from
  ``action_space.sample()``, reset when an episode ends): ``lab/IceLake8x8-v0`` against
  ``FrozenLake-v1`` 8x8, both made with ``gymnasium.make`` (same wrappers);
- ``GridVectorEnv`` (``lab/IceLake8x8-v0``) at several batch sizes, counting every copy's step,
  random actions drawn each step, as a multiple of FrozenLake's steps per second;
- milliseconds per ``pixels`` observation and per ``rgb_array`` frame, next to FrozenLake's
  ``rgb_array`` render.

Each figure is the best of ``--repeats`` runs (the machine is noisy; the best is the least disturbed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import gymnasium as gym
import numpy as np

import envs  # noqa: F401

BATCH_SIZES = (1, 64, 1024, 4096, 16384)


def best_rate(run: Callable[[], int], repeats: int) -> float:
    """The best of ``repeats`` runs, in units of work per second (``run`` returns its work count)."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        work = run()
        rates.append(work / (time.perf_counter() - start))
    return max(rates)


def single_env_rate(env: gym.Env, steps: int, repeats: int) -> float:
    env.reset(seed=0)
    env.action_space.seed(0)

    def run() -> int:
        sample, step, reset = env.action_space.sample, env.step, env.reset
        for _ in range(steps):
            _, _, terminated, truncated, _ = step(sample())
            if terminated or truncated:
                reset()
        return steps

    return best_rate(run, repeats)


def vector_rate(num_envs: int, total_steps: int, repeats: int) -> float:
    venv = gym.make_vec("lab/IceLake8x8-v0", num_envs=num_envs, vectorization_mode="vector_entry_point")
    venv.reset(seed=0)
    rng = np.random.default_rng(0)
    n_actions = int(venv.single_action_space.n)
    steps = max(20, min(total_steps // num_envs, 20_000))  # small batches: enough steps, not hours

    def run() -> int:
        step = venv.step
        for _ in range(steps):
            step(rng.integers(0, n_actions, size=num_envs))
        return steps * num_envs

    return best_rate(run, repeats)


def ms_per_call(call: Callable[[], object], calls: int, repeats: int) -> float:
    def run() -> int:
        for _ in range(calls):
            call()
        return calls

    return 1000.0 / best_rate(run, repeats)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke test, not a measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as the targets say
    steps = 20_000 if args.quick else 300_000
    vector_total = 200_000 if args.quick else 6_000_000
    frames = 20 if args.quick else 300
    results: dict[str, object] = {}

    frozen = single_env_rate(gym.make("FrozenLake-v1", map_name="8x8"), steps, args.repeats)
    ours = single_env_rate(gym.make("lab/IceLake8x8-v0"), steps, args.repeats)
    results["single"] = {"FrozenLake-v1 8x8": frozen, "lab/IceLake8x8-v0": ours, "ratio": ours / frozen}
    print("One environment, index observations, random actions, auto-reset (steps/s):")
    print(f"  FrozenLake-v1 8x8   {frozen:>14,.0f}")
    print(f"  lab/IceLake8x8-v0   {ours:>14,.0f}   ratio {ours / frozen:.2f}x  (target >= 1.0)")

    print("\nGridVectorEnv, lab/IceLake8x8-v0, all copies' steps (steps/s):")
    results["vector"] = {}
    for n in BATCH_SIZES:
        rate = vector_rate(n, vector_total, args.repeats)
        results["vector"][n] = {"steps_per_s": rate, "x_frozenlake": rate / frozen}
        print(f"  num_envs={n:<6} {rate:>16,.0f}   {rate / frozen:>7.1f}x FrozenLake")
    best = max(v["x_frozenlake"] for v in results["vector"].values())
    print(f"  best: {best:.0f}x FrozenLake (target >= 300x)")

    pixels = gym.make("lab/IceLake8x8-v0", obs_type="pixels").unwrapped
    pixels.reset(seed=0)
    ours_rgb = gym.make("lab/IceLake8x8-v0", render_mode="rgb_array").unwrapped
    ours_rgb.reset(seed=0)
    lake_rgb = gym.make("FrozenLake-v1", map_name="8x8", render_mode="rgb_array").unwrapped
    lake_rgb.reset(seed=0)
    lake_rgb.render()  # loads its sprites once, outside the timing
    state = pixels.state
    pixel_ms = ms_per_call(lambda: pixels.encoder.encode_one(state), frames * 10, args.repeats)
    ours_ms = ms_per_call(ours_rgb.render, frames, args.repeats)
    lake_ms = ms_per_call(lake_rgb.render, frames, args.repeats)
    pixel_shape = pixels.observation_space.shape
    frame_shape = ours_rgb.render().shape
    lake_shape = lake_rgb.render().shape
    results["frames_ms"] = {"pixels_obs": pixel_ms, "rgb_array": ours_ms, "FrozenLake rgb_array": lake_ms}
    print("\nFrames (ms each):")
    print(f"  pixels observation {pixel_shape}   {pixel_ms:8.4f}")
    print(f"  rgb_array frame {frame_shape}      {ours_ms:8.4f}")
    print(f"  FrozenLake rgb_array {lake_shape}  {lake_ms:8.4f}   ({lake_ms / pixel_ms:.0f}x a pixels obs)")

    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
