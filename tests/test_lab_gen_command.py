"""The ``lab`` command reaches the generative models: ``lab gen ...`` and ``lab watch MODEL``."""

from __future__ import annotations

import pytest

from lab.cli import is_generative_model, main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    settings = ["hyperparameters.channels=4", "hyperparameters.z_dim=8", "measure=false",
                "eval_interval=0", "checkpoint_interval=0", "samples=4"]  # fmt: skip
    args = ["gen", "train", "--model", "gan", "--name", "gan", "--runs-dir", str(root), "--no-progress",
            "--steps", "3", *[a for s in settings for a in ("--set", s)]]  # fmt: skip
    assert main(args) == 0
    return root / "gan"


def test_lab_watch_tells_a_generative_model_from_an_agent(gan_run, tmp_path, monkeypatch):
    import lab.gen.watch

    shown = []
    monkeypatch.setattr(lab.gen.watch, "watch", lambda target, **kw: shown.append(target) or [])
    assert is_generative_model(str(gan_run)) and is_generative_model(str(gan_run / "model.npz"))
    assert main(["watch", str(gan_run)]) == 0
    assert shown == [str(gan_run)]
    assert not is_generative_model(str(tmp_path / "missing"))
    rl = ["train", "--env", "CliffWalk", "--agent", "q_learning", "--steps", "200", "--name", "cliff",
          "--runs-dir", str(tmp_path), "--no-progress", "--set", "eval_episodes=1"]  # fmt: skip
    assert main(rl) == 0
    assert not is_generative_model(str(tmp_path / "cliff"))  # an agent's run goes to the agent viewer


def test_lab_gen_errors_are_one_line(capsys, tmp_path):
    assert main(["gen", "train", "--model", "difusion", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "did you mean 'diffusion'" in err and "\n" not in err


def test_lab_eval_refuses_a_generative_model_in_one_line(gan_run, capsys):
    assert main(["eval", str(gan_run / "model.npz"), "--env", "CliffWalk"]) == 2
    err = capsys.readouterr().err.strip()
    assert "holds a generative model; measure it with: lab gen eval" in err and "\n" not in err
