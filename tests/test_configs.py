"""Every example spec in configs/ is valid, and short runs of each cheap one land on the optimum."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lab.runs import RunDir
from lab.spec import load_spec_file, spec_from_dict
from lab.train import Trainer, spec_from_args, train

ROOT = Path(__file__).parent.parent / "configs"
# gen-*.yaml are generative-model specs (lab gen train), tested with the generative models; lm-*.yaml
# language-model specs (lab lm train), checked below
CONFIGS = sorted(p for p in ROOT.glob("*.yaml") if not p.name.startswith(("gen-", "lm-")))
PRESETS_COVERED = {"CliffWalk", "WindyGrid", "IceLake", "IceLake8x8", "FourRooms", "Maze", "KeyDoor"}
NEEDS = {"LunarLander-v3": "Box2D"}  # envs behind an optional extra (pip install -e '.[box2d]')


def test_every_preset_has_an_example_spec():
    envs_in_configs = {
        spec_from_dict(load_spec_file(p)).env.removeprefix("lab/").rsplit("-v", 1)[0] for p in CONFIGS
    }
    assert envs_in_configs >= PRESETS_COVERED


@pytest.mark.parametrize("path", sorted(ROOT.glob("lm-*.yaml")), ids=lambda p: p.stem)
def test_language_model_config_is_valid(path):
    from lab.lm.spec import spec_from_args as lm_spec_from_args

    spec = lm_spec_from_args(str(path), [])
    assert spec.name == path.stem and spec.steps > 0


def tiny_language_model(env_id: str, folder: Path) -> Path:
    """A small untrained language model file for ``env_id``'s vocabulary (configs that start PPO
    from one name a run's model.npz that a test cannot wait to train)."""
    import gymnasium as gym
    import torch

    from lab.nets.language_model import LanguageModel, save_language_model

    env = gym.make(env_id)
    vocabulary = list(env.unwrapped.vocabulary.tokens)
    torch.manual_seed(0)
    model = LanguageModel(len(vocabulary), "transformer", context=16, width=16, layers=1, heads=2)
    return save_language_model(folder / "lm.npz", model, {"vocabulary": vocabulary, "language": "english"})


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_is_valid_and_builds_its_agent(path, tmp_path):
    overrides = []
    policy_kwargs = load_spec_file(path).get("hyperparameters", {}).get("policy_kwargs") or {}
    if "language_model" in policy_kwargs:
        lm = tiny_language_model(load_spec_file(path)["env"], tmp_path)
        kwargs = yaml.safe_dump({**policy_kwargs, "language_model": str(lm)}, default_flow_style=True)
        overrides = [f"hyperparameters.policy_kwargs={kwargs.strip()}"]
    spec = spec_from_args(str(path), None, None, None, None, None, overrides)
    if spec.env in NEEDS:
        pytest.importorskip(NEEDS[spec.env], reason=f"{spec.env} needs the box2d extra")
    trainer = Trainer(spec, RunDir.new(tmp_path, spec.name), progress=False)
    assert trainer.agent.hyperparameters["gamma"] == spec.hyperparameters["gamma"]


# Seeds 0-4 measured: all three are exactly optimal on every seed. (maze-dqn.yaml, optimal on seeds
# 0-19 at its 30k steps, is left out: about 15 s a seed since DQN moved to plain autograd.)
CHEAP = ["cliffwalk-q_learning", "windygrid-sarsa", "keydoor-q_learning"]


@pytest.mark.parametrize("name", CHEAP)
def test_cheap_configs_reach_the_exact_optimum(name, tmp_path):
    """At least 2 of seeds 0, 1, 2 end exactly optimal (one seed's outcome can turn on rounding);
    the seeds stop once that is decided."""
    outcomes, passed = [], 0
    for seed in (0, 1, 2):
        spec = spec_from_args(
            str(Path(__file__).parent.parent / "configs" / f"{name}.yaml"),
            None,
            None,
            None,
            seed,
            None,
            ["eval_interval=0", "checkpoint_interval=0", "record_episodes=0"],
        )
        [(_, result)] = train(spec, runs_dir=tmp_path / f"seed{seed}", progress=False)
        passed += abs(result.relative_gap) < 1e-9
        outcomes.append(f"seed {seed}: {result.summary()}")
        if passed == 2 or len(outcomes) - passed == 2:
            break
    assert passed >= 2, "\n".join(outcomes)
