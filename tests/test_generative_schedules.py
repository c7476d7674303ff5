"""Diffusion schedule math against independent closed forms, and the DDIM/DDPM relation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from generative.diffusion import ddim_timesteps
from generative.schedules import NoiseSchedule, cosine_alpha_bar, linear_betas
from lab.core.errors import LabError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_linear_schedule_values():
    s = NoiseSchedule("linear", 1000)
    betas = np.linspace(1e-4, 0.02, 1000)
    assert float(s.betas[0]) == pytest.approx(1e-4) and float(s.betas[-1]) == pytest.approx(0.02)
    for t in (0, 1, 499, 999):
        assert float(s.alpha_bar[t]) == pytest.approx(math.prod(1 - b for b in betas[: t + 1]), rel=1e-6)
    assert float(s.alpha_bar[-1]) == pytest.approx(4.0358e-5, rel=1e-3)  # Ho et al.'s end point
    # other chain lengths keep the same total noise: the betas scale with 1000 / T
    assert np.allclose(linear_betas(250), 4 * np.linspace(1e-4, 0.02, 250))


def test_cosine_schedule_values():
    T, s_off = 1000, 0.008
    s = NoiseSchedule("cosine", T)

    def f(u: float) -> float:
        return math.cos((u / T + s_off) / (1 + s_off) * math.pi / 2) ** 2

    for t in (0, 1, 250, 500, 998):
        assert float(s.alpha_bar[t]) == pytest.approx(f(t + 1) / f(0), rel=1e-5)
    assert float(s.alpha_bar[499]) == pytest.approx(f(500) / f(0), rel=1e-5)  # about 0.49: half the signal
    assert float(s.betas.max()) <= 0.999 + 1e-7  # the last step is capped
    assert np.allclose(cosine_alpha_bar(T)[:-1], s.alpha_bar64[:-1])


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_forward_process_moments_compose_step_by_step(kind):
    """Applying x_t = sqrt(1 - b_t) x_{t-1} + sqrt(b_t) z step by step gives mean sqrt(a_t) x_0 and
    variance 1 - a_t: the closed form q(x_t | x_0) that q_sample uses."""
    s = NoiseSchedule(kind, 200)
    mean, var = 1.0, 0.0
    for t in range(200):
        b = float(s.betas64[t])
        mean, var = math.sqrt(1 - b) * mean, (1 - b) * var + b
        assert mean == pytest.approx(float(s.sqrt_alpha_bar[t]), rel=1e-5)
        assert var == pytest.approx(1 - float(s.alpha_bar64[t]), rel=1e-5, abs=1e-9)
    x0 = torch.full((3, 1, 2, 2), 0.7)
    t = torch.tensor([0, 50, 150])
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    xt = s.q_sample(x0, t, noise)
    expected = (
        s.sqrt_alpha_bar[t][:, None, None, None] * x0
        + s.sqrt_one_minus_alpha_bar[t][:, None, None, None] * noise
    )
    assert torch.allclose(xt, expected)
    assert torch.allclose(s.predict_x0(xt, t, noise), x0, atol=1e-5)


def test_posterior_is_the_product_of_the_two_gaussians():
    """q(x_{t-1} | x_t, x_0) from Bayes: N(x_t; sqrt(1-b) x_{t-1}, b) times N(x_{t-1}; sqrt(a') x_0, 1-a')."""
    s = NoiseSchedule("linear", 100)
    x0, xt = torch.full((1, 1, 1, 1), 0.3), torch.full((1, 1, 1, 1), -0.8)
    for t in (1, 40, 99):
        b, a_prev = float(s.betas64[t]), float(s.alpha_bar64[t - 1])
        precision = (1 - b) / b + 1 / (1 - a_prev)
        mean = ((math.sqrt(1 - b) / b) * -0.8 + (math.sqrt(a_prev) / (1 - a_prev)) * 0.3) / precision
        got_mean, got_var = s.posterior(x0, xt, torch.tensor([t]))
        assert float(got_mean) == pytest.approx(mean, rel=1e-5)
        assert float(got_var) == pytest.approx(1 / precision, rel=1e-5)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("clip", [True, False])
def test_ddim_with_eta_one_between_neighbouring_steps_is_the_ddpm_step(kind, clip):
    s = NoiseSchedule(kind, 1000)
    g = torch.Generator().manual_seed(1)
    x, eps, z = (torch.randn(4, 1, 8, 8, generator=g) for _ in range(3))
    for t in (998, 500, 20, 1, 0):
        ddpm = s.ddpm_step(x, t, eps, z, clip=clip)
        ddim = s.ddim_step(x, t, t - 1, eps, z, eta=1.0, clip=clip)
        assert torch.allclose(ddpm, ddim, rtol=1e-4, atol=1e-5), t


def test_ddim_with_eta_zero_is_deterministic_and_exact_on_a_perfect_prediction():
    """If the network predicts the true noise, DDIM (eta 0) lands on the clean image from any step."""
    s = NoiseSchedule("cosine", 1000)
    g = torch.Generator().manual_seed(2)
    x0 = torch.rand(2, 1, 4, 4, generator=g) * 2 - 1
    noise = torch.randn(x0.shape, generator=g)
    t = 700
    xt = s.q_sample(x0, torch.tensor([t, t]), noise)
    assert torch.allclose(s.ddim_step(xt, t, -1, noise, eta=0.0, clip=False), x0, atol=1e-4)
    x_mid = s.ddim_step(xt, t, 300, noise, eta=0.0, noise=torch.randn(x0.shape, generator=g))
    assert torch.allclose(x_mid, s.q_sample(x0, torch.tensor([300, 300]), noise), atol=1e-4)


def test_ddim_timesteps():
    assert ddim_timesteps(1000, 1) == [999]
    assert ddim_timesteps(1000, 5) == [999, 749, 500, 250, 0]
    assert ddim_timesteps(10, 10) == list(range(9, -1, -1))
    with pytest.raises(LabError, match="between 1 and 10 steps"):
        ddim_timesteps(10, 11)


def test_schedule_errors():
    with pytest.raises(LabError, match=r"unknown noise schedule 'cosin'; did you mean 'cosine'\?"):
        NoiseSchedule("cosin")
    with pytest.raises(LabError, match="at least 2 steps"):
        NoiseSchedule("linear", 1)
    for steps in (10, 20):  # the rescaled betas reach 1 (no signal left) or pass it (NaN tables)
        with pytest.raises(LabError, match="the linear schedule needs more than 20 steps"):
            NoiseSchedule("linear", steps)
    for kind in ("linear", "cosine"):  # just past the bound, and the cosine one at any length
        schedule = NoiseSchedule(kind, 21 if kind == "linear" else 2)
        assert np.isfinite(schedule.alpha_bar64).all() and schedule.alpha_bar64[-1] > 0
