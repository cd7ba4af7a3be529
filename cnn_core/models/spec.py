"""Architecture specs: a network as plain JSON, checked before anything runs, built into a model.

A spec is ``{"name": "my-net", "description": "...", "layers": [{"type": "conv", "out": 32,
"kernel": 5, "padding": "same"}, {"type": "relu"}, ...]}``. Input channels, the linear
layers' inputs and BatchNorm widths are inferred from the incoming shape, a ``linear`` without
``out`` has one output per logit, and a ``dropout`` without ``p`` takes the run's dropout, so
one spec fits any dataset. :func:`analyze` walks the shapes arithmetically (no torch) and
raises :class:`SpecError` naming the layer and its incoming shape; :func:`build` makes the
``nn.Sequential`` whose parameter names are the layer names.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from torch import nn

from ..errors import ConfigError
from .v1 import num_outputs
from .v4 import BasicBlock

MAX_LAYERS = 200
MAX_PARAMS = 25_000_000  # ~100 MB of float32 weights: far beyond what trains here in minutes
MAX_FLOPS = 20_000_000_000  # per image
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")
LAYER_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")
SPEC_FIELDS = ("name", "description", "layers")

# field -> (kind, default, low, high); kind "int", "float", "bool", "padding" (int or "same").
# A default of None means "derived": pool stride = kernel, linear out = the logits,
# dropout p = the run's dropout.
_KERNEL = ("int", 3, 1, 31)
_POOL = {"kernel": ("int", 2, 1, 31), "stride": ("int", None, 1, 31), "padding": ("int", 0, 0, 15)}
_DROPOUT = {"p": ("float", None, 0.0, 0.95)}
LAYER_TYPES: dict[str, dict[str, tuple]] = {
    "conv": {
        "out": ("int", None, 1, 4096),
        "kernel": _KERNEL,
        "stride": ("int", 1, 1, 16),
        "padding": ("padding", 0, 0, 31),
        "dilation": ("int", 1, 1, 16),
        "groups": ("int", 1, 1, 4096),
        "bias": ("bool", True, None, None),
    },
    "batchnorm": {},
    "relu": {},
    "leaky_relu": {"slope": ("float", 0.01, 0.0, 1.0)},
    "gelu": {},
    "sigmoid": {},
    "tanh": {},
    "maxpool": _POOL,
    "avgpool": _POOL,
    "adaptive_avgpool": {"size": ("int", 1, 1, 64)},
    "adaptive_maxpool": {"size": ("int", 1, 1, 64)},
    "dropout": _DROPOUT,
    "dropout2d": _DROPOUT,
    "flatten": {},
    "linear": {"out": ("int", None, 1, 100_000), "bias": ("bool", True, None, None)},
    "residual": {"out": ("int", None, 1, 4096), "stride": ("int", 1, 1, 4)},
}
REQUIRED = {"conv": ("out",), "residual": ("out",)}
PREFIX = {"batchnorm": "bn", "maxpool": "pool", "avgpool": "pool", "residual": "block"}
ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
}
SPATIAL_ONLY = ("conv", "maxpool", "avgpool", "adaptive_avgpool", "adaptive_maxpool", "dropout2d")
SPATIAL_ONLY += ("residual",)
Shape = tuple[int, ...]
_RESERVED = nn.Sequential()  # layer names must not shadow its attributes (forward, training, …)


class SpecError(ConfigError):
    """An invalid spec; ``layer`` is the 1-based index of the layer at fault (0: the spec)."""

    def __init__(self, message: str, layer: int = 0, layer_name: str = ""):
        where = f"layer {layer} ({layer_name})" if layer else "spec"
        super().__init__(where, message)
        self.layer = layer
        self.layer_name = layer_name


@dataclass(frozen=True)
class LayerInfo:
    """One analysed layer: its name and type, shapes in and out (no batch dim), cost."""

    index: int
    name: str
    type: str
    in_shape: Shape
    out_shape: Shape
    params: int
    flops: int


def shape_text(shape: Shape) -> str:
    return "×".join(map(str, shape))


# ---- structure ------------------------------------------------------------------------------
def _check_value(kind: str, value: Any, low: Any, high: Any) -> str | None:
    """None when ``value`` fits the field, else what is wrong with it."""
    if kind == "bool":
        return None if isinstance(value, bool) else "must be true or false"
    if kind == "padding" and value == "same":
        return None
    if kind == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or value != value:
            return "must be a number"
    elif isinstance(value, bool) or not isinstance(value, int):
        return 'must be a whole number or "same"' if kind == "padding" else "must be a whole number"
    if not low <= value <= high:
        return f"must be between {low} and {high}, got {value}"
    return None


def _check_layer(index: int, layer: Any, taken: set[str], counters: dict[str, int]) -> dict:
    """A layer with its name and every field filled in (defaults), or a SpecError."""
    if not isinstance(layer, dict):
        raise SpecError("must be an object with a 'type'", index, "?")
    kind = layer.get("type")
    raw_name = layer.get("name")
    label = next((x for x in (raw_name, kind) if isinstance(x, str) and x.strip()), "?")
    if kind not in LAYER_TYPES:
        raise SpecError(
            f"unknown layer type {kind!r}; choose one of {', '.join(LAYER_TYPES)}", index, label
        )
    fields = LAYER_TYPES[kind]
    unknown = sorted(set(layer) - set(fields) - {"type", "name"})
    if unknown:
        valid = ", ".join(["name", *fields]) or "name"
        raise SpecError(
            f"unknown field {unknown[0]!r} for {kind}; valid fields: {valid}", index, label
        )
    if raw_name is not None:
        if not isinstance(raw_name, str) or not LAYER_NAME_RE.fullmatch(raw_name):
            raise SpecError(
                "name must be a letter or _ then letters, digits or _ (≤ 40)", index, label
            )
        if raw_name in taken or hasattr(_RESERVED, raw_name):
            raise SpecError(f"the name {raw_name!r} is already taken", index, label)
        name = raw_name
    else:
        prefix = PREFIX.get(kind, kind)
        name = ""
        while not name or name in taken:
            counters[prefix] = counters.get(prefix, 0) + 1
            name = f"{prefix}{counters[prefix]}"
    out: dict[str, Any] = {"type": kind, "name": name}
    for field, (ftype, default, low, high) in fields.items():
        value = layer.get(field)
        if value is None:
            if field in REQUIRED.get(kind, ()):
                raise SpecError(f"{kind} needs '{field}'", index, name)
            out[field] = default
            continue
        problem = _check_value(ftype, value, low, high)
        if problem:
            raise SpecError(f"{field} {problem}", index, name)
        out[field] = value
    return out


def _given_name(layer: Any) -> str | None:
    name = layer.get("name") if isinstance(layer, dict) else None
    return name if isinstance(name, str) else None


def normalize(spec: Any) -> dict[str, Any]:
    """A checked copy of ``spec`` whose layers all have a name and every field (no shapes)."""
    if not isinstance(spec, dict):
        raise SpecError("must be an object with 'name' and 'layers'")
    unknown = sorted(set(spec) - set(SPEC_FIELDS))
    if unknown:
        raise SpecError(f"unknown field {unknown[0]!r}; valid fields: {', '.join(SPEC_FIELDS)}")
    name = spec.get("name")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise SpecError(
            "name must be 1-40 letters, digits, - or _ (starting with a letter or digit)"
        )
    description = spec.get("description", "")
    if not isinstance(description, str) or len(description) > 500:
        raise SpecError("description must be text of at most 500 characters")
    layers = spec.get("layers")
    if not isinstance(layers, list) or not 1 <= len(layers) <= MAX_LAYERS:
        raise SpecError(f"layers must be a list of 1 to {MAX_LAYERS} layers")
    explicit = {_given_name(x) for x in layers} - {None}
    taken: set[str] = set()
    counters: dict[str, int] = {}
    out = []
    for index, layer in enumerate(layers, start=1):
        checked = _check_layer(index, layer, taken | (explicit - {_given_name(layer)}), counters)
        taken.add(checked["name"])
        out.append(checked)
    return {"name": name, "description": description, "layers": out}


# ---- shapes and costs -----------------------------------------------------------------------
def _spatial(layer: dict, shape: Shape, kernel: int, stride: int, padding: int, reach: int) -> int:
    """Output side of a sliding window of effective size ``reach`` (SpecError if it cannot fit)."""
    side = shape[1]
    if side + 2 * padding < reach:
        raise SpecError(
            f"a {kernel}×{kernel} window (reaching {reach} px) does not fit the incoming "
            f"{shape_text(shape)} map with padding {padding}",
            0,
            layer["name"],
        )
    return (side + 2 * padding - reach) // stride + 1


def _conv(layer: dict, shape: Shape) -> tuple[Shape, int, int]:
    c, k, g, out = shape[0], layer["kernel"], layer["groups"], layer["out"]
    reach = layer["dilation"] * (k - 1) + 1
    pad = layer["padding"]
    if pad == "same":
        if reach % 2 == 0:
            raise SpecError(
                f'"same" padding needs an odd kernel reach, got {reach}', 0, layer["name"]
            )
        pad = reach // 2
    if c % g or out % g:
        raise SpecError(
            f"groups {g} must divide the incoming {c} channels and out {out}", 0, layer["name"]
        )
    side = _spatial(layer, shape, k, layer["stride"], pad, reach)
    params = out * (c // g) * k * k + (out if layer["bias"] else 0)
    return (out, side, side), params, 2 * out * side * side * (c // g) * k * k


def _pool(layer: dict, shape: Shape) -> Shape:
    k, pad = layer["kernel"], layer["padding"]
    if 2 * pad > k:
        raise SpecError(f"padding {pad} must be at most half the kernel {k}", 0, layer["name"])
    side = _spatial(layer, shape, k, layer["stride"] or k, pad, k)
    return (shape[0], side, side)


def _residual(layer: dict, shape: Shape) -> tuple[Shape, int, int]:
    c, out, stride = shape[0], layer["out"], layer["stride"]
    side = (shape[1] - 1) // stride + 1
    pixels = side * side
    params = out * c * 9 + out * out * 9 + 4 * out
    flops = 2 * out * pixels * (c + out) * 9
    if stride != 1 or c != out:  # 1×1 conv + BN shortcut
        params += out * c + 2 * out
        flops += 2 * out * pixels * c
    return (out, side, side), params, flops


def _step(layer: dict, shape: Shape, logits: int) -> tuple[Shape, int, int]:
    """Output shape, parameters and FLOPs of one normalised layer on ``shape``."""
    kind = layer["type"]
    if kind in SPATIAL_ONLY and len(shape) != 3:
        raise SpecError(f"{kind} needs a C×H×W map, but gets a flat {shape[0]}", 0, layer["name"])
    if kind == "conv":
        return _conv(layer, shape)
    if kind == "residual":
        return _residual(layer, shape)
    if kind in ("maxpool", "avgpool"):
        return _pool(layer, shape), 0, 0
    if kind.startswith("adaptive"):
        return (shape[0], layer["size"], layer["size"]), 0, 0
    if kind == "batchnorm":
        return shape, 2 * shape[0], 0
    if kind == "flatten":
        total = 1
        for d in shape:
            total *= d
        return (total,), 0, 0
    if kind == "linear":
        if len(shape) != 1:
            raise SpecError(
                f"linear needs a flat input: add a flatten before it (incoming {shape_text(shape)})",
                0,
                layer["name"],
            )
        out = layer["out"] or logits
        return (out,), shape[0] * out + (out if layer["bias"] else 0), 2 * shape[0] * out
    return shape, 0, 0  # activations, dropout


def analyze(
    spec: Any, in_channels: int, image_size: int, num_classes: int
) -> tuple[dict[str, Any], list[LayerInfo]]:
    """Validate ``spec`` for ``[in_channels, image_size, image_size]`` inputs and ``num_classes``.

    Returns the normalised spec and one :class:`LayerInfo` per layer; raises SpecError naming
    the layer (with its incoming shape) on any impossible shape, a missing classifier or a
    model over the parameter or FLOP budget.
    """
    norm = normalize(spec)
    logits = num_outputs(num_classes)
    shape: Shape = (in_channels, image_size, image_size)
    rows: list[LayerInfo] = []
    for index, layer in enumerate(norm["layers"], start=1):
        try:
            out, params, flops = _step(layer, shape, logits)
        except SpecError as exc:
            raise SpecError(exc.message, index, layer["name"]) from None
        rows.append(LayerInfo(index, layer["name"], layer["type"], shape, out, params, flops))
        shape = out
    last = rows[-1]
    if shape != (logits,):
        raise SpecError(
            f"the network must end in {logits} logit(s) but outputs {shape_text(shape)}: end with "
            "flatten and a linear without 'out'",
            last.index,
            last.name,
        )
    for total, limit, what in (
        (sum(r.params for r in rows), MAX_PARAMS, "parameters"),
        (sum(r.flops for r in rows), MAX_FLOPS, "FLOPs per image"),
    ):
        if total > limit:
            big = max(rows, key=lambda r: r.params if what == "parameters" else r.flops)
            raise SpecError(
                f"{total:,} {what} exceed the budget of {limit:,}; the largest layer is this one "
                f"(incoming {shape_text(big.in_shape)})",
                big.index,
                big.name,
            )
    return norm, rows


# ---- modules --------------------------------------------------------------------------------
def _module(layer: dict, in_shape: Shape, out_shape: Shape, dropout: float) -> nn.Module:
    kind = layer["type"]
    if kind == "conv":
        pad = layer["padding"]
        if pad == "same":
            pad = layer["dilation"] * (layer["kernel"] - 1) // 2
        return nn.Conv2d(
            in_shape[0],
            layer["out"],
            layer["kernel"],
            stride=layer["stride"],
            padding=pad,
            dilation=layer["dilation"],
            groups=layer["groups"],
            bias=layer["bias"],
        )
    if kind == "batchnorm":
        return nn.BatchNorm2d(in_shape[0]) if len(in_shape) == 3 else nn.BatchNorm1d(in_shape[0])
    if kind in ACTIVATIONS:
        return ACTIVATIONS[kind]()
    if kind == "leaky_relu":
        return nn.LeakyReLU(layer["slope"])
    if kind in ("maxpool", "avgpool"):
        pool = nn.MaxPool2d if kind == "maxpool" else nn.AvgPool2d
        return pool(
            layer["kernel"], stride=layer["stride"] or layer["kernel"], padding=layer["padding"]
        )
    if kind == "adaptive_avgpool":
        return nn.AdaptiveAvgPool2d(layer["size"])
    if kind == "adaptive_maxpool":
        return nn.AdaptiveMaxPool2d(layer["size"])
    if kind in ("dropout", "dropout2d"):
        p = dropout if layer["p"] is None else layer["p"]
        return nn.Dropout(p) if kind == "dropout" else nn.Dropout2d(p)
    if kind == "flatten":
        return nn.Flatten()
    if kind == "linear":
        return nn.Linear(in_shape[0], out_shape[0], bias=layer["bias"])
    return BasicBlock(in_shape[0], layer["out"], stride=layer["stride"])  # residual


def build(
    spec: Any, in_channels: int, image_size: int, num_classes: int, dropout: float = 0.5
) -> nn.Sequential:
    """The model a (valid) spec describes; SpecError before anything is built otherwise."""
    norm, rows = analyze(spec, in_channels, image_size, num_classes)
    modules = [
        (layer["name"], _module(layer, row.in_shape, row.out_shape, dropout))
        for layer, row in zip(norm["layers"], rows, strict=True)
    ]
    return nn.Sequential(OrderedDict(modules))
