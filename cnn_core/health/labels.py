"""Likely label errors: out-of-sample probabilities from k-fold training, then cleanlab's
confident learning (``cleanlab.filter.find_label_issues``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch

from ..config import TrainConfig
from ..data.base import DatasetBundle, ImageSet
from ..errors import DataError
from ..scoring import probabilities
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


def fold_of(n: int, folds: int, seed: int) -> np.ndarray:
    """The fold (0..folds-1) of each of ``n`` items, balanced and fixed by ``seed``."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    fold = np.empty(n, dtype=np.int64)
    fold[order] = np.arange(n) % folds
    return fold


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
    fold = fold_of(len(data), folds, config.seed)
    probs = np.zeros((len(data), len(data.class_names)), dtype=np.float32)
    cfg = dataclasses.replace(config, augment=False, balance="none", train_size=None, val_size=None)
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
        model = fit(cfg, data=bundle).state.model
        probs[held.numpy()] = predict_probabilities(model, data.images[held], data.transform)
    return probs


def rank_label_issues(labels: np.ndarray, probs: np.ndarray) -> tuple[list[int], np.ndarray]:
    """(indices cleanlab flags, most likely error first; every image's label quality score,
    0-1, low = suspicious)."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    scores = get_label_quality_scores(labels, probs)
    flagged = find_label_issues(labels, probs, return_indices_ranked_by="self_confidence")
    return [int(i) for i in flagged], scores


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
