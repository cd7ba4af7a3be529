"""Which pixels mattered: Captum attributions behind one ``attribute(model, x, method)`` call.

Every method explains one class score of :class:`~.common.ClassScores` (so ``target`` is a
class index for binary models too) for a single image and returns an :class:`Attribution`
whose ``map`` is the per-pixel attribution summed over input channels.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch
from captum.attr import (
    GuidedBackprop,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    NoiseTunnel,
    Occlusion,
    Saliency,
)
from torch import nn

from ..errors import ConfigError
from ..models import feature_layers
from .common import ClassScores, as_batch, eval_mode, find_layer, network

POOLING = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


@dataclass
class Attribution:
    """One explanation of one image: ``map`` [H, W] plus the raw attribution [C, H, W].

    ``signed`` maps keep negative values (evidence against ``target``); unsigned ones are
    non-negative. ``params`` are the method's settings used (defaults included).
    """

    map: np.ndarray
    raw: torch.Tensor
    method: str
    target: int
    signed: bool
    seconds: float
    params: dict[str, Any] = field(default_factory=dict)


def _saliency(scores: nn.Module, x: torch.Tensor, target: int) -> torch.Tensor:
    """|∂score/∂pixel| (Simonyan et al., 2014)."""
    return Saliency(scores).attribute(x, target=target, abs=True)


def _integrated_gradients(
    scores: nn.Module, x: torch.Tensor, target: int, n_steps: int, internal_batch_size: int
) -> torch.Tensor:
    """Gradients averaged on the straight path from a black image (Sundararajan et al., 2017)."""
    return IntegratedGradients(scores).attribute(
        x, target=target, n_steps=n_steps, internal_batch_size=internal_batch_size
    )


def _smoothgrad(
    scores: nn.Module,
    x: torch.Tensor,
    target: int,
    base: str,
    nt_samples: int,
    stdevs: float,
    n_steps: int,
    seed: int,
) -> torch.Tensor:
    """The mean signed gradient (``base="saliency"``) or IG (``"integrated_gradients"``, with
    ``n_steps``) over ``nt_samples`` noisy copies of the image (Smilkov et al., 2017).

    ``stdevs`` is the noise level in pixel units ([0, 1] images); ``seed`` makes it repeatable.
    """
    options: dict[str, Any]
    if base == "saliency":
        inner, options = Saliency(scores), {"abs": False}
    elif base == "integrated_gradients":
        inner = IntegratedGradients(scores)
        options = {"n_steps": n_steps, "internal_batch_size": n_steps * nt_samples}
    else:
        raise ConfigError("base", f"unknown base {base!r}; choose saliency or integrated_gradients")
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return NoiseTunnel(inner).attribute(
            x,
            nt_type="smoothgrad",
            nt_samples=nt_samples,
            nt_samples_batch_size=nt_samples,
            stdevs=stdevs,
            target=target,
            **options,
        )


def _guided_backprop(scores: nn.Module, x: torch.Tensor, target: int) -> torch.Tensor:
    """Gradients with negative signals stopped at every ReLU (Springenberg et al., 2015)."""
    return GuidedBackprop(scores).attribute(x, target=target)


def gradcam_layer(model: Any) -> str:
    """Grad-CAM's default layer: the last conv block's output before the final pooling.

    That is the last non-pooling feature layer (e.g. ``relu2`` of the book's MNIST CNN,
    ``block3.relu2`` of the ResNet: after the residual sum, not the 1×1 shortcut conv).
    """
    names = [name for name, m in feature_layers(network(model)) if not isinstance(m, POOLING)]
    return names[-1]


def _gradcam(scores: ClassScores, x: torch.Tensor, target: int, layer: str | None) -> torch.Tensor:
    """ReLU(Σ_k mean(∂score/∂A_k)·A_k) of one layer's maps A, upsampled bilinearly to the
    image (Selvaraju et al., 2017). ``layer`` is a feature layer name (default:
    :func:`gradcam_layer`)."""
    module = find_layer(scores.model, layer or gradcam_layer(scores.model))
    cam = LayerGradCam(scores, module).attribute(x, target=target, relu_attributions=True)
    return LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), "bilinear")


def _occlusion(
    scores: nn.Module,
    x: torch.Tensor,
    target: int,
    window: int | None,
    stride: int | None,
    perturbations_per_eval: int,
) -> torch.Tensor:
    """The score drop when a ``window``² patch (all channels) is set to 0, slid by ``stride``
    (Zeiler & Fergus, 2014). By default the stride is size/14 and the window twice that,
    widened so the patches tile the image edge to edge (28 px: 4/2, 64 px: 8/4)."""
    channels, size = x.shape[1], x.shape[-1]
    stride = stride or max(1, size // 14)
    window = window or 2 * stride + (size - 2 * stride) % stride
    return Occlusion(scores).attribute(
        x,
        sliding_window_shapes=(channels, window, window),
        strides=(channels, stride, stride),
        baselines=0.0,
        target=target,
        perturbations_per_eval=perturbations_per_eval,
    )


class Method(NamedTuple):
    """A registered attribution method: ``function(scores, x, target, **params)``, whether
    its maps are signed, and its parameters with their defaults."""

    function: Callable[..., torch.Tensor]
    signed: bool
    defaults: dict[str, Any]


METHODS: dict[str, Method] = {
    "saliency": Method(_saliency, False, {}),
    "integrated_gradients": Method(
        _integrated_gradients, True, {"n_steps": 50, "internal_batch_size": 50}
    ),
    "smoothgrad": Method(
        _smoothgrad,
        True,
        {"base": "saliency", "nt_samples": 20, "stdevs": 0.15, "n_steps": 10, "seed": 0},
    ),
    "guided_backprop": Method(_guided_backprop, True, {}),
    "gradcam": Method(_gradcam, False, {"layer": None}),
    "occlusion": Method(
        _occlusion, True, {"window": None, "stride": None, "perturbations_per_eval": 128}
    ),
}


def attribution_method(method: str) -> Method:
    """The registry entry for ``method`` (ConfigError listing the choices if unknown)."""
    try:
        return METHODS[method]
    except KeyError:
        raise ConfigError(
            "method", f"unknown method {method!r}; choose one of {', '.join(METHODS)}"
        ) from None


def attribute(
    model: Any, x: torch.Tensor, method: str, target: int | None = None, **params: Any
) -> Attribution:
    """Explain ``model``'s score for class ``target`` (default: its prediction) on one image.

    ``model`` is an ``nn.Module`` or a Predictor; ``x`` is one float image ``[C, H, W]`` or
    ``[1, C, H, W]`` in [0, 1] and is never modified. ``params`` override ``METHODS[method]
    .defaults``. The model runs in eval mode, which is restored afterwards.
    """
    entry = attribution_method(method)
    unknown = sorted(set(params) - set(entry.defaults))
    if unknown:
        valid = ", ".join(entry.defaults) or "none"
        raise ConfigError("params", f"{method} does not take {', '.join(unknown)} (valid: {valid})")
    options = {**entry.defaults, **params}
    start = time.perf_counter()
    with eval_mode(model) as net:
        scores = ClassScores(net)
        batch = as_batch(net, x).requires_grad_()
        with torch.no_grad():
            class_scores = scores(batch)[0]
        if target is None:
            target = int(class_scores.argmax())
        elif not 0 <= target < len(class_scores):
            raise ConfigError(
                "target", f"class {target} out of range: the model has {len(class_scores)}"
            )
        raw = entry.function(scores, batch, target, **options).detach()[0].float().cpu()
    return Attribution(
        map=raw.sum(0).numpy(),
        raw=raw,
        method=method,
        target=int(target),
        signed=entry.signed,
        seconds=time.perf_counter() - start,
        params=options,
    )
