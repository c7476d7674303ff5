"""Registration, gymnasium's env checker on every id and observation type, and the docs."""

from __future__ import annotations

import re
import warnings

import gymnasium as gym
import pytest
from conftest import ALL_IDS
from gymnasium.utils.env_checker import check_env

import envs
from envs.grid import OBS_TYPES

SECTIONS = (
    "## Description",
    "## Action Space",
    "## Observation Space",
    "## Starting State",
    "## Rewards",
    "## Episode End",
    "## Arguments",
    "## Version History",
)


def test_registered_ids():
    assert ALL_IDS == (
        "lab/GridWorld-v0",
        "lab/CliffWalk-v0",
        "lab/WindyGrid-v0",
        "lab/IceLake-v0",
        "lab/IceLake8x8-v0",
        "lab/FourRooms-v0",
        "lab/Maze-v0",
        "lab/KeyDoor-v0",
    )
    for entry in envs.ENTRIES:
        spec = gym.spec(entry.id)
        assert spec.max_episode_steps == entry.max_episode_steps
        assert spec.kwargs == entry.kwargs
        assert spec.vector_entry_point is not None


def test_register_all_is_idempotent():
    before = {entry.id: gym.spec(entry.id) for entry in envs.ENTRIES}
    envs.register_all()
    assert {entry.id: gym.spec(entry.id) for entry in envs.ENTRIES} == before


@pytest.mark.parametrize("entry", envs.ENTRIES, ids=ALL_IDS)
def test_make_returns_the_class_with_limit(entry):
    env = gym.make(entry.id)
    assert type(env.unwrapped) is entry.cls
    assert isinstance(env.unwrapped, envs.GridWorld)
    assert env.spec.max_episode_steps == entry.max_episode_steps
    # the time limit applies
    env.reset(seed=0)
    truncated = False
    steps = 0  # since the last reset
    while not truncated:
        _, _, terminated, truncated, _ = env.step(0)
        steps += 1
        assert steps <= entry.max_episode_steps
        if terminated and not truncated:
            env.reset()
            steps = 0
    assert steps == entry.max_episode_steps


def test_icelake8x8_entry_uses_big_map():
    assert gym.make("lab/IceLake8x8-v0").unwrapped.model.layout.shape == (8, 8)
    assert gym.make("lab/IceLake-v0").unwrapped.model.layout.shape == (4, 4)


@pytest.mark.parametrize("obs_type", OBS_TYPES)
@pytest.mark.parametrize("env_id", ALL_IDS)
def test_gymnasium_check_env(env_id, obs_type):
    env = gym.make(env_id, obs_type=obs_type)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped, skip_render_check=False)
    assert [str(w.message) for w in caught] == []
    env.close()


@pytest.mark.parametrize("entry", envs.ENTRIES, ids=ALL_IDS)
def test_docstring_sections(entry):
    doc = entry.cls.__doc__
    assert doc
    positions = [doc.find(section) for section in SECTIONS]
    assert all(p >= 0 for p in positions), [s for s, p in zip(SECTIONS, positions, strict=True) if p < 0]
    assert positions == sorted(positions), "sections out of order"
    assert "{COMMON_ARGS}" not in doc and "{OBS_SPACES}" not in doc
    for section in SECTIONS:
        body = doc.split(section, 1)[1].split("##", 1)[0]
        assert body.strip(), f"empty section {section}"


@pytest.mark.parametrize("entry", envs.ENTRIES, ids=ALL_IDS)
def test_documented_index_space_size(entry):
    # where a docstring names Discrete(n) for index observations, it is the real size
    env = gym.make(entry.id)
    sizes = re.findall(
        r"``Discrete\((\d+)\)``", entry.cls.__doc__.split("## Observation Space")[1].split("##")[0]
    )
    for size in sizes:
        if entry.id == "lab/IceLake-v0":
            assert int(size) in (16, 64)
        elif entry.id == "lab/IceLake8x8-v0":
            assert int(size) in (16, 64) and env.observation_space.n == 64
        else:
            assert int(size) == env.observation_space.n


def test_summaries():
    for entry in envs.ENTRIES:
        assert entry.summary and "\n" not in entry.summary
