"""agents.common.networks: the gradient clipping every neural agent steps with."""

import math

import pytest
import torch

from agents.common.networks import clip_grad_norm


def gradients(norm: float, seed: int) -> list[torch.Tensor]:
    """Three parameters whose gradients have (to float32 rounding) the total norm ``norm``."""
    generator = torch.Generator().manual_seed(seed)
    params = [torch.zeros(shape, requires_grad=True) for shape in ((64, 4), (64,), (2, 64))]
    grads = [torch.randn(p.shape, generator=generator) for p in params]
    scale = norm / float(torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads])))
    for p, g in zip(params, grads, strict=True):
        p.grad = g * scale
    return params


@pytest.mark.parametrize("max_norm", [0.5, 10.0, 1e-6])
@pytest.mark.parametrize(
    "ratio",  # the gradients' norm over max_norm: well within, at the skipping margin, at 1, beyond
    [0.01, 0.5, 1 - 2e-5, 1 - 1e-5, 1 - 3e-6, 1 - 1e-7, 1.0, 1 + 1e-7, 1 + 1e-5, 2.0, 100.0],
)
def test_clipping_gives_clip_grad_norm_s_gradients_to_the_bit(max_norm, ratio):
    for seed in range(3):
        ours, theirs = gradients(max_norm * ratio, seed), gradients(max_norm * ratio, seed)
        norm, value = clip_grad_norm(ours, max_norm)
        expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm)
        assert torch.equal(norm, expected) and value == float(expected)
        for a, b in zip(ours, theirs, strict=True):
            assert torch.equal(a.grad, b.grad)


@pytest.mark.parametrize("bad", [float("inf"), float("nan")])
def test_a_non_finite_gradient_gives_a_non_finite_norm_as_clip_grad_norm_does(bad):
    ours, theirs = gradients(1.0, 0), gradients(1.0, 0)
    for params in (ours, theirs):
        params[1].grad[3] = bad
    norm, value = clip_grad_norm(ours, 0.5)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 0.5)
    assert not math.isfinite(value) and torch.equal(norm, expected) == (bad == float("inf"))
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a.grad, b.grad) or torch.allclose(a.grad, b.grad, equal_nan=True)


def test_parameters_without_gradients_are_left_out():
    params = [*gradients(3.0, 0), torch.zeros(5, requires_grad=True)]
    _, value = clip_grad_norm(params, 1.0)
    assert value == pytest.approx(3.0, rel=1e-6) and params[-1].grad is None
    clipped = math.sqrt(sum(float(p.grad.square().sum()) for p in params[:-1]))
    assert clipped == pytest.approx(1.0, rel=1e-5)
