"""Shared plumbing for the interpretation tools: eval mode, input batches, class scores, layers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar, overload

import torch
from torch import nn

from ..errors import ConfigError
from ..models import feature_layers

M = TypeVar("M", bound=nn.Module)


def network(model: Any) -> nn.Module:
    """The ``nn.Module`` itself, or the ``.model`` of a Predictor."""
    return model if isinstance(model, nn.Module) else model.model


@contextmanager
def eval_mode(model: Any) -> Iterator[nn.Module]:
    """Yield the network of ``model`` (an ``nn.Module`` or a Predictor) in eval mode.

    The previous train/eval mode is restored on exit, even after an error.
    """
    net = network(model)
    was_training = net.training
    net.eval()
    try:
        yield net
    finally:
        net.train(was_training)


def as_batch(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A detached float copy of one image ``[C, H, W]`` or ``[1, C, H, W]`` as a batch of one.

    The copy lives on the model's device, so callers may set ``requires_grad`` on it (Captum
    does) without touching the caller's tensor.
    """
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[0] != 1:
        raise ConfigError(
            "input", f"expected one image [C, H, W] or [1, C, H, W], got {list(x.shape)}"
        )
    device = next(net.parameters()).device
    return x.detach().to(device=device, dtype=torch.float32, copy=True)


class ClassScores(nn.Module):
    """One score per class for any model here, so ``target`` means a class index everywhere.

    Multi-class models already return one logit per class and pass through unchanged. A
    binary model returns one logit ``z`` (the log-odds of class 1); it becomes ``[-z/2, z/2]``.
    Its softmax is exactly ``[1 - sigmoid(z), sigmoid(z)]`` (what ``scoring.probabilities``
    gives) and its argmax is ``scoring.predictions``. Unlike ``[0, z]``, both scores depend on
    the input, so attributions for class 0 are those of class 1 with the sign flipped (and
    half the magnitude of attributions of the raw logit) instead of all zeros.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores ``[B, num_classes]``."""
        logits = self.model(x)
        if logits.shape[1] != 1:
            return logits
        half = logits / 2
        return torch.cat([-half, half], dim=1)


@overload
def find_layer(net: nn.Module, name: str) -> nn.Module: ...


@overload
def find_layer(net: nn.Module, name: str, choices: Sequence[tuple[str, M]]) -> M: ...


def find_layer(
    net: nn.Module, name: str, choices: Sequence[tuple[str, nn.Module]] | None = None
) -> nn.Module:
    """The layer called ``name`` among ``choices`` (default: the model's feature layers)."""
    choices = feature_layers(net) if choices is None else choices
    for layer_name, module in choices:
        if layer_name == name:
            return module
    names = ", ".join(layer_name for layer_name, _ in choices)
    raise ConfigError("layer", f"unknown layer {name!r}; choose one of {names}")
