"""The supervised core: network shapes and properties, and fit() on real data shipped with scikit-learn."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

import envs  # noqa: F401  (registers the lab/ ids)
from lab.nets import (
    MLP,
    CausalTransformer,
    GridCNN,
    NatureCNN,
    RecurrentNet,
    accuracy,
    encoder_for_space,
    fit,
)
from lab.nets.fit import predict
from lab.nets.layers import initialize


@pytest.fixture(autouse=True)
def two_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


def digits_split():
    data = load_digits()
    X = (data.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8) in [0, 1]
    return train_test_split(X, data.target, test_size=0.25, random_state=0, stratify=data.target)


def digits_cnn() -> nn.Module:
    return nn.Sequential(GridCNN(1, 8, 8, out_features=64, channels=(32, 64)), nn.Linear(64, 10))


def test_cnn_classifies_held_out_digits_above_97_percent():
    X_train, X_test, y_train, y_test = digits_split()
    model = digits_cnn()
    history = fit(model, X_train, y_train, epochs=15, batch_size=64, lr=2e-3, schedule="cosine", seed=0)
    assert accuracy(model, X_test, y_test) >= 0.97
    assert history.train_loss[-1] < history.train_loss[0]
    assert len(history.val_accuracy) == 15 and history.samples_per_second > 0


def test_mlp_fits_a_noisy_regression_to_the_noise_floor():
    rng = np.random.default_rng(0)
    sigma = 0.1

    def sample(n):
        x = rng.uniform(-1.5, 1.5, size=(n, 1)).astype(np.float32)
        return x, (np.sin(3 * x) + 0.5 * x**2 + rng.normal(0, sigma, size=x.shape)).astype(np.float32)

    X, y = sample(4000)
    X_test, y_test = sample(4000)
    torch.manual_seed(0)
    model = MLP(1, 1, hidden=(64, 64), activation="relu", init="he")
    fit(
        model,
        X,
        y,
        loss="mse",
        epochs=100,
        batch_size=64,
        lr=1e-2,
        weight_decay=0.0,
        schedule="cosine",
        seed=0,
    )
    mse = float(((predict(model, X_test) - torch.as_tensor(y_test)) ** 2).mean())
    assert mse < 1.1 * sigma**2  # the noise's own variance is sigma**2: nothing left to learn


def test_early_stopping_restores_the_best_weights():
    X_train, _, y_train, _ = digits_split()
    model = nn.Sequential(nn.Flatten(), MLP(64, 10, hidden=(256,)))
    X_val, y_val = X_train[:100], y_train[:100]
    history = fit(
        model, X_train[100:400], y_train[100:400], validation=(X_val, y_val), epochs=200, lr=1e-2,
        weight_decay=0.0, early_stopping_patience=3, seed=0,
    )  # fmt: skip
    assert history.stopped_early
    best = min(history.val_loss)
    assert history.val_loss[history.best_epoch] == best
    restored = float(nn.functional.cross_entropy(predict(model, X_val), torch.as_tensor(y_val)))
    assert restored == pytest.approx(best, rel=1e-6)


def test_same_seed_same_weights():
    X_train, _, y_train, _ = digits_split()
    models = []
    for _ in range(2):
        torch.manual_seed(123)
        model = nn.Sequential(nn.Flatten(), MLP(64, 10, hidden=(32,), dropout=0.1))
        fit(model, X_train[:300], y_train[:300], epochs=2, seed=7)
        models.append(model)
    for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("optimizer", ["adamw", "adam", "sgd", "rmsprop"])
@pytest.mark.parametrize("schedule", [None, "cosine", "step", "warmup_cosine"])
def test_every_optimizer_and_schedule_learns(optimizer, schedule):
    X_train, _, y_train, _ = digits_split()
    model = nn.Sequential(nn.Flatten(), MLP(64, 10, hidden=(32,)))
    lr = 0.05 if optimizer == "sgd" else 3e-3
    history = fit(
        model, X_train[:600], y_train[:600], epochs=4, lr=lr, optimizer=optimizer, schedule=schedule,
        nesterov=optimizer == "sgd", warmup_steps=5, seed=0,
    )  # fmt: skip
    assert history.train_loss[-1] < history.train_loss[0]


def test_gradient_clipping_bounds_the_update():
    model = nn.Linear(4, 1, bias=False)
    nn.init.zeros_(model.weight)
    X = torch.full((8, 4), 100.0)
    y = torch.full((8, 1), -100.0)
    fit(model, X, y, loss="mse", epochs=1, batch_size=8, optimizer="sgd", lr=1.0, momentum=0.0,
        weight_decay=0.0, grad_clip=0.5, val_fraction=0.0)  # fmt: skip
    assert float(model.weight.detach().norm()) == pytest.approx(
        0.5, rel=1e-5
    )  # one step of a gradient clipped to 0.5


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_weights():
    model = nn.Linear(2, 1)
    before = [p.detach().clone() for p in model.parameters()]
    X = torch.tensor([[1.0, float("nan")], [1.0, 2.0]])
    with pytest.raises(FloatingPointError, match="the loss became nan at epoch 0, step 0"):
        fit(model, X, torch.zeros(2, 1), loss="mse", batch_size=2, val_fraction=0.0)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"optimizer": "adamm"}, "unknown optimizer 'adamm'; did you mean 'adam'?"),
        ({"schedule": "cosin"}, "unknown schedule 'cosin'; did you mean 'cosine'?"),
        ({"loss": "mae"}, "unknown loss 'mae'"),
    ],
)
def test_bad_names_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit(nn.Linear(2, 2), torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), epochs=1, **kwargs)


def test_bad_data_is_a_clear_error():
    with pytest.raises(ValueError, match="X has 4 samples but y has 3"):
        fit(nn.Linear(2, 2), torch.zeros(4, 2), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="no training data"):
        fit(nn.Linear(2, 2), torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="unknown activation 'rleu'; did you mean 'relu'"):
        MLP(2, 2, activation="rleu")


def test_initialisations_have_their_statistics():
    torch.manual_seed(0)
    orthogonal = initialize(nn.Linear(256, 256), "orthogonal", "tanh")
    w = orthogonal.weight.detach()
    assert torch.allclose(w @ w.T, torch.eye(256), atol=1e-4)
    he = initialize(nn.Linear(1024, 512), "he")
    assert float(he.weight.detach().var()) == pytest.approx(2 / 1024, rel=0.05)
    xavier = initialize(nn.Linear(600, 400), "xavier", "tanh")
    limit = (5 / 3) * np.sqrt(6 / (600 + 400))
    assert float(xavier.weight.detach().abs().max()) <= limit + 1e-6
    assert float(he.bias.detach().abs().max()) == 0.0


@pytest.mark.parametrize(
    ("obs_type", "module"),
    [("index", "DiscreteEncoder"), ("coords", "VectorEncoder"), ("onehot", "VectorEncoder"),
     ("symbolic", "ImageEncoder"), ("pixels", "ImageEncoder")],
)  # fmt: skip
def test_encoder_for_the_lab_observation_spaces(obs_type, module):
    env = gym.make("lab/KeyDoor-v0", obs_type=obs_type)
    observations = [env.reset(seed=0)[0]] + [env.step(a)[0] for a in (2, 2, 1)]
    encoder = encoder_for_space(env.observation_space, features=32)
    assert type(encoder).__name__ == module
    out = encoder(torch.as_tensor(np.stack(observations)))
    assert out.shape == (4, 32) and torch.isfinite(out).all()


def test_pixel_encoders_pick_the_cnn_for_the_frame_size():
    small = gym.spaces.Box(0, 255, (56, 88, 3), np.uint8)
    assert isinstance(encoder_for_space(small).cnn, NatureCNN)
    tiny = gym.spaces.Box(0, 255, (21, 21, 3), np.uint8)
    assert isinstance(encoder_for_space(tiny).cnn, GridCNN)
    with pytest.raises(ValueError, match="no encoder for the observation space"):
        encoder_for_space(gym.spaces.MultiBinary(3))


def test_nature_cnn_on_84x84_frames():
    net = NatureCNN(4, 84, 84, out_features=512)
    assert net(torch.zeros(2, 4, 84, 84)).shape == (2, 512)
    with pytest.raises(ValueError, match="at least 36x36"):
        NatureCNN(3, 16, 16)


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_recurrent_nets_carry_their_state(kind):
    net = RecurrentNet(3, hidden_size=16, out_features=5, kind=kind)
    x = torch.randn(2, 6, 3)
    whole, _ = net(x)
    first, state = net(x[:, :4])
    rest, _ = net(x[:, 4:], state)
    assert whole.shape == (2, 6, 5)
    assert torch.allclose(torch.cat([first, rest], 1), whole, atol=1e-6)


def test_transformer_is_causal():
    torch.manual_seed(0)
    model = CausalTransformer(vocab_size=11, context=8, width=32, layers=2, heads=4).eval()
    tokens = torch.randint(0, 11, (1, 8))
    changed = tokens.clone()
    changed[0, 5:] = (changed[0, 5:] + 1) % 11
    a, b = model(tokens), model(changed)
    assert a.shape == (1, 8, 11)
    assert torch.allclose(a[:, :5], b[:, :5], atol=1e-6)  # positions before 5 never see tokens 5..7
    assert not torch.allclose(a[:, 5:], b[:, 5:])
    with pytest.raises(ValueError, match="longer than the context"):
        model(torch.zeros(1, 9, dtype=torch.long))
