"""Architecture specs: v1–v4 as specs, property tests of validation vs. torch, the saved-spec
store, runs that carry their spec, and the spec CLI."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnn_core import compare
from cnn_core.config import TrainConfig
from cnn_core.errors import ConfigError
from cnn_core.models import (
    MODELS,
    PRETRAINED,
    architecture,
    create_model,
    describe_model,
    model_names,
    num_outputs,
)
from cnn_core.models.backbones import CLASSES as BACKBONE_CLASSES
from cnn_core.models.layers import LAYER_TYPES
from cnn_core.models.saved import delete_saved, load_saved, save_spec, saved_names, specs_dir
from cnn_core.models.spec import SpecError, analyze, build, leaves
from cnn_core.models.summary import (
    blocks_from_layers,
    count_params,
    diagram_blocks,
    summarize,
    time_training_step,
)
from cnn_core.predict import Predictor
from cnn_core.resolve import resolve
from cnn_core.runs import api
from cnn_core.runs.exporters import export_run
from cnn_core.sweeps.space import validate_space
from tests.layer_oracle import measured_blocks, measured_leaves
from tests.run_fixtures import cli_here, finished_run

FAMILIES = [(1, 28, 10), (3, 64, 2), (3, 32, 5), (1, 64, 3)]
SMALL = {
    "name": "tiny",
    "layers": [
        {"type": "conv", "out": 8, "kernel": 3, "padding": "same"},
        {"type": "relu"},
        {"type": "maxpool"},
        {"type": "flatten"},
        {"type": "linear"},
    ],
}


# ---- v1–v4 as specs -------------------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: "x".join(map(str, f)))
@pytest.mark.parametrize("name", list(MODELS))
def test_registered_models_as_specs_have_identical_parameters(name, family):
    channels, size, classes = family
    spec = json.loads(json.dumps(architecture(name, channels, size, classes)))  # plain JSON
    original = create_model(name, channels, size, classes)
    rebuilt = build(spec, channels, size, classes)
    shapes = {k: v.shape for k, v in original.state_dict().items()}
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == shapes
    rebuilt.load_state_dict(original.state_dict())  # a v1–v4 checkpoint loads into its spec
    x = torch.rand(2, channels, size, size)
    torch.testing.assert_close(rebuilt.eval()(x), original.eval()(x))


# ---- property tests ---------------------------------------------------------------------------
def _layer(kind: str) -> st.SearchStrategy[dict]:
    """A layer of ``kind`` with random (in-range) field values, some fields left out."""
    small = st.integers(1, 5)
    values = {
        "out": st.integers(1, 12),
        "kernel": small,
        "stride": st.integers(1, 3),
        "padding": st.one_of(st.integers(0, 2), st.just("same")),
        "dilation": st.integers(1, 2),
        "groups": st.sampled_from([1, 2]),
        "bias": st.booleans(),
        "slope": st.floats(0, 1),
        "size": st.integers(1, 3),
        "p": st.floats(0, 0.9),
    }
    fields = {f: values[f] for f in LAYER_TYPES[kind].fields if f in values}
    optional = st.fixed_dictionaries({}, optional=fields)
    required = {f: values[f] for f in ("out",) if kind in ("conv", "residual")}
    return st.builds(
        lambda a, b: {"type": kind, **a, **b}, optional, st.fixed_dictionaries(required)
    )


# pretrained backbones are whole torchvision networks (a frozen one's weights do not train):
# test_layers proves their arithmetic on the registered models
SPEC_TYPES = sorted(k for k in LAYER_TYPES if k not in BACKBONE_CLASSES)
ANY_LAYER = st.sampled_from(SPEC_TYPES).flatmap(_layer)
GEOMETRY = st.tuples(st.integers(1, 3), st.integers(8, 20), st.integers(2, 6))


@st.composite
def plausible_specs(draw) -> dict:
    """A conv stack then a classifier head: mostly valid, sometimes impossible shapes."""
    body = draw(st.lists(st.sampled_from(SPEC_TYPES).flatmap(_layer), max_size=6))
    head = [{"type": "flatten"}, {"type": "linear"}]
    return {"name": "prop", "layers": [*body, *head]}


def _check_against_torch(spec: dict, geometry: tuple[int, int, int]) -> bool:
    """Either SpecError (naming a layer of the spec) or a model whose real shapes, params and
    FLOPs are exactly what the analysis said. True when the spec was valid."""
    channels, size, classes = geometry
    try:
        norm, rows = analyze(spec, channels, size, classes)
    except SpecError as exc:
        names = {layer.get("name") for layer in spec.get("layers", []) if isinstance(layer, dict)}
        assert exc.layer == 0 or 1 <= exc.layer <= len(spec["layers"])
        assert str(exc).startswith("spec:" if exc.layer == 0 else f"layer {exc.layer} (")
        assert exc.layer == 0 or exc.layer_name in names or exc.layer_name
        with pytest.raises(SpecError):
            build(spec, channels, size, classes)
        return False
    model = build(spec, channels, size, classes, dropout=0.3)
    logits = model.eval()(torch.rand(2, channels, size, size))
    assert logits.shape == (2, num_outputs(classes))
    predicted = [  # arithmetic only
        {"name": r.name, "output_shape": list(r.out_shape), "params": r.params, "flops": r.flops}
        for r in leaves(rows)
    ]
    assert predicted == measured_leaves(model, channels, size)  # what torch does
    blocks = blocks_from_layers(rows, channels, size)
    keys = ("name", "shape", "params", "flops")
    assert [{k: b[k] for k in keys} for b in blocks[1:]] == measured_blocks(model, channels, size)
    assert diagram_blocks(model, channels, size) == blocks  # the built model, read back
    assert summarize(model, channels, size)["params"] == count_params(model)
    return True


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=plausible_specs(), geometry=GEOMETRY)
def test_random_specs_validate_exactly_what_torch_builds(spec, geometry):
    _check_against_torch(spec, geometry)


def test_the_property_strategy_produces_valid_specs_too():
    """Guard against a vacuous property: a fixed sample holds valid and invalid specs."""
    outcomes = set()

    @settings(max_examples=40, deadline=None, database=None, derandomize=True)
    @given(spec=plausible_specs(), geometry=GEOMETRY)
    def sample(spec, geometry):
        outcomes.add(_check_against_torch(spec, geometry))

    sample()
    assert outcomes == {True, False}


JUNK = st.one_of(st.none(), st.booleans(), st.integers(-5, 5000), st.text(max_size=4), st.floats())


@st.composite
def broken_specs(draw) -> dict:
    """A valid spec with one layer damaged: a junk value, an unknown field or type."""
    layers = [dict(layer) for layer in SMALL["layers"]]
    index = draw(st.integers(0, len(layers) - 1))
    how = draw(st.sampled_from(["value", "field", "type", "not-a-dict", "name"]))
    if how == "value":
        fields = list(LAYER_TYPES[layers[index]["type"]].fields) or ["extra"]
        layers[index][draw(st.sampled_from(fields))] = draw(JUNK)
    elif how == "field":
        layers[index][draw(st.text(min_size=1, max_size=6))] = 1
    elif how == "type":
        layers[index]["type"] = draw(st.one_of(st.text(max_size=8), JUNK))
    elif how == "name":
        layers[index]["name"] = draw(st.one_of(st.text(max_size=8), JUNK))
    else:
        layers[index] = draw(JUNK)
    return {"name": "broken", "layers": layers}


@settings(max_examples=80, deadline=None)
@given(spec=broken_specs(), geometry=GEOMETRY)
def test_damaged_specs_raise_only_the_validation_error(spec, geometry):
    _check_against_torch(spec, geometry)


# ---- messages -----------------------------------------------------------------------------------
def _error(spec: dict, geometry=(1, 28, 10)) -> SpecError:
    with pytest.raises(SpecError) as info:
        analyze(spec, *geometry)
    return info.value


def _with(*layers: dict) -> dict:
    return {"name": "x", "layers": list(layers)}


def test_messages_name_the_layer_and_the_incoming_shape():
    err = _error(
        _with({"type": "conv", "out": 4, "kernel": 29, "name": "big"}, *SMALL["layers"][3:])
    )
    assert str(err).startswith("layer 1 (big):") and "1×28×28" in str(err)
    err = _error(_with({"type": "conv", "out": 4}, {"type": "linear"}))
    assert err.layer == 2 and "flatten" in err.message and "4×26×26" in err.message
    err = _error(_with({"type": "conv", "out": 4, "colour": 1}))
    assert err.layer == 1 and "unknown field 'colour'" in err.message
    err = _error(_with({"type": "pooling"}))
    assert "unknown layer type 'pooling'" in err.message
    assert str(_error(_with({"type": ""}))).startswith("layer 1 (?): unknown layer type")
    err = _error(_with({"type": "flatten"}, {"type": "linear", "out": 7}))
    assert err.layer == 2 and "10 logit" in err.message
    err = _error(_with({"type": "flatten"}, {"type": "linear", "out": 50_000}, {"type": "linear"}))
    assert err.layer == 2 and "budget" in err.message
    err = _error(_with({"type": "flatten", "name": "forward"}, {"type": "linear"}))
    assert "taken" in err.message
    err = _error({"name": "../up", "layers": SMALL["layers"]})
    assert err.layer == 0 and str(err).startswith("spec: name")
    assert isinstance(err, ConfigError)


# ---- store, registry and config ------------------------------------------------------------------
def test_saved_specs_are_model_choices_stored_atomically_inside_the_runs_dir():
    assert model_names() == [*MODELS, *PRETRAINED]
    path = save_spec(SMALL, list(MODELS))
    assert path.parent == specs_dir() and list(specs_dir().iterdir()) == [path]
    assert saved_names() == ["tiny"] and model_names()[-1] == "tiny"
    assert load_saved("tiny") == SMALL
    assert describe_model("tiny", 1, 28, 10)["layers"][-1]["output_shape"] == [10]
    with pytest.raises(SpecError, match="built-in"):
        save_spec({**SMALL, "name": "v2"}, list(MODELS))
    with pytest.raises(ConfigError):
        load_saved("../../etc/passwd")
    delete_saved("tiny")
    assert saved_names() == []


def test_a_run_stores_the_spec_itself_and_its_checkpoint_loads_like_v1():
    save_spec(SMALL, list(MODELS))
    cfg = resolve(TrainConfig(dataset="fashion-mnist", model="tiny"))
    assert cfg.model_spec == SMALL
    assert resolve(TrainConfig(model="v2", model_spec=SMALL)).model_spec is None  # stale spec
    run_id = finished_run(model="tiny", name="spec run")
    delete_saved("tiny")  # the run no longer needs the file
    with pytest.raises(ConfigError, match="unknown model 'tiny'"):
        resolve(TrainConfig(model="tiny"))
    stored = api.get_run(run_id)["config"]
    assert stored["model_spec"] == SMALL and stored["model"] == "tiny"
    predictor = Predictor.from_checkpoint(api.get_run(run_id)["checkpoint"])
    assert [n for n, _ in predictor.model.named_children()] == [
        "conv1",
        "relu1",
        "pool1",
        "flatten1",
        "linear1",
    ]
    probs = predictor.predict_tensor(torch.rand(3, 1, 28, 28))
    assert probs.shape == (3, 10)
    row = compare.summary_row(api.get_run(run_id))  # Compare sizes it from the run's own spec
    assert row["params"] == count_params(predictor.model)
    exported = export_run(run_id, "torchscript")
    assert exported["max_abs_diff"] < 1e-5


def test_sweeps_take_saved_specs_as_model_choices():
    save_spec(SMALL, list(MODELS))
    base = TrainConfig(dataset="fashion-mnist")
    space = validate_space({"model": {"choices": ["v1", "tiny"]}}, base)
    assert space["model"]["choices"] == ["v1", "tiny"]
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        validate_space({"model": {"choices": ["nope"]}}, base)


def test_diagram_blocks_and_step_timing_for_a_registered_model():
    blocks = diagram_blocks(create_model("v4", 1, 28, 10), 1, 28)
    assert blocks[0] == {
        "name": "input",
        "type": "Input",
        "shape": [1, 28, 28],
        "params": 0,
        "flops": 0,
    }
    block = next(b for b in blocks if b["name"] == "block2")
    assert block["type"] == "residual" and block["shape"] == [64, 7, 7]
    assert (
        sum(b["params"] for b in blocks)
        == summarize(create_model("v4", 1, 28, 10), 1, 28)["params"]
    )
    assert time_training_step(build(SMALL, 1, 28, 10), 1, 28, batch_size=8, steps=1) > 0


# ---- CLI ----------------------------------------------------------------------------------------
def test_cli_prints_checks_and_trains_a_spec(capsys, isolated_dirs):
    code, out, _ = cli_here(capsys, "models", "--spec", "v2", "--dataset", "celeba")
    assert code == 0 and json.loads(out)["name"] == "my-v2"
    spec_file = isolated_dirs / "data" / "v2.json"
    spec_file.write_text(out)
    code, table, _ = cli_here(
        capsys, "models", "--check", str(spec_file), "--dataset", "celeba", "--json"
    )
    assert code == 0 and table["layers"][-1]["output_shape"] == [1]
    assert table["params"] == describe_model("v2", 3, 64, 2)["params"]
    code, _, err = cli_here(capsys, "models", "--check", str(spec_file))  # 64 px net on 28 px
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: layer ")
    outside = isolated_dirs / "elsewhere.json"
    outside.write_text(out)
    code, _, err = cli_here(capsys, "models", "--check", str(outside), "--dataset", "celeba")
    assert code == 0, err  # a file typed on the command line may be anywhere
    tiny = isolated_dirs / "data" / "tiny.json"
    tiny.write_text(json.dumps(SMALL))
    args = ["--dataset", "fashion-mnist", "--train-size", "300", "--val-size", "100"]
    code, result, _ = cli_here(
        capsys,
        "train",
        "--model-spec",
        str(tiny),
        *args,
        "--epochs",
        "1",
        "--threads",
        "1",
        "--quiet",
        "--json",
    )
    assert code == 0 and result["status"] == "completed"
    assert api.get_run(result["run_id"])["config"]["model_spec"] == SMALL
