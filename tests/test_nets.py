"""The supervised core's networks: shapes, options, initialisation statistics, the causal property of
the Transformer, recurrent state, and encoders on the lab's own observation spaces."""

from __future__ import annotations

import re
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch import nn

import envs  # noqa: F401  (registers the lab/ ids)
from lab.nets import (
    CNN,
    MLP,
    CausalTransformer,
    GridCNN,
    NatureCNN,
    RecurrentNet,
    encoder_for_space,
    flush_denormals,
    initialize,
)
from lab.nets.encoders import DiscreteEncoder, ImageEncoder, VectorEncoder


@pytest.fixture(autouse=True)
def one_thread():
    """One thread: small nets gain little from two, and lose a lot when the machine is busy."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(previous)


def test_importing_the_cli_does_not_import_the_supervised_core():
    code = "import sys, lab, lab.cli; print('lab.nets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# ----- MLP -----


@pytest.mark.parametrize("norm", [None, "batch", "layer"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu", "silu", "elu", "leaky_relu"])
def test_mlp_shapes_and_options(norm, activation):
    net = MLP(5, 3, hidden=(16, 8), activation=activation, norm=norm, dropout=0.1, init="orthogonal")
    assert net(torch.randn(4, 5)).shape == (4, 3)
    assert (net.in_features, net.out_features) == (5, 3)
    kinds = [type(m).__name__ for m in net.body]
    assert kinds.count("Linear") == 2 and kinds.count("Dropout") == 2
    if norm is not None:
        assert kinds.count({"batch": "BatchNorm1d", "layer": "LayerNorm"}[norm]) == 2


def test_mlp_without_hidden_layers_is_linear_and_out_init_scale_shrinks_the_head():
    linear = MLP(4, 2, hidden=())
    x, zero = torch.randn(6, 4), torch.zeros(1, 4)
    assert torch.allclose(linear(2 * x) - linear(zero), 2 * (linear(x) - linear(zero)))
    torch.manual_seed(1)
    plain = MLP(8, 4, init="orthogonal")
    torch.manual_seed(1)
    small = MLP(8, 4, init="orthogonal", out_init_scale=0.01)
    assert torch.allclose(small.head.weight, 0.01 * plain.head.weight)
    assert torch.equal(small.body[0].weight, plain.body[0].weight)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: MLP(2, 2, activation="rleu"), "unknown activation 'rleu'; did you mean 'relu'"),
        (lambda: MLP(2, 2, norm="batchnorm"), "unknown normalisation 'batchnorm'; did you mean 'batch'"),
        (lambda: MLP(2, 2, init="orthogonl"), "unknown initialisation 'orthogonl'; did you mean 'orth"),
        (lambda: MLP(2, 2, dropout=1.0), r"dropout must be a probability in \[0, 1\)"),
        (lambda: MLP(0, 2), "MLP in_features must be a whole number >= 1; got 0"),
        (lambda: MLP(2, 2, hidden=(8, 2.5)), "an MLP hidden size must be a whole number >= 1; got 2.5"),
        (lambda: GridCNN(1, 8, 8, head="avg"), "unknown CNN head 'avg'"),
        (lambda: NatureCNN(3, 16, 16), "at least 36x36; got 16x16"),
        (lambda: RecurrentNet(3, kind="lstn"), "unknown recurrent kind 'lstn'; did you mean 'lstm'"),
        (lambda: CausalTransformer(10, width=30, heads=4), r"width \(30\) must be divisible"),
    ],
)
def test_bad_network_options_are_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# ----- initialisation -----


def test_orthogonal_initialisation_gives_orthogonal_rows_scaled_by_the_gain():
    w = initialize(nn.Linear(256, 256), "orthogonal", "linear").weight.detach()
    assert torch.allclose(w @ w.T, torch.eye(256), atol=1e-4)
    w = initialize(nn.Linear(128, 64), "orthogonal", "relu").weight.detach()  # gain sqrt(2)
    assert torch.allclose(w @ w.T, 2 * torch.eye(64), atol=1e-4)
    w = initialize(nn.Linear(64, 64), "orthogonal", gain_value=0.01).weight.detach()
    assert torch.allclose(w @ w.T, 1e-4 * torch.eye(64), atol=1e-8)


def test_he_and_xavier_initialisation_have_their_variances_and_zero_biases():
    he = initialize(nn.Linear(1024, 512), "he", "relu")
    assert float(he.weight.detach().var()) == pytest.approx(2 / 1024, rel=0.03)
    conv = initialize(nn.Conv2d(32, 64, 3), "he", "relu")  # fan_in = 32 * 3 * 3
    assert float(conv.weight.detach().var()) == pytest.approx(2 / (32 * 9), rel=0.03)
    xavier = initialize(nn.Linear(600, 400), "xavier", "tanh")
    gain = 5 / 3
    assert float(xavier.weight.detach().var()) == pytest.approx(gain**2 * 2 / (600 + 400), rel=0.03)
    assert float(xavier.weight.detach().abs().max()) <= gain * np.sqrt(6 / (600 + 400)) + 1e-6
    for layer in (he, conv, xavier):
        assert float(layer.bias.detach().abs().max()) == 0.0


def test_default_initialisation_leaves_pytorch_weights_and_the_mlp_head_gets_gain_one():
    layer = nn.Linear(8, 8)
    before = layer.weight.detach().clone()
    assert torch.equal(initialize(layer, "default").weight, before)
    net = MLP(1000, 500, hidden=(1000,), init="he")
    assert float(net.body[0].weight.detach().var()) == pytest.approx(2 / 1000, rel=0.03)
    # The outputs are not passed through a ReLU: gain 1.
    assert float(net.head.weight.detach().var()) == pytest.approx(1 / 1000, rel=0.03)


def test_he_initialisation_keeps_the_signal_through_a_deep_relu_mlp():
    net = MLP(256, 256, hidden=(256,) * 10, init="he")
    x = torch.randn(2048, 256)
    with torch.no_grad():
        h = net.body(x)
    assert float(h.pow(2).mean()) == pytest.approx(float(x.pow(2).mean()), rel=0.35)


# ----- CNNs -----


@pytest.mark.parametrize("head", ["flatten", "global"])
@pytest.mark.parametrize("norm", [None, "batch", "layer"])
@pytest.mark.parametrize("size", [(5, 5), (7, 11), (21, 21)])
def test_grid_cnn_keeps_the_grid_and_reports_its_features(size, norm, head):
    h, w = size
    net = CNN(8, h, w, out_features=32, channels=(16, 16), head=head, norm=norm, dropout=0.1, init="xavier")
    assert net(torch.rand(3, 8, h, w)).shape == (3, 32) and net.out_features == 32
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.padding == (1, 1) and c.stride == (1, 1) for c in convs)
    linear = next(m for m in net.modules() if isinstance(m, nn.Linear))
    assert linear.in_features == (16 * h * w if head == "flatten" else 16)


def test_grid_cnn_pooling_and_the_wrong_input_shape():
    net = GridCNN(3, 32, 32, out_features=16, channels=(8, 8, 8), pool=True)
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 16)
    assert next(m for m in net.modules() if isinstance(m, nn.Linear)).in_features == 8 * 8 * 8
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) = \(N, 3, 32, 32\) input; got \(2, 32, 32, 3\)"):
        net(torch.rand(2, 32, 32, 3))


@pytest.mark.parametrize(("size", "norm"), [((84, 84), None), ((36, 36), "batch"), ((56, 88), "layer")])
def test_nature_cnn_on_frames(size, norm):
    net = NatureCNN(4, *size, out_features=512, norm=norm, dropout=0.1)
    assert net(torch.rand(2, 4, *size)).shape == (2, 512) and net.out_features == 512
    strides = [m.stride for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert strides == [(4, 4), (2, 2), (1, 1)]


def test_grid_cnn_dropout_and_its_global_head_averages_over_positions():
    torch.manual_seed(0)
    x = torch.rand(4, 2, 6, 6)
    net = GridCNN(2, 6, 6, out_features=8, channels=(4,), dropout=0.5)
    assert not torch.equal(net(x), net(x))  # training: a fresh dropout mask each pass
    net.eval()
    assert torch.equal(net(x), net(x))
    pooled = GridCNN(2, 6, 6, out_features=8, channels=(4,), head="global").eval()
    convs, head = pooled.net[:2], pooled.net[-2:]  # conv -> relu, then ... -> linear -> relu
    with torch.no_grad():
        assert torch.allclose(pooled(x), head(convs(x).mean((2, 3))), atol=1e-6)


# ----- recurrent -----


@pytest.mark.parametrize("kind", ["gru", "lstm"])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_recurrent_nets_return_outputs_and_carry_their_state(kind, num_layers):
    net = RecurrentNet(3, 16, out_features=5, kind=kind, num_layers=num_layers, dropout=0.1).eval()
    x = torch.randn(2, 6, 3)
    whole, state = net(x)
    assert whole.shape == (2, 6, 5) and net.out_features == 5
    h = state[0] if kind == "lstm" else state
    assert h.shape == (num_layers, 2, 16)
    first, carried = net(x[:, :4])
    rest, _ = net(x[:, 4:], carried)
    assert torch.allclose(torch.cat([first, rest], 1), whole, atol=1e-6)
    from_zero, _ = net(x, net.initial_state(2))
    assert torch.allclose(from_zero, whole, atol=1e-6)


def test_recurrent_net_without_readout_returns_the_hidden_states():
    net = RecurrentNet(4, hidden_size=8, kind="gru")
    outputs, h = net(torch.randn(3, 5, 4))
    assert outputs.shape == (3, 5, 8) and net.out_features == 8
    assert torch.allclose(outputs[:, -1], h[-1])


# ----- causal transformer -----


def test_transformer_logits_at_t_do_not_depend_on_later_tokens():
    model = CausalTransformer(vocab_size=11, context=12, width=32, layers=2, heads=4).eval()
    tokens = torch.randint(0, 11, (3, 12))
    logits = model(tokens)
    assert logits.shape == (3, 12, 11) and model.out_features == 11
    for t in range(11):
        changed = tokens.clone()
        changed[:, t + 1 :] = (changed[:, t + 1 :] + 1 + torch.arange(11 - t)) % 11
        other = model(changed)
        assert torch.allclose(logits[:, : t + 1], other[:, : t + 1], atol=1e-5), t
        assert not torch.allclose(logits[:, t + 1 :], other[:, t + 1 :], atol=1e-5), t


def test_transformer_gradient_of_position_t_reaches_no_later_embedding():
    model = CausalTransformer(vocab_size=7, context=8, width=16, layers=1, heads=2, dropout=0.0)
    tokens = torch.randint(0, 7, (1, 8))
    embedded = (model.tokens(tokens) + model.positions(torch.arange(8))).detach().requires_grad_(True)
    out = model.head(model.ln(model.blocks(embedded)))
    out[0, 3].sum().backward()
    per_position = embedded.grad[0].abs().sum(1)
    assert bool((per_position[:4] > 0).all()) and float(per_position[4:].abs().sum()) == 0.0


def test_transformer_rejects_sequences_beyond_its_context():
    model = CausalTransformer(vocab_size=5, context=4, width=8, layers=1, heads=2)
    with pytest.raises(ValueError, match="a sequence of 5 tokens is longer than the context of 4"):
        model(torch.zeros(1, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"expects \(N, T\) integer tokens"):
        model(torch.zeros(4, dtype=torch.long))


def test_transformer_starts_with_gpt2_initialisation():
    torch.manual_seed(0)
    model = CausalTransformer(vocab_size=300, context=64, width=64, layers=2, heads=4)
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            weight = module.weight.detach()
            assert float(weight.std()) == pytest.approx(0.02, rel=0.1), name
            assert abs(float(weight.mean())) < 0.002, name
        if isinstance(module, nn.Linear):
            assert not module.bias.any(), name


def test_transformer_block_is_pre_layer_norm():
    """x + attention(LN1(x)), then x + MLP(LN2(x)): each sub-layer reads its own normalised input."""
    from lab.nets.transformer import Block

    torch.manual_seed(0)
    block = Block(width=8, heads=2, dropout=0.0).eval()
    with torch.no_grad():  # two norms that differ from each other and from none at all
        for ln in (block.ln1, block.ln2):
            ln.weight.uniform_(0.5, 2.0)
            ln.bias.normal_(0.0, 0.5)
    x = torch.randn(2, 5, 8) * 3 + 1
    with torch.no_grad():
        h = x + block.attention(block.ln1(x))
        assert torch.allclose(block(x), h + block.mlp(block.ln2(h)), atol=1e-6)


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_recurrent_dropout_acts_between_stacked_layers(kind):
    net = RecurrentNet(3, 16, out_features=2, kind=kind, num_layers=2, dropout=0.5)
    x = torch.randn(4, 6, 3)
    assert not torch.equal(net(x)[0], net(x)[0])  # training: a fresh dropout mask each pass
    net.eval()
    assert torch.equal(net(x)[0], net(x)[0])
    single = RecurrentNet(3, 16, kind=kind, num_layers=1, dropout=0.5)  # no layer to drop between
    assert torch.equal(single(x)[0], single(x)[0])


# ----- encoders on the lab's observation spaces -----

KEYDOOR_ENCODERS = [
    ("index", DiscreteEncoder, None),
    ("coords", VectorEncoder, None),
    ("onehot", VectorEncoder, None),
    ("symbolic", ImageEncoder, GridCNN),
    ("pixels", ImageEncoder, NatureCNN),
]


@pytest.mark.parametrize(("obs_type", "encoder_type", "cnn_type"), KEYDOOR_ENCODERS)
def test_encoder_for_keydoor_observations(obs_type, encoder_type, cnn_type):
    env = gym.make("lab/KeyDoor-v0", obs_type=obs_type)
    observations = [env.reset(seed=0)[0]]
    for action in (2, 2, 1, 1, 0, 3):
        observations.append(env.step(action)[0])
    batch = torch.as_tensor(np.stack(observations))
    encoder = encoder_for_space(env.observation_space, features=32)
    assert isinstance(encoder, encoder_type)
    if encoder_type is ImageEncoder:
        assert isinstance(encoder.cnn, cnn_type)
    out = encoder(batch)
    assert out.shape == (7, 32) and encoder.out_features == 32
    assert out.dtype == torch.float32 and bool(torch.isfinite(out).all())
    out.sum().backward()  # trainable end to end
    assert all(p.grad is not None for p in encoder.parameters() if p.requires_grad)


def test_image_encoders_scale_each_channel_by_the_spaces_high():
    pixels = encoder_for_space(spaces.Box(0, 255, (12, 12, 3), np.uint8))
    assert torch.allclose(pixels.scale.flatten(), torch.full((3,), 1 / 255))
    env = gym.make("lab/WindyGrid-v0", obs_type="symbolic")  # its wind plane runs to 2
    space = env.observation_space
    encoder = encoder_for_space(space)
    obs = torch.as_tensor(env.reset(seed=0)[0])[None]
    scaled = (obs.permute(0, 3, 1, 2).float() - encoder.low) * encoder.scale
    assert float(scaled.min()) == 0.0 and float(scaled.max()) == 1.0
    wind = 4  # envs.grid.observations.CHANNELS.index("wind")
    assert float(space.high[..., wind].max()) == 2 and float(scaled[0, wind].max()) == 1.0
    unbounded = encoder_for_space(spaces.Box(-np.inf, np.inf, (8, 8, 2), np.float32))
    assert torch.equal(unbounded.scale.flatten(), torch.ones(2))  # nothing known to scale by


@pytest.mark.parametrize(
    ("shape", "dtype", "high"),
    [
        ((12, 12, 3), np.uint8, 255),
        ((4, 36, 36), np.uint8, 255),
        ((9, 9, 8), np.float64, 2.0),
        ((5, 5, 2), np.float32, 1.0),
    ],
)
def test_the_cnn_sees_each_channel_mapped_onto_0_1_to_the_bit(shape, dtype, high):
    """Whatever the layout and dtype, the CNN gets ``(x - low) * scale`` per channel in float32,
    channels first, and the caller's observations are left as they were."""
    encoder = encoder_for_space(spaces.Box(0, high, shape, dtype), features=8)
    seen = []
    encoder.cnn.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    obs = torch.as_tensor(np.random.default_rng(0).uniform(0, high, (5, *shape)).astype(dtype))
    before = obs.clone()
    encoder(obs)
    nchw = obs.permute(0, 3, 1, 2) if encoder.channels_last else obs
    expected = (nchw.float() - encoder.low) * encoder.scale
    assert seen[0].dtype == torch.float32 and torch.equal(seen[0], expected)
    assert torch.equal(obs, before)


@pytest.mark.parametrize("shape", [(6, 6, 2), (2, 36, 36)])
def test_the_cnn_sees_the_scaling_a_loaded_state_dict_holds(shape):
    """low and scale live in checkpoints; the forward pass's per-entry copies of them follow a load."""
    encoder = encoder_for_space(spaces.Box(0, 255, shape, np.uint8), features=8)
    assert encoder.channels_last == (shape[-1] == 2)
    state = encoder.state_dict()
    assert not any(key.endswith("_per_entry") for key in state)
    state["low"] = torch.tensor([1.0, 2.0]).view(1, 2, 1, 1)
    state["scale"] = torch.tensor([0.5, 0.25]).view(1, 2, 1, 1)
    encoder.load_state_dict(state)
    seen = []
    encoder.cnn.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    obs = torch.as_tensor(np.random.default_rng(1).integers(0, 256, (3, *shape)).astype(np.uint8))
    encoder(obs)
    nchw = obs.permute(0, 3, 1, 2) if encoder.channels_last else obs
    assert torch.equal(seen[0], (nchw.float() - state["low"]) * state["scale"])


def test_encoder_picks_the_cnn_for_the_frame_size_and_layout():
    assert isinstance(encoder_for_space(spaces.Box(0, 255, (84, 84, 3), np.uint8)).cnn, NatureCNN)
    assert isinstance(encoder_for_space(spaces.Box(0, 255, (35, 80, 3), np.uint8)).cnn, GridCNN)
    small = encoder_for_space(spaces.Box(0, 1, (5, 5, 8), np.uint8), features=16)
    assert isinstance(small.cnn, GridCNN)
    assert small(torch.ones(2, 5, 5, 8, dtype=torch.uint8)).shape == (2, 16)
    stacked = encoder_for_space(spaces.Box(0, 255, (4, 84, 84), np.uint8), features=16)  # frame stack
    assert not stacked.channels_last
    assert stacked(torch.zeros(2, 4, 84, 84, dtype=torch.uint8)).shape == (2, 16)


def test_discrete_encoder_respects_the_spaces_start():
    encoder = encoder_for_space(spaces.Discrete(4, start=10), features=6)
    out = encoder(torch.tensor([10, 13]))
    assert torch.equal(out, encoder.embedding.weight[[0, 3]])
    with pytest.raises(ValueError, match=r"must lie in \[10, 14\).*got values from 9 to 13"):
        encoder(torch.tensor([9, 13]))


@pytest.mark.parametrize(
    "space",
    [
        spaces.Dict({"a": spaces.Discrete(2)}),
        spaces.Box(0, 1, (3, 4)),
        spaces.Box(0, 1, (32, 32, 32)),
        spaces.MultiDiscrete([3, 3]),
    ],
)
def test_encoder_for_unsupported_spaces_names_the_space(space):
    with pytest.raises(ValueError, match="no encoder for the observation space " + re.escape(str(space))):
        encoder_for_space(space)


def test_vector_encoder_scales_bounded_entries():
    space = spaces.Box(np.array([0, -1, -np.inf], np.float32), np.array([10, 1, np.inf], np.float32))
    encoder = encoder_for_space(space, features=8, hidden=(16,))
    assert torch.allclose(encoder.scale, torch.tensor([0.1, 0.5, 1.0]))
    assert torch.allclose(encoder.low, torch.tensor([0.0, -1.0, 0.0]))
    assert encoder(torch.tensor([[10.0, 1.0, 3.0]])).shape == (1, 8)


@pytest.mark.parametrize("sigmoid_form", [True, False])
def test_the_tanh_activation_is_torchs_tanh_in_value_and_gradient(monkeypatch, sigmoid_form):
    """lab.nets' tanh in both its forms (2 sigmoid(2x) - 1 where torch's tanh kernel is slow, torch's
    elsewhere) against torch.tanh, from 0 to saturation."""
    from lab.nets import layers
    from lab.nets.layers import Tanh, activation

    monkeypatch.setattr(layers, "_SIGMOID_FORM", sigmoid_form)

    x = torch.cat([torch.linspace(-30, 30, 20_001), torch.tensor([0.0, 1e-30, -1e-7, 88.0, -104.0])])
    ours_x, torch_x = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours, reference = Tanh()(ours_x), torch.tanh(torch_x)
    assert (ours - reference).abs().max() <= 2.5e-7
    assert ours.abs().max() <= 1.0
    weights = torch.linspace(-1, 1, len(x))
    (ours * weights).sum().backward()
    (reference * weights).sum().backward()
    torch.testing.assert_close(ours_x.grad, torch_x.grad, rtol=0, atol=1e-6)
    edges = Tanh()(torch.tensor([float("inf"), float("-inf"), float("nan")]))
    assert edges[:2].tolist() == [1.0, -1.0] and torch.isnan(edges[2])
    assert isinstance(activation("tanh"), nn.Tanh)


@pytest.mark.parametrize("sigmoid_form", [True, False])
def test_the_tanh_activation_is_the_sigmoid_form_inside_torch_compile(monkeypatch, sigmoid_form):
    """Compiled, tanh is 2 sigmoid(2x) - 1 on every machine (TorchInductor's tanh kernel is its slow
    one). torch.compile's "eager" backend runs the captured graph with torch's own kernels, so its
    numbers are those of the form the graph holds, to the bit."""
    from lab.nets import layers
    from lab.nets.layers import Tanh, _SigmoidTanh

    monkeypatch.setattr(layers, "_SIGMOID_FORM", sigmoid_form)
    torch.compiler.reset()  # no graph captured under the other setting
    x = torch.linspace(-9, 9, 20_001)
    compiled_x, sigmoid_x = x.clone().requires_grad_(), x.clone().requires_grad_()
    compiled = torch.compile(Tanh(), backend="eager", fullgraph=True)(compiled_x)
    sigmoid = _SigmoidTanh.apply(sigmoid_x)
    assert torch.equal(compiled, sigmoid)
    assert not torch.equal(compiled, torch.tanh(x))  # the two forms round apart somewhere
    weights = torch.linspace(-1, 1, len(x))
    (compiled * weights).sum().backward()
    (sigmoid * weights).sum().backward()
    assert torch.equal(compiled_x.grad, sigmoid_x.grad)
    assert torch.equal(Tanh()(x), sigmoid if sigmoid_form else torch.tanh(x))  # eager: the machine's form
    torch.compiler.reset()


def test_the_tanh_form_follows_whether_mkl_runs_its_fast_code_on_this_cpu():
    """torch's tanh is MKL's vsTanh in an MKL build, and MKL runs its slow generic code on CPUs not
    made by Intel: the sigmoid form there, torch's tanh everywhere else."""
    from lab.nets.layers import torch_tanh_is_slow

    assert torch_tanh_is_slow("AuthenticAMD", mkl=True)
    assert torch_tanh_is_slow("", mkl=True)  # an unknown maker: the form that is never far off
    assert not torch_tanh_is_slow("GenuineIntel", mkl=True)
    assert not torch_tanh_is_slow("AuthenticAMD", mkl=False)  # without MKL, torch's own kernel


def test_the_cpu_vendor_is_read_from_cpuinfo_else_from_platform(tmp_path, monkeypatch):
    from lab.nets import layers

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n")
    assert layers.cpu_vendor(str(info)) == "AuthenticAMD"
    info.write_text("processor\t: 0\nBogoMIPS\t: 50.00\n")  # no vendor line (an ARM board)
    monkeypatch.setattr(layers.platform, "processor", lambda: "")
    assert layers.cpu_vendor(str(info)) == ""
    monkeypatch.setattr(layers.platform, "processor", lambda: "Intel64 Family 6 Model 85, GenuineIntel")
    assert layers.cpu_vendor(str(tmp_path / "missing")) == "GenuineIntel"  # as on Windows


SUBNORMAL = 1e-39  # below float32's smallest normal number, 1.2e-38


def _flushing() -> bool:
    return torch.tensor(SUBNORMAL).item() == 0.0


@pytest.mark.skipif(not torch.set_flush_denormal(False), reason="this CPU cannot flush subnormals")
def test_flush_denormals_flushes_in_the_block_and_puts_the_setting_back():
    assert not _flushing()
    with flush_denormals():
        assert _flushing()
        assert (torch.full((4,), 1e-30) * 1e-10).eq(0).all()  # a subnormal result is written as 0
    assert not _flushing()
    with pytest.raises(KeyError), flush_denormals():  # an error in the block puts it back too
        raise KeyError("x")
    assert not _flushing()
    torch.set_flush_denormal(True)  # a caller that flushes already keeps flushing afterwards
    try:
        with flush_denormals():
            assert _flushing()
        assert _flushing()
    finally:
        torch.set_flush_denormal(False)


def test_flush_denormals_changes_no_normal_value():
    weights = torch.randn(1000) * torch.logspace(-37, 37, 1000)
    with flush_denormals():
        flushed = weights * 1.0
    assert torch.equal(flushed, weights)
