"""agents.optim.FlatParameters: parameters, gradients and Adam's moments in flat buffers, stepped in one
call, must give torch.optim.Adam's numbers and stay bound to the optimizer's state."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from agents.optim import FlatParameters, fast_adam_options, has_fused_adam_kernel


def twin_networks() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 33), nn.ReLU(), nn.Linear(33, 3))
    twin = nn.Sequential(nn.Linear(5, 33), nn.ReLU(), nn.Linear(33, 3))
    twin.load_state_dict(net.state_dict())
    return net, twin


def same_memory(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def train_side_by_side(kernel: str, steps: int = 25) -> tuple[nn.Module, nn.Module, FlatParameters]:
    """The same gradients (a regression loss on random data, the learning rate changing midway) through
    torch.optim.Adam (fused for the fused kernel, else its default) and FlatParameters.adam_step."""
    reference, flat_net = twin_networks()
    options = fast_adam_options() if kernel == "fused" else {}
    optimizer = torch.optim.Adam(reference.parameters(), lr=3e-3, eps=1e-5, **options)
    flat_optimizer = torch.optim.Adam(flat_net.parameters(), lr=3e-3, eps=1e-5, **options)
    flat = FlatParameters(list(flat_net.parameters()), flat_optimizer)
    generator = torch.Generator().manual_seed(1)
    for step in range(steps):
        x, y = torch.randn(16, 5, generator=generator), torch.randn(16, 3, generator=generator)
        if step == steps // 2:
            for opt in (optimizer, flat_optimizer):
                opt.param_groups[0]["lr"] = 1e-3
        optimizer.zero_grad()
        (reference(x) - y).square().mean().backward()
        optimizer.step()
        flat_net.zero_grad(set_to_none=True)
        (flat_net(x) - y).square().mean().backward()
        with torch.no_grad():
            for p in flat_net.parameters():
                flat.grad(p).copy_(p.grad)
        flat.adam_step(kernel)
    return reference, flat_net, flat


@pytest.mark.skipif(not has_fused_adam_kernel(), reason="this torch has no fused CPU Adam kernel")
def test_the_fused_step_on_flat_buffers_is_torch_adams_step_exactly():
    reference, flat_net, _ = train_side_by_side("fused")
    for a, b in zip(reference.parameters(), flat_net.parameters(), strict=True):
        assert torch.equal(a, b)


def test_the_torch_step_on_flat_buffers_is_the_default_adams_step_exactly():
    reference, flat_net, _ = train_side_by_side("torch")  # Adam() as stable-baselines3 builds it
    for a, b in zip(reference.parameters(), flat_net.parameters(), strict=True):
        assert torch.equal(a, b)


def test_the_kernels_are_named():
    _, _, flat = train_side_by_side("torch", steps=1)
    values = flat.values.clone()
    with pytest.raises(ValueError, match="kernel must be 'fused', 'torch' or 'numpy'; got 'cuda'"):
        flat.adam_step("cuda")
    assert torch.equal(flat.values, values) and float(flat.steps) == 1  # nothing stepped


def test_the_numpy_step_is_torch_adams_step_to_rounding():
    reference, flat_net, flat = train_side_by_side("numpy")
    for a, b in zip(reference.parameters(), flat_net.parameters(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    assert float(flat.steps) == 25


def test_the_optimizer_state_is_the_flat_buffers_and_rebinds_after_a_load():
    _, flat_net, flat = train_side_by_side("numpy", steps=4)
    optimizer = flat.optimizer
    params = list(flat_net.parameters())
    for p in params:  # parameters and moments are views: the step is seen by the network and the optimizer
        assert same_memory(p, flat.values) and same_memory(optimizer.state[p]["exp_avg"], flat.exp_avg)
        assert optimizer.state[p]["step"] is flat.steps
    saved = copy.deepcopy(optimizer.state_dict())  # as a checkpoint holds it: its own tensors
    moments = flat.exp_avg.clone()
    flat.adam_step("numpy")
    optimizer.load_state_dict(saved)  # replaces the state tensors with copies
    assert not same_memory(optimizer.state[params[0]]["exp_avg"], flat.exp_avg)
    flat.bind_optimizer_state()
    torch.testing.assert_close(flat.exp_avg, moments, rtol=0, atol=0)
    assert float(flat.steps) == 4
    assert same_memory(optimizer.state[params[0]]["exp_avg"], flat.exp_avg)


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: torch.optim.SGD(ps, lr=0.1),
        lambda ps: torch.optim.Adam(ps, weight_decay=0.01),
        lambda ps: torch.optim.Adam(ps, amsgrad=True),
        lambda ps: torch.optim.AdamW(ps),
    ],
)
def test_only_plain_adam_is_supported(make):
    net, _ = twin_networks()
    assert not FlatParameters.supports(make(list(net.parameters())))
    assert FlatParameters.supports(torch.optim.Adam(net.parameters()))
