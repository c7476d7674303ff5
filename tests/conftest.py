"""Shared test setup: headless SDL before anything can import pygame, and small shared helpers."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

os.environ["SDL_VIDEODRIVER"] = "dummy"
os.environ["SDL_AUDIODRIVER"] = "dummy"
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import gymnasium as gym
import pytest
from hypothesis import settings

import envs  # registers the lab/ ids

settings.register_profile("lab", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("lab")

ALL_IDS = tuple(entry.id for entry in envs.ENTRIES)

# Every registered id plus the variants whose dynamics differ: (id, kwargs).
VARIANTS: tuple[tuple[str, dict], ...] = (
    *((entry.id, {}) for entry in envs.ENTRIES),
    ("lab/WindyGrid-v0", {"king_moves": True}),
    ("lab/WindyGrid-v0", {"stochastic_wind": True}),
    ("lab/WindyGrid-v0", {"king_moves": True, "stochastic_wind": True}),
    ("lab/IceLake-v0", {"map_name": "8x8"}),
    *(("lab/Maze-v0", {"size": size, "maze_seed": seed}) for size in range(5, 16, 2) for seed in (0, 3)),
)


def variant_id(variant: tuple[str, dict]) -> str:
    env_id, kwargs = variant
    args = ",".join(f"{k}={v}" for k, v in kwargs.items())
    return env_id.removeprefix("lab/") + (f"[{args}]" if args else "")


def make_unwrapped(env_id: str, **kwargs) -> envs.GridWorld:
    return gym.make(env_id, **kwargs).unwrapped


@pytest.fixture(params=VARIANTS, ids=[variant_id(v) for v in VARIANTS])
def variant(request) -> tuple[str, dict]:
    return request.param


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread for a test module (put back afterwards): the lab's small networks gain
    little from two, and lose a great deal when the machine is busy. Module-scoped, so that a
    module's own module-scoped fixtures (small trained models) run on one thread too. Modules use it with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True, scope="session")
def sb3_logs_in_pytest_tmp(tmp_path_factory: pytest.TempPathFactory):
    """stable-baselines3 makes a new empty folder under the system's temporary folder for every
    model's logger unless $SB3_LOGDIR names one: the oracle tests' models share one of pytest's
    temporary folders, which pytest clears away."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SB3_LOGDIR", str(tmp_path_factory.mktemp("sb3-logs")))
        yield


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files that hold slow tests run first, the most slow tests first; each file's tests keep
    their order. pytest-xdist hands out whole files (``--dist loadfile``) in collection order
    (``--no-loadscope-reorder`` in pyproject.toml), so the long learning tests start at once on every
    worker and the quick files fill in around them, instead of one long file starting last and
    running alone."""
    slow: dict[str, int] = {}
    for item in items:
        slow[item.location[0]] = slow.get(item.location[0], 0) + (item.get_closest_marker("slow") is not None)
    items.sort(key=lambda item: -slow[item.location[0]])  # stable: the rest keep collection order


def seeds_pass(trial: Callable[[int], tuple[bool, str]], seeds: Sequence[int], needed: int) -> None:
    """Assert that at least ``needed`` of ``seeds`` pass ``trial`` (seed -> (passed, description)).
    Seeds run in order and stop as soon as the outcome is decided, so a healthy agent costs ``needed``
    runs."""
    outcomes: list[str] = []
    passed = failed = 0
    for seed in seeds:
        ok, what = trial(seed)
        outcomes.append(f"seed {seed}: {'pass' if ok else 'FAIL'} ({what})")
        passed, failed = passed + ok, failed + (not ok)
        if passed >= needed or failed > len(seeds) - needed:
            break
    summary = f"{passed} of {len(seeds)} seeds passed, {needed} needed:\n" + "\n".join(outcomes)
    assert passed >= needed, summary
