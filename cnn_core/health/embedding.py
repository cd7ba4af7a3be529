"""The embedding map: a finished run's penultimate-layer features of one split, projected to
2-D (PCA or t-SNE from scikit-learn; UMAP when ``umap-learn`` is installed)."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data import DatasetBundle
from ..errors import UserError
from ..evaluation import checkpoint_data
from ..predict import Predictor
from ..scoring import probabilities


def projections() -> list[str]:
    """The projection methods available here (``umap`` only when umap-learn is installed)."""
    return ["pca", "tsne"] + (["umap"] if importlib.util.find_spec("umap") else [])


@dataclass
class EmbeddingMap:
    """2-D points of one split: coordinates, given and predicted labels, confidence."""

    split: str
    method: str
    xy: np.ndarray
    index: np.ndarray
    labels: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray
    class_names: list[str]
    flagged: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @property
    def misclassified(self) -> np.ndarray:
        return self.labels != self.predicted

    def to_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "method": self.method,
            "class_names": self.class_names,
            "points": [
                {
                    "index": int(i),
                    "x": float(x),
                    "y": float(y),
                    "label": int(label),
                    "predicted": int(pred),
                    "confidence": float(conf),
                }
                for i, (x, y), label, pred, conf in zip(
                    self.index, self.xy, self.labels, self.predicted, self.confidence, strict=True
                )
            ],
        }


def last_linear(model: nn.Module) -> nn.Linear:
    """The classifier layer whose input is the penultimate representation."""
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not layers:
        raise UserError("this model has no fully connected layer to take features from")
    return layers[-1]


@torch.no_grad()
def features_and_probabilities(
    model: nn.Module, images: torch.Tensor, transform, batch_size: int = 500
) -> tuple[np.ndarray, np.ndarray]:
    """(penultimate features ``[N, D]``, class probabilities ``[N, K]``) of uint8 images."""
    model.eval()
    captured: list[torch.Tensor] = []
    handle = last_linear(model).register_forward_pre_hook(
        lambda _m, inputs: captured.append(inputs[0].detach().float().cpu())
    )
    probs = []
    try:
        for start in range(0, len(images), batch_size):
            probs.append(probabilities(model(transform.eval(images[start : start + batch_size]))))
    finally:
        handle.remove()
    return torch.cat(captured).numpy(), torch.cat(probs).numpy()


def project(features: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """``features`` projected to ``[N, 2]`` with ``method`` (see :func:`projections`)."""
    if method not in projections():
        raise UserError(f"unknown projection {method!r}; choose one of {', '.join(projections())}")
    if len(features) < 3:
        raise UserError("need at least 3 images for a map")
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(features)
    from sklearn.decomposition import PCA

    reduced = PCA(n_components=min(50, *features.shape), random_state=seed).fit_transform(features)
    if method == "umap":
        import umap

        return umap.UMAP(random_state=seed).fit_transform(reduced)
    from sklearn.manifold import TSNE

    perplexity = float(min(30, max(2, (len(features) - 1) // 3)))
    return TSNE(
        n_components=2, init="pca", perplexity=perplexity, random_state=seed, n_jobs=os.cpu_count()
    ).fit_transform(reduced)


def embedding_map(
    checkpoint: str | os.PathLike,
    split: str = "val",
    method: str = "pca",
    limit: int = 10_000,
    data: DatasetBundle | None = None,
    flagged: set[int] | None = None,
) -> EmbeddingMap:
    """The map of up to ``limit`` images of ``split`` (the first ones) under a checkpoint's
    model; ``flagged`` marks positions (e.g. the data-health findings)."""
    predictor = Predictor.from_checkpoint(checkpoint)
    data = data or checkpoint_data(predictor)
    images = data.split(split)
    n = min(limit, len(images))
    feats, probs = features_and_probabilities(predictor.model, images.images[:n], data.transform)
    index = np.arange(n)
    return EmbeddingMap(
        split=split,
        method=method,
        xy=project(feats, method),
        index=index,
        labels=images.labels[:n].numpy(),
        predicted=probs.argmax(1),
        confidence=probs.max(1),
        class_names=list(data.class_names),
        flagged=np.isin(index, sorted(flagged or ())),
    )
