"""Likely label errors: out-of-sample probabilities from k-fold training, then cleanlab's
confident learning (``cleanlab.filter.find_label_issues``).

The fold models must be able to judge first (:func:`judge`): with fewer than
:data:`MIN_PER_CLASS` images in a class, or models whose accuracy is not clearly better than
guessing the commonest class, no label is called wrong and a note says why. A flagged image is
listed only when the models' confidence in the suggested class reaches their own accuracy
(:func:`suggestion_threshold`): a model that is right 80 % of the time is not trusted on a
60 % guess.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch

from ..config import TrainConfig
from ..data.base import DatasetBundle, ImageSet
from ..errors import DataError
from ..scoring import probabilities
from ..stats import wilson_interval
from ..trainer import fit
from .source import HealthData


@torch.no_grad()
def predict_probabilities(model: torch.nn.Module, images: torch.Tensor, transform) -> np.ndarray:
    """Class probabilities ``[N, classes]`` of uint8 ``images`` (eval mode, CPU or the model's
    device), in batches of 500."""
    model.eval()
    device = next(model.parameters()).device
    out = [
        probabilities(model(transform.eval(images[s : s + 500]).to(device))).cpu()
        for s in range(0, len(images), 500)
    ]
    return torch.cat(out).numpy()


MIN_PER_CLASS = 10  # fewer images in a class: its fold models see too few to judge a label
MIN_THRESHOLD, MAX_THRESHOLD = 0.5, 0.95  # bounds of the confidence a suggestion needs


def fold_of(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold (0..folds-1) of each item labelled ``labels``: random by ``seed``, balanced,
    and stratified (each class spread evenly over the folds)."""
    n = len(labels)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    order = order[np.argsort(labels[order], kind="stable")]  # by class, random within
    fold = np.empty(n, dtype=np.int64)
    fold[order] = np.arange(n) % folds
    return fold


def judge(labels: np.ndarray, probs: np.ndarray, class_names: list[str]) -> str:
    """Why the fold models cannot judge these labels ("" when they can): a class with fewer
    than :data:`MIN_PER_CLASS` images, or an out-of-sample accuracy whose 95 % interval does
    not clear halfway from guessing the commonest class to perfect."""
    counts = np.bincount(labels, minlength=len(class_names))
    small = [f"{class_names[k]} ({c})" for k, c in enumerate(counts) if 0 < c < MIN_PER_CLASS]
    if small:
        return (
            f"Too few images to judge labels: {', '.join(small)} — each class needs at least "
            f"{MIN_PER_CLASS}. No label is called wrong."
        )
    n = len(labels)
    correct = int((probs.argmax(1) == labels).sum())
    low, high = wilson_interval(correct, n)
    chance = counts.max() / n
    needed = chance + (1 - chance) / 2
    if low < needed:
        return (
            f"The check's models are too weak to judge labels: {correct / n:.0%} right on images "
            f"they did not see (95% CI {low:.0%}–{high:.0%}), where always guessing the "
            f"commonest class scores {chance:.0%}; they must be clearly above {needed:.0%}. "
            "No label is called wrong — add images or train the check longer."
        )
    return ""


def suggestion_threshold(labels: np.ndarray, probs: np.ndarray) -> float:
    """The confidence in the suggested class a flagged image needs: the models' own
    out-of-sample accuracy, within [:data:`MIN_THRESHOLD`, :data:`MAX_THRESHOLD`]."""
    accuracy = float((probs.argmax(1) == labels).mean())
    return min(MAX_THRESHOLD, max(MIN_THRESHOLD, accuracy))


def out_of_sample_probabilities(
    data: HealthData,
    config: TrainConfig,
    folds: int = 3,
    progress: Callable[[str], None] | None = None,
) -> np.ndarray:
    """Probabilities for every image from a model trained (with ``config``'s model, epochs and
    seed) on the other ``folds - 1`` folds, so no image is scored by a model that saw it."""
    if len(data) < 2 * folds:
        raise DataError(f"{len(data)} images are too few for {folds}-fold label checking")
    fold = fold_of(data.labels.numpy(), folds, config.seed)
    probs = np.zeros((len(data), len(data.class_names)), dtype=np.float32)
    fold_config = dataclasses.replace(
        config, augment=False, balance="none", train_size=None, val_size=None
    )
    for k in range(folds):
        if progress:
            progress(f"training fold {k + 1}/{folds}")
        held = torch.from_numpy(np.nonzero(fold == k)[0])
        kept = torch.from_numpy(np.nonzero(fold != k)[0])
        bundle = DatasetBundle(
            name=data.name,
            family="health",
            train=ImageSet(data.images[kept], data.labels[kept]),
            val=ImageSet(data.images[held], data.labels[held]),
            test=None,
            class_names=data.class_names,
            transform=data.transform,
        )
        model = fit(fold_config, data=bundle).state.model
        probs[held.numpy()] = predict_probabilities(model, data.images[held], data.transform)
    return probs


def rank_label_issues(labels: np.ndarray, probs: np.ndarray) -> tuple[list[int], np.ndarray]:
    """(indices cleanlab flags whose suggested class has the confidence
    :func:`suggestion_threshold` asks, most likely error first; every image's label quality
    score, 0-1, low = suspicious)."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    scores = get_label_quality_scores(labels, probs)
    flagged = find_label_issues(labels, probs, return_indices_ranked_by="self_confidence")
    needed = suggestion_threshold(labels, probs)
    return [int(i) for i in flagged if probs[i].max() >= needed], scores


def label_issue_rows(
    data: HealthData, probs: np.ndarray, flagged: list[int], scores: np.ndarray
) -> list[dict]:
    """One row per flagged image: reference, given and suggested class, the score and the
    model's confidence in its suggestion."""
    rows = []
    for i in flagged:
        suggested = int(probs[i].argmax())
        rows.append(
            {
                **data.ref(i),
                "given": data.class_names[int(data.labels[i])],
                "suggested": data.class_names[suggested],
                "score": float(scores[i]),
                "confidence": float(probs[i, suggested]),
                "pool_index": i,
            }
        )
    return rows
