"""How a model's outputs are scored: the loss, class predictions and probabilities, and
``evaluate`` over a whole split (accuracy, loss, per-class accuracy, confusion, errors).
Shared by the trainer, the predictor, evaluation and the interpretability code."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .config import TrainConfig
from .data import ImageSet
from .data.base import BatchTransform
from .speed import autocast, to_device
from .stats import accuracy_interval


def make_loss(num_classes: int, weights: list[float] | None) -> nn.Module:
    """CrossEntropy for multi-class; BCEWithLogits on one logit for binary tasks
    (the numerically stable form of the book's Sigmoid + BCELoss)."""
    if num_classes == 2:
        pos_weight = torch.tensor([weights[1] / weights[0]]) if weights else None
        return nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    return nn.CrossEntropyLoss(
        weight=torch.tensor(weights, dtype=torch.float32) if weights else None
    )


def smoothed_loss_floor(num_classes: int, smoothing: float) -> float:
    """The least training loss :func:`make_loss` can give with ``smoothing`` (label smoothing):
    the entropy of the smoothed targets, which even a perfect model scores. Validation uses
    the true labels, so its loss can go on falling below this."""
    if not smoothing:
        return 0.0
    if num_classes == 2:  # binary: targets y·(1 − s) + s/2, see trainer.train_batch
        q = [1 - smoothing / 2, smoothing / 2]
    else:  # CrossEntropyLoss(label_smoothing=s): (1 − s)·one-hot + s/K
        q = [1 - smoothing + smoothing / num_classes] + [smoothing / num_classes] * (
            num_classes - 1
        )
    return -sum(p * math.log(p) for p in q if p > 0)


def predictions(logits: torch.Tensor) -> torch.Tensor:
    """Class indices from logits (one logit = binary: positive when > 0)."""
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).long()
    return logits.argmax(1)


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Per-class probabilities [B, num_classes] (binary → [1-p, p])."""
    if logits.shape[1] == 1:
        p = torch.sigmoid(logits[:, 0].float())
        return torch.stack([1 - p, p], dim=1)
    return torch.softmax(logits.float(), dim=1)


def loss_value(loss_fn: nn.Module, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The loss of ``logits`` against ``labels`` (one logit: binary, as float targets)."""
    if logits.shape[1] == 1:
        return loss_fn(logits[:, 0].float(), labels.float())
    return loss_fn(logits.float(), labels)


@dataclass
class EvalResult:
    """Accuracy (with its 95 % Wilson interval), loss, per-class accuracy, confusion matrix
    (rows = true) and the errors."""

    accuracy: float
    loss: float
    n: int
    per_class_accuracy: list[float]
    confusion: list[list[int]]
    misclassified: list[int]
    predicted: list[int]
    confidence: list[float]
    split: str = ""

    @property
    def interval(self) -> tuple[float, float]:
        """The 95 % Wilson interval of the accuracy over these ``n`` images."""
        return accuracy_interval(self.accuracy, self.n)

    def correct(self) -> list[bool]:
        """Per image, in split order: whether the prediction was right."""
        wrong = set(self.misclassified)
        return [i not in wrong for i in range(self.n)]

    def summary(self) -> dict[str, Any]:
        low, high = self.interval
        return {
            "accuracy": self.accuracy,
            "ci_low": low,
            "ci_high": high,
            "loss": self.loss,
            "n": self.n,
            "split": self.split,
            "per_class_accuracy": self.per_class_accuracy,
            "confusion": self.confusion,
        }


@torch.no_grad()
def evaluate(
    model: nn.Module,
    split: ImageSet,
    transform: BatchTransform,
    num_classes: int,
    *,
    device: torch.device | str = "cpu",
    loss_fn: nn.Module | None = None,
    config: TrainConfig | None = None,
    batch_size: int = 500,
) -> EvalResult:
    """Evaluate in eval mode under no_grad over a whole split, in the precision of ``config``
    (no config: the ``auto`` policy, the training default)."""
    was_training = model.training
    model.eval()
    device = torch.device(device)
    loss_fn = loss_fn or make_loss(num_classes, None)
    total_loss, preds, confs = 0.0, [], []
    for start in range(0, len(split), batch_size):
        x = to_device(transform.eval(split.images[start : start + batch_size]), device)
        y = to_device(split.labels[start : start + batch_size], device)
        with autocast(config.precision if config else "auto", device):
            logits = model(x)
        total_loss += loss_value(loss_fn, logits, y).item() * len(y)
        probs = probabilities(logits)
        conf, pred = probs.max(1)
        preds.append(pred.cpu())
        confs.append(conf.cpu())
    model.train(was_training)
    pred = torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long)
    labels = split.labels
    confusion = torch.bincount(labels * num_classes + pred, minlength=num_classes * num_classes)
    confusion = confusion.reshape(num_classes, num_classes)
    per_class = (confusion.diag().float() / confusion.sum(1).clamp(min=1)).tolist()
    n = len(labels)
    return EvalResult(
        accuracy=float((pred == labels).float().mean()) if n else 0.0,
        loss=total_loss / max(1, n),
        n=n,
        per_class_accuracy=per_class,
        confusion=confusion.tolist(),
        misclassified=torch.nonzero(pred != labels).flatten().tolist(),
        predicted=pred.tolist(),
        confidence=(torch.cat(confs) if confs else torch.zeros(0)).tolist(),
    )
