"""The chapter's four losses by hand, and why a sigmoid before BCELoss is a bad idea.

Binary: ``BCEWithLogitsLoss`` takes logits, ``BCELoss`` probabilities; multiclass:
``CrossEntropyLoss`` takes logits, ``NLLLoss`` log-probabilities. Each function returns the
mean loss over the samples, as the ``torch.nn`` losses do by default.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike

from ..errors import ConfigError

LOG_FLOOR = -100.0  # BCELoss clamps each log to at least this (so log 0 is not −inf)


def _binary(logits: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    z, y = np.asarray(logits, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    if z.shape != y.shape or z.ndim != 1:
        raise ConfigError("labels", f"need one label per logit, got {y.size} for {z.size}")
    if not np.isin(y, (0, 1)).all():
        raise ConfigError("labels", "binary labels must be 0 or 1")
    return z, y


def sigmoid(z: np.ndarray) -> np.ndarray:
    """``1 / (1 + e^(−z))`` without overflow for large negative z."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def bce_with_logits(logits: ArrayLike, labels: ArrayLike) -> float:
    """``max(z, 0) − z·y + log(1 + e^(−|z|))``: the log-sigmoid folded in, stable for any z."""
    z, y = _binary(logits, labels)
    return float(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))))


def bce(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """``−[y log p + (1 − y) log(1 − p)]`` with each log clamped at −100, as BCELoss does."""
    p, y = _binary(probabilities, labels)
    if ((p < 0) | (p > 1)).any():
        raise ConfigError("probabilities", "BCELoss needs probabilities in [0, 1]")
    with np.errstate(divide="ignore"):
        logs = np.maximum(np.log(p), LOG_FLOOR), np.maximum(np.log(1 - p), LOG_FLOOR)
    return float(np.mean(-(y * logs[0] + (1 - y) * logs[1])))


def _multiclass(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z, y = np.asarray(logits, dtype=np.float64), np.asarray(labels)
    if z.ndim != 2 or y.shape != (z.shape[0],):
        raise ConfigError("labels", f"need one label per row of logits, got {y.size} for {len(z)}")
    if not (np.equal(np.mod(y, 1), 0).all() and ((y >= 0) & (y < z.shape[1])).all()):
        raise ConfigError("labels", f"class labels must be whole numbers 0–{z.shape[1] - 1}")
    return z, y.astype(int)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """``z − logsumexp(z)`` per row, shifted by the row maximum so nothing overflows."""
    z = np.asarray(logits, dtype=np.float64)
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def nll(log_probabilities: np.ndarray, labels: np.ndarray) -> float:
    """``−log p[y]``: the negative log-probability of each sample's true class."""
    logp, y = _multiclass(log_probabilities, labels)
    return float(-np.mean(logp[np.arange(len(y)), y]))


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """``logsumexp(z) − z[y]`` = NLL of the log-softmax: softmax and log in one stable step."""
    z, y = _multiclass(logits, labels)
    return nll(log_softmax(z), y)


def stability_table(logits: list[float], label: int) -> list[dict[str, float]]:
    """For each logit, in float32 as a network computes: the loss and its gradient with
    respect to the logit through ``Sigmoid + BCELoss`` and through ``BCEWithLogitsLoss``.

    At large |z| the sigmoid rounds to exactly 0 or 1: BCELoss then sees log 0 (clamped at
    −100) and the gradient through the saturated sigmoid is 0, so a confidently wrong
    prediction stops learning; BCEWithLogitsLoss keeps the exact loss and gradient σ(z) − y.
    """
    rows = []
    target = torch.tensor([float(label)])
    for value in logits:
        row: dict[str, float] = {"logit": float(value)}
        for name, loss_of in (
            ("sigmoid_bce", lambda z: F.binary_cross_entropy(torch.sigmoid(z), target)),
            ("with_logits", lambda z: F.binary_cross_entropy_with_logits(z, target)),
        ):
            z = torch.tensor([float(value)], requires_grad=True)
            loss = loss_of(z)
            loss.backward()
            grad = z.grad
            assert grad is not None  # backward() filled it
            row[f"{name}_loss"], row[f"{name}_grad"] = float(loss.detach()), float(grad[0])
        row["exact_loss"] = bce_with_logits([value], [label])
        rows.append(row)
    return rows


def torch_reference(name: str, inputs: np.ndarray, labels: np.ndarray) -> float:
    """The same loss computed by ``torch.nn.functional`` (float64), for the page's check."""
    x = torch.as_tensor(np.asarray(inputs, dtype=np.float64))
    y = torch.as_tensor(np.asarray(labels))
    if name == "BCEWithLogitsLoss":
        return float(F.binary_cross_entropy_with_logits(x, y.double()))
    if name == "BCELoss":
        return float(F.binary_cross_entropy(x, y.double()))
    if name == "CrossEntropyLoss":
        return float(F.cross_entropy(x, y.long()))
    if name == "NLLLoss":
        return float(F.nll_loss(x, y.long()))
    raise ConfigError("loss", f"{name!r} is not one of the four losses")
