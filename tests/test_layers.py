"""The layer-type registry: one record per type, proven against torch on every registered model,
and a new type registered in one place is checked, built, drawn, converted and trained."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from cnn_core.models import MODELS, architecture, create_model, describe_model
from cnn_core.models.convert import spec_from_model
from cnn_core.models.layer_type import Field, LayerType, Step
from cnn_core.models.layers import LAYER_TYPES, layer_table, register
from cnn_core.models.spec import SpecError, analyze, build, leaves
from cnn_core.models.summary import blocks_from_layers, diagram_blocks, feature_layers, summarize
from cnn_core.speed import prepare_model
from cnn_core.trainer import fit
from tests.conftest import small_fashion_config
from tests.layer_oracle import measured_blocks, measured_leaves
from ui import spec_editor
from ui.diagram import network_figure

FAMILIES = [(1, 28, 10), (3, 64, 2), (3, 32, 5), (1, 17, 3)]
README = Path(__file__).resolve().parents[1] / "README.md"


def _leaf_table(summary: dict) -> list[dict]:
    return [{k: row[k] for k in ("name", "output_shape", "params", "flops")} for row in summary]


# ---- one calculator, proven equal to torch ---------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: "x".join(map(str, f)))
@pytest.mark.parametrize("name", list(MODELS))
def test_the_arithmetic_equals_torch_on_every_registered_model(name, family):
    channels, size, classes = family
    model = create_model(name, channels, size, classes)
    summary = summarize(model, channels, size)
    assert _leaf_table(summary["layers"]) == measured_leaves(model, channels, size)
    assert summary["params"] == sum(p.numel() for p in model.parameters())
    blocks = [
        {k: b[k] for k in ("name", "shape", "params", "flops")}
        for b in diagram_blocks(model, channels, size)
    ]
    assert blocks[1:] == measured_blocks(model, channels, size)
    _, rows = analyze(architecture(name, channels, size, classes), channels, size, classes)
    assert blocks_from_layers(rows, channels, size) == diagram_blocks(model, channels, size)


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize(("channels", "out"), [(4, 4), (4, 8), (3, 6)])
def test_residual_blocks_equal_torch_for_every_shortcut(channels, out, stride):
    spec = {
        "name": "res",
        "layers": [
            {"type": "residual", "out": out, "stride": stride},
            {"type": "residual", "out": out},
            {"type": "flatten"},
            {"type": "linear"},
        ],
    }
    _, rows = analyze(spec, channels, 13, 3)
    model = build(spec, channels, 13, 3)
    table = [
        {"name": r.name, "output_shape": list(r.out_shape), "params": r.params, "flops": r.flops}
        for r in leaves(rows)
    ]
    assert table == measured_leaves(model, channels, 13)
    assert [r.name for r in rows[0].parts][-3:] == (
        ["block1.shortcut.conv", "block1.shortcut.bn", "block1.relu2"]
        if stride != 1 or channels != out
        else ["block1.conv2", "block1.bn2", "block1.relu2"]
    )


def test_a_model_prepared_for_training_reads_back_the_same():
    """The trainer swaps in subclasses (a faster dropout): they count as their base type."""
    model = create_model("v1", 3, 64, 2, dropout=0.3)
    prepared = prepare_model(create_model("v1", 3, 64, 2, dropout=0.3), torch.device("cpu"))
    assert any(type(m) is not nn.Dropout and isinstance(m, nn.Dropout) for m in prepared.modules())
    assert summarize(prepared, 3, 64) == summarize(model, 3, 64)
    assert spec_from_model(prepared, "x") == spec_from_model(model, "x")


def test_the_readme_table_of_layer_types_is_the_registry():
    assert layer_table() in README.read_text(), "paste cnn_core.models.layers.layer_table()"


def test_register_refuses_a_clash():
    relu = LAYER_TYPES["relu"]
    with pytest.raises(ValueError, match="taken"):
        register(LayerType("relu", relu.build, (nn.SiLU,)))
    with pytest.raises(ValueError, match="torch classes"):
        register(LayerType("relu_again", relu.build, (nn.ReLU,)))
    with pytest.raises(ValueError, match="'out' is a int elsewhere"):
        register(LayerType("odd", relu.build, (nn.SiLU,), {"out": Field("float", 1.0, 0, 2)}))
    assert "relu_again" not in LAYER_TYPES and "odd" not in LAYER_TYPES


# ---- a toy layer type, registered in this one place --------------------------------------------
class Scale(nn.Module):
    """Multiplies each channel by its own learned factor."""

    def __init__(self, channels: int, init: float):
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight.view(-1, *[1] * (x.dim() - 2))


@pytest.fixture
def scale_type():
    kind = register(
        LayerType(
            "scale",
            lambda layer, in_shape, *_: Scale(in_shape[0], layer["init"]),
            (Scale,),
            {"init": Field("float", 1.0, 0.0, 10.0, "starting factor")},
            lambda _layer, shape, _logits: Step(shape, shape[0], math.prod(shape)),
            colour="#123456",
            group="scaling",
        )
    )
    yield kind
    del LAYER_TYPES[kind.name]


TOY = {
    "name": "toy-net",
    "layers": [
        {"type": "conv", "out": 4, "padding": "same"},
        {"type": "scale", "init": 0.5},
        {"type": "relu"},
        {"type": "maxpool"},
        {"type": "flatten"},
        {"type": "scale"},
        {"type": "linear"},
    ],
}


def test_a_registered_toy_layer_is_checked_built_drawn_and_trained(scale_type, fashion_small):
    # checked
    norm, rows = analyze(TOY, 1, 28, 10)
    assert [r.name for r in rows][1:6:4] == ["scale1", "scale2"]
    assert (rows[1].params, rows[1].flops) == (4, 4 * 28 * 28)
    assert norm["layers"][5]["init"] == 1.0  # the default filled in
    bad = json.loads(json.dumps(TOY))
    bad["layers"][1]["init"] = 11
    with pytest.raises(SpecError, match=r"layer 2 \(scale1\): .*init must be between 0.0 and 10.0"):
        analyze(bad, 1, 28, 10)
    bad["layers"][1] = {"type": "scale", "gain": 2}
    with pytest.raises(SpecError, match="valid fields: name, init"):
        analyze(bad, 1, 28, 10)

    # built, summarised and read back as a spec
    model = build(TOY, 1, 28, 10)
    assert isinstance(model.scale1, Scale) and model.scale1.weight.tolist() == [0.5] * 4
    assert summarize(model, 1, 28)["params"] == sum(p.numel() for p in model.parameters())
    assert [layer["type"] for layer in spec_from_model(model, "back")["layers"]] == [
        layer["type"] for layer in TOY["layers"]
    ]
    assert "scale1" not in [name for name, _ in feature_layers(model)]

    # drawn, and editable in the Builder's table
    blocks = blocks_from_layers(rows, 1, 28)
    assert blocks == diagram_blocks(model, 1, 28)
    figure = network_figure(blocks)
    assert [s.fillcolor for s in figure.layout.shapes].count("#123456") == 2
    assert "scaling" in {trace.name for trace in figure.data}
    frame = spec_editor.layers_to_frame(TOY["layers"])
    assert "init" in frame.columns
    assert spec_editor.frame_to_layers(frame) == TOY["layers"]

    # trained: a couple of optimizer steps move its factors
    config = small_fashion_config(model="toy-net", model_spec=TOY, batch_size=500, threads=1)
    result = fit(config, data=fashion_small)
    assert result.completed and math.isfinite(result.history[-1]["train_loss"])
    trained = result.state.model
    assert not torch.equal(trained.scale1.weight.detach().cpu(), torch.full((4,), 0.5))
    assert describe_model("toy-net", 1, 28, 10, spec=TOY)["layers"][1]["type"] == "scale"
