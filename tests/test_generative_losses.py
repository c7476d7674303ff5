"""The generative families' losses, samplers and guidance in closed form: stand-in networks whose
outputs are known make each formula's value exact (the noise target of diffusion, classifier-free
guidance, the VAE's reparameterisation, KL and ELBO, the translation losses)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from generative.blocks import EMA, timestep_embedding
from generative.cyclegan import CycleGAN
from generative.diffusion import Diffusion, ddim_timesteps
from generative.gan import GAN
from generative.pix2pix import Pix2Pix
from generative.vae import VAE

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SHAPE = (1, 8, 8)
TINY_DIFFUSION = {"channels": 8, "timesteps": 20, "sample_steps": 4, "warmup": 0}


class NoiseOracle(nn.Module):
    """A noise predictor that knows the clean image ``x0``: from ``x_t`` and ``t`` it returns exactly
    the noise that ``q_sample`` added; ``labels`` are noted."""

    def __init__(self, schedule, x0: torch.Tensor) -> None:
        super().__init__()
        self.schedule, self.x0 = schedule, x0
        self.labels: list[torch.Tensor | None] = []
        self.steps: list[int] = []

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        self.labels.append(labels)
        self.steps.append(int(t[0]))
        a = self.schedule.sqrt_alpha_bar[t][:, None, None, None]
        s = self.schedule.sqrt_one_minus_alpha_bar[t][:, None, None, None]
        return (x - a * self.x0) / s


class LabelValue(nn.Module):
    """A "noise prediction" equal to the label (``n_classes`` for "no label") at every pixel."""

    def __init__(self, n_classes: int, offset: float = 0.0) -> None:
        super().__init__()
        self.n_classes, self.offset = n_classes, offset

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        value = torch.full((len(x),), float(self.n_classes)) if labels is None else labels.float()
        return (value + self.offset)[:, None, None, None].expand_as(x)


def test_diffusion_regresses_the_noise_at_the_drawn_step():
    model = Diffusion(SHAPE, 10, TINY_DIFFUSION)
    x0 = torch.rand(6, *SHAPE, generator=torch.Generator().manual_seed(0)) * 2 - 1
    model.net = NoiseOracle(model.schedule, x0)
    loss = model.loss(x0, None, torch.Generator().manual_seed(1))
    assert float(loss) == pytest.approx(0.0, abs=1e-10)  # predicting the true noise costs nothing
    model.net = lambda x, t, labels: torch.zeros_like(x)
    g = torch.Generator().manual_seed(1)
    torch.randint(0, 20, (6,), generator=g)  # the step drawn first, then the noise
    noise = torch.randn(x0.shape, generator=g)
    assert float(model.loss(x0, None, torch.Generator().manual_seed(1))) == pytest.approx(
        float(noise.pow(2).mean()), rel=1e-6
    )


def test_diffusion_drops_labels_at_the_unconditional_rate():
    x0 = torch.zeros(4000, *SHAPE)
    y = torch.arange(4000) % 10
    for p_uncond, low, high in ((0.0, 0.0, 0.0), (0.25, 0.22, 0.28)):
        model = Diffusion(SHAPE, 10, {**TINY_DIFFUSION, "conditional": True, "p_uncond": p_uncond})
        model.net = oracle = NoiseOracle(model.schedule, x0)
        model.loss(x0, y, torch.Generator().manual_seed(0))
        (labels,) = oracle.labels
        dropped = labels == 10
        assert low <= float(dropped.float().mean()) <= high
        assert torch.equal(labels[~dropped], y[~dropped])  # the others keep their own label


def test_classifier_free_guidance_mixes_the_two_predictions():
    model = Diffusion(SHAPE, 10, {**TINY_DIFFUSION, "conditional": True})
    model.ema.shadow = LabelValue(10)
    model.net = LabelValue(10, offset=1000.0)  # sampling reads the EMA copy, never the live weights
    x, labels = torch.zeros(2, *SHAPE), torch.tensor([3, 7])
    guided = model.eps(x, 5, labels, guidance=1.5)  # uncond + 1.5 (cond - uncond), uncond = 10
    assert guided[:, 0, 0, 0].tolist() == pytest.approx([10 + 1.5 * (3 - 10), 10 + 1.5 * (7 - 10)])
    assert model.eps(x, 5, labels, guidance=1.0)[:, 0, 0, 0].tolist() == [3.0, 7.0]
    assert model.eps(x, 5, labels, guidance=0.0)[:, 0, 0, 0].tolist() == [10.0, 10.0]
    assert model.eps(x, 5, None, guidance=1.5)[:, 0, 0, 0].tolist() == [10.0, 10.0]


@pytest.mark.parametrize(("sampler", "eta"), [("ddim", 0.0), ("ddim", 1.0), ("ddpm", 0.0)])
@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_a_perfect_noise_predictor_samples_its_clean_image(sampler, eta, schedule):
    """Every step of either sampler puts the predicted x0 back at a lower noise level, so with the
    true noise the chain ends on x0 itself (DDIM's last jump is to no noise at all)."""
    steps = 40 if schedule == "linear" else 20
    model = Diffusion(SHAPE, 10, {**TINY_DIFFUSION, "timesteps": steps, "schedule": schedule})
    x0 = torch.rand(3, *SHAPE, generator=torch.Generator().manual_seed(0)) * 1.6 - 0.8
    model.net = LabelValue(10, offset=1000.0)
    model.ema.shadow = oracle = NoiseOracle(model.schedule, x0)
    images = model.sample(3, None, torch.Generator().manual_seed(1), sampler=sampler, eta=eta)
    assert torch.allclose(images, x0, atol=1e-4)
    # DDPM walks the whole chain down, DDIM the 4 steps of sample_steps
    assert oracle.steps == (list(range(steps - 1, -1, -1)) if sampler == "ddpm" else ddim_timesteps(steps, 4))


def test_diffusion_evaluates_the_ema_network():
    model = Diffusion(SHAPE, 10, TINY_DIFFUSION)
    x0 = torch.rand(4, *SHAPE, generator=torch.Generator().manual_seed(0)) * 2 - 1
    model.ema.shadow = NoiseOracle(model.schedule, x0)
    live = model.net
    result = model.evaluate(x0, torch.zeros(4, dtype=torch.long), torch.Generator().manual_seed(0))
    assert result["test_loss"] == pytest.approx(0.0, abs=1e-10) and model.net is live


@pytest.mark.parametrize("family", ["diffusion", "vae"])
def test_gradients_are_clipped_to_the_norm_asked_for(family):
    x = torch.rand(8, *SHAPE, generator=torch.Generator().manual_seed(0)) * 2 - 1
    if family == "diffusion":
        model = Diffusion(SHAPE, 10, {**TINY_DIFFUSION, "grad_clip": 1e-3})
        params = list(model.net.parameters())
    else:
        model = VAE(SHAPE, 10, {"channels": 4, "latent": 4, "grad_clip": 1e-3, "warmup": 0})
        params = [*model.encoder.parameters(), *model.decoder.parameters()]
    model.train_step(x, torch.zeros(8, dtype=torch.long), torch.Generator().manual_seed(0))
    norm = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in params if p.grad is not None))
    assert norm == pytest.approx(1e-3, rel=1e-4)  # the step's gradients, as the optimiser saw them


# ----- VAE -----


class FixedEncoder(nn.Module):
    def __init__(self, mu: torch.Tensor, logvar: torch.Tensor) -> None:
        super().__init__()
        self.mu, self.logvar = mu, logvar

    def forward(self, x: torch.Tensor, onehot: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mu.expand(len(x), -1), self.logvar.expand(len(x), -1)


class ZeroDecoder(nn.Module):
    """The mean 0 with scale 1 for every pixel, whatever ``z`` (which it notes)."""

    def __init__(self) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(SHAPE))
        self.z: list[torch.Tensor] = []

    def forward(self, z: torch.Tensor, onehot: torch.Tensor | None) -> torch.Tensor:
        self.z.append(z)
        return torch.zeros(len(z), *SHAPE) + 0.0 * z.sum()


def _vae(mu: list[float], logvar: list[float], **hp) -> VAE:
    model = VAE(SHAPE, 10, {"channels": 4, "latent": len(mu), "warmup": 0, **hp})
    model.encoder = FixedEncoder(torch.tensor([mu]), torch.tensor([logvar]))
    model.decoder = ZeroDecoder()
    return model


def test_vae_draws_z_by_the_reparameterisation_and_its_kl_is_the_closed_form():
    mu, logvar = [0.5, -1.0, 0.0], [math.log(4.0), 0.0, math.log(0.25)]
    model = _vae(mu, logvar)
    x = torch.zeros(2, *SHAPE)
    _, kl = model.terms(x, None, torch.Generator().manual_seed(0))
    eps = torch.randn(2, 3, generator=torch.Generator().manual_seed(0))
    expected_z = torch.tensor([mu]) + torch.tensor([[2.0, 1.0, 0.5]]) * eps  # mu + sigma eps
    assert torch.allclose(model.decoder.z[0], expected_z, atol=1e-6)
    # KL(N(mu, s^2) || N(0, 1)) = (mu^2 + s^2 - 1 - log s^2) / 2, summed over the latent
    by_hand = sum(0.5 * (m * m + math.exp(v) - 1 - v) for m, v in zip(mu, logvar, strict=True))
    assert kl.tolist() == pytest.approx([by_hand, by_hand], rel=1e-6)


def test_vae_elbo_subtracts_the_kl_and_the_loss_weighs_it_by_beta():
    x = torch.zeros(3, *SHAPE)
    g = torch.Generator
    far = _vae([1.0, 1.0], [0.0, 0.0], beta=0.5)  # KL 1/2 per latent dimension: 1 nat
    near = _vae([0.0, 0.0], [0.0, 0.0], beta=0.5)  # KL 0
    # the decoder ignores z: both reconstruct equally, so the ELBOs differ by the KL alone
    assert far.elbo(x, None, g().manual_seed(0)) == pytest.approx(
        near.elbo(x, None, g().manual_seed(0)) - 1.0
    )
    far_eval, near_eval = (m.evaluate(x, x[:, 0, 0, 0].long(), g().manual_seed(0)) for m in (far, near))
    assert far_eval["bits_per_dim"] - near_eval["bits_per_dim"] == pytest.approx(1.0 / (64 * math.log(2)))
    losses = far.train_step(x, torch.zeros(3, dtype=torch.long), g().manual_seed(0))
    assert losses["kl"] == pytest.approx(1.0 / 64)  # per dimension, as the loss is
    assert losses["loss"] == pytest.approx(losses["recon"] + 0.5 * losses["kl"], rel=1e-6)


def test_vae_floors_the_decoder_scale_and_bounds_the_encoder_variance():
    x = torch.zeros(1, *SHAPE)  # the middle level, a bin of half-width 1/16 around the mean 0
    model = _vae([0.0], [0.0], min_log_scale=-4.0)
    with torch.no_grad():
        model.decoder.log_scale.fill_(-10.0)  # far sharper than the floor allows
    recon, _ = model.terms(x, None, torch.Generator().manual_seed(0))
    sigma = math.exp(-4.0)
    per_pixel = math.log(math.erf((1 / 16) / sigma / math.sqrt(2)))  # Phi(h/s) - Phi(-h/s)
    assert recon.tolist() == pytest.approx([64 * per_pixel], rel=1e-4)  # float32 logs near 0
    real = VAE(SHAPE, 10, {"channels": 4, "latent": 2})
    with torch.no_grad():
        real.encoder.head[-1].weight.zero_()
        real.encoder.head[-1].bias.copy_(torch.tensor([0.0, 0.0, 50.0, -50.0]))
    _, logvar = real.encoder(x, None)
    assert logvar.tolist() == [[8.0, -12.0]]  # exp(50) would overflow the KL; exp(-50) its log


def test_vae_samples_scale_the_prior_by_the_temperature():
    model = _vae([0.0, 0.0], [0.0, 0.0])
    model.sample(3, None, torch.Generator().manual_seed(0), temperature=2.0)
    model.sample(3, None, torch.Generator().manual_seed(0), temperature=0.0)
    drawn = torch.randn(3, 2, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(model.decoder.z[0], 2.0 * drawn) and not model.decoder.z[1].any()


# ----- GAN, EMA, time embedding -----


def test_non_saturating_label_smoothing_is_one_sided():
    model = GAN(SHAPE, 10, {"channels": 4, "z_dim": 8, "loss": "ns", "label_smoothing": 0.1})
    # at logit 0 the cross-entropy is log 2 whatever the target: the fakes' target stays 0
    assert float(model.d_loss(torch.zeros(3), torch.zeros(3))) == pytest.approx(2 * math.log(2))
    assert float(model.d_loss(torch.zeros(1), torch.tensor([math.log(3.0)]))) == pytest.approx(
        math.log(2) + math.log(4.0)  # softplus(log 3) = log(1 + 3)
    )


@pytest.mark.parametrize("d_steps", [1, 3])
def test_conditional_gan_judges_each_fake_with_the_label_it_was_made_for(d_steps):
    model = GAN(SHAPE, 10, {"channels": 4, "z_dim": 8, "conditional": True, "d_steps": d_steps})
    calls: list[tuple[str, torch.Tensor]] = []
    for name, net in (("g", model.generator), ("d", model.discriminator)):
        net.register_forward_pre_hook(lambda _, args, name=name: calls.append((name, args[1])))
    x, y = torch.zeros(6, *SHAPE), torch.arange(6)
    model.train_step(x, y, torch.Generator().manual_seed(0))
    names = [name for name, _ in calls]
    assert names == ["g", "d", "d"] * d_steps + ["g", "d"]
    for k in range(d_steps):  # each discriminator step: the real images with theirs, the fakes with theirs
        made, real, fake = (labels for _, labels in calls[3 * k : 3 * k + 3])
        assert torch.equal(real, y) and torch.equal(fake, made)
    assert torch.equal(calls[-1][1], calls[-2][1])  # the generator's step: its fakes, its labels


def test_the_projection_discriminator_adds_the_label_embedding_times_the_features():
    model = GAN(SHAPE, 10, {"channels": 4, "z_dim": 8, "conditional": True})
    d = model.discriminator.eval()
    x, labels = torch.rand(4, *SHAPE, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 3, 3, 9])
    with torch.no_grad():
        h = d.convs(x).flatten(1)
        expected = d.out(h).squeeze(1) + (d.embed(labels) * h).sum(1)
        assert torch.allclose(d(x, labels), expected, atol=1e-6)
        assert not torch.allclose(d(x, labels), d(x, None))


def test_ema_warms_its_decay_up_and_copies_the_buffers():
    net = nn.Sequential(nn.Linear(1, 1, bias=False), nn.BatchNorm1d(1))
    with torch.no_grad():
        net[0].weight.fill_(0.0)
    ema = EMA(net, decay=0.9)
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[1].running_mean.fill_(5.0)
    expected = 0.0
    for n in range(1, 40):
        ema.update(net)
        decay = min(0.9, (1 + n) / (10 + n))  # 2/11, 3/12, ... up to the decay asked for
        expected += (1 - decay) * (1.0 - expected)
        assert float(ema.shadow[0].weight) == pytest.approx(expected, rel=1e-6), n
    assert float(ema.shadow[1].running_mean) == 5.0


def test_timestep_embedding_is_the_transformer_sinusoid():
    t = torch.tensor([0, 3, 250])
    emb = timestep_embedding(t, 6)  # frequencies 10000^(-k/3), k = 0, 1, 2
    freqs = [10_000.0 ** (-k / 3) for k in range(3)]
    for row, step in zip(emb.tolist(), t.tolist(), strict=True):
        expected = [math.cos(step * f) for f in freqs] + [math.sin(step * f) for f in freqs]
        assert row == pytest.approx(expected, abs=1e-5)
    assert timestep_embedding(t, 7)[:, -1].tolist() == [0.0, 0.0, 0.0]  # an odd width pads a zero


# ----- translation -----

TRANSLATION = {"channels": 4, "d_channels": 4, "batch_size": 4}


class Shift(nn.Module):
    """A "generator" that adds ``shift`` to every pixel."""

    def __init__(self, shift: float) -> None:
        super().__init__()
        self.shift = shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.shift


class ConstantCritic(nn.Module):
    """A "discriminator" scoring every patch ``score`` (a weight, so losses through it backpropagate);
    it notes what it is shown."""

    def __init__(self, score: float) -> None:
        super().__init__()
        self.score = nn.Parameter(torch.tensor(score))
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        return self.score.expand(len(x), 1, 2, 2) + 0.0 * x.mean()


def _two_domains(n: int = 4) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    a, b = torch.zeros(n, 3, 16, 16), torch.full((n, 3, 16, 16), -0.6)
    return torch.cat([a, b], 1), a, b


def test_cyclegan_losses_by_hand():
    model = CycleGAN(
        (6, 16, 16), 1, {**TRANSLATION, "blocks": 1, "lambda_cycle": 10.0, "lambda_identity": 0.5}
    )
    model.g_ab, model.g_ba = Shift(0.5), Shift(-0.25)
    model.d_a, model.d_b = ConstantCritic(0.0), ConstantCritic(0.0)
    x, _, _ = _two_domains()
    out = model.train_step(x, torch.zeros(4), torch.Generator().manual_seed(0))
    # cycle: F(G(a)) = a + 0.25 and G(F(b)) = b + 0.25, so 0.25 each way
    assert out["cycle"] == pytest.approx(0.5)
    # identity: G(b) = b + 0.5 against b, F(a) = a - 0.25 against a
    assert out["identity"] == pytest.approx(0.75)
    # adversarial: both critics score 0 against the target 1 (least squares): 1 each way
    assert out["g_loss"] == pytest.approx(2.0 + 10.0 * (0.5 + 0.5 * 0.75))
    # the critics: real (target 1) and fake (target 0) in both domains, halved
    assert out["d_loss"] == pytest.approx(0.5 * (1.0 + 0.0 + 1.0 + 0.0))


def test_cyclegan_global_critic_enters_weighted_by_lambda_global():
    model = CycleGAN((6, 16, 16), 1, {**TRANSLATION, "blocks": 1, "lambda_global": 0.25})
    model.g_ab, model.g_ba = Shift(0.5), Shift(-0.25)
    model.d_a, model.d_b = ConstantCritic(0.0), ConstantCritic(0.0)
    model.critics = {"c_a": ConstantCritic(3.0), "c_b": ConstantCritic(3.0)}  # (3 - 1)^2 = 4 each way
    x, _, _ = _two_domains()
    out = model.train_step(x, torch.zeros(4), torch.Generator().manual_seed(0))
    assert out["g_loss"] == pytest.approx(2.0 * (1.0 + 0.25 * 4.0) + 10.0 * (0.5 + 0.5 * 0.75))


def softplus(v: float) -> float:
    """The cross-entropy of logit ``s``: ``softplus(-s)`` for the target 1, ``softplus(s)`` for 0."""
    return math.log1p(math.exp(v))


def test_pix2pix_losses_by_hand():
    model = Pix2Pix((6, 16, 16), 1, {**TRANSLATION, "lambda_l1": 100.0})
    model.g_ab = Shift(0.5)
    model.d = critic = ConstantCritic(1.0)
    x, a, b = _two_domains()
    out = model.train_step(x, torch.zeros(4), torch.Generator().manual_seed(0))
    assert out["l1"] == pytest.approx(1.1)  # |a + 0.5 - b|
    assert out["g_loss"] == pytest.approx(softplus(-1.0) + 100.0 * 1.1, rel=1e-6)
    assert out["d_loss"] == pytest.approx(0.5 * (softplus(-1.0) + softplus(1.0)), rel=1e-6)
    fake = a + 0.5  # the critic sees each image beside its source: (a, G(a)), then (a, b), then (a, G(a))
    for seen, pair in zip(critic.seen, (fake, b, fake), strict=True):
        assert torch.equal(seen, torch.cat([a, pair], 1))


def test_one_label_asked_for_is_every_samples_label():
    model = Diffusion(SHAPE, 10, {**TINY_DIFFUSION, "conditional": True})
    assert model.sample_labels(3, [4], None).tolist() == [4, 4, 4]
    assert model.sample_labels(3, torch.tensor([1, 2, 9]), None).tolist() == [1, 2, 9]


class _Overshooting(ZeroDecoder):
    def forward(self, z: torch.Tensor, onehot: torch.Tensor | None) -> torch.Tensor:
        out = torch.full((len(z), *SHAPE), 3.0)
        out[:, :, :4] = -3.0
        return out


def test_vae_samples_are_decoder_means_clamped_to_the_pixel_range():
    model = _vae([0.0], [0.0])
    model.decoder = _Overshooting()  # means beyond the pixel range
    images = model.sample(2, None, torch.Generator().manual_seed(0))
    assert images.unique().tolist() == [-1.0, 1.0]
