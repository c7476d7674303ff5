"""Language models on the text environment: pre-training English, then PPO from the language model.

    python benchmarks/bench_lm.py            # full run (about 6 minutes on 2 shared cores)
    python benchmarks/bench_lm.py --quick    # smaller counts, for a smoke test
    python benchmarks/bench_lm.py --maskable # also sb3-contrib's MaskablePPO from scratch, same budget
    python benchmarks/bench_lm.py --scratch-only   # only that comparison (part 3)
    python benchmarks/bench_lm.py --decode   # only: decoding tokens/s with and without the cache

Measures, on one torch thread:
1. ``lab lm train configs/lm-english.yaml`` (a 2-layer, 64-wide causal Transformer, 3,000 steps
   of 64 sentences): wall time, and ``lab lm eval``'s exact figures: share of grammatical samples at
   temperature 1, held-out NLL per sentence against the grammar's entropy (and against the true
   model's NLL on the same sentences), exact KL on the sentences of <= 4 tokens and the rest.
2. PPO on ``lab/TextPositive-v0`` with ``policy_kwargs.language_model`` (configs/text-positive-ppo-lm.yaml):
   the success rate and the share of grammatical sentences of the sampling policy, before and after
   ``--ppo-steps`` steps, over ``--episodes`` episodes (seeds apart from training's).
3. With ``--maskable``: sb3-contrib's ``MaskablePPO`` (MultiInputPolicy, action masks) from scratch
   on the same env and the same number of steps, and our PPO from scratch (the token GRU encoder),
   with the env's masks (``use_masking``) and without.
4. With ``--decode`` (alone): decoding speed in tokens/s, for sequences of 16, 64 and 256 tokens and
   a batch of 64, of the English model's shape (Transformer: 2 layers, 64 wide, 4 heads; GRU: 2
   layers, 64 wide) over the English vocabulary: one new token per step through the key/value cache
   (``LanguageModel.step``), against rescoring the whole prefix each step (``LanguageModel.forward``,
   what decoding without a cache does). The weights are random: speed does not depend on them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

ROOT = Path(__file__).resolve().parents[1]
ENV_ID = "lab/TextPositive-v0"


def rates(act, env, episodes: int) -> tuple[float, float]:
    """(success rate, grammatical rate) of ``act(obs, env) -> action`` over ``episodes`` episodes."""
    wins = grammatical = 0
    for i in range(episodes):
        obs, _ = env.reset(seed=100_000 + i)
        done, info = False, {}
        while not done:
            obs, _, terminated, truncated, info = env.step(act(obs, env))
            done = terminated or truncated
        wins += bool(info.get("success", False))
        grammatical += bool(info.get("grammatical", False))
    return wins / episodes, grammatical / episodes


def pretrain(runs: Path, steps: int | None) -> dict:
    from lab.lm.spec import spec_from_args
    from lab.lm.train import train

    overrides = [f"steps={steps}"] if steps else []
    spec = spec_from_args(str(ROOT / "configs" / "lm-english.yaml"), overrides)
    tick = time.perf_counter()
    _, final = train(spec, runs_dir=runs, progress=False)
    return {"seconds": round(time.perf_counter() - tick, 1), "steps": spec.steps,
            **{k: v for k, v in final.items() if k != "examples"}}  # fmt: skip


def ppo_from_language_model(model_file: Path, steps: int, episodes: int) -> dict:
    from agents.ppo import PPO
    from lab.core.environments import make_env

    env, evaluation = make_env(ENV_ID), make_env(ENV_ID)
    policy = {"language_model": str(model_file), "features_dim": 32, "net_arch": [32]}
    agent = PPO(env, seed=0, n_steps=256, batch_size=64, n_epochs=4, learning_rate=1e-4, ent_coef=0.0,
                policy_kwargs=policy)  # fmt: skip

    def act(obs, _env):
        return agent.predict(obs, deterministic=False)[0]

    before = rates(act, evaluation, episodes)
    tick = time.perf_counter()
    agent.learn(steps)
    seconds = time.perf_counter() - tick
    after = rates(act, evaluation, episodes)
    return {
        "steps": steps, "seconds": round(seconds, 1), "success_before": before[0], "success_after": after[0],
        "grammatical_before": before[1], "grammatical_after": after[1],
    }  # fmt: skip


def from_scratch(steps: int, episodes: int) -> dict:
    import gymnasium as gym
    from sb3_contrib import MaskablePPO

    import envs  # noqa: F401
    from agents.ppo import PPO
    from lab.core.environments import make_env

    out = {}
    env = gym.make(ENV_ID)
    tick = time.perf_counter()
    model = MaskablePPO("MultiInputPolicy", env, seed=0, verbose=0).learn(steps)
    seconds = time.perf_counter() - tick

    def masked(obs, e):
        return int(model.predict(obs, action_masks=e.unwrapped.action_masks(), deterministic=False)[0])

    s, g = rates(masked, gym.make(ENV_ID), episodes)
    out["maskable_ppo"] = {"seconds": round(seconds, 1), "success": s, "grammatical": g}
    for name, use_masking in (("our_ppo_masks", True), ("our_ppo_no_masks", False)):
        agent = PPO(make_env(ENV_ID), seed=0, use_masking=use_masking)  # SB3's (and MaskablePPO's) defaults
        tick = time.perf_counter()
        agent.learn(steps)
        seconds = time.perf_counter() - tick

        def act(obs, e, agent=agent, use_masking=use_masking):
            masks = e.unwrapped.action_masks() if use_masking else None
            return agent.predict(obs, deterministic=False, action_masks=masks)[0]

        s, g = rates(act, make_env(ENV_ID), episodes)
        out[name] = {"seconds": round(seconds, 1), "success": s, "grammatical": g}
    return out


def decode_speed(lengths: tuple[int, ...] = (16, 64, 256), batch: int = 64, repeats: int = 3) -> dict:
    """Tokens per second of decoding ``length`` tokens for ``batch`` sequences, cached and uncached."""
    from lab.nets.language_model import LanguageModel

    torch.manual_seed(0)
    vocab = 47  # the English grammar's 46 words and the end token
    table = {}
    for kind in ("transformer", "gru"):
        model = LanguageModel(vocab, kind, context=max(lengths) + 1).eval()
        for length in lengths:
            tokens = torch.randint(0, vocab, (batch, length))
            times = {"cached": [], "uncached": []}
            with torch.inference_mode():
                for _ in range(repeats):
                    tick = time.perf_counter()
                    state = None
                    for t in range(length):
                        _, state = model.step(tokens[:, t : t + 1], state)
                    times["cached"].append(time.perf_counter() - tick)
                    tick = time.perf_counter()
                    for t in range(length):
                        model(tokens[:, : t + 1])
                    times["uncached"].append(time.perf_counter() - tick)
            cached, uncached = (batch * length / min(times[k]) for k in ("cached", "uncached"))
            table[f"{kind} {length}"] = {
                "cached tokens/s": round(cached),
                "uncached tokens/s": round(uncached),
                "speed-up": round(cached / uncached, 2),
            }
            print(kind, length, table[f"{kind} {length}"], flush=True)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--maskable", action="store_true")
    parser.add_argument("--ppo-steps", type=int, default=15_000)
    parser.add_argument("--episodes", type=int, default=500)
    parser.add_argument("--decode", action="store_true", help="only the decoding speed, cached and not")
    parser.add_argument("--scratch-only", action="store_true", help="only part 3 (from scratch, masks)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.decode:
        print(json.dumps(decode_speed(), indent=1))
        return
    steps = 200 if args.quick else None
    ppo_steps, episodes = (1000, 50) if args.quick else (args.ppo_steps, args.episodes)
    if args.scratch_only:
        print(json.dumps(from_scratch(ppo_steps, episodes), indent=1))
        return
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        result = {"pretrain": pretrain(runs, steps)}
        print(json.dumps(result, indent=1), flush=True)
        result["ppo_from_lm"] = ppo_from_language_model(
            runs / "lm-english" / "model.npz", ppo_steps, episodes
        )
        print(json.dumps(result["ppo_from_lm"], indent=1), flush=True)
        if args.maskable:
            result["from_scratch"] = from_scratch(ppo_steps, episodes)
            print(json.dumps(result["from_scratch"], indent=1), flush=True)


if __name__ == "__main__":
    main()
