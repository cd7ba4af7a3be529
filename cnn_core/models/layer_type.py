"""What a layer type is: one record holding everything the code knows about it.

A :class:`LayerType` has its spec fields (kind, default, bounds, help), its shape-and-cost
rule, its builder, the torch classes that convert back to it and its diagram facts. The
registry of every type is :mod:`.layers`; spec checking, building, summaries, diagrams, the
Builder's table and conversion all read it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from torch import nn

from ..errors import ConfigError

Shape = tuple[int, ...]
FIELD_KINDS = ("int", "float", "bool", "padding")  # padding: a whole number or "same"


class SpecError(ConfigError):
    """An invalid spec; ``layer`` is the 1-based index of the layer at fault (0: the spec)."""

    def __init__(self, message: str, layer: int = 0, layer_name: str = ""):
        where = f"layer {layer} ({layer_name})" if layer else "spec"
        super().__init__(where, message)
        self.layer = layer
        self.layer_name = layer_name


def shape_text(shape: Shape) -> str:
    """``32×14×14`` for a map, ``10`` for a vector."""
    return "×".join(map(str, shape))


@dataclass(frozen=True)
class Field:
    """One spec field of a layer type. ``default`` None with ``derived`` text: the value comes
    from elsewhere (the kernel, the logits, the run's dropout); None without it: required."""

    kind: str
    default: Any = None
    low: Any = None
    high: Any = None
    help: str = ""
    derived: str = ""

    @property
    def required(self) -> bool:
        return self.default is None and not self.derived

    def problem(self, value: Any) -> str | None:
        """None when ``value`` fits the field, else what is wrong with it."""
        if self.kind == "bool":
            return None if isinstance(value, bool) else "must be true or false"
        if self.kind == "padding" and value == "same":
            return None
        if self.kind == "float":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not ok or value != value:
                return "must be a number"
        elif isinstance(value, bool) or not isinstance(value, int):
            padding = self.kind == "padding"
            return 'must be a whole number or "same"' if padding else "must be a whole number"
        if not self.low <= value <= self.high:
            return f"must be between {self.low} and {self.high}, got {value}"
        return None

    def default_text(self) -> str:
        """What an empty value means: ``required``, a derivation or the default value."""
        if self.required:
            return "required"
        if self.derived:
            return self.derived
        return str(self.default).lower() if self.kind == "bool" else str(self.default)


class Step(NamedTuple):
    """What one layer does to one image: its output shape, parameters and FLOPs."""

    shape: Shape
    params: int
    flops: int


@dataclass(frozen=True)
class Part:
    """One leaf of a composite layer, a normalised layer named as the module inside it;
    ``from_input``: it reads the composite's input (a shortcut), not the previous part's output."""

    layer: dict[str, Any]
    from_input: bool = False


Builder = Callable[[dict[str, Any], Shape, Shape, float], nn.Module]
CostRule = Callable[[dict[str, Any], Shape, int], Step]


def keep_shape(_layer: dict[str, Any], shape: Shape, _logits: int) -> Step:
    """The rule of a layer without weights that keeps its input's shape."""
    return Step(shape, 0, 0)


@dataclass(frozen=True)
class LayerType:
    """A layer type of the spec language.

    ``cost(layer, in_shape, logits)`` gives the :class:`Step` of a normalised layer or raises
    SpecError (the layer's position is added by the caller); a composite gives ``parts``
    instead and its cost is theirs. ``build(layer, in_shape, out_shape, dropout)`` makes the
    module; ``from_module`` reads the fields back from one of ``modules`` (values equal to the
    defaults are dropped by the caller). ``spatial``: needs a C×H×W input; ``feature``: its
    output is a feature map worth showing (Explain, Grad-CAM); ``colour`` and ``group`` are
    its diagram block's fill and legend entry; ``note`` goes in the README's table.
    """

    name: str
    build: Builder
    modules: tuple[type[nn.Module], ...]
    fields: dict[str, Field] = field(default_factory=dict)
    cost: CostRule = keep_shape
    parts: Callable[[dict[str, Any], Shape], list[Part]] | None = None
    from_module: Callable[[Any], dict[str, Any]] = lambda _module: {}
    prefix: str = ""
    spatial: bool = False
    feature: bool = False
    colour: str = "#2ca02c"
    group: str = "activation"
    note: str = ""

    @property
    def name_prefix(self) -> str:
        """Automatic layer names are this plus a counter (``conv1``, ``bn2``)."""
        return self.prefix or self.name
