"""Pretrained backbones: an ImageNet-trained torchvision network with a new head.

A :class:`Backbone` is the network's feature extractor behind an input adapter: a grey image
is repeated to three channels, every image resized to the side the weights were trained at
(224 px, bilinear) and normalised with ImageNet's mean and standard deviation, so a model still
takes ``[B, C, S, S]`` in [0, 1] like every other. It ends in global pooling and outputs one
feature vector per image; the registered models put dropout and a new linear head after it.
``frozen`` backbones train the head only (the backbone's BatchNorm statistics stay as
pretrained); unfrozen ones fine-tune the whole net with the backbone's learning rate scaled
by :data:`BACKBONE_LR_SCALE` (:func:`param_groups`).

The weights come through torchvision's weights API (``Weights.get_state_dict``) when a new run
starts (:func:`load_pretrained`), downloaded once with progress into
``$TORCH_HOME/hub/checkpoints``; a checkpoint of a trained run holds them all, so predicting,
explaining and exporting never need the file. Offline, or with a damaged file, one
CheckpointError line names the file and the folder.

Each backbone is a registered layer type (:mod:`.layers`) whose shape and cost rule is the
network's own: FLOPs counted once per input shape with ``torch.utils.flop_counter`` and cached.
"""

from __future__ import annotations

import functools
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import CheckpointError
from .layer_type import Field, LayerType, Shape, SpecError, Step
from .layers import register
from .v1 import num_outputs

BACKBONE_LR_SCALE = 0.1  # the pretrained part of a fine-tuned net learns 10x slower than its head
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Arch:
    """A torchvision network: its builder and weights enum names, the output width of its
    features and the classifier attribute the backbone drops."""

    name: str
    title: str
    builder: str  # torchvision.models attribute
    weights: str  # torchvision.models weights enum, IMAGENET1K_V1
    features: int
    head: str  # the attribute holding torchvision's classifier (replaced by Identity)


ARCHS = {
    a.name: a
    for a in (
        Arch(
            "mobilenet_v3_small",
            "MobileNetV3-small",
            "mobilenet_v3_small",
            "MobileNet_V3_Small_Weights",
            576,
            "classifier",
        ),
        Arch("resnet18", "ResNet-18", "resnet18", "ResNet18_Weights", 512, "fc"),
    )
}


def weights_of(arch: Arch) -> Any:
    """torchvision's ImageNet weights entry of ``arch`` (its url, transforms and meta)."""
    import torchvision.models as tvm

    return getattr(tvm, arch.weights).IMAGENET1K_V1


class Backbone(nn.Module):
    """Input adapter + a torchvision network's features + global pooling → ``[B, features]``."""

    arch: Arch
    mean: torch.Tensor  # buffers: ImageNet's channel statistics
    std: torch.Tensor

    def __init__(self, frozen: bool = True):
        super().__init__()
        import torchvision.models as tvm

        net = getattr(tvm, self.arch.builder)(weights=None)
        setattr(net, self.arch.head, nn.Identity())
        for module in net.modules():  # attribution methods hook activations: none in place
            if getattr(module, "inplace", False):
                module.inplace = False
        self.net = net
        self.frozen = frozen
        self.side = int(weights_of(self.arch).transforms().crop_size[0])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), False)
        self.net.requires_grad_(not frozen)

    @property
    def features(self) -> int:
        return self.arch.features

    def train(self, mode: bool = True) -> Backbone:
        """A frozen backbone stays in eval mode (its BatchNorm statistics as pretrained)."""
        return super().train(mode and not self.frozen)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-2:] != (self.side, self.side):
            x = F.interpolate(x, size=(self.side, self.side), mode="bilinear", align_corners=False)
        return self.net((x - self.mean) / self.std)

    def load_pretrained(self, progress: bool = True) -> None:
        """Load the ImageNet weights (downloaded on first use); CheckpointError naming the file
        and the TORCH_HOME folder when they cannot be had or read."""
        weights = weights_of(self.arch)
        path = weights_file(self.arch)
        try:
            state = weights.get_state_dict(progress=progress, check_hash=True, weights_only=True)
        except (OSError, RuntimeError, ValueError) as exc:  # offline, refused, bad hash
            if path.exists() and path.stat().st_size > 0:
                raise _unreadable(path, exc) from None
            reason = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(
                f"the ImageNet weights of {self.arch.title} are not here and could not be "
                f"downloaded ({reason}): put {path.name} (from {weights.url}) in {path.parent} "
                "— the TORCH_HOME folder's hub/checkpoints"
            ) from None
        except Exception as exc:  # a damaged file torch.load cannot read
            raise _unreadable(path, exc) from None
        state = {k: v for k, v in state.items() if not k.startswith(f"{self.arch.head}.")}
        try:
            self.net.load_state_dict(state)
        except (RuntimeError, KeyError, TypeError) as exc:
            raise _unreadable(path, exc) from None


def _unreadable(path: Path, exc: BaseException) -> CheckpointError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return CheckpointError(
        f"{path} is not a usable {path.stem.split('-')[0]} weights file ({first[:160]}); "
        "delete it to download it again"
    )


def weights_file(arch: Arch) -> Path:
    """Where torchvision keeps ``arch``'s weights: ``$TORCH_HOME/hub/checkpoints/<file>``."""
    url = weights_of(arch).url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


class MobileNetV3SmallBackbone(Backbone):
    arch = ARCHS["mobilenet_v3_small"]


class ResNet18Backbone(Backbone):
    arch = ARCHS["resnet18"]


CLASSES: dict[str, type[Backbone]] = {
    "mobilenet_v3_small": MobileNetV3SmallBackbone,
    "resnet18": ResNet18Backbone,
}


# ---- the registered layer types ---------------------------------------------------------------
@functools.cache
def _cost(name: str, frozen: bool, shape: Shape) -> Step:
    """The backbone's own Step for one image of ``shape``: FLOPs counted once by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    module = CLASSES[name](frozen=frozen).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(torch.zeros(1, *shape))
    params = sum(p.numel() for p in module.parameters())
    return Step((ARCHS[name].features,), params, int(counter.get_total_flops()))


def _rule(name: str) -> Callable[[dict[str, Any], Shape, int], Step]:
    def cost(layer: dict[str, Any], shape: Shape, _logits: int) -> Step:
        if shape[0] not in (1, 3):
            raise SpecError(f"{name} needs a grey or RGB image, but gets {shape[0]} channels")
        return _cost(name, bool(layer["frozen"]), tuple(shape))

    return cost


for _name, _cls in CLASSES.items():
    register(
        LayerType(
            _name,
            lambda layer, *_, cls=_cls: cls(frozen=layer["frozen"]),
            (_cls,),
            {"frozen": Field("bool", True, help="train the head only (false: the whole net)")},
            _rule(_name),
            from_module=lambda module: {"frozen": module.frozen},
            prefix="backbone",
            spatial=True,
            colour="#e377c2",
            group="pretrained backbone",
            note=f"ImageNet-pretrained {ARCHS[_name].title} features (input resized to 224 px)",
        )
    )


# ---- registered models and training helpers ------------------------------------------------------
def builder(name: str, frozen: bool) -> Callable[[int, int, int, float], nn.Module]:
    """The registry builder of backbone ``name`` with a new dropout + linear head."""

    def build(in_channels: int, image_size: int, num_classes: int, dropout: float) -> nn.Module:
        if in_channels not in (1, 3):
            raise SpecError(f"{name} needs grey or RGB images, not {in_channels} channels")
        backbone = CLASSES[name](frozen=frozen)
        return nn.Sequential(
            OrderedDict(
                backbone=backbone,
                dropout=nn.Dropout(dropout),
                classifier=nn.Linear(backbone.features, num_outputs(num_classes)),
            )
        )

    return build


def load_pretrained(model: nn.Module, progress: bool = True) -> None:
    """Load the ImageNet weights of every backbone in ``model`` (a new run's start)."""
    for module in model.modules():
        if isinstance(module, Backbone):
            module.load_pretrained(progress)


def param_groups(model: nn.Module) -> list[dict[str, Any]]:
    """The trainable parameters as optimizer groups, each with its ``lr_scale``: the rest at
    1 first (the learning rate a run records), then unfrozen backbones at
    :data:`BACKBONE_LR_SCALE`."""
    scaled = {id(p) for m in model.modules() if isinstance(m, Backbone) for p in m.parameters()}
    groups: dict[float, list[nn.Parameter]] = {}
    for p in model.parameters():
        if p.requires_grad:
            groups.setdefault(BACKBONE_LR_SCALE if id(p) in scaled else 1.0, []).append(p)
    return [
        {"params": params, "lr_scale": scale}
        for scale, params in sorted(groups.items(), reverse=True)
    ]
