"""Quality measures: the Frechet distance, discrete likelihoods and bits per dimension, the cached
evaluation classifier and the Frechet ratio."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from generative.data import load_dataset
from generative.likelihood import bits_per_dim, discretized_gaussian_log_likelihood, gaussian_kl
from generative.metrics import frechet_distance, load_classifier, measure
from lab.gen.models import build_model
from lab.gen.spec import gen_spec_from_dict

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def _features(seed: int = 0, n: int = 400, d: int = 6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) @ rng.normal(size=(d, d))


def test_frechet_distance_of_identical_sets_is_zero():
    a = _features()
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_of_shifted_sets_is_the_squared_shift():
    a = _features()
    shift = np.array([1.0, -2.0, 0.5, 0.0, 3.0, -1.0])
    assert frechet_distance(a, a + shift) == pytest.approx(float(shift @ shift), rel=1e-8)


def test_frechet_distance_of_scaled_sets():
    """Covariance c^2 S against S (same mean): tr(S) + c^2 tr(S) - 2 c tr(S) = (1 - c)^2 tr(S)."""
    a = _features(1)
    a = a - a.mean(0)
    trace = np.trace(np.cov(a, rowvar=False))
    assert frechet_distance(a, 3.0 * a) == pytest.approx(4.0 * trace, rel=1e-8)
    assert frechet_distance(3.0 * a, a) == pytest.approx(frechet_distance(a, 3.0 * a), rel=1e-10)


def test_frechet_distance_of_known_gaussians():
    """Two sets whose sample moments are exactly N(m1, diag(v1)) and N(m2, diag(v2))."""
    basis = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], dtype=np.float64)  # mean 0, sample cov 4/3 I
    v1, v2 = np.array([1.0, 4.0]), np.array([9.0, 1.0])
    a = basis * np.sqrt(v1 * 0.75) + np.array([0.0, 1.0])
    b = basis * np.sqrt(v2 * 0.75) + np.array([2.0, 1.0])
    expected = 4.0 + np.sum(v1 + v2 - 2 * np.sqrt(v1 * v2))  # 4 + (1 - 3)^2 + (2 - 1)^2
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-10) and expected == 9.0


def test_discretized_gaussian_is_a_distribution_over_the_levels():
    levels = 17
    x = torch.linspace(-1, 1, levels)
    for mean, log_scale in ((0.0, 0.0), (0.93, -3.0), (-2.5, 1.0), (0.2, -6.0)):
        logp = discretized_gaussian_log_likelihood(x, torch.tensor(mean), torch.tensor(log_scale), levels)
        assert torch.isfinite(logp).all()
        assert float(logp.double().exp().sum()) == pytest.approx(1.0, abs=1e-5)


def test_discretized_gaussian_and_bits_per_dim_by_hand():
    levels, half = 17, 1 / 16
    x = torch.tensor([-1.0, 0.0, 0.25, 1.0])
    mean, sigma = torch.tensor([-0.9, 0.1, 0.25, 0.5]), 0.2
    got = discretized_gaussian_log_likelihood(x, mean, torch.full((4,), math.log(sigma)), levels)
    by_hand = [
        math.log(_phi((-1 + half + 0.9) / sigma)),
        math.log(_phi((half - 0.1) / sigma) - _phi((-half - 0.1) / sigma)),
        math.log(_phi(half / sigma) - _phi(-half / sigma)),
        math.log(1 - _phi((1 - half - 0.5) / sigma)),
    ]
    assert got.tolist() == pytest.approx(by_hand, rel=1e-5)
    kl = gaussian_kl(torch.tensor([0.5]), torch.tensor([math.log(2.0)]))
    assert float(kl) == pytest.approx(0.5 * (0.25 + 2.0 - 1.0 - math.log(2.0)))
    nll = -(sum(by_hand) - float(kl))
    assert bits_per_dim(nll, 4) == pytest.approx(nll / (4 * math.log(2)))


def test_vae_elbo_and_bits_per_dim_match_a_hand_calculation():
    """A VAE whose encoder says mu = 0, log var = 0 (KL 0) and whose decoder says N(0, 1) for every
    pixel: its ELBO is the discretised standard normal's log-probability of the image."""
    data = load_dataset("digits", seed=0)
    spec = gen_spec_from_dict({"model": "vae", "hyperparameters": {"channels": 4, "latent": 2}})
    model = build_model(spec, data)
    with torch.no_grad():
        for p in (model.encoder.head[-1].weight, model.encoder.head[-1].bias):
            p.zero_()
        for p in (model.decoder.convs[-1].weight, model.decoder.convs[-1].bias, model.decoder.log_scale):
            p.zero_()
    x = torch.from_numpy(data.test_x[:3])
    result = model.evaluate(x, torch.from_numpy(data.test_y[:3]), torch.Generator().manual_seed(0))
    half = 1 / 16

    def logp(v: float) -> float:
        if v < -1 + half:
            return math.log(_phi(-1 + half))
        if v > 1 - half:
            return math.log(1 - _phi(1 - half))
        return math.log(_phi(v + half) - _phi(v - half))

    elbo = np.mean([sum(logp(float(v)) for v in image.ravel()) for image in data.test_x[:3]])
    assert result["elbo"] == pytest.approx(elbo, rel=1e-5)
    assert result["bits_per_dim"] == pytest.approx(-elbo / (64 * math.log(2)), rel=1e-5)
    assert 0 < result["bits_per_dim"] < math.log2(17)


def test_classifier_is_cached_and_the_frechet_ratio_is_measured(tmp_path):
    data = load_dataset("digits", seed=0)
    first = load_classifier(data, tmp_path, seed=0, epochs=3)
    assert first.trained and first.path is not None and first.path.is_file()
    assert first.accuracy > 0.8  # three epochs already separate the digits
    again = load_classifier(data, tmp_path, seed=0, epochs=3)
    assert not again.trained and again.accuracy == first.accuracy
    assert np.array_equal(again.features(data.test_x[:5]), first.features(data.test_x[:5]))

    spec = gen_spec_from_dict(
        {"model": "gan", "hyperparameters": {"conditional": True, "channels": 4, "z_dim": 8}}
    )
    untrained = build_model(spec, data)
    quality = measure(untrained, data, again, seed=0, per_class=3)
    assert quality.floor > 0 and quality.frechet_ratio > 3  # noise is far from digits
    assert len(quality.per_class_accuracy) == 10 and 0 <= quality.conditional_accuracy <= 1
    assert quality.samples == len(data.test_x)


class _NumberedModel:
    """A "generative model" whose every image is new: pixel 0 numbers it, pixel 1 holds its label."""

    conditional = True

    def __init__(self) -> None:
        self.made = 0

    def sample(self, n, labels, generator):
        images = torch.zeros(n, 1, 2, 2)
        images[:, 0, 0, 0] = torch.arange(self.made, self.made + n, dtype=torch.float32)
        images[:, 0, 0, 1] = torch.as_tensor(labels, dtype=torch.float32)
        self.made += n
        return images


class _ReadingClassifier:
    """Features: the pixels; predictions: the label pixel, except that class 0 is always taken for 1."""

    accuracy = 0.9

    def features(self, images):
        return np.asarray(images, dtype=np.float64).reshape(len(images), -1)

    def predict(self, images):
        labels = np.asarray(images)[:, 0, 0, 1].astype(int)
        return np.where(labels == 0, 1, labels)


def test_measure_compares_fresh_sets_of_samples_and_counts_each_label(monkeypatch):
    import types

    import generative.metrics as metrics

    calls: list[tuple[np.ndarray, np.ndarray]] = []
    monkeypatch.setattr(metrics, "frechet_distance", lambda a, b: calls.append((a, b)) or 1.0)
    n_train, n_test = 30, 6
    train_x = np.zeros((n_train, 1, 2, 2), dtype=np.float32)
    train_x[:, 0, 0, 0] = -1 - np.arange(n_train)  # numbered apart from the samples
    data = types.SimpleNamespace(
        train_x=train_x,
        train_y=np.arange(n_train) % 3,
        test_x=np.ones((n_test, 1, 2, 2), np.float32),
        n_classes=3,
    )
    quality = measure(_NumberedModel(), data, _ReadingClassifier(), seed=0, per_class=4, draws=5)
    generated, floor = calls[:5], calls[5:]
    assert len(floor) == 5
    numbers = [set(a[:, 0].tolist()) for a, _ in generated]
    assert all(len(s) == n_test for s in numbers)  # each set as large as the test split...
    assert set().union(*numbers) == set(range(5 * n_test))  # ...and each a fresh one
    for a, _ in floor:  # real training images, drawn without replacement: the split is larger than n
        assert len(a) == n_test and len(set(a[:, 0].tolist())) == n_test and (a[:, 0] < 0).all()
    assert quality.per_class_accuracy == [0.0, 1.0, 1.0]
    assert quality.conditional_accuracy == pytest.approx(2 / 3)
