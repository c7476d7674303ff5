"""Text-environment speed, side by side with gymnasium's FrozenLake in one process.

    python benchmarks/bench_text_env.py            # full run (about a minute)
    python benchmarks/bench_text_env.py --quick    # smaller counts, for a smoke test

Measures:
- steps per second of one environment made with ``gymnasium.make`` (same wrappers for both),
  resetting when an episode ends: ``lab/TextPositive-v0`` with action masks on (``info["action_mask"]``
  computed every step) and a uniformly random *allowed* token each step,
  against ``FrozenLake-v1`` (4x4, slippery) with ``action_space.sample()``;
- ``TextVectorEnv`` at 1,024 copies (and more), masks on, a random allowed token per copy drawn with
  numpy each step, counting every copy's step, as a multiple of FrozenLake's single-env rate:
  the time inside ``step()`` alone, and with the random policy's time added (drawing a uniform
  per token per copy costs about as much as the step).

Single envs are timed in ``--chunks`` chunks of steps and batched ones step by step; each figure is
the median (the machine is shared: the median leaves out the chunks other work landed on).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Callable

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import gymnasium as gym
import numpy as np

import envs  # noqa: F401

TEXT_ID = "lab/TextPositive-v0"
BATCH_SIZES = (1024, 4096)


def median_rate(chunk: Callable[[], tuple[int, float]], chunks: int) -> float:
    """Work per second of the median chunk (``chunk`` returns its work count and its seconds).

    The machine is shared: other work lands on a few chunks, and the median leaves them out.
    """
    rates = []
    for _ in range(chunks):
        work, seconds = chunk()
        rates.append(work / seconds)
    return float(np.median(rates))


def timed(run: Callable[[], int]) -> Callable[[], tuple[int, float]]:
    def chunk() -> tuple[int, float]:
        start = time.perf_counter()
        work = run()
        return work, time.perf_counter() - start

    return chunk


def frozen_lake_rate(steps: int, chunks: int) -> float:
    env = gym.make("FrozenLake-v1")
    env.reset(seed=0)
    env.action_space.seed(0)

    def run() -> int:
        sample, step, reset = env.action_space.sample, env.step, env.reset
        for _ in range(steps):
            _, _, terminated, truncated, _ = step(sample())
            if terminated or truncated:
                reset()
        return steps

    return median_rate(timed(run), chunks)


def text_rate(steps: int, chunks: int) -> float:
    env = gym.make(TEXT_ID)
    _, info = env.reset(seed=0)
    holder = [info["action_mask"]]
    draw = random.Random(0).random

    def run() -> int:
        step, reset, flatnonzero = env.step, env.reset, np.flatnonzero
        for _ in range(steps):
            # a uniformly random allowed token (gymnasium's sample(mask=) costs several times the step)
            allowed = flatnonzero(holder[0])
            _, _, terminated, truncated, info = step(int(allowed[int(draw() * len(allowed))]))
            if terminated or truncated:
                _, info = reset()
            holder[0] = info["action_mask"]
        return steps

    return median_rate(timed(run), chunks)


def vector_rates(num_envs: int, steps: int) -> tuple[float, float]:
    """Copies' steps per second from the median step: ``step()`` alone, and with the policy's draw."""
    env = gym.make_vec(TEXT_ID, num_envs=num_envs, vectorization_mode="vector_entry_point")
    _, info = env.reset(seed=0)
    rng = np.random.default_rng(0)
    mask = info["action_mask"]
    in_step, in_all = [], []
    for t in range(50 + steps):  # the first 50 warm up: the automaton meets its states once
        start = time.perf_counter()
        # a uniformly random allowed token per copy: the largest of (uniform + mask)
        actions = (rng.random(mask.shape, dtype=np.float32) + mask).argmax(axis=1)
        middle = time.perf_counter()
        _, _, _, _, info = env.step(actions)
        end = time.perf_counter()
        mask = info["action_mask"]
        if t >= 50:
            in_step.append(end - middle)
            in_all.append(end - start)
    return num_envs / float(np.median(in_step)), num_envs / float(np.median(in_all))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, for a smoke test")
    parser.add_argument("--chunks", type=int, default=9, help="timed chunks of single-env steps (median)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args(argv)
    single_steps = 2_000 if args.quick else 10_000
    vector_steps = 100 if args.quick else 1_000

    lake = frozen_lake_rate(single_steps, args.chunks)
    text = text_rate(single_steps, args.chunks)
    rows = [
        ("FrozenLake-v1, one env (steps/s)", lake, 1.0),
        (f"{TEXT_ID}, one env, masks (steps/s)", text, text / lake),
    ]
    for n in BATCH_SIZES:
        env_only, with_policy = vector_rates(n, vector_steps)
        rows.append((f"TextVectorEnv, {n} copies, masks: step() alone (steps/s)", env_only, env_only / lake))
        rows.append(
            (f"TextVectorEnv, {n} copies, masks: with the policy (steps/s)", with_policy, with_policy / lake)
        )
    width = max(len(r[0]) for r in rows)
    for name, rate, ratio in rows:
        print(f"{name:<{width}}  {rate:>14,.0f}  {ratio:8.1f}x FrozenLake")
    if args.json:
        json.dump({name: {"rate": rate, "ratio": ratio} for name, rate, ratio in rows}, sys.stdout, indent=1)
        print()


if __name__ == "__main__":
    main()
