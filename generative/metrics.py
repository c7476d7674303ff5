"""How good generated images are, measured with a classifier trained on the real data.

- The evaluation classifier is a :class:`lab.nets.GridCNN` plus a linear head, trained with
  :func:`lab.nets.fit` on the training split; its held-out accuracy says how much its features can
  be trusted. It is cached as a file per data set and seed, so it is trained once.
- The Frechet distance between two image sets is that between Gaussians fitted to their features
  (the classifier's penultimate layer): ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))``. With a few
  hundred images it is biased upwards, so it is reported as a *Frechet ratio*: the distance from
  the generated images to the test split, over the same distance from equally many real training
  images (the "floor"), each averaged over several draws. A perfect model scores about 1.
- For conditional models, the classifier's accuracy on images generated for each label.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from lab.core.errors import LabError

if TYPE_CHECKING:
    from generative.base import GenerativeModel
    from generative.data import ImageData

CLASSIFIER_VERSION = 1
DRAWS = 5


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The Frechet distance between Gaussians fitted to the rows of ``a`` and ``b`` (float64).

    The matrix square root is taken as ``S1^(1/2) S2 S1^(1/2)``, which is symmetric, so its trace
    comes from eigenvalues (clipped at 0 against rounding) and never from a complex ``sqrtm``.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise ValueError(
            f"need two sets of at least 2 feature rows of one width; got {a.shape} and {b.shape}"
        )
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = (
        np.cov(a, rowvar=False).reshape(a.shape[1], -1),
        np.cov(b, rowvar=False).reshape(b.shape[1], -1),
    )
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    middle = root_a @ cov_b @ root_a
    cross = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum()
    distance = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2.0 * cross)
    return max(distance, 0.0)


class EvalClassifier(nn.Module):
    """GridCNN features (the penultimate layer the Frechet distance uses) and a linear head."""

    def __init__(self, shape: tuple[int, int, int], n_classes: int, features: int = 64) -> None:
        from lab.nets import GridCNN

        super().__init__()
        channels, height, width = shape
        self.features = GridCNN(
            channels, height, width, out_features=features, channels=(32, 64), norm="batch",
            pool=min(height, width) >= 16, dropout=0.2,
        )  # fmt: skip
        self.head = nn.Linear(features, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@dataclass
class Classifier:
    model: EvalClassifier
    accuracy: float
    """Held-out accuracy on the test split."""
    path: Path | None = None
    trained: bool = False

    @torch.no_grad()
    def features(self, images: torch.Tensor | np.ndarray, batch: int = 512) -> np.ndarray:
        from lab.nets import predict

        return predict(self.model.features, torch.as_tensor(images, dtype=torch.float32), batch).numpy()

    @torch.no_grad()
    def predict(self, images: torch.Tensor | np.ndarray) -> np.ndarray:
        from lab.nets import predict

        return predict(self.model, torch.as_tensor(images, dtype=torch.float32)).argmax(1).numpy()


def classifier_path(cache_dir: str | Path, data: ImageData, seed: int) -> Path:
    return Path(cache_dir) / f"classifier-{data.key()}-seed{seed}.npz"


def train_classifier(data: ImageData, seed: int = 0, epochs: int = 30) -> Classifier:
    """A fresh evaluation classifier fitted to the training split (global RNG left as it was)."""
    from lab.nets import accuracy, fit

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = EvalClassifier(data.shape, data.n_classes)
        fit(
            model, data.train_x, data.train_y, epochs=epochs, batch_size=64, lr=2e-3, schedule="cosine",
            val_fraction=0.0, seed=seed, progress=False,
        )  # fmt: skip
    model.eval()
    return Classifier(model, accuracy(model, data.test_x, data.test_y), trained=True)


def load_classifier(
    data: ImageData, cache_dir: str | Path | None, seed: int = 0, progress: bool = False, epochs: int = 30
) -> Classifier:
    """The cached classifier for this data and seed, trained (``epochs``) and cached the first time."""
    from generative.checkpoint import read_model_file, state_from_arrays, state_to_arrays, write_model_file

    path = classifier_path(cache_dir, data, seed) if cache_dir is not None else None
    if path is not None and path.is_file():
        meta, arrays = read_model_file(path)
        if meta.get("kind") == "classifier" and meta.get("version") == CLASSIFIER_VERSION:
            model = EvalClassifier(data.shape, data.n_classes)
            model.load_state_dict(state_from_arrays(arrays, "model"))
            model.eval()
            return Classifier(model, float(meta["accuracy"]), path)
    if progress:
        print(f"training the evaluation classifier on {data.name} (once per data set and seed) ...")
    classifier = train_classifier(data, seed, epochs)
    if path is not None:
        meta = {"kind": "classifier", "version": CLASSIFIER_VERSION, "accuracy": classifier.accuracy}
        meta["epochs"] = epochs
        meta["data"] = data.info
        write_model_file(path, meta, state_to_arrays(classifier.model.state_dict(), "model"))
        classifier.path = path
    return classifier


@dataclass
class Quality:
    """The quality figures of one model (see the module docstring)."""

    classifier_accuracy: float
    frechet: float
    floor: float
    samples: int
    conditional_accuracy: float | None = None
    per_class_accuracy: list[float] = field(default_factory=list)
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def frechet_ratio(self) -> float:
        return self.frechet / self.floor if self.floor > 0 else float("inf")

    def as_row(self) -> dict[str, Any]:
        row = {
            "classifier_accuracy": self.classifier_accuracy, "frechet": self.frechet, "floor": self.floor,
            "frechet_ratio": self.frechet_ratio, "samples": self.samples,
            "conditional_accuracy": self.conditional_accuracy, **self.extra,
        }  # fmt: skip
        return row

    def summary(self) -> str:
        lines = [
            f"evaluation classifier: held-out accuracy {self.classifier_accuracy:.2%}",
            f"Frechet ratio {self.frechet_ratio:.3f} (distance {self.frechet:.3f} from sets of "
            f"{self.samples} generated images to the test split, floor {self.floor:.3f} for real ones)",
        ]
        if self.conditional_accuracy is not None:
            per = " ".join(f"{a:.0%}" for a in self.per_class_accuracy)
            lines.append(f"conditional accuracy {self.conditional_accuracy:.2%} (per label: {per})")
        lines += [f"{key} {value:.4g}" for key, value in self.extra.items()]
        return "\n".join(lines)


def frechet_floor(
    classifier: Classifier, data: ImageData, test: np.ndarray, n: int, seed: int, draws: int = DRAWS
) -> float:
    """The mean distance from ``n`` real training images to the test split (its features ``test``)
    over ``draws`` draws (with replacement only when the training split is not larger than ``n``)."""
    rng = np.random.default_rng(seed)
    train = classifier.features(data.train_x)
    replace = len(train) <= n
    picks = [rng.choice(len(train), n, replace=replace) for _ in range(draws)]
    return float(np.mean([frechet_distance(train[pick], test) for pick in picks]))


def generate(
    model: GenerativeModel, n: int, labels: np.ndarray | None, seed: int, batch: int = 500, **options: Any
) -> torch.Tensor:
    """``n`` samples in batches, seeded (labels only for conditional models)."""
    generator = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, n, batch):
        count = min(batch, n - start)
        chunk = None if labels is None else torch.as_tensor(labels[start : start + count])
        out.append(model.sample(count, chunk, generator, **options))
    return torch.cat(out)


def measure(
    model: GenerativeModel,
    data: ImageData,
    classifier: Classifier,
    seed: int = 0,
    per_class: int = 50,
    draws: int = DRAWS,
    **options: Any,
) -> Quality:
    """Frechet ratio (and conditional accuracy) of ``model``'s samples against ``data``'s test split.

    The distance is averaged over ``draws`` sets of generated images, each as large as the test
    split, as the floor is over as many sets of real training images: one set alone varies by a
    third from draw to draw. ``options`` go to the model's ``sample`` (e.g. ``steps=`` or
    ``guidance=`` for diffusion).
    """
    n = len(data.test_x)
    rng = np.random.default_rng(seed)
    # labels drawn like the real reference images are: at random from the training split
    labels = data.train_y[rng.choice(len(data.train_y), n * draws)] if model.conditional else None
    images = generate(model, n * draws, labels, seed, **options)
    if not bool(torch.isfinite(images).all()):
        raise LabError("the model generated NaN or infinite pixels; its weights are broken")
    features, test = classifier.features(images), classifier.features(data.test_x)
    frechet = float(np.mean([frechet_distance(features[k * n : (k + 1) * n], test) for k in range(draws)]))
    quality = Quality(classifier.accuracy, frechet, frechet_floor(classifier, data, test, n, seed, draws), n)
    if model.conditional:
        wanted = np.repeat(np.arange(data.n_classes), per_class)
        predicted = classifier.predict(generate(model, len(wanted), wanted, seed + 1, **options))
        correct = predicted == wanted
        quality.conditional_accuracy = float(correct.mean())
        quality.per_class_accuracy = [float(correct[wanted == k].mean()) for k in range(data.n_classes)]
    return quality
