"""The supervised loop, fit(): learning on real data shipped with scikit-learn, and each of its promises
(early stopping, clipping, schedules, determinism, clear errors, a stop on divergence)."""

from __future__ import annotations

import importlib
import itertools
import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.nn import functional as F

from lab.nets import MLP, CausalTransformer, GridCNN, accuracy, fit, lr_factor, predict
from lab.nets.inference import IGNORE
from lab.nets.training_choices import OPTIMIZERS, SCHEDULES, loss_function

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's 8x8 digits as (N, 1, 8, 8) floats in [0, 1]; a fixed, stratified 75/25 split."""
    data = load_digits()
    X = (data.images / 16.0).astype(np.float32)[:, None]
    return train_test_split(X, data.target, test_size=0.25, random_state=0, stratify=data.target)


def digits_cnn() -> nn.Module:
    """The digits CNN (also measured by benchmarks/bench_supervised.py)."""
    features = GridCNN(1, 8, 8, out_features=64, channels=(16, 32), norm="batch")
    return nn.Sequential(features, nn.Linear(64, 10))


def small_mlp(hidden=(32,), dropout=0.0) -> nn.Module:
    return nn.Sequential(nn.Flatten(), MLP(64, 10, hidden=hidden, dropout=dropout))


# ----- learning on real data -----


def test_cnn_classifies_held_out_digits_above_97_percent(digits):
    X_train, X_test, y_train, y_test = digits
    torch.manual_seed(0)
    model = digits_cnn()
    history = fit(model, X_train, y_train, epochs=10, lr=2e-3, schedule="cosine", seed=0, progress=False)
    test_accuracy = accuracy(model, X_test, y_test)
    assert test_accuracy >= 0.97, test_accuracy
    assert history.epochs == 10 and history.metric_name == "accuracy"
    assert history.val_metric[-1] >= 0.95 and history.train_loss[-1] < 0.1 * history.train_loss[0]
    assert history.lr[0] > history.lr[-1] > 0 and history.samples_per_second > 0


def test_mlp_fits_a_noisy_regression_to_the_noise_floor():
    sigma = 0.1
    rng = np.random.default_rng(0)

    def truth(x):
        return np.sin(3 * x) + 0.5 * x**2

    def sample(n):
        x = rng.uniform(-1.5, 1.5, size=(n, 1)).astype(np.float32)
        return x, (truth(x) + rng.normal(0, sigma, size=x.shape)).astype(np.float32)

    X, y = sample(4000)
    X_test, y_test = sample(10000)
    torch.manual_seed(0)
    model = MLP(1, 1, hidden=(64, 64), activation="silu", init="he")
    # 1-D targets against (N, 1) outputs: fit matches the shapes, where PyTorch would broadcast.
    options = {"epochs": 50, "batch_size": 128, "lr": 1e-2, "weight_decay": 0.0, "schedule": "cosine"}
    history = fit(model, X, y[:, 0], loss="mse", seed=0, progress=False, **options)
    mse = float(((predict(model, X_test).numpy() - y_test) ** 2).mean())
    floor = float(((truth(X_test) - y_test) ** 2).mean())  # the best any model can do on this test set
    assert mse <= 1.05 * floor and mse <= 1.15 * sigma**2, (mse, floor)
    assert math.isnan(history.val_metric[-1]) and history.metric_name is None


def test_transformer_learns_next_tokens_through_sequence_cross_entropy():
    starts = torch.randint(0, 8, (256, 1), generator=torch.Generator().manual_seed(0))
    sequences = (starts + torch.arange(13)) % 8  # counting mod 8 from a random start
    torch.manual_seed(0)
    model = CausalTransformer(vocab_size=8, context=12, width=32, layers=1, heads=2)
    history = fit(model, sequences[:, :-1], sequences[:, 1:], epochs=6, lr=1e-2, seed=0, progress=False)
    assert history.val_metric[-1] == 1.0
    assert accuracy(model, sequences[:8, :-1], sequences[:8, 1:]) == 1.0


def test_binary_cross_entropy_reports_accuracy_from_logits():
    X = torch.randn(400, 2, generator=torch.Generator().manual_seed(0))
    y = (X[:, 0] + X[:, 1] > 0).float()
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    history = fit(model, X, y, loss="binary_cross_entropy", epochs=20, lr=0.05, seed=0, progress=False)
    assert history.val_metric[-1] >= 0.95 and accuracy(model, X, y) >= 0.95


# ----- early stopping, clipping, schedules, optimisers -----


def test_early_stopping_triggers_and_restores_the_best_weights(digits):
    X_train, _, y_train, _ = digits
    X_val, y_val = X_train[:100], y_train[:100]
    torch.manual_seed(0)
    model = small_mlp(hidden=(256,))
    patience = 3
    history = fit(
        model, X_train[100:300], y_train[100:300], validation=(X_val, y_val), epochs=200, lr=1e-2,
        weight_decay=0.0, early_stopping_patience=patience, seed=0, progress=False,
    )  # fmt: skip
    assert history.stopped_early and history.epochs < 200
    assert history.best_epoch == int(np.argmin(history.val_loss))
    assert history.epochs == history.best_epoch + 1 + patience  # stopped `patience` epochs after the best
    assert history.val_loss[-1] > history.best_val_loss  # the last epoch was worse, yet...
    restored = float(F.cross_entropy(predict(model, X_val), torch.as_tensor(y_val)))
    assert restored == pytest.approx(history.best_val_loss, rel=1e-6)  # ...the best weights came back


def test_gradient_clipping_bounds_the_update_norm():
    X = torch.full((8, 4), 100.0)
    y = torch.full((8, 1), -100.0)

    def one_step(grad_clip):
        model = nn.Linear(4, 1)
        nn.init.zeros_(model.weight)
        nn.init.zeros_(model.bias)
        fit(model, X, y, loss="mse", epochs=1, batch_size=8, optimizer="sgd", lr=1.0, momentum=0.0,
            weight_decay=0.0, grad_clip=grad_clip, val_fraction=0.0, progress=False)  # fmt: skip
        return math.sqrt(sum(float(p.detach().pow(2).sum()) for p in model.parameters()))

    assert one_step(None) > 1000  # the raw gradient is huge...
    assert one_step(0.5) == pytest.approx(0.5, rel=1e-5)  # ...and one SGD step moves exactly the clip
    assert one_step(1e9) == pytest.approx(one_step(None), rel=1e-6)  # a loose clip changes nothing


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_every_optimizer_and_schedule_learns(digits, optimizer, schedule):
    X_train, _, y_train, _ = digits
    torch.manual_seed(0)
    model = small_mlp()
    lr = {"sgd": 0.1, "rmsprop": 3e-3}.get(optimizer, 1e-2)
    history = fit(
        model, X_train[:500], y_train[:500], epochs=4, batch_size=32, lr=lr, optimizer=optimizer,
        schedule=schedule, nesterov=optimizer == "sgd", warmup_steps=4, seed=0, progress=False,
    )  # fmt: skip
    assert history.train_loss[-1] < 0.7 * history.train_loss[0], history.train_loss
    assert len(history.lr) == 4 and all(0 < lr_ <= lr for lr_ in history.lr)


def test_learning_rate_schedules_have_their_shapes():
    total = 100
    factors = {s: [lr_factor(s, i, total, warmup=10) for i in range(total)] for s in SCHEDULES}
    assert factors[None] == factors["constant"] == [1.0] * total
    cosine = factors["cosine"]
    assert cosine[0] == 1.0 and cosine[50] == pytest.approx(0.5) and 0 < cosine[-1] < 0.01
    assert all(a >= b for a, b in itertools.pairwise(cosine))
    assert factors["linear"][0] == 1.0 and factors["linear"][75] == pytest.approx(0.25)
    assert {round(f, 6) for f in factors["step"]} == {1.0, 0.1, 0.01}
    assert factors["step"][33] == 1.0 and factors["step"][34] == pytest.approx(0.1)
    warm = factors["linear_warmup_cosine"]
    assert warm[:10] == pytest.approx([(i + 1) / 10 for i in range(10)])
    assert warm[10] == 1.0 and warm[55] == pytest.approx(0.5) and warm[-1] < 0.01


# ----- reproducibility -----


def test_same_seed_same_weights_and_another_seed_other_weights(digits):
    X_train, _, y_train, _ = digits

    def trained(seed):
        torch.manual_seed(123)
        model = small_mlp(dropout=0.2)
        fit(model, X_train[:300], y_train[:300], epochs=2, seed=seed, progress=False)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    first = trained(7)
    assert torch.equal(first, trained(7))
    assert not torch.equal(first, trained(8))


# ----- errors -----


def test_a_diverging_loss_stops_with_a_clear_error_and_keeps_the_last_good_weights():
    X = torch.full((16, 1), 1e3)
    y = torch.full((16, 1), -1e3)
    model = nn.Linear(1, 1)
    initial = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(
        FloatingPointError, match=r"the training loss became (inf|nan) at epoch 1/5, batch 2/4 \(step 1\)"
    ):
        fit(model, X, y, loss="mse", epochs=5, batch_size=4, optimizer="sgd", lr=1e30, momentum=0.0,
            val_fraction=0.0, progress=False)  # fmt: skip
    # The first step made the weights infinite; the weights that gave a finite loss came back.
    assert all(torch.equal(a, b) for a, b in zip(initial, model.parameters(), strict=True))


def test_a_nan_from_a_custom_loss_stops_at_its_batch_and_keeps_the_finite_weights():
    calls = []

    def flaky_mse(outputs, targets):
        calls.append(1)
        return F.mse_loss(outputs, targets) * (float("nan") if len(calls) == 5 else 1.0)

    model = nn.Linear(2, 1)
    initial = model.weight.detach().clone()
    X, y = torch.randn(32, 2), torch.randn(32, 1)
    with pytest.raises(FloatingPointError, match=r"became nan at epoch 2/3, batch 1/4 \(step 4\)"):
        fit(model, X, y, loss=flaky_mse, epochs=3, batch_size=8, val_fraction=0.0, progress=False)
    assert bool(torch.isfinite(model.weight).all()) and not torch.equal(model.weight, initial)


@pytest.mark.parametrize("grad_clip", [None, 1.0])
def test_an_infinite_gradient_with_a_finite_loss_stops_and_keeps_the_weights(grad_clip):
    def sqrt_loss(outputs, targets):  # 0 at every step, but d sqrt(u)/du is infinite at u = 0
        return torch.sqrt(outputs - outputs.detach()).sum()

    model = nn.Linear(2, 1)
    initial = [p.detach().clone() for p in model.parameters()]
    # Clipping measures the gradient first and stops before the step; without it the step makes the
    # weights NaN, the next loss says so and the weights before that step come back.
    what = "gradient norm became (inf|nan)" if grad_clip else "training loss became nan"
    with pytest.raises(FloatingPointError, match=f"the {what} at epoch 1/2, batch {1 if grad_clip else 2}/2"):
        fit(model, torch.randn(8, 2), torch.zeros(8, 1), loss=sqrt_loss, epochs=2, batch_size=4,
            val_fraction=0.0, grad_clip=grad_clip, device=torch.device("cpu"), progress=False)  # fmt: skip
    assert all(torch.equal(a, b) for a, b in zip(initial, model.parameters(), strict=True))


def test_non_finite_data_is_a_clear_error():
    X = torch.zeros(6, 2)
    X[3, 1] = float("nan")
    with pytest.raises(ValueError, match=r"X holds NaN or infinite values \(the first at sample 3\)"):
        fit(nn.Linear(2, 1), X, torch.zeros(6, 1), loss="mse", progress=False)
    with pytest.raises(ValueError, match="y holds NaN"):
        fit(nn.Linear(2, 1), torch.zeros(6, 2), torch.full((6, 1), math.inf), loss="mse", progress=False)
    for validation, message in [
        ((X, torch.zeros(6, 1)), r"X_val holds NaN or infinite values \(the first at sample 3\)"),
        ((torch.zeros(6, 2), torch.full((6, 1), -math.inf)), "y_val holds NaN or infinite values"),
    ]:
        with pytest.raises(ValueError, match=message):
            fit(
                nn.Linear(2, 1),
                torch.zeros(6, 2),
                torch.zeros(6, 1),
                validation=validation,
                loss="mse",
                progress=False,
            )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"optimizer": "adamm"}, r"unknown optimizer 'adamm'; did you mean 'adam'\?"),
        ({"optimizer": "SGD"}, r"unknown optimizer 'SGD'; did you mean 'sgd'\?"),
        ({"schedule": "cosin"}, r"unknown schedule 'cosin'; did you mean 'cosine'\?"),
        ({"schedule": "warmup_cosine"}, r"did you mean 'linear_warmup_cosine'\?"),
        ({"loss": "crossentropy"}, r"unknown loss 'crossentropy'; did you mean 'cross_entropy'\?"),
        ({"loss": "hinge"}, r"unknown loss 'hinge' \(choose from cross_entropy, binary_cross_entropy, mse"),
        ({"epochs": 0}, "epochs must be a whole number >= 1; got 0"),
        ({"batch_size": 2.5}, "batch_size must be a whole number >= 1"),
        ({"val_fraction": 1.0}, r"val_fraction must lie in \[0, 1\)"),
        ({"lr": -1.0}, "lr must be a positive number"),
        ({"grad_clip": 0.0}, "grad_clip must be a positive number"),
        ({"early_stopping_patience": 0}, "early_stopping_patience must be a whole number >= 1"),
        ({"early_stopping_patience": 2, "val_fraction": 0.0}, "early stopping needs validation data"),
        ({"warmup_steps": -3}, "warmup_steps must be a whole number >= 0"),
        ({"seed": None}, "seed must be a whole number; got None"),
        ({"validation": (torch.zeros(2, 2),)}, r"validation must be a pair \(X_val, y_val\)"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit(nn.Linear(2, 2), torch.zeros(20, 2), torch.zeros(20, dtype=torch.long), progress=False, **kwargs)


def test_bad_data_is_a_clear_error():
    with pytest.raises(ValueError, match="X has 4 samples but y has 3"):
        fit(nn.Linear(2, 2), torch.zeros(4, 2), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="no training data"):
        fit(nn.Linear(2, 2), np.zeros((0, 2)), np.zeros(0, dtype=int))
    with pytest.raises(ValueError, match="X_val has 2 samples but y_val has 1"):
        fit(nn.Linear(2, 2), torch.zeros(4, 2), torch.zeros(4, dtype=torch.long),
            validation=(torch.zeros(2, 2), torch.zeros(1, dtype=torch.long)))  # fmt: skip
    with pytest.raises(ValueError, match=r"outputs have shape \(4, 3\) but the targets have shape \(4, 2\)"):
        fit(nn.Linear(2, 3), torch.zeros(4, 2), torch.zeros(4, 2), loss="mse", val_fraction=0.0)
    with pytest.raises(TypeError, match=r"fit trains a torch\.nn\.Module"):
        fit(lambda x: x, torch.zeros(4, 2), torch.zeros(4))
    with pytest.raises(
        ValueError, match=r"class indices of an integer type .* got float targets of shape \(4,\)"
    ):
        fit(nn.Linear(2, 3), torch.zeros(4, 2), torch.tensor([0.0, 0.5, 1.0, 2.0]), val_fraction=0.0)
    with pytest.raises(ValueError, match=r"val_fraction=0.5 leaves no training data out of 1 samples"):
        fit(nn.Linear(2, 3), torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), val_fraction=0.5)


def test_whole_number_float_labels_are_class_indices():
    X, labels = torch.randn(40, 3), torch.arange(40) % 3
    as_ints, as_floats = nn.Linear(3, 3), nn.Linear(3, 3)
    as_floats.load_state_dict(as_ints.state_dict())
    a = fit(as_ints, X, labels, epochs=2, progress=False, validation=(X, labels))
    b = fit(as_floats, X.numpy(), labels.numpy().astype(np.float64), epochs=2, progress=False,
            validation=(X.numpy(), labels.numpy().astype(np.float32)))  # fmt: skip
    assert torch.equal(as_ints.weight, as_floats.weight) and a.train_loss == b.train_loss
    assert a.val_metric == b.val_metric


def test_a_small_data_set_still_holds_out_the_fraction_asked_for():
    history = fit(nn.Linear(3, 3), torch.randn(4, 3), torch.arange(4) % 3, epochs=2, progress=False)
    assert len(history.val_loss) == 2  # round(0.1 * 4) is 0; at least one sample is held out


def test_divergence_puts_back_batchnorm_statistics_with_the_weights():
    X = torch.randn(256, 4)
    y = X.sum(1, keepdim=True) * 1e3
    model = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 1))
    with pytest.raises(FloatingPointError):
        fit(model, X, y, loss="mse", lr=1e6, optimizer="sgd", momentum=0.0, epochs=50, batch_size=32,
            val_fraction=0.0, progress=False)  # fmt: skip
    assert all(bool(torch.isfinite(b).all()) for b in model.buffers())
    assert predict(model, X).unique().numel() > 1  # not one constant from infinite running statistics


def test_cross_entropy_on_sequences_takes_indices_or_probabilities_alike():
    ce = loss_function("cross_entropy")
    logits, index = torch.randn(4, 6, 5), torch.randint(0, 5, (4, 6))
    expected = F.cross_entropy(logits.reshape(-1, 5), index.reshape(-1))
    torch.testing.assert_close(ce(logits, index), expected)
    torch.testing.assert_close(ce(logits, F.one_hot(index, 5).float()), expected)


def test_a_language_model_s_losses_and_accuracy_count_tokens_not_padding():
    class Fixed(nn.Module):  # sentence i's logits whatever else: a known answer
        def __init__(self, logits):
            super().__init__()
            self.logits = nn.Parameter(logits)

        def forward(self, x):
            return self.logits[x[:, 0]]

    # sentences of 1, 2, 3 and 5 tokens: however they pair up in batches, the pairs hold unequal numbers
    sentences = [[4], [1, 2], [3, 3, 0], [0, 1, 2, 3, 4]]
    targets, logits = torch.full((4, 5), IGNORE), torch.full((4, 5, 5), -10.0)
    right = 0
    for i, sentence in enumerate(sentences):
        targets[i, : len(sentence)] = torch.tensor(sentence)
        for t, token in enumerate(sentence):  # the argmax is the target at every other token
            logits[i, t, (token + (i + t) % 2) % 5] = 10.0
            right += (i + t) % 2 == 0
    model, X = Fixed(logits), torch.arange(4)[:, None].expand(4, 5)
    assert right == 6 and accuracy(model, X, targets) == pytest.approx(6 / 11)
    # batches of two sentences of unequal lengths, a learning rate too small to move: the epoch's
    # loss is the mean over tokens
    history = fit(model, X, targets, epochs=1, batch_size=2, lr=1e-12, optimizer="sgd", momentum=0.0,
                  val_fraction=0.0, progress=False)  # fmt: skip
    per_token = F.cross_entropy(logits.reshape(-1, 5), targets.reshape(-1))
    assert history.train_loss[0] == pytest.approx(float(per_token), rel=1e-6)


def test_validation_is_taken_in_bounded_batches_weighted_by_the_tokens_that_count(monkeypatch):
    """A language model's outputs over a whole validation set (sentences x steps x vocabulary) took
    gigabytes at a large vocabulary: validation runs in batches of a bounded number of outputs, and
    the loss is still the mean over every counted token of the set, padding and all-padding batches
    left out."""
    fit_module = importlib.import_module("lab.nets.fit")  # lab.nets.fit is also the function's name
    torch.manual_seed(0)
    lengths = [1, 6, 0, 3, 6, 2, 5]  # sentences' counted tokens, a padding-only one among them
    n, steps, vocab = len(lengths), 6, 7
    logits = torch.randn(n, steps, vocab)
    targets = torch.full((n, steps), IGNORE)
    for i, k in enumerate(lengths):
        targets[i, :k] = torch.randint(vocab, (k,))
    seen = []

    class Fixed(nn.Module):  # sentence i's logits: a known answer
        def __init__(self):
            super().__init__()
            self.logits = nn.Parameter(logits.clone())

        def forward(self, x):
            if not self.training:
                seen.append(len(x))
            return self.logits[x[:, 0]]

    X = torch.arange(n)[:, None].expand(n, steps)
    monkeypatch.setattr(fit_module, "EVAL_OUTPUTS", 2 * steps * vocab)  # two sentences' outputs at once
    history = fit(Fixed(), X[:1], targets[:1], validation=(X, targets), epochs=1, lr=1e-12,
                  optimizer="sgd", momentum=0.0, progress=False)  # fmt: skip
    whole = F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1))
    assert history.val_loss[0] == pytest.approx(float(whole), rel=1e-6)
    counted = targets != IGNORE
    right = (logits.argmax(-1) == targets)[counted].float().mean()
    assert history.val_metric[0] == pytest.approx(float(right), rel=1e-6)
    assert max(seen) == 2 and sum(seen) == 1 + n  # the first sentence alone sizes the batches


def test_a_batch_of_padding_alone_is_passed_over_and_all_padding_is_a_clear_error():
    torch.manual_seed(0)
    X = torch.randn(8, 3)
    y = torch.tensor([0, 1, 2, 1, IGNORE, IGNORE, IGNORE, IGNORE])  # half the batches of 2 hold no target
    model = nn.Linear(3, 3)
    with torch.no_grad():
        expected = float(F.cross_entropy(model(X[:4]), y[:4]))
    history = fit(model, X, y, batch_size=2, epochs=2, lr=1e-12, optimizer="sgd", momentum=0.0,
                  val_fraction=0.0, progress=False)  # fmt: skip
    assert history.train_loss[0] == pytest.approx(expected, rel=1e-6)  # per target that counts
    padding = torch.full((8,), IGNORE)
    with pytest.raises(ValueError, match="no target of y counts: every one is the ignored index -100"):
        fit(nn.Linear(3, 3), X, padding, progress=False)
    with pytest.raises(ValueError, match="no target of y_val counts"):
        fit(nn.Linear(3, 3), X, y, validation=(X[:2], padding[:2]), progress=False)


def test_accuracy_pairs_each_prediction_with_one_target():
    model = MLP(3, 3)
    X, y = torch.randn(40, 3), torch.randint(0, 3, (40,))
    assert accuracy(model, X, y.reshape(-1, 1)) == accuracy(model, X, y)  # a column of labels
    binary = nn.Linear(3, 1)
    labels = (predict(binary, X) > 0).float()
    assert accuracy(binary, X, labels) == 1.0 and accuracy(binary, X, 1 - labels) == 0.0
    with pytest.raises(ValueError, match="1 predictions but 40 targets"):
        accuracy(model, X[:1], y)
    with pytest.raises(ValueError, match=r"class indices of shape \(40, 2\) do not match outputs"):
        accuracy(model, X, torch.zeros(40, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="batch_size must be a whole number >= 1; got 0"):
        predict(model, X, batch_size=0)


def test_accuracy_on_class_probabilities_compares_argmaxes_per_sample_and_step():
    from lab.nets.inference import correct

    outputs = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 0.0, 1.0]], [[0.0, 3.0, 0.0], [1.0, 0.0, 0.0]]])
    targets = torch.tensor([[[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]], [[0.0, 1.0, 0.0], [0.6, 0.4, 0.0]]])
    assert correct(outputs, targets).tolist() == [True, False, True, True]
    assert correct(outputs[:, 0], targets[:, 0]).tolist() == [True, True]
    assert correct(outputs[:, 1], targets[:, 1]).tolist() == [False, True]


# ----- the rest of the contract -----


def test_numpy_float64_and_int32_data_just_work_and_a_lone_last_sample_joins_a_batch():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(65, 3))  # float64; 65 = 64 + 1 with batch_size 64 and no validation
    y = (X[:, 0] > 0).astype(np.int32)
    model = nn.Sequential(MLP(3, 2, hidden=(8,), norm="batch"))  # BatchNorm fails on a batch of one
    history = fit(model, X, y, epochs=2, val_fraction=0.0, progress=False)
    assert history.epochs == 2 and history.val_loss == [] and history.best_epoch is None
    assert predict(model, X).dtype == torch.float32


def test_predict_leaves_the_mode_alone_and_works_in_batches():
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))
    X = torch.randn(10, 3)
    assert model.training
    first = predict(model, X, batch_size=3)
    assert model.training and torch.equal(first, predict(model, X, batch_size=100))  # dropout off
    model.eval()
    predict(model, X)
    assert not model.training


def test_progress_bar_shows_the_live_losses(capsys):
    X, y = torch.randn(40, 2), torch.randint(0, 2, (40,))
    fit(nn.Linear(2, 2), X, y, epochs=2, batch_size=8, progress=True)
    out = capsys.readouterr().out
    assert "epoch 2/2" in out and "train" in out and "val" in out and "acc" in out
    fit(nn.Linear(2, 2), X, y, epochs=2, progress=False)
    assert capsys.readouterr().out == ""


# ----- exact checks of fit's plumbing (each a model whose behaviour is known in closed form) -----


class _Recorder(nn.Module):
    """A linear model that notes the inputs it sees, in training mode and in evaluation mode."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(1, 1)
        self.train_batches: list[list[float]] = []
        self.eval_inputs: list[float] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.train_batches.append(x[:, 0].tolist())
        else:
            self.eval_inputs.extend(x[:, 0].tolist())
        return self.linear(x)


def test_the_held_out_fraction_is_never_trained_on_and_every_epoch_reshuffles_the_rest():
    X, y = torch.arange(20, dtype=torch.float32)[:, None], torch.zeros(20, 1)
    model = _Recorder()
    fit(model, X, y, loss="mse", val_fraction=0.25, batch_size=20, epochs=3, progress=False)
    assert len(model.train_batches) == 3  # one batch per epoch
    held_out = set(model.eval_inputs)
    assert len(held_out) == 5  # a quarter of the 20 samples
    for batch in model.train_batches:
        assert len(batch) == 15 and set(batch).isdisjoint(held_out)  # no validation sample trains
        assert set(batch) | held_out == set(range(20))  # and every other one does, once an epoch
    orders = {tuple(batch) for batch in model.train_batches}
    assert len(orders) == 3  # a fresh shuffle each epoch


class _Constant(nn.Module):
    """A model whose outputs, and so its loss, no weight changes (its gradient is exactly 0)."""

    def __init__(self, value: float = 2.0) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([value]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1] * 0.0 + self.w * 0.0


def test_a_validation_loss_that_only_ties_is_no_improvement():
    X, y = torch.ones(8, 1), torch.zeros(8, 1)
    options = dict(loss="mse", val_fraction=0.5, early_stopping_patience=2, progress=False)
    history = fit(_Constant(), X, y, epochs=10, **options)
    assert history.val_loss == [0.0, 0.0, 0.0]  # the same loss every epoch: the first is the best
    assert history.best_epoch == 0 and history.epochs == 3 and history.stopped_early
    last = fit(_Constant(), X, y, epochs=3, **options)  # patience runs out on the last epoch
    assert last.epochs == 3 and last.best_epoch == 0 and not last.stopped_early


@pytest.mark.parametrize(
    ("optimizer", "weight_decay", "expected"),
    [
        ("adamw", None, 2.0 * (1 - 0.1 * 0.01)),  # AdamW decays by lr * 0.01 by default, decoupled
        ("adam", None, 2.0),  # the others default to no decay
        ("sgd", None, 2.0),
        ("rmsprop", None, 2.0),
        ("adamw", 0.1, 2.0 * (1 - 0.1 * 0.1)),
        ("adam", 0.1, 2.0 - 0.1),  # an L2 gradient 0.1 * w that Adam's first step normalises to lr
        ("sgd", 0.1, 2.0 - 0.1 * 0.1 * 2.0),  # the L2 gradient 0.1 * w times lr
    ],
)
def test_weight_decay_defaults_and_kinds_in_one_step(optimizer, weight_decay, expected):
    model = _Constant(2.0)
    fit(model, torch.ones(4, 1), torch.zeros(4, 1), loss="mse", optimizer=optimizer, lr=0.1,
        weight_decay=weight_decay, momentum=0.0, batch_size=4, epochs=1, val_fraction=0.0,
        progress=False)  # fmt: skip
    assert float(model.w.detach()) == pytest.approx(expected, rel=1e-6)


def _linear_steps(steps: int, **options) -> float:
    """The weight of ``w * x`` (from 0) after ``steps`` full-batch steps on the loss ``mean(w * x)``,
    whose gradient is always 1."""
    model = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(model.weight)
    fit(model, torch.ones(4, 1), torch.zeros(4, 1), loss=lambda out, _: out.mean(), lr=0.1,
        weight_decay=0.0, batch_size=4, epochs=steps, val_fraction=0.0, progress=False,
        **options)  # fmt: skip
    return float(model.weight.detach())


def test_momentum_and_nesterov_reach_the_optimizers():
    assert _linear_steps(1, optimizer="sgd", momentum=0.9) == pytest.approx(-0.1)
    assert _linear_steps(1, optimizer="sgd", momentum=0.9, nesterov=True) == pytest.approx(-0.1 * 1.9)
    assert _linear_steps(2, optimizer="sgd", momentum=0.9) == pytest.approx(-0.1 - 0.1 * 1.9)
    # RMSprop (alpha 0.99): v = 0.01, then 0.0199; each step's g / sqrt(v) goes through the momentum
    first, second = 1 / math.sqrt(0.01), 1 / math.sqrt(0.99 * 0.01 + 0.01)
    assert _linear_steps(2, optimizer="rmsprop", momentum=0.0) == pytest.approx(
        -0.1 * (first + second), rel=1e-5
    )
    assert _linear_steps(2, optimizer="rmsprop", momentum=0.9) == pytest.approx(
        -0.1 * (first + 0.9 * first + second), rel=1e-5
    )


def test_the_default_warmup_is_five_percent_of_all_steps():
    history = fit(_Constant(), torch.ones(2, 1), torch.zeros(2, 1), loss="mse", lr=0.1, batch_size=2,
                  epochs=40, schedule="linear_warmup_cosine", val_fraction=0.0, progress=False)  # fmt: skip
    # 40 steps, one an epoch: a warm-up of 2 steps, then a cosine over the 38 others
    assert history.lr[:4] == pytest.approx([0.05, 0.1, 0.1, 0.05 * (1 + math.cos(math.pi / 38))])


def test_the_regression_losses_by_hand():
    outputs, targets = torch.tensor([0.0, 3.0]), torch.tensor([0.5, 0.0])
    assert float(loss_function("mse")(outputs, targets)) == pytest.approx((0.25 + 9.0) / 2)
    assert float(loss_function("l1")(outputs, targets)) == pytest.approx((0.5 + 3.0) / 2)
    # Huber with delta 1: quadratic (x^2 / 2) inside, linear (|x| - 1/2) outside
    assert float(loss_function("huber")(outputs, targets)) == pytest.approx((0.125 + 2.5) / 2)
