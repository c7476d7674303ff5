"""Write the example replays in ``replays/examples/``: the optimal policy on every grid preset.

Run it from the repository root: ``.venv/bin/python replays/make_examples.py``. Each replay holds
index observations and no frames, so it is a few hundred bytes; ``lab replay FILE`` re-renders the
frames by re-simulation. The tests verify every example by re-simulation, so a change to the
environments' dynamics, randomness or the replay format that would break saved replays is caught.
"""

from __future__ import annotations

import sys
from pathlib import Path

import gymnasium as gym

import envs
from agents.planning import value_iteration
from lab.replays import Episode, EpisodeRecorder, save_episode, verify_episode

FOLDER = Path(__file__).resolve().parent / "examples"
GAMMA = 0.99
MAX_SEED = 50  # on slippery ice, the first seed (from 0) whose episode reaches the goal


def record(env_id: str, seed: int) -> Episode:
    """One episode of the optimal (value-iteration) policy from ``reset(seed=seed)``."""
    env = gym.make(env_id)
    try:
        plan = value_iteration(env.unwrapped.transition_model(), gamma=GAMMA)
        rec = EpisodeRecorder.for_env(env, seed, "agent:value_iteration", env_kwargs={})
        obs, info = env.reset(seed=seed)
        rec.start(obs, info)
        done = False
        while not done:
            action = int(plan.policy[info["state"]])
            obs, reward, terminated, truncated, info = env.step(action)
            rec.step(action, obs, reward, terminated, truncated, info)
            done = terminated or truncated
        return rec.finish(episode_id=f"example-{env_id.removeprefix('lab/')}-seed{seed}")
    finally:
        env.close()


def example(env_id: str) -> Episode:
    """The first episode from seed 0 on that reaches the goal (the policy may slip into a pit on ice)."""
    for seed in range(MAX_SEED):
        episode = record(env_id, seed)
        if episode.terminated and episode.total_return > 0:
            return episode
    return record(env_id, 0)


def main() -> int:
    FOLDER.mkdir(parents=True, exist_ok=True)
    for entry in envs.ENTRIES:
        episode = example(entry.id)
        result = verify_episode(episode)
        if not result.ok:
            print(f"{entry.id}: the fresh recording does not verify: {result}", file=sys.stderr)
            return 1
        path = save_episode(episode, FOLDER / f"{entry.id.removeprefix('lab/')}.npz")
        print(f"{path.name}: {episode.length} steps, return {episode.total_return:g}, seed {episode.seed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
