"""The three model families: shapes, labels, hyperparameter checks, and that a short run learns."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from generative.data import load_dataset
from generative.unet import UNet
from lab.core.errors import LabError
from lab.gen.models import build_model
from lab.gen.seeding import Batches, step_generator
from lab.gen.spec import gen_spec_from_dict

pytestmark = pytest.mark.usefixtures("one_torch_thread")


TINY = {
    "diffusion": {"channels": 8, "timesteps": 20, "sample_steps": 4, "warmup": 5},
    "vae": {"channels": 4, "latent": 4, "warmup": 5},
    "gan": {"channels": 4, "z_dim": 8},
}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def tiny(family: str, data, conditional: bool = False, **hp):
    spec = gen_spec_from_dict(
        {"model": family, "hyperparameters": {**TINY[family], "conditional": conditional, **hp}}
    )
    return build_model(spec, data)


def test_unet_keeps_the_image_shape_and_depends_on_time_and_label():
    net = UNet((3, 16, 12), channels=8, mult=(1, 2, 2), n_classes=5)
    with torch.no_grad():  # residual branches and the output start at zero: give them weights to compare
        for p in net.parameters():
            if not p.any():
                p.normal_(0.0, 0.1)
    x = torch.randn(2, 3, 16, 12, generator=torch.Generator().manual_seed(0))
    out = net(x, torch.tensor([0, 0]), torch.tensor([1, 1]))
    assert out.shape == x.shape
    assert not torch.allclose(out, net(x, torch.tensor([9, 9]), torch.tensor([1, 1])))
    assert not torch.allclose(out, net(x, torch.tensor([0, 0]), torch.tensor([2, 2])))
    assert not torch.allclose(out, net(x, torch.tensor([0, 0]), None))  # the "no label" slot


@pytest.mark.parametrize("family", ["diffusion", "vae", "gan"])
@pytest.mark.parametrize("conditional", [False, True])
def test_samples_have_the_data_shape_and_range(family, conditional, digits):
    model = tiny(family, digits, conditional)
    g = torch.Generator().manual_seed(0)
    images = model.sample(5, torch.tensor([0, 1, 2, 3, 4]) if conditional else None, g)
    assert images.shape == (5, 1, 8, 8) and images.min() >= -1 and images.max() <= 1
    again = model.sample(
        5, torch.tensor([0, 1, 2, 3, 4]) if conditional else None, torch.Generator().manual_seed(0)
    )
    assert torch.equal(images, again)  # a seeded generator fixes the samples
    if not conditional:
        with pytest.raises(LabError, match="unconditional: it takes no label"):
            model.sample(2, torch.tensor([1, 2]), g)
    else:
        with pytest.raises(LabError, match=r"labels must lie in 0..9"):
            model.sample(2, torch.tensor([1, 10]), g)


def test_rgb_frames_of_another_size(digits):
    data = load_dataset("grid", {"env": "IceLake", "tile": 4})
    for family in ("diffusion", "vae", "gan"):
        model = tiny(family, data, conditional=True)
        assert model.sample(3, None, torch.Generator().manual_seed(0)).shape == (3, 3, 16, 16)
        out = model.train_step(
            torch.from_numpy(data.train_x[:4]), torch.from_numpy(data.train_y[:4]), step_generator(0, 0)
        )
        assert np.isfinite(out["loss"])


def test_hyperparameter_typos_and_bad_values_are_one_line_errors(digits):
    with pytest.raises(
        LabError, match=r"unknown diffusion hyperparameter 'guidence'; did you mean 'guidance'\?"
    ):
        tiny("diffusion", digits, guidence=2.0)
    with pytest.raises(LabError, match="unknown GAN loss 'hing'; did you mean 'hinge'"):
        tiny("gan", digits, loss="hing")
    with pytest.raises(LabError, match="beta must be >= 0"):
        tiny("vae", digits, beta=-1.0)
    with pytest.raises(LabError, match="hyperparameter conditional is true or false"):
        tiny("vae", digits, conditional="yes")
    with pytest.raises(LabError, match="multiples of 4"):
        tiny("gan", load_dataset("grid", {"env": "Maze", "tile": 5}))


def test_batch_std_lets_the_discriminator_see_a_collapsed_batch(digits):
    model = tiny("gan", digits, batch_std=True)
    varied = torch.from_numpy(digits.train_x[:8])
    collapsed = varied[:1].expand(8, -1, -1, -1)
    d = model.discriminator.eval()  # eval: spectral norm's power iteration leaves the weights alone
    with torch.no_grad():
        h_varied, h_collapsed = d.convs(varied), d.convs(collapsed)
    assert float(h_collapsed.std(0).mean()) == 0.0 < float(h_varied.std(0).mean())
    with torch.no_grad():  # the same first image scores differently in a varied and a collapsed batch
        assert d(varied, None).shape == (8,)
        assert float(d(varied, None)[0]) != float(d(collapsed, None)[0])
    without = tiny("gan", digits).discriminator.eval()
    with torch.no_grad():
        assert torch.allclose(without(varied, None)[0], without(collapsed, None)[0])
    out = model.train_step(varied, torch.from_numpy(digits.train_y[:8]), step_generator(0, 0))
    assert np.isfinite(out["loss"])


def test_gan_losses(digits):
    hinge = tiny("gan", digits)
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert float(hinge.d_loss(real, fake)) == pytest.approx(0.25 + 0.5)
    assert float(hinge.g_loss(fake)) == pytest.approx(1.0)
    ns = tiny("gan", digits, loss="ns", label_smoothing=0.1)
    expected = -(0.9 * np.log(1 / (1 + np.exp(-2.0))) + 0.1 * np.log(1 - 1 / (1 + np.exp(-2.0))))
    assert float(ns.d_loss(torch.tensor([2.0]), torch.tensor([-50.0]))) == pytest.approx(expected, rel=1e-5)
    assert float(ns.g_loss(torch.tensor([0.0]))) == pytest.approx(np.log(2))


def _train(model, data, steps: int) -> list[float]:
    batches = Batches(len(data.train_x), model.hp["batch_size"], 0)
    x, y = torch.from_numpy(data.train_x), torch.from_numpy(data.train_y)
    model.total_steps = steps
    return [
        model.train_step(x[i], y[i], step_generator(0, s))["loss"]
        for s, i in enumerate(map(batches.indices, range(steps)))
    ]


@pytest.mark.parametrize(("family", "steps", "drop"), [("vae", 60, 0.6), ("diffusion", 40, 0.5)])
def test_a_short_run_reduces_the_loss(family, steps, drop, digits):
    model = tiny(family, digits, conditional=True, lr=3e-3, batch_size=32)
    losses = _train(model, digits, steps)
    assert np.mean(losses[-10:]) < drop * np.mean(losses[:5])


def test_vae_elbo_improves_with_training(digits):
    model = tiny("vae", digits, lr=3e-3)
    x, y = torch.from_numpy(digits.test_x), torch.from_numpy(digits.test_y)
    before = model.evaluate(x, y, torch.Generator().manual_seed(0))
    _train(model, digits, 40)
    after = model.evaluate(x, y, torch.Generator().manual_seed(0))
    assert np.isfinite(after["elbo"]) and after["bits_per_dim"] < before["bits_per_dim"] - 0.5


def test_ema_follows_the_weights_slowly(digits):
    model = tiny("gan", digits, ema_decay=0.9)
    _train(model, digits, 30)
    live = torch.cat([p.detach().flatten() for p in model.generator.parameters()])
    ema = torch.cat([p.flatten() for p in model.ema.shadow.parameters()])
    assert not torch.equal(live, ema) and float((live - ema).abs().max()) < float(live.abs().max())


def test_every_family_trains_with_subnormal_floats_flushed_and_puts_the_setting_back(digits):
    # train_step flushes on its own, so that a user's loop runs as fast as lab gen train's
    from generative.cyclegan import CycleGAN
    from generative.pix2pix import Pix2Pix

    translation = {"channels": 4, "d_channels": 4, "batch_size": 4}
    models = {family: tiny(family, digits) for family in TINY}
    models["cyclegan"] = CycleGAN((6, 16, 16), 1, {**translation, "blocks": 1})
    models["pix2pix"] = Pix2Pix((6, 16, 16), 1, translation)
    for family, model in models.items():
        seen: list[bool] = []

        def note_flushing(*_, seen=seen):
            seen.append(bool(torch.tensor(1e-39) == 0))  # a subnormal float32 reads as 0 while flushing

        hooks = [module.register_forward_pre_hook(note_flushing) for module in model.modules().values()]
        if family in TINY:
            x, y = torch.from_numpy(digits.train_x[:4]), torch.from_numpy(digits.train_y[:4])
        else:
            x, y = (
                torch.rand(4, 6, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1,
                torch.zeros(4),
            )
        model.train_step(x, y, step_generator(0, 0))
        for hook in hooks:
            hook.remove()
        assert seen and all(seen), family
        assert torch.tensor(1e-39) != 0, family  # flushing is off again after the step


def test_a_non_finite_loss_names_the_models_own_learning_rates():
    import torch

    from generative.base import check_loss
    from generative.gan import GAN
    from generative.vae import VAE

    with pytest.raises(LabError) as gan:
        check_loss(torch.tensor(float("nan")), "generator loss", 3, GAN.DEFAULTS)
    assert "hyperparameters.lr_g=..., --set hyperparameters.lr_d=...)" in str(gan.value)
    assert "grad_clip" not in str(gan.value)
    with pytest.raises(LabError, match=r"\(--set hyperparameters.lr=...\) or clip gradients harder"):
        check_loss(torch.tensor(float("inf")), "VAE loss", 0, VAE.DEFAULTS)


def test_the_generative_learning_rate_warms_up_then_decays_to_a_tenth():
    from generative.base import lr_factor

    assert lr_factor(0, 100, 10) == pytest.approx(0.1)  # (step + 1) / warmup
    assert lr_factor(9, 100, 10) == pytest.approx(1.0)
    assert lr_factor(10, 100, 10) == pytest.approx(1.0)  # the cosine starts at the top
    assert lr_factor(55, 100, 10) == pytest.approx(0.1 + 0.9 * 0.5)  # halfway down
    assert lr_factor(100, 100, 10) == pytest.approx(0.1)
    assert lr_factor(0, 100, 0) == pytest.approx(1.0)


def test_gan_learning_rates_follow_the_schedule_each_at_its_own_rate(digits):
    model = tiny("gan", digits, lr_g=1e-4, lr_d=4e-4, warmup=4)
    model.total_steps = 100
    model.set_lr()
    assert model.opt_g.param_groups[0]["lr"] == pytest.approx(1e-4 / 4)
    assert model.opt_d.param_groups[0]["lr"] == pytest.approx(4e-4 / 4)


def test_slerp_keeps_the_norm_along_the_arc():
    from generative.sampling import slerp

    a, b = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    assert torch.allclose(slerp(a, b, 0.0), a) and torch.allclose(slerp(a, b, 1.0), b, atol=1e-6)
    middle = slerp(a, b, 0.5)
    assert torch.allclose(middle, torch.tensor([[3.0, 3.0]]) / math.sqrt(2.0))  # on the circle of radius 3
    third = slerp(a, b, 1 / 3)
    assert torch.allclose(third, 3.0 * torch.tensor([[math.cos(math.pi / 6), math.sin(math.pi / 6)]]))
