"""``lab gen`` train / sample / eval / watch through the command line, and its one-line errors."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
import yaml

from agents.common.checkpoint import write_checkpoint
from generative.data import load_dataset
from generative.metrics import load_classifier
from lab.cli import main
from lab.gen.watch import watch

pytestmark = pytest.mark.usefixtures("one_torch_thread")


TINY_DIFFUSION = [
    "hyperparameters.channels=8", "hyperparameters.timesteps=20", "hyperparameters.sample_steps=4",
    "hyperparameters.conditional=true",
]  # fmt: skip
TINY_GAN = ["hyperparameters.channels=4", "hyperparameters.z_dim=8"]
COMMON = ["eval_interval=0", "checkpoint_interval=0", "samples=10"]


def sets(*pairs: str) -> list[str]:
    return [arg for pair in pairs for arg in ("--set", pair)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    data = load_dataset("digits", seed=0)
    load_classifier(data, root / ".classifiers", seed=0, epochs=2)  # the cache eval and train will find
    common = ["--runs-dir", str(root), "--no-progress", "--steps", "6"]
    tiny = sets(*TINY_DIFFUSION, *COMMON)
    assert main(["gen", "train", "--model", "diffusion", "--name", "diff", *common, *tiny]) == 0
    assert main(["gen", "train", "--model", "gan", "--name", "gan", *common, *sets(*TINY_GAN, *COMMON)]) == 0
    return root


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert err.startswith("lab: error: ")
    return err


def test_train_prints_the_quality_measured_at_the_end(runs, capsys):
    status = yaml.safe_load((runs / "diff" / "run.json").read_text())
    assert status["final"]["frechet_ratio"] > 1 and 0 <= status["final"]["conditional_accuracy"] <= 1


def test_sample_writes_a_grid_and_the_denoising_chain(runs, tmp_path, capsys):
    out, gif = tmp_path / "grid.png", tmp_path / "chain.gif"
    assert main(["gen", "sample", str(runs / "diff"), "--n", "12", "--out", str(out), "--gif", str(gif)]) == 0
    grid = iio.imread(out)
    assert grid.ndim == 3 and grid.shape[2] == 3
    frames = iio.imread(gif, index=None)
    assert len(frames) == 4  # one frame per DDIM step
    assert main(["gen", "sample", str(runs / "diff" / "model.npz"), "--label", "3", "--out", str(out)]) == 0
    assert (
        main(["gen", "sample", str(runs / "diff"), "--sampler", "ddpm", "--out", str(out), "--n", "3"]) == 0
    )


def test_sample_writes_a_latent_walk_for_a_gan(runs, tmp_path):
    gif = tmp_path / "walk.gif"
    assert (
        main(
            [
                "gen",
                "sample",
                str(runs / "gan"),
                "--n",
                "4",
                "--out",
                str(tmp_path / "g.png"),
                "--gif",
                str(gif),
            ]
        )
        == 0
    )
    frames = iio.imread(gif, index=None)
    assert len(frames) == 48 and not np.array_equal(frames[0], frames[20])


def test_eval_prints_accuracy_frechet_ratio_and_conditional_accuracy(runs, capsys):
    assert main(["gen", "eval", str(runs / "diff"), "--sample-steps", "2"]) == 0
    out = capsys.readouterr().out
    for words in (
        "evaluation classifier: held-out accuracy",
        "Frechet ratio",
        "conditional accuracy",
        "test_loss",
    ):
        assert words in out
    # without options it repeats the run's own final measurement
    assert main(["gen", "eval", str(runs / "diff")]) == 0
    final = yaml.safe_load((runs / "diff" / "run.json").read_text())["final"]
    out = capsys.readouterr().out
    assert f"Frechet ratio {final['frechet_ratio']:.3f}" in out
    assert f"conditional accuracy {final['conditional_accuracy']:.2%}" in out


def test_watch_runs_headless_with_a_frame_limit(runs, tmp_path):
    assert main(["gen", "watch", str(runs / "gan"), "--frames", "5"]) == 0
    keys = iter(["right", None, "r", "s", "left", None, "q"])
    saved = watch(runs / "diff", n=4, fps=1000, keys=lambda ms: next(keys), screenshot_dir=tmp_path)
    assert len(saved) == 1 and iio.imread(saved[0]).shape[2] == 3


def test_watch_starts_each_diffusion_chain_from_new_noise(runs):
    from lab.gen.sample import open_model
    from lab.gen.watch import HOLD_FRAMES, live_pictures

    loaded = open_model(runs / "diff")
    steps, seed_box = loaded.model.hp["sample_steps"], [0]
    stream = live_pictures(loaded, 4, [0], seed_box)
    first = [next(stream) for _ in range(steps + HOLD_FRAMES)]
    assert first[0][1] == f"denoising step 1/{steps}" and first[-1][1].startswith("samples")
    again = next(stream)
    assert seed_box == [1] and again[1] == f"denoising step 1/{steps}"
    assert not np.array_equal(again[0], first[0][0])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["gen", "train", "--model", "difusion"], r"unknown model 'difusion'; did you mean 'diffusion'\?"),
        (
            ["gen", "train", "--model", "vae", "--dataset", "digts"],
            r"unknown data set 'digts'; did you mean 'digits'\?",
        ),
        (
            ["gen", "train", "--model", "vae", "--set", "step=3"],
            r"unknown key 'step' in --set; did you mean 'steps'\?",
        ),
        (
            ["gen", "train", "--model", "gan", "--set", "hyperparameters.lr=1"],
            r"unknown gan hyperparameter 'lr'",
        ),
        (
            ["gen", "train", "--model", "gan", "--set", "hyperparameters.batch_size=1"],
            r"gan hyperparameter batch_size must be at least 2 \(batch norm\); got 1",
        ),
        (
            ["gen", "train", "--model", "vae", "--dataset", "themes"],
            r"the themes data set holds two image domains, for the translation models .*; a vae learns one",
        ),
        (
            ["gen", "train", "--model", "diffusion", "--set", "hyperparameters.eta=-1"],
            r"eta \(DDIM's noise\) must lie in \[0, 1\]; got -1",
        ),
        (["gen", "train"], "give a spec file"),
        (["gen", "train", "nope.yaml"], "no spec file at nope.yaml"),
        (["gen", "sample", "missing-run"], "no run directory or model file at missing-run"),
    ],
)
def test_bad_input_is_one_line(args, message, capsys, tmp_path):
    assert main([*args, "--runs-dir", str(tmp_path)] if args[1] == "train" else args) == 2
    import re

    assert re.search(message, one_error_line(capsys))
    assert not any(tmp_path.iterdir())  # nothing written


def test_a_spec_file_with_an_unknown_model_or_key(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text("model: gann\nsteps: 5\n")
    assert main(["gen", "train", str(spec), "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "unknown model 'gann'; did you mean 'gan'?" in one_error_line(capsys)
    spec.write_text("model: gan\nhyperparameter: {}\n")
    assert main(["gen", "train", str(spec), "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "did you mean 'hyperparameters'?" in one_error_line(capsys)
    assert not (tmp_path / "runs").exists()


def test_models_of_the_wrong_kind_are_refused(runs, tmp_path, capsys):
    agent = write_checkpoint(tmp_path / "agent.npz", {"algorithm": "q_learning"}, {"q": np.zeros(3)})
    assert main(["gen", "sample", str(agent), "--out", str(tmp_path / "x.png")]) == 2
    assert "is an agent checkpoint (q_learning), not a generative model" in one_error_line(capsys)
    (tmp_path / "junk.npz").write_bytes(b"junk")
    assert main(["gen", "eval", str(tmp_path / "junk.npz")]) == 2
    assert "is not a generative model file" in one_error_line(capsys)
    classifier = next((runs / ".classifiers").glob("*.npz"))
    assert main(["gen", "sample", str(classifier)]) == 2
    assert "is an evaluation classifier" in one_error_line(capsys)
    assert main(["gen", "sample", str(runs / "gan"), "--label", "1"]) == 2
    assert "unconditional" in one_error_line(capsys)
    for target in (runs / "gan", runs / "gan" / "model.npz"):  # the reverse: lab eval on a generative model
        assert main(["eval", str(target)]) == 2
        assert f"holds a generative model; measure it with: lab gen eval {target}" in one_error_line(capsys)
    assert main(["gen", "sample", str(runs / "gan"), "--guidance", "2"]) == 2
    assert "--guidance applies to diffusion models; this is a gan" in one_error_line(capsys)
    diffusion = str(runs / "diff")
    for flags, message in (
        (["--sampler", "ddpm", "--sample-steps", "3"], "--sample-steps sets the DDIM sampler; the DDPM"),
        (["--eta", "-1"], "eta (DDIM's noise) must lie in [0, 1]; got -1"),
    ):
        assert main(["gen", "sample", diffusion, "--out", str(tmp_path / "x.png"), *flags]) == 2
        assert message in one_error_line(capsys)
    (tmp_path / "notes.txt").write_text("not a folder")
    with pytest.raises(SystemExit) as stopped:  # argparse's own error: the file is refused as it is read
        main(["gen", "eval", diffusion, "--cache", str(tmp_path / "notes.txt")])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and "--cache: " in err and "notes.txt is a file; give a folder" in err
    assert not (tmp_path / "x.png").exists()


def test_training_on_a_folder_says_how_many_files_it_skipped(tmp_path, capsys, monkeypatch):
    from PIL import Image

    digits = load_dataset("digits", seed=0)
    for k, image in enumerate(digits.train_x[:12]):
        folder = tmp_path / "images" / f"class{k % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(((image[0] + 1) * 127.5).astype(np.uint8)).save(folder / f"{k}.png")
    (tmp_path / "images" / "class0" / "notes.txt").write_text("not an image")
    monkeypatch.chdir(tmp_path)
    folder = "dataset_options.path=images"  # relative: the run records where it is
    args = ["gen", "train", "--model", "gan", "--dataset", "folder", "--runs-dir", str(tmp_path / "runs"),
            "--steps", "2", "--no-progress", *sets(*TINY_GAN, *COMMON, folder, "measure=false")]  # fmt: skip
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "skipped 1 unreadable file(s)" in err and "class0/notes.txt" in err
    status = yaml.safe_load((tmp_path / "runs" / "folder-gan" / "run.json").read_text())
    assert status["data"]["images"] == 12 and status["data"]["skipped_files"] == ["class0/notes.txt"]
    spec = yaml.safe_load((tmp_path / "runs" / "folder-gan" / "spec.yaml").read_text())
    assert spec["dataset_options"]["path"] == str(tmp_path / "images")  # so lab gen eval works from anywhere
