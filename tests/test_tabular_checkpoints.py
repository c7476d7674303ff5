"""Checkpoints: round trips, exact resumption for every algorithm, and every way a file can be wrong."""

from __future__ import annotations

import json
import os
import re
import zipfile

import gymnasium as gym
import numpy as np
import pytest

import agents
from agents import AGENTS, Agent, AgentError, TabularAgent, load_agent

TABULAR = ("q_learning", "sarsa", "expected_sarsa", "double_q_learning", "monte_carlo")
ALGORITHMS = sorted(TABULAR)

# Hyperparameters that exercise every path: schedules of both kinds, 1/N counts, optimism.
RESUME_SETTINGS = {
    "q_learning": {"epsilon": {"type": "exponential", "start": 1.0, "end": 0.05, "decay": 0.9995}},
    "sarsa": {
        "epsilon": {"type": "linear", "start": 1.0, "end": 0.0, "fraction": 0.8},
        "learning_rate": "1/N",
    },
    "expected_sarsa": {
        "epsilon": 0.2,
        "learning_rate": {"type": "exponential", "start": 0.5, "end": 0.01, "decay": 0.9998},
        "initial_q": 1.0,
    },
    "double_q_learning": {"epsilon": 0.3, "learning_rate": "1/N"},
    "monte_carlo": {"epsilon": {"type": "exponential", "start": 0.5, "end": 0.0, "decay": 0.9997}},
}


def tables(agent: TabularAgent) -> list[np.ndarray]:
    return [t.copy() for t in agent._synced_tables()] + [c.copy() for c in agent._counts]


def trained(name: str = "q_learning", env_id: str = "lab/IceLake-v0", steps: int = 3000) -> TabularAgent:
    agent = AGENTS[name](gym.make(env_id), seed=5, **RESUME_SETTINGS[name])
    return agent.learn(steps)


# ----- round trips -----


@pytest.mark.parametrize("name", ALGORITHMS)
def test_round_trip(tmp_path, name):
    agent = trained(name)
    path = agent.save(tmp_path / "run" / "agent")
    assert path == tmp_path / "run" / "agent.npz" and path.is_file()
    assert os.listdir(path.parent) == ["agent.npz"]  # no temporary file left behind
    for loader, where in [
        (Agent.load, path),
        (load_agent, tmp_path / "run" / "agent"),  # the suffix may be left out, as for save()
        (AGENTS[name].load, str(path)),
        (TabularAgent.load, path),
    ]:
        loaded = loader(where)
        assert type(loaded) is AGENTS[name]
        assert loaded.hyperparameters == agent.hyperparameters
        assert loaded.num_timesteps == agent.num_timesteps and loaded.num_episodes == agent.num_episodes
        np.testing.assert_array_equal(loaded.q_table, agent.q_table)
        for a, b in zip(tables(loaded), tables(agent), strict=True):
            np.testing.assert_array_equal(a, b)
        states = np.arange(16)
        np.testing.assert_array_equal(loaded.predict(states)[0], agent.predict(states)[0])
        assert loaded.env.spec.id == "lab/IceLake-v0"
        assert loaded.epsilon == agent.epsilon


def test_checkpoint_contents(tmp_path):
    agent = trained("double_q_learning")
    path = agent.save(tmp_path / "dq.npz")
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == [
            "meta",
            "q_table",
            "q_table_a",
            "q_table_b",
            "visit_counts_a",
            "visit_counts_b",
        ]
        meta = json.loads(str(data["meta"][()]))
        np.testing.assert_array_equal(data["q_table"], agent.q_table)
    assert meta["format"] == "rl-lab-agent" and meta["algorithm"] == "double_q_learning"
    assert meta["hyperparameters"] == agent.hyperparameters
    assert meta["env"] == {"id": "lab/IceLake-v0", "kwargs": {}, "max_episode_steps": 100}
    assert meta["observation_space"] == {"type": "Discrete", "n": 16, "start": 0}
    assert meta["num_timesteps"] == 3000 and meta["num_episodes"] == agent.num_episodes
    assert meta["rng"]["bit_generator"]["bit_generator"] == "PCG64"
    assert isinstance(meta["lab_version"], str)


def test_load_remakes_the_env_with_its_kwargs(tmp_path):
    env = gym.make("lab/IceLake-v0", map_name="8x8", slip_prob=0.5, max_episode_steps=50)
    agent = agents.QLearning(env, seed=0)
    path = agent.save(tmp_path / "lake")
    loaded = load_agent(path)
    assert loaded.env.unwrapped.model.n_states == 64
    assert loaded.env.unwrapped.model.dynamics.slip_prob == 0.5
    assert loaded.env.spec.max_episode_steps == 50


def test_load_into_a_given_env_and_a_mismatched_one(tmp_path):
    path = trained("q_learning", "lab/CliffWalk-v0").save(tmp_path / "cliff")
    mine = gym.make("lab/CliffWalk-v0")
    assert load_agent(path, env=mine).env is mine
    with pytest.raises(AgentError) as info:
        load_agent(path, env=gym.make("lab/IceLake-v0"))
    assert str(info.value) == "the model was trained on Discrete(48) observations; this env has Discrete(16)"
    with pytest.raises(AgentError, match=re.escape("on Discrete(4) actions; this env has Discrete(8)")):
        load_agent(path, env=gym.make("lab/CliffWalk-v0", king_moves=True))
    with pytest.raises(AgentError, match="needs a Discrete observation space"):
        load_agent(path, env=gym.make("lab/CliffWalk-v0", obs_type="onehot"))


def test_wrong_class(tmp_path):
    path = trained("q_learning").save(tmp_path / "q")
    with pytest.raises(AgentError) as info:
        agents.Sarsa.load(path)
    assert "holds a 'q_learning' agent (QLearning), not a Sarsa" in str(info.value)


# ----- files that are not checkpoints -----


def rewrite_meta(src, dst, change) -> None:
    with np.load(src, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays.pop("meta")[()]))
    change(meta)
    np.savez(dst, meta=np.array(json.dumps(meta)), **arrays)


def test_bad_files(tmp_path):
    good = trained("q_learning").save(tmp_path / "good")
    with pytest.raises(AgentError, match=r"no checkpoint at .*missing\.npz: the file does not exist"):
        load_agent(tmp_path / "missing.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(AgentError, match=r"not an \.npz"):
        load_agent(garbage)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(AgentError, match="truncated"):
        load_agent(truncated)
    a_dir = tmp_path / "folder.npz"
    a_dir.mkdir()
    with pytest.raises(AgentError, match="does not exist"):
        load_agent(a_dir)
    plain = tmp_path / "plain.npz"
    np.savez(plain, weights=np.zeros(3))
    with pytest.raises(AgentError, match="no 'meta' entry"):
        load_agent(plain)
    not_ours = tmp_path / "not_ours.npz"
    np.savez(not_ours, meta=np.array(json.dumps({"format": "something-else"})))
    with pytest.raises(AgentError, match="does not say 'rl-lab-agent'"):
        load_agent(not_ours)
    bad_json = tmp_path / "bad_json.npz"
    np.savez(bad_json, meta=np.array("{not json"))
    with pytest.raises(AgentError, match="not valid JSON"):
        load_agent(bad_json)
    numeric_meta = tmp_path / "numeric_meta.npz"
    np.savez(numeric_meta, meta=np.zeros(3))
    with pytest.raises(AgentError, match="'meta' must be a JSON string"):
        load_agent(numeric_meta)


def test_bad_contents(tmp_path):
    good = trained("q_learning").save(tmp_path / "good")
    cases = {
        "unknown_algorithm": (lambda m: m.update(algorithm="ppo9000"), "does not know"),
        "no_algorithm": (lambda m: m.pop("algorithm"), "missing or bad 'algorithm'"),
        "newer_format": (lambda m: m.update(format_version=99), "format version 99"),
        "bad_hyperparameter": (lambda m: m["hyperparameters"].update(epsilon=7), "epsilon is a probability"),
        "bad_rng": (
            lambda m: m.update(rng={"bit_generator": {"nonsense": 1}, "position": 3}),
            "random-number",
        ),
        "no_env": (lambda m: m.update(env=None), "pass env="),
        "rng_state_out_of_range": (
            lambda m: m["rng"]["bit_generator"]["state"].update(state=-1),
            "random-number state is not usable",
        ),
        "steps_not_a_number": (
            lambda m: m.update(num_timesteps="abc"),
            "num_timesteps must be a whole number",
        ),
        "negative_steps": (lambda m: m.update(num_timesteps=-5), "num_timesteps must be a whole number >= 0"),
        "negative_budget": (lambda m: m.update(total_timesteps=-1), "total_timesteps must be a whole number"),
    }
    for name, (change, message) in cases.items():
        path = tmp_path / f"{name}.npz"
        rewrite_meta(good, path, change)
        with pytest.raises(AgentError, match=message):
            load_agent(path)
    # Arrays of the wrong shape or kind.
    with np.load(good, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    np.savez(tmp_path / "small.npz", **{**arrays, "q_table": np.zeros((3, 4))})
    with pytest.raises(AgentError, match=r"'q_table' is float64 \(3, 4\)"):
        load_agent(tmp_path / "small.npz")
    np.savez(tmp_path / "strings.npz", **{**arrays, "q_table": np.full((16, 4), "x")})
    with pytest.raises(AgentError, match="'q_table' is <U1"):
        load_agent(tmp_path / "strings.npz")
    mc = AGENTS["monte_carlo"]("lab/IceLake-v0", seed=0).save(tmp_path / "mc")  # 1/N step sizes
    with np.load(mc, allow_pickle=False) as data:
        mc_arrays = {k: data[k] for k in data.files}
    np.savez(tmp_path / "counts.npz", **{**mc_arrays, "visit_counts": np.full((16, 4), -1)})
    with pytest.raises(AgentError, match=r"'visit_counts' holds counts outside 0\.\.2"):
        load_agent(tmp_path / "counts.npz")
    del arrays["q_table"]
    np.savez(tmp_path / "no_table.npz", **arrays)
    with pytest.raises(AgentError, match="no 'q_table' array"):
        load_agent(tmp_path / "no_table.npz")


class Payload:
    """Unpickling this calls open(marker, 'w'): code running from a data file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("entry", ["meta", "q_table"])
def test_pickled_objects_never_run(tmp_path, entry):
    good = trained("q_learning").save(tmp_path / "good")
    with np.load(good, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    marker = tmp_path / "pwned"
    arrays[entry] = np.array([Payload(marker)], dtype=object)
    evil = tmp_path / "evil.npz"
    np.savez(evil, **arrays)  # np.save pickles object arrays
    with pytest.raises(AgentError, match="pickled Python objects"):
        load_agent(evil)
    assert not marker.exists()
    # The payload is live: loading it the unsafe way runs it.
    with np.load(evil, allow_pickle=True) as data:
        data[entry]
    assert marker.exists()


def test_save_is_atomic(tmp_path, monkeypatch):
    agent = trained("q_learning")
    path = agent.save(tmp_path / "agent")
    before = path.read_bytes()

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", explode)
    with pytest.raises(OSError, match="disk full"):
        agent.save(path)
    assert path.read_bytes() == before  # the old checkpoint is intact
    assert os.listdir(tmp_path) == ["agent.npz"]  # and the temporary file is gone
    assert zipfile.is_zipfile(path)


# ----- exact resumption -----


@pytest.mark.parametrize("env_id", ["lab/IceLake-v0", "lab/CliffWalk-v0"])
@pytest.mark.parametrize("name", ALGORITHMS)
def test_resume_is_exact(tmp_path, name, env_id):
    total, pause_after = 12_000, 5_000
    settings = RESUME_SETTINGS[name]

    whole = AGENTS[name](gym.make(env_id), seed=9, **settings)
    whole_events = []
    whole.learn(total, callback=lambda e: whole_events.append({k: v for k, v in e.items() if k != "agent"}))

    first = AGENTS[name](gym.make(env_id), seed=9, **settings)
    events = []

    def pause(event):
        events.append({k: v for k, v in event.items() if k != "agent"})
        return event["timestep"] < pause_after  # stop at the first episode end past 5000 steps

    first.learn(total, callback=pause)
    assert pause_after <= first.num_timesteps < total
    path = first.save(tmp_path / "paused")
    del first

    resumed = AGENTS[name].load(path, env=gym.make(env_id))  # a fresh env
    resumed.learn(
        total - resumed.num_timesteps,
        callback=lambda e: events.append({k: v for k, v in e.items() if k != "agent"}),
        reset_num_timesteps=False,
    )
    assert resumed.num_timesteps == whole.num_timesteps == total
    assert resumed.num_episodes == whole.num_episodes
    assert events == whole_events
    for a, b in zip(tables(resumed), tables(whole), strict=True):
        assert np.array_equal(a, b)
    assert resumed._stream.get_state() == whole._stream.get_state()


def test_pausing_in_process_is_exact_too():
    settings = RESUME_SETTINGS["sarsa"]
    whole = agents.Sarsa(gym.make("lab/IceLake-v0"), seed=1, **settings).learn(8000)
    paused = agents.Sarsa(gym.make("lab/IceLake-v0"), seed=1, **settings)
    paused.learn(8000, callback=lambda e: e["timestep"] < 3000)
    paused.learn(8000 - paused.num_timesteps, reset_num_timesteps=False)
    assert np.array_equal(paused.q_table, whole.q_table)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_checkpoint_saved_inside_a_callback_resumes_exactly(tmp_path, name):
    # What a run does: save every so often from the callback, keep training; later resume from a save.
    total, settings = 10_000, RESUME_SETTINGS[name]
    saved = []

    def checkpoint(event):
        if event["episode"] % 50 == 49 and 2_000 < event["timestep"] < 6_000:
            saved.append((event["timestep"], event["agent"].save(tmp_path / f"at_{event['timestep']}")))

    whole = AGENTS[name](gym.make("lab/IceLake-v0"), seed=2, **settings).learn(total, callback=checkpoint)
    assert saved
    for _, path in saved:
        resumed = load_agent(path)
        resumed.learn(total - resumed.num_timesteps, reset_num_timesteps=False)
        for a, b in zip(tables(resumed), tables(whole), strict=True):
            assert np.array_equal(a, b)
