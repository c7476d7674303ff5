"""CycleGAN and pix2pix: their pieces, exact scores of a known translation, and the ``lab gen``
commands on a tiny run (train, exact resume, sample, eval, watch, bad input in one line)."""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

from generative.checkpoint import load_model, read_model_file
from generative.cyclegan import CycleGAN
from generative.data import load_dataset
from generative.pix2pix import Pix2Pix
from generative.translation import GlobalDiscriminator, ImagePool, TranslationModel
from generative.translation_data import CellDecoder, render, theme_templates
from generative.translation_metrics import measure_translation, psnr, ssim
from lab.cli import main
from lab.core.errors import LabError
from lab.gen.train import resume

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"channels": 4, "blocks": 1, "d_channels": 4, "batch_size": 4, "pool_size": 3, "lambda_global": 1.0,
        "cycle_noise": 0.1, "colour_path": True}  # fmt: skip
DATA = ["dataset_options.train=16", "dataset_options.test=8", "dataset_options.rows=2",
        "dataset_options.cols=2"]  # fmt: skip


def train_args(root, model, name, steps, hp, extra=()):
    settings = [*DATA, *(f"hyperparameters.{k}={v}" for k, v in hp.items()), "eval_interval=2",
                "checkpoint_interval=2", "log_interval=1", "samples=4", *extra]  # fmt: skip
    return ["gen", "train", "--model", model, "--dataset", "themes", "--name", name, "--runs-dir", str(root),
            "--no-progress", "--steps", str(steps), *[a for s in settings for a in ("--set", s)]]  # fmt: skip


@pytest.fixture(scope="module")
def cycle_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    assert main(train_args(root, "cyclegan", "cycle", 4, TINY)) == 0
    return root / "cycle"


def rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


# ----- pieces -----


def test_the_pool_fills_then_swaps_half_its_draws_for_stored_fakes():
    pool = ImagePool(3, (1, 2, 2))
    generator = torch.Generator().manual_seed(0)
    first = torch.arange(3.0)[:, None, None, None].expand(3, 1, 2, 2)
    assert torch.equal(pool.query(first, generator), first) and int(pool.count) == 3
    fakes = torch.arange(10.0, 210.0)[:, None, None, None].expand(200, 1, 2, 2)
    out = pool.query(fakes, generator)[:, 0, 0, 0]
    swapped = out != fakes[:, 0, 0, 0]
    assert 60 < swapped.sum().item() < 140  # about half, each an earlier image
    earlier = [set(range(3)) | set(range(10, 10 + i)) for i in range(200)]
    assert all(int(v) in earlier[i] for i, v in enumerate(out.tolist()) if swapped[i])
    assert int(pool.count) == 3


def test_the_learning_rate_is_constant_then_decays_linearly_to_zero():
    model = CycleGAN((6, 16, 16), 1, {**TINY, "lr_g": 1e-3, "lr_d": 2e-3, "decay_fraction": 0.5})
    model.total_steps = 10
    rates = []
    for step in range(10):
        model.step = step
        model.set_lr()
        rates.append(model.opt_g.param_groups[0]["lr"])
    assert rates[:5] == [1e-3] * 5
    assert np.allclose(rates[5:], [1e-3 * (1 - k / 6) for k in range(5)])
    assert model.opt_d.param_groups[0]["lr"] == pytest.approx(2e-3 * (1 - 4 / 6))


def test_translation_models_keep_the_image_size_and_refuse_one_domain_data():
    model = CycleGAN((6, 16, 20), 1, TINY)
    a = torch.rand(2, 3, 16, 20) * 2 - 1
    assert model.translate(a, "ab").shape == a.shape and model.translate(a, "ba").shape == a.shape
    square = torch.rand(2, 3, 16, 16)
    assert Pix2Pix((6, 16, 16), 1, {"channels": 4, "d_channels": 4}).translate(square).shape == square.shape
    with pytest.raises(LabError, match="translates between two domains: train it on the themes or folders"):
        CycleGAN((1, 8, 8), 10, TINY)
    with pytest.raises(LabError, match="needs images of at least 16x16"):
        CycleGAN((6, 8, 8), 1, TINY)
    with pytest.raises(LabError, match="translates ab; got 'ba'"):
        Pix2Pix((6, 16, 16), 1, {}).translate(a, "ba")


def test_the_global_critic_gives_one_score_per_image_from_all_of_it():
    torch.manual_seed(0)
    image = torch.rand(1, 3, 32, 32, requires_grad=True)
    for shape in ((3, 16, 16), (3, 40, 24)):
        assert GlobalDiscriminator(shape, 4)(torch.rand(5, *shape)).shape == (5, 1)
    GlobalDiscriminator((3, 32, 32), 4)(image).sum().backward()
    seen = image.grad.abs().sum(1)[0]
    assert all(seen[r, c] > 0 for r in (0, 31) for c in (0, 31))  # every corner moves the score


def test_the_cycle_noise_and_the_colour_branch():
    model = CycleGAN((6, 16, 16), 1, {**TINY, "cycle_noise": 0.1})
    images = torch.zeros(64, 3, 16, 16)
    noisy = model.noisy(images, torch.Generator().manual_seed(0))
    assert noisy.std().item() == pytest.approx(0.2, rel=0.02)  # sigma 0.1 of [0, 1] is 0.2 of [-1, 1]
    plain = CycleGAN((6, 16, 16), 1, {**TINY, "colour_path": False, "cycle_noise": 0.0})
    assert plain.noisy(images, torch.Generator()) is images and plain.g_ab.colour is None
    g = CycleGAN((6, 16, 16), 1, TINY).g_ab  # the colour branch: 1x1 convolutions, pixel by pixel
    assert all(m.kernel_size == (1, 1) for m in g.colour if isinstance(m, torch.nn.Conv2d))
    x = torch.rand(1, 3, 16, 16)
    y = x.clone()
    y[..., 5, 5] += 0.5
    assert torch.equal(g.colour(x)[..., 4, :], g.colour(y)[..., 4, :])
    assert not torch.equal(g.colour(x)[..., 5, 5], g.colour(y)[..., 5, 5])
    for key in ("lambda_global", "cycle_noise"):
        with pytest.raises(LabError, match=f"cyclegan hyperparameter {key} must be >= 0; got -1.0"):
            CycleGAN((6, 16, 16), 1, {**TINY, key: -1.0})


def test_psnr_and_ssim_on_known_images():
    truth = np.zeros((2, 3, 8, 8), dtype=np.float32)
    assert psnr(truth + 0.2, truth) == pytest.approx(20.0)  # error 0.1 of the [0, 1] range
    assert math.isinf(psnr(truth, truth)) and ssim(truth, truth) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    noisy = truth + rng.normal(0, 0.5, truth.shape).astype(np.float32)
    assert ssim(noisy, truth) < 0.5


class Oracle(TranslationModel):
    """The exact translation: decode the cells in one theme, draw them in the other."""

    family = "oracle"
    directions = ("ab", "ba")
    DEFAULTS: ClassVar[dict[str, float]] = {"decay_fraction": 0.5}

    def __init__(self, steganographic: bool = False) -> None:
        super().__init__((6, 32, 32), 1, {})
        self.themes = ("classic", "paper")
        self.steganographic = steganographic

    @torch.no_grad()
    def translate(self, images, direction="ab", batch=256):
        source, target = self.themes if direction == "ab" else self.themes[::-1]
        out = render(CellDecoder(source, 8, 4, 4).decode(images.numpy()), theme_templates(target, 8), 4, 4)
        if self.steganographic and direction == "ab":  # B images whose faint pixel carries nothing visible
            out[:, :, 0, 0] = 0.0
        return torch.from_numpy(out)


def test_the_exact_translation_scores_perfectly_and_survives_the_noise():
    data = load_dataset("themes", {"train": 64, "test": 16}, seed=2)
    row = measure_translation(Oracle(), data)
    for key in (
        "accuracy_ab",
        "accuracy_ba",
        "cycle_accuracy_a",
        "cycle_accuracy_a_noisy",
        "ssim_ab",
        "ssim_ba",
        "domain_ab",
        "domain_ba",
        "domain_accuracy",
    ):
        assert row[key] == pytest.approx(1.0), key
    assert math.isinf(row["psnr_ab"]) and row["cycle_l1_a"] == 0.0 and row["cycle_l1_b"] == 0.0
    assert "A->B: cells 100.00%" in row["summary"] and "with noise sigma 0.02" in row["summary"]
    assert "domain classifier: G(a) judged B 100.0%, F(b) judged A 100.0%" in row["summary"]
    touched = measure_translation(Oracle(steganographic=True), data)
    assert touched["accuracy_ab"] == 1.0 and 30 < touched["psnr_ab"] < math.inf  # decoding ignores one pixel


class Untranslated(Oracle):
    """Gives every image back as it came: no translation at all."""

    @torch.no_grad()
    def translate(self, images, direction="ab", batch=256):
        return images.clone()


def test_an_untranslated_image_scores_no_cell_and_fools_no_domain_classifier():
    data = load_dataset("themes", {"train": 64, "test": 16}, seed=2)
    row = measure_translation(Untranslated(), data)
    assert row["accuracy_ab"] == row["accuracy_ba"] == 0.0  # each cell nearest its source theme's look
    assert row["domain_ab"] == row["domain_ba"] == 0.0 and row["domain_accuracy"] == 1.0
    assert row["psnr_ab"] < 21 and row["cycle_l1_a"] == 0.0  # a perfect cycle is not a translation


class ShiftedBack(Untranslated):
    """A->B gives the image back; B->A adds 0.2 (0.1 in [0, 1] pixel units) and notes its inputs."""

    def __init__(self):
        super().__init__()
        self.inputs_ba: list[torch.Tensor] = []

    @torch.no_grad()
    def translate(self, images, direction="ab", batch=256):
        images = torch.as_tensor(images)
        if direction == "ab":
            return images.clone()
        self.inputs_ba.append(images.clone())
        return images + 0.2


def test_cycle_errors_are_in_0_1_pixel_units_and_the_probe_noise_has_the_sigma_asked_for():
    data = load_dataset("themes", {"train": 64, "test": 16}, seed=2)
    model = ShiftedBack()
    row = measure_translation(model, data, noise=0.05, seed=3)
    assert row["cycle_l1_a"] == pytest.approx(0.1) and row["cycle_l1_b"] == pytest.approx(0.1)
    _, clean, noisy = model.inputs_ba  # F(b), F(G(a)), F(G(a) + noise)
    jitter = torch.randn(clean.shape, generator=torch.Generator().manual_seed(3)) * (2 * 0.05)
    assert torch.allclose(noisy - clean, jitter, atol=1e-6)  # sigma 0.05 of [0, 1] is 0.1 of [-1, 1]


# ----- through the lab command -----


def test_a_cyclegan_run_has_the_generative_run_layout(cycle_run):
    for name in ("spec.yaml", "run.json", "metrics.csv", "eval.csv", "model.npz", "learning_curve.png"):
        assert (cycle_run / name).is_file(), name
    assert sorted(p.name for p in (cycle_run / "samples").iterdir()) == [
        "final.png", "step-0000002.png", "step-0000004.png",
    ]  # fmt: skip
    import imageio.v3 as iio

    grid = iio.imread(cycle_run / "samples" / "final.png")
    assert grid.shape == (4 * (16 * 4 + 1) + 1, 4 * (16 * 4 + 1) + 1, 3)  # rows a, G(a), F(G(a)), b
    metrics = rows(cycle_run / "metrics.csv")
    assert metrics[0] == ["step", "loss", "g_loss", "d_loss", "cycle", "identity", "lr"]
    evals = rows(cycle_run / "eval.csv")
    assert [r[0] for r in evals[1:]] == ["2", "4"]
    header = evals[0]
    for r in evals[1:]:
        for key in ("accuracy_ab", "psnr_ab", "ssim_ba", "cycle_accuracy_a_noisy"):
            assert math.isfinite(float(r[header.index(key)])), key
    model, meta = load_model(cycle_run / "model.npz")
    assert meta["family"] == "cyclegan" and model.step == 4 and int(model.pool_a.count) == 3


def test_resume_repeats_the_uninterrupted_run_exactly(cycle_run, tmp_path):
    killed = tmp_path / "cycle"
    shutil.copytree(cycle_run, killed)
    (killed / "model.npz").unlink()
    (killed / "checkpoints" / "ckpt-000000004.npz").unlink()
    run, _ = resume(killed, progress=False)
    _, original = read_model_file(cycle_run / "model.npz")
    _, resumed = read_model_file(run.model)
    assert original.keys() == resumed.keys() and any(k.startswith("module/pool_a/") for k in original)
    for key in original:
        assert np.array_equal(original[key], resumed[key]), key
    assert rows(run.metrics) == rows(cycle_run / "metrics.csv")
    assert rows(run.evals) == rows(cycle_run / "eval.csv")


def test_sample_eval_and_watch_a_translation_model(cycle_run, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["gen", "sample", str(cycle_run), "--n", "3", "--out", str(out)]) == 0
    import imageio.v3 as iio

    assert iio.imread(out).shape == (4 * 65 + 1, 3 * 65 + 1, 3)
    capsys.readouterr()
    assert main(["gen", "eval", str(cycle_run)]) == 0
    printed = capsys.readouterr().out
    final = rows(cycle_run / "eval.csv")[-1]
    header = rows(cycle_run / "eval.csv")[0]
    accuracy = 100 * float(final[header.index("accuracy_ab")])
    assert f"A->B: cells {accuracy:.2f}%" in printed  # the run's own final measurement, repeated
    assert main(["gen", "watch", str(cycle_run), "--frames", "2", "--n", "2"]) == 0
    assert main(["gen", "sample", str(cycle_run), "--gif", str(tmp_path / "a.gif")]) == 2
    assert "takes no --label or --gif" in capsys.readouterr().err


def test_the_domain_classifier_is_trained_once_and_kept_beside_the_runs(cycle_run, monkeypatch, capsys):
    from generative import translation_metrics

    kept = list((cycle_run.parent / ".classifiers").glob("classifier-themes-domains-*.npz"))
    assert len(kept) == 1  # written by the run's first evaluation
    capsys.readouterr()
    with monkeypatch.context() as patch:
        patch.setattr(translation_metrics, "_domain_classifiers", {})  # as in a new process
        patch.setattr("generative.metrics.train_classifier", lambda *a, **k: pytest.fail("trained again"))
        assert main(["gen", "eval", str(cycle_run)]) == 0
    assert "training the evaluation classifier" not in capsys.readouterr().out
    kept[0].unlink()
    monkeypatch.setattr(translation_metrics, "_domain_classifiers", {})
    assert main(["gen", "eval", str(cycle_run)]) == 0  # gone: trained again, and said so
    assert "training the evaluation classifier on themes-domains" in capsys.readouterr().out
    assert kept[0].is_file()


def test_pix2pix_trains_on_pairs_and_refuses_unpaired_data(tmp_path, capsys):
    hp = {"channels": 4, "d_channels": 4, "batch_size": 4}
    assert main(train_args(tmp_path, "pix2pix", "p2p", 2, hp, ["dataset_options.paired=true"])) == 0
    header, final = rows(tmp_path / "p2p" / "eval.csv")[0], rows(tmp_path / "p2p" / "eval.csv")[-1]
    assert math.isfinite(float(final[header.index("psnr_ab")])) and "accuracy_ba" not in header
    capsys.readouterr()
    assert main(train_args(tmp_path, "pix2pix", "unpaired", 2, hp)) == 2
    err = capsys.readouterr().err.strip()
    assert "a pix2pix trains on pairs: use the themes data set with dataset_options.paired=true" in err
    assert "\n" not in err


def test_bad_translation_input_is_one_line(cycle_run, tmp_path, capsys):
    cases = [
        (train_args(tmp_path, "cyclegan", "t", 2, TINY, ["dataset_options.themes=[classic, neon]"]),
         "unknown theme 'neon'"),
        (["gen", "train", "--model", "cyclegan", "--dataset", "digits", "--runs-dir", str(tmp_path)],
         "translates between two domains"),
    ]  # fmt: skip
    # a run whose checkpoint holds another model family
    other = tmp_path / "other"
    assert main(train_args(tmp_path, "pix2pix", "other", 2, {"channels": 4, "d_channels": 4, "batch_size": 4},
                           ["dataset_options.paired=true", "checkpoint_interval=1"])) == 0  # fmt: skip
    shutil.copy(other / "checkpoints" / "ckpt-000000001.npz", tmp_path / "ckpt-000000001.npz")
    killed = tmp_path / "killed"
    shutil.copytree(cycle_run, killed)
    (killed / "model.npz").unlink()
    for p in (killed / "checkpoints").iterdir():
        p.unlink()
    shutil.copy(tmp_path / "ckpt-000000001.npz", killed / "checkpoints")
    cases.append((["gen", "train", "--resume", str(killed)], "holds a pix2pix model, not a cyclegan"))
    for args, message in cases:
        capsys.readouterr()
        assert main(args) == 2, args
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err, err


# ----- learning -----


@pytest.mark.slow
def test_cyclegan_learns_classic_to_paper_from_unpaired_images(tmp_path):
    """The committed config's model made small (16 channels, 2 blocks, no global critic) and cut to
    500 steps, its learning rate decaying over the second half: 92.9% / 98.0% of held-out cells and
    24.6 / 26.3 dB on this machine (seeds 0, 1, 2 at step 500 of 1500: 93-99%, 26-28 dB). A
    translation that permutes kinds, as on the blueprint theme, stays under 80%; an image left
    untranslated scores 0% and 20 dB
    (``test_leaving_an_image_in_the_source_theme_scores_no_cell_and_a_low_psnr``)."""
    settings = ["hyperparameters.channels=16", "hyperparameters.blocks=2", "hyperparameters.lambda_global=0",
                "eval_interval=0", "checkpoint_interval=0", "samples=4"]  # fmt: skip
    config = Path(__file__).resolve().parent.parent / "configs" / "gen-themes-cyclegan.yaml"
    args = ["gen", "train", str(config), "--runs-dir", str(tmp_path), "--steps", "500", "--no-progress",
            *[a for s in settings for a in ("--set", s)]]  # fmt: skip
    assert main(args) == 0
    final = json.loads((tmp_path / "gen-themes-cyclegan" / "run.json").read_text())["final"]
    for key in ("ab", "ba"):
        assert final[f"accuracy_{key}"] > 0.85 and final[f"psnr_{key}"] > 22.0, final
