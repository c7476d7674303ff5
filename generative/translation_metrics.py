"""Exact scores of a translation model on held-out pairs.

For the ``themes`` data set every held-out A image has its true B counterpart and its cells:

- ``accuracy_ab``: the fraction of cells of ``G(a)`` that decode (nearest template of theme B) to
  the true cell; ``psnr_ab`` (from the mean squared error over all images, pixels in [0, 1]) and
  ``ssim_ab`` (scikit-image, mean over images) against the true B image; ``ba`` the same for F.
- Cycle: ``cycle_l1_a`` the mean absolute error of ``F(G(a))`` against ``a`` (pixels in [0, 1]);
  ``cycle_accuracy_a`` / ``cycle_psnr_a`` of ``F(G(a))``.
- Steganography probe (Chu et al., 2017: CycleGAN hides the source in near-invisible signal in
  ``G(a)``): the same figures for ``F(G(a) + n)``, ``n`` Gaussian with ``noise`` = 0.02 in
  [0, 1] pixel units. A translation that carries its information in the visible picture barely
  moves; one that hides it loses the cells.

- Domain classifier: ``domain_ab``, the fraction of ``G(a)`` that the lab's evaluation classifier
  (:class:`generative.metrics.EvalClassifier`), trained to tell real A images from real B images,
  takes for B; ``domain_ba`` the fraction of ``F(b)`` it takes for A; ``domain_accuracy`` its own
  accuracy on the real held-out images of both domains.

For the ``folders`` data set, whose domains have no pairs, the cycle errors and the domain
classifier are measured.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from generative.data import ImageData
    from generative.metrics import Classifier
    from generative.translation import TranslationModel

NOISE = 0.02
DOMAIN_IMAGES = 8000
"""Images the domain classifier sees in training (2 to 30 epochs, batches of 64): the two themes'
palettes part well within those 125 steps; a user's small folders get more epochs."""
_domain_classifiers: dict[str, Classifier] = {}


def domain_classifier(
    data: ImageData, cache_dir: str | Path | None = None, progress: bool = False
) -> Classifier:
    """The lab's evaluation classifier trained on the training split's images to tell domain A (0)
    from domain B (1), scored on the held-out images of both, with a fixed seed. Trained once per data
    set, saying so when ``progress``: kept in the process (the trainer measures every
    ``eval_interval`` steps) and, with a ``cache_dir``, on disk beside the other evaluation
    classifiers (:func:`generative.metrics.load_classifier`), so that later runs and ``lab gen eval``
    load it."""
    key = data.key()
    if key not in _domain_classifiers:
        from generative.data import ImageData
        from generative.metrics import load_classifier

        c = data.shape[0] // 2

        def domains(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return np.concatenate([x[:, :c], x[:, c:]]), np.repeat(np.array([0, 1]), len(x))

        (train_x, train_y), (test_x, test_y) = domains(data.train_x), domains(data.test_x)
        two = ImageData(f"{data.name}-domains", train_x, train_y, test_x, test_y, 2, data.levels)
        epochs = min(30, max(2, math.ceil(DOMAIN_IMAGES / len(train_x))))
        _domain_classifiers[key] = load_classifier(two, cache_dir, seed=0, progress=progress, epochs=epochs)
    return _domain_classifiers[key]


def psnr(images: np.ndarray, truth: np.ndarray) -> float:
    """PSNR in dB of ``images`` against ``truth`` (both in [-1, 1]), pixels taken in [0, 1]."""
    mse = float(np.mean(((np.clip(images, -1, 1) - truth) / 2.0) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def ssim(images: np.ndarray, truth: np.ndarray) -> float:
    """Mean SSIM (scikit-image, Gaussian-free 7x7 windows) over images ``(N, C, H, W)`` in [-1, 1]."""
    from skimage.metrics import structural_similarity

    pictures = (np.clip(images, -1, 1) + 1.0) / 2.0
    truths = (truth + 1.0) / 2.0
    scores = [
        structural_similarity(p, t, channel_axis=0, data_range=1.0)
        for p, t in zip(pictures, truths, strict=True)
    ]
    return float(np.mean(scores))


def measure_translation(
    model: TranslationModel,
    data: ImageData,
    noise: float = NOISE,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """The figures above on ``data``'s test split, with a one-line ``summary`` (``cache_dir`` and
    ``progress``: where the domain classifier is kept, and whether its training is announced)."""
    from generative.translation_data import CellDecoder

    x = torch.from_numpy(data.test_x)
    a, b = (part.numpy() for part in model.split(x))
    info = data.info
    decoders = None
    if info.get("dataset") == "themes":
        themes = info["themes"]  # each side's decoder counts a cell left in the other's look as wrong
        decoders = [CellDecoder(t, info["tile"], info["rows"], info["cols"], rival) for t, rival in
                    zip(themes, themes[::-1], strict=True)]  # fmt: skip
    truth = data.test_y
    row: dict[str, Any] = {}

    def score(images: np.ndarray, target: np.ndarray, side: int, key: str, full: bool = True) -> None:
        if decoders is None:
            return
        row[f"accuracy_{key}"] = float(np.mean(decoders[side].decode(images) == truth))
        row[f"psnr_{key}"] = psnr(images, target)
        if full:
            row[f"ssim_{key}"] = ssim(images, target)

    classifier = domain_classifier(data, cache_dir, progress)
    row["domain_accuracy"] = classifier.accuracy
    fake_b = model.translate(torch.from_numpy(a), "ab").numpy()
    score(fake_b, b, 1, "ab")
    row["domain_ab"] = float(np.mean(classifier.predict(fake_b) == 1))
    if "ba" in model.directions:
        fake_a = model.translate(torch.from_numpy(b), "ba").numpy()
        score(fake_a, a, 0, "ba")
        row["domain_ba"] = float(np.mean(classifier.predict(fake_a) == 0))
        back_a = model.translate(torch.from_numpy(fake_b), "ba").numpy()
        back_b = model.translate(torch.from_numpy(fake_a), "ab").numpy()
        row["cycle_l1_a"] = float(np.mean(np.abs(back_a - a))) / 2.0
        row["cycle_l1_b"] = float(np.mean(np.abs(back_b - b))) / 2.0
        generator = torch.Generator().manual_seed(seed)
        jitter = torch.randn(fake_b.shape, generator=generator).numpy() * (2.0 * noise)
        noisy = model.translate(torch.from_numpy(fake_b + jitter), "ba").numpy()
        if decoders is not None:
            row["cycle_accuracy_a"] = float(np.mean(decoders[0].decode(back_a) == truth))
            row["cycle_accuracy_a_noisy"] = float(np.mean(decoders[0].decode(noisy) == truth))
            row["cycle_psnr_a"] = psnr(back_a, a)
            row["cycle_psnr_a_noisy"] = psnr(noisy, a)
    row["summary"] = summary(row, noise)
    return row


def summary(row: dict[str, Any], noise: float = NOISE) -> str:
    parts = []
    for key, arrow in (("ab", "A->B"), ("ba", "B->A")):
        if f"accuracy_{key}" in row:
            ssim_text = f", SSIM {row[f'ssim_{key}']:.3f}" if f"ssim_{key}" in row else ""
            cells, db = 100 * row[f"accuracy_{key}"], row[f"psnr_{key}"]
            parts.append(f"{arrow}: cells {cells:.2f}%, PSNR {db:.1f} dB{ssim_text}")
    if "domain_ab" in row:
        judged = f"G(a) judged B {100 * row['domain_ab']:.1f}%"
        if "domain_ba" in row:
            judged += f", F(b) judged A {100 * row['domain_ba']:.1f}%"
        parts.append(f"domain classifier: {judged} (real held-out {100 * row['domain_accuracy']:.1f}%)")
    if "cycle_l1_a" in row:
        parts.append(f"cycle L1 A {row['cycle_l1_a']:.4f}, B {row['cycle_l1_b']:.4f}")
    if "cycle_accuracy_a" in row:
        clean, noisy = 100 * row["cycle_accuracy_a"], 100 * row["cycle_accuracy_a_noisy"]
        parts.append(
            f"A->B->A cells {clean:.2f}% ({row['cycle_psnr_a']:.1f} dB), with noise sigma {noise:g} "
            f"on G(a) {noisy:.2f}% ({row['cycle_psnr_a_noisy']:.1f} dB)"
        )
    return "; ".join(parts)


def translation_grid(
    model: TranslationModel, data: ImageData, n: int, seed: int | None = None
) -> tuple[np.ndarray, int]:
    """Held-out images in rows ``a, G(a), F(G(a)), b`` (pix2pix: ``a, G(a), b``) for ``n`` columns:
    ``(rows * n, C, H, W)`` in [-1, 1] and the column count, for :func:`generative.images.tile`.
    The first ``n`` test images, or (``seed``) ``n`` chosen at random with it."""
    order = np.arange(len(data.test_x))
    if seed is not None:
        order = np.random.default_rng(seed).permutation(order)
    x = torch.from_numpy(data.test_x[order[: max(1, n)]])
    a, b = model.split(x)
    fake_b = model.translate(a, "ab")
    rows = [a, fake_b]
    if "ba" in model.directions:
        rows.append(model.translate(fake_b, "ba"))
    rows.append(b)
    return torch.cat(rows).clamp(-1, 1).numpy(), len(a)
