"""The registry of layer types: one :class:`LayerType` record per type of the spec language.

Adding a layer type is one :func:`register` call (here for the built-in ones): spec checking,
shapes and costs, building, summaries, diagrams, the Builder's table, conversion of a torch
model back to a spec and the README's table of layer types all read :data:`LAYER_TYPES`.
"""

from __future__ import annotations

import math
import re
from typing import Any

from torch import nn

from ..errors import ConfigError
from .layer_type import FIELD_KINDS, Field, LayerType, Part, Shape, SpecError, Step, shape_text
from .v4 import BasicBlock

LAYER_TYPES: dict[str, LayerType] = {}
TYPE_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,29}")


def register(kind: LayerType) -> LayerType:
    """Add ``kind`` to the registry (ValueError if it clashes with a registered type)."""
    if not TYPE_NAME_RE.fullmatch(kind.name) or kind.name in LAYER_TYPES:
        raise ValueError(f"layer type name {kind.name!r} is invalid or taken")
    kinds = spec_fields()
    for name, spec_field in kind.fields.items():
        if name in ("type", "name") or spec_field.kind not in FIELD_KINDS:
            raise ValueError(f"{kind.name}: field {name!r} of kind {spec_field.kind!r}")
        if _column({kinds.get(name, spec_field.kind), spec_field.kind}) is None:
            raise ValueError(f"{kind.name}: field {name!r} is a {kinds[name]} elsewhere")
    claimed = {cls for other in LAYER_TYPES.values() for cls in other.modules}
    if not kind.modules or claimed & set(kind.modules):
        raise ValueError(f"{kind.name}: its torch classes are missing or taken")
    LAYER_TYPES[kind.name] = kind
    return kind


def _column(kinds: set[str]) -> str | None:
    """The one kind a field name has across types (an int field may share a name with a
    padding field, which also takes whole numbers); None if they cannot share a column."""
    return kinds.pop() if len(kinds) == 1 else "padding" if kinds == {"int", "padding"} else None


def spec_fields() -> dict[str, str]:
    """Every field name of every type, in registry order, with the kind its values share."""
    kinds: dict[str, set[str]] = {}
    for kind in LAYER_TYPES.values():
        for name, spec_field in kind.fields.items():
            kinds.setdefault(name, set()).add(spec_field.kind)
    return {name: _column(found) or "" for name, found in kinds.items()}


def type_of(module: nn.Module) -> LayerType | None:
    """The layer type a torch module converts back to: the one claiming its class or the
    nearest base class (the trainer's faster dropout is a dropout); None if there is none."""
    by_class = {cls: kind for kind in LAYER_TYPES.values() for cls in kind.modules}
    return next((by_class[c] for c in type(module).__mro__ if c in by_class), None)


def filled(kind: str, name: str, **values: Any) -> dict[str, Any]:
    """A normalised layer of ``kind``: ``values`` and the defaults of every other field."""
    fields = LAYER_TYPES[kind].fields
    return {"type": kind, "name": name, **{f: values.get(f, s.default) for f, s in fields.items()}}


def layer_table() -> str:
    """The README's table of layer types and their fields (markdown)."""
    lines = ["| type | fields |", "| --- | --- |"]
    for kind in LAYER_TYPES.values():
        fields = ", ".join(f"`{n}` {_readme_default(f)}" for n, f in kind.fields.items())
        note = f"— {kind.note}" if kind.note else ""
        lines.append(f"| `{kind.name}` | {' '.join(x for x in (fields, note) if x) or '—'} |")
    return "\n".join(lines)


def _readme_default(spec_field: Field) -> str:
    text = spec_field.default_text()
    if spec_field.required:
        return f"({text})"
    if spec_field.derived:
        return f"(default: {text})"
    return f'{text} or `"same"`' if spec_field.kind == "padding" else text


def _pair(value: Any) -> int:
    """A square kernel/stride/padding as one int (torch stores pairs)."""
    if isinstance(value, tuple):
        if len(set(value)) != 1:
            raise ConfigError("model", f"non-square {value} has no spec equivalent")
        return int(value[0])
    return int(value)


# ---- shape rules ------------------------------------------------------------------------------
def _side(shape: Shape, kernel: int, stride: int, padding: int, reach: int) -> int:
    """Output side of a sliding window of effective size ``reach`` (SpecError if it cannot fit)."""
    if shape[1] + 2 * padding < reach:
        raise SpecError(
            f"a {kernel}×{kernel} window (reaching {reach} px) does not fit the incoming "
            f"{shape_text(shape)} map with padding {padding}"
        )
    return (shape[1] + 2 * padding - reach) // stride + 1


def _conv_padding(layer: dict[str, Any]) -> int:
    reach = layer["dilation"] * (layer["kernel"] - 1) + 1
    if layer["padding"] != "same":
        return layer["padding"]
    if reach % 2 == 0:
        raise SpecError(f'"same" padding needs an odd kernel reach, got {reach}')
    return reach // 2


def _conv(layer: dict[str, Any], shape: Shape, _logits: int) -> Step:
    c, k, g, out = shape[0], layer["kernel"], layer["groups"], layer["out"]
    reach = layer["dilation"] * (k - 1) + 1
    pad = _conv_padding(layer)
    if c % g or out % g:
        raise SpecError(f"groups {g} must divide the incoming {c} channels and out {out}")
    side = _side(shape, k, layer["stride"], pad, reach)
    params = out * (c // g) * k * k + (out if layer["bias"] else 0)
    return Step((out, side, side), params, 2 * out * side * side * (c // g) * k * k)


def _build_conv(layer: dict[str, Any], in_shape: Shape, _out: Shape, _dropout: float) -> nn.Module:
    return nn.Conv2d(
        in_shape[0],
        layer["out"],
        layer["kernel"],
        stride=layer["stride"],
        padding=_conv_padding(layer),
        dilation=layer["dilation"],
        groups=layer["groups"],
        bias=layer["bias"],
    )


def _conv_fields(module: nn.Conv2d) -> dict[str, Any]:
    return {
        "out": module.out_channels,
        "kernel": _pair(module.kernel_size),
        "stride": _pair(module.stride),
        "padding": _pair(module.padding),
        "dilation": _pair(module.dilation),
        "groups": module.groups,
        "bias": module.bias is not None,
    }


def _pool(layer: dict[str, Any], shape: Shape, _logits: int) -> Step:
    k, pad = layer["kernel"], layer["padding"]
    if 2 * pad > k:
        raise SpecError(f"padding {pad} must be at most half the kernel {k}")
    return Step((shape[0], *[_side(shape, k, layer["stride"] or k, pad, k)] * 2), 0, 0)


def _pool_type(name: str, cls: type[nn.MaxPool2d | nn.AvgPool2d]) -> LayerType:
    def from_module(module: Any) -> dict[str, Any]:
        kernel, stride = _pair(module.kernel_size), _pair(module.stride)
        stride_field = None if stride == kernel else stride
        return {"kernel": kernel, "stride": stride_field, "padding": _pair(module.padding)}

    return LayerType(
        name,
        lambda layer, *_: cls(
            layer["kernel"], stride=layer["stride"] or layer["kernel"], padding=layer["padding"]
        ),
        (cls,),
        {
            "kernel": Field("int", 2, 1, 31, "window side"),
            "stride": Field("int", None, 1, 31, "step", derived="the kernel"),
            "padding": Field("int", 0, 0, 15, "pixels added on each side"),
        },
        _pool,
        from_module=from_module,
        prefix="pool",
        spatial=True,
        feature=True,
        colour="#ff7f0e",
        group="pooling",
    )


def _adaptive_type(name: str, cls: type[nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d]) -> LayerType:
    return LayerType(
        name,
        lambda layer, *_: cls(layer["size"]),
        (cls,),
        {"size": Field("int", 1, 1, 64, "output side")},
        lambda layer, shape, _: Step((shape[0], layer["size"], layer["size"]), 0, 0),
        from_module=lambda module: {"size": _pair(module.output_size)},
        note="global pooling when 1",
        spatial=True,
        feature=True,
        colour="#e6a100",
        group="adaptive pooling",
    )


def _activation(name: str, cls: type[nn.Module], feature: bool = True) -> LayerType:
    return LayerType(name, lambda *_: cls(), (cls,), feature=feature)


def _dropout_type(name: str, cls: type[nn.Dropout | nn.Dropout2d], spatial: bool) -> LayerType:
    """``p`` is not read back from a module: a converted model's dropout follows the run's."""
    return LayerType(
        name,
        lambda layer, _in, _out, dropout: cls(dropout if layer["p"] is None else layer["p"]),
        (cls,),
        {"p": Field("float", None, 0.0, 0.95, "probability", "the run's dropout")},
        spatial=spatial,
        colour="#c7c7c7",
        group="dropout",
    )


def _flatten(_layer: dict[str, Any], shape: Shape, _logits: int) -> Step:
    return Step((math.prod(shape),), 0, 0)


def _linear(layer: dict[str, Any], shape: Shape, logits: int) -> Step:
    if len(shape) != 1:
        raise SpecError(
            f"linear needs a flat input: add a flatten before it (incoming {shape_text(shape)})"
        )
    out = layer["out"] or logits
    return Step((out,), shape[0] * out + (out if layer["bias"] else 0), 2 * shape[0] * out)


def _residual_parts(layer: dict[str, Any], shape: Shape) -> list[Part]:
    """The leaves of v4's :class:`BasicBlock`, named as in it, in the order its forward runs."""
    out, stride = layer["out"], layer["stride"]
    three = {"out": out, "kernel": 3, "padding": 1, "bias": False}
    parts = [
        Part(filled("conv", "conv1", stride=stride, **three)),
        Part(filled("batchnorm", "bn1")),
        Part(filled("relu", "relu1")),
        Part(filled("conv", "conv2", **three)),
        Part(filled("batchnorm", "bn2")),
    ]
    if stride != 1 or shape[0] != out:  # 1×1 conv + BN shortcut
        one = filled("conv", "shortcut.conv", out=out, kernel=1, stride=stride, bias=False)
        parts += [Part(one, from_input=True), Part(filled("batchnorm", "shortcut.bn"))]
    return [*parts, Part(filled("relu", "relu2"))]


for _kind in (
    LayerType(
        "conv",
        _build_conv,
        (nn.Conv2d,),
        {
            "out": Field("int", None, 1, 4096, "output channels"),
            "kernel": Field("int", 3, 1, 31, "window side"),
            "stride": Field("int", 1, 1, 16, "step"),
            "padding": Field("padding", 0, 0, 31, 'pixels added on each side, or "same"'),
            "dilation": Field("int", 1, 1, 16, "gap between kernel taps"),
            "groups": Field("int", 1, 1, 4096, "grouped convolution"),
            "bias": Field("bool", True, help="learned bias"),
        },
        _conv,
        from_module=_conv_fields,
        spatial=True,
        feature=True,
        colour="#1f77b4",
        group="conv",
    ),
    LayerType(
        "batchnorm",
        lambda _layer, shape, *_: (nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d)(shape[0]),
        (nn.BatchNorm2d, nn.BatchNorm1d),
        cost=lambda _layer, shape, _: Step(shape, 2 * shape[0], 0),
        prefix="bn",
        colour="#8c564b",
        group="BatchNorm",
        note="2-D on maps, 1-D after `flatten`",
    ),
    _activation("relu", nn.ReLU),
    LayerType(
        "leaky_relu",
        lambda layer, *_: nn.LeakyReLU(layer["slope"]),
        (nn.LeakyReLU,),
        {"slope": Field("float", 0.01, 0.0, 1.0, "negative slope")},
        from_module=lambda module: {"slope": module.negative_slope},
        feature=True,
    ),
    _activation("gelu", nn.GELU),
    _activation("sigmoid", nn.Sigmoid, feature=False),
    _activation("tanh", nn.Tanh, feature=False),
    _pool_type("maxpool", nn.MaxPool2d),
    _pool_type("avgpool", nn.AvgPool2d),
    _adaptive_type("adaptive_avgpool", nn.AdaptiveAvgPool2d),
    _adaptive_type("adaptive_maxpool", nn.AdaptiveMaxPool2d),
    _dropout_type("dropout", nn.Dropout, spatial=False),
    _dropout_type("dropout2d", nn.Dropout2d, spatial=True),
    LayerType(
        "flatten",
        lambda *_: nn.Flatten(),
        (nn.Flatten,),
        cost=_flatten,
        colour="#7f7f7f",
        group="flatten",
    ),
    LayerType(
        "linear",
        lambda layer, in_shape, out_shape, _: nn.Linear(
            in_shape[0], out_shape[0], bias=layer["bias"]
        ),
        (nn.Linear,),
        {
            "out": Field("int", None, 1, 100_000, "output units", "one per logit"),
            "bias": Field("bool", True, help="learned bias"),
        },
        _linear,
        from_module=lambda module: {"out": module.out_features, "bias": module.bias is not None},
        colour="#9467bd",
        group="linear",
    ),
    LayerType(
        "residual",
        lambda layer, in_shape, *_: BasicBlock(in_shape[0], layer["out"], stride=layer["stride"]),
        (BasicBlock,),
        {
            "out": Field("int", None, 1, 4096, "output channels"),
            "stride": Field("int", 1, 1, 4, "step"),
        },
        parts=_residual_parts,
        from_module=lambda m: {"out": m.conv1.out_channels, "stride": _pair(m.conv1.stride)},
        prefix="block",
        spatial=True,
        colour="#17becf",
        group="residual block",
        note="v4's basic block (two 3×3 conv+BN, 1×1 shortcut when needed)",
    ),
):
    register(_kind)
