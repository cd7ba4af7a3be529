"""Architecture specs: a network as plain JSON, checked before anything runs, built into a model.

A spec is ``{"name": "my-net", "description": "...", "layers": [{"type": "conv", "out": 32,
"kernel": 5, "padding": "same"}, {"type": "relu"}, ...]}``. Input channels, the linear
layers' inputs and BatchNorm widths are inferred from the incoming shape, a ``linear`` without
``out`` has one output per logit, and a ``dropout`` without ``p`` takes the run's dropout, so
one spec fits any dataset. :func:`analyze` walks the shapes arithmetically (no torch) and
raises :class:`SpecError` naming the layer and its incoming shape; :func:`build` makes the
``nn.Sequential`` whose parameter names are the layer names. Each layer type's fields, shape
and cost rule and builder are its record in :mod:`.layers`; :func:`walk` is the one shape and
cost calculator (summaries and diagrams of built models use it too).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

from torch import nn

from .layer_type import Shape, SpecError, Step, shape_text
from .layers import LAYER_TYPES
from .v1 import num_outputs

__all__ = [
    "LayerInfo",
    "SpecError",
    "analyze",
    "build",
    "leaves",
    "normalize",
    "shape_text",
    "walk",
]

MAX_LAYERS = 200
MAX_PARAMS = 25_000_000  # ~100 MB of float32 weights: far beyond what trains here in minutes
MAX_FLOPS = 20_000_000_000  # per image
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")
LAYER_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")
SPEC_FIELDS = ("name", "description", "layers")
_RESERVED = nn.Sequential()  # layer names must not shadow its attributes (forward, training, …)


@dataclass(frozen=True)
class LayerInfo:
    """One analysed layer: its name and type, shapes in and out (no batch dim), cost; a
    composite layer's ``parts`` are its leaves (named ``block1.conv1``), whose costs it sums."""

    index: int
    name: str
    type: str
    in_shape: Shape
    out_shape: Shape
    params: int
    flops: int
    parts: tuple[LayerInfo, ...] = ()


# ---- structure ------------------------------------------------------------------------------
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
    fields = LAYER_TYPES[kind].fields
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
        prefix = LAYER_TYPES[kind].name_prefix
        name = ""
        while not name or name in taken:
            counters[prefix] = counters.get(prefix, 0) + 1
            name = f"{prefix}{counters[prefix]}"
    out: dict[str, Any] = {"type": kind, "name": name}
    for field, spec_field in fields.items():
        value = layer.get(field)
        if value is None:
            if spec_field.required:
                raise SpecError(f"{kind} needs '{field}'", index, name)
            out[field] = spec_field.default
            continue
        problem = spec_field.problem(value)
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
    explicit = {n for x in layers if (n := _given_name(x)) is not None}
    taken: set[str] = set()
    counters: dict[str, int] = {}
    out = []
    for index, layer in enumerate(layers, start=1):
        checked = _check_layer(index, layer, taken | (explicit - {_given_name(layer)}), counters)
        taken.add(checked["name"])
        out.append(checked)
    return {"name": name, "description": description, "layers": out}


# ---- shapes and costs: the one calculator -----------------------------------------------------
def _step(layer: dict, shape: Shape, logits: int) -> tuple[Step, tuple[LayerInfo, ...]]:
    """The Step of one normalised layer on ``shape``, and a composite's leaf rows."""
    kind = LAYER_TYPES[layer["type"]]
    if kind.spatial and len(shape) != 3:
        raise SpecError(f"{kind.name} needs a C×H×W map, but gets a flat {shape[0]}")
    if kind.parts is None:
        return kind.cost(layer, shape, logits), ()
    rows: list[LayerInfo] = []
    current = shape
    for part in kind.parts(layer, shape):
        source = shape if part.from_input else current
        step, inner = _step(part.layer, source, logits)
        own = LayerInfo(0, part.layer["name"], part.layer["type"], source, *step)
        rows += [replace(r, name=f"{layer['name']}.{r.name}") for r in inner or (own,)]
        current = step.shape
    return Step(current, sum(r.params for r in rows), sum(r.flops for r in rows)), tuple(rows)


def walk(layers: list[dict[str, Any]], in_shape: Shape, logits: int) -> list[LayerInfo]:
    """One :class:`LayerInfo` per normalised layer, from ``in_shape`` on (no torch): the shapes,
    parameters and FLOPs every summary, diagram and check uses. ``logits`` sizes a linear
    without ``out``. SpecError names the layer at fault and its position."""
    shape, rows = in_shape, []
    for index, layer in enumerate(layers, start=1):
        try:
            step, parts = _step(layer, shape, logits)
        except SpecError as exc:
            raise SpecError(exc.message, index, layer["name"]) from None
        parts = tuple(replace(p, index=index) for p in parts)
        rows.append(LayerInfo(index, layer["name"], layer["type"], shape, *step, parts))
        shape = step.shape
    return rows


def leaves(rows: list[LayerInfo]) -> list[LayerInfo]:
    """The rows with each composite replaced by its parts, in forward order."""
    return [leaf for row in rows for leaf in (row.parts or (row,))]


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
    rows = walk(norm["layers"], (in_channels, image_size, image_size), logits)
    last = rows[-1]
    if last.out_shape != (logits,):
        raise SpecError(
            f"the network must end in {logits} logit(s) but outputs {shape_text(last.out_shape)}: "
            "end with flatten and a linear without 'out'",
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
def build(
    spec: Any, in_channels: int, image_size: int, num_classes: int, dropout: float = 0.5
) -> nn.Sequential:
    """The model a (valid) spec describes; SpecError before anything is built otherwise."""
    norm, rows = analyze(spec, in_channels, image_size, num_classes)
    modules = [
        (row.name, LAYER_TYPES[row.type].build(layer, row.in_shape, row.out_shape, dropout))
        for layer, row in zip(norm["layers"], rows, strict=True)
    ]
    return nn.Sequential(OrderedDict(modules))
