"""Tests for the model registry, the four architectures and model summaries."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from cnn_core.errors import ConfigError
from cnn_core.models import (
    MODELS,
    conv_layers,
    create_model,
    describe_model,
    feature_layers,
    model_names,
    num_outputs,
    registered_model,
)
from cnn_core.models.summary import summarize

torch.set_num_threads(2)

# (in_channels, image_size, num_classes): MNIST, CelebA smile, CIFAR-like, grey 64 px, colour 28 px.
FAMILIES = [(1, 28, 10), (3, 64, 2), (3, 32, 5), (1, 64, 3), (3, 28, 10)]
CASES = [(name, *family) for name in model_names() for family in FAMILIES]
CASE_IDS = [f"{name}-{c}x{s}x{s}-k{k}" for name, c, s, k in CASES]


def _batch(in_channels: int, image_size: int, num_classes: int, n: int = 6, seed: int = 0):
    """A fixed, learnable batch: noise plus a brightness that encodes the label."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % num_classes
    noise = torch.rand(n, in_channels, image_size, image_size, generator=gen)
    return 0.5 * noise + 0.5 * (labels.float() / (num_classes - 1)).view(-1, 1, 1, 1), labels


def _loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if logits.shape[1] == 1:
        return nn.functional.binary_cross_entropy_with_logits(logits[:, 0], labels.float())
    return nn.functional.cross_entropy(logits, labels)


# ---- registry -------------------------------------------------------------------------------
def test_registry_specs():
    assert model_names()[:4] == ["v1", "v2", "v3", "v4"]
    for name, spec in MODELS.items():
        assert spec.name == name and registered_model(name) is spec
        assert spec.title and spec.rationale and "\n" not in spec.rationale
        with pytest.raises(dataclasses.FrozenInstanceError):
            spec.name = "x"  # type: ignore[misc]


def test_unknown_model_is_config_error():
    with pytest.raises(ConfigError) as info:
        create_model("v99")
    assert info.value.field == "model"
    assert "choose one of v1, v2, v3, v4, v5" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"num_classes": 1}, "num_classes"),
        ({"image_size": 4}, "image_size"),
        ({"in_channels": 0}, "in_channels"),
    ],
)
def test_invalid_shapes_are_config_errors(kwargs, field):
    with pytest.raises(ConfigError) as info:
        create_model("v1", **kwargs)
    assert info.value.field == field


def test_num_outputs_binary_is_one_logit():
    assert [num_outputs(k) for k in (2, 3, 10)] == [1, 3, 10]


# ---- every model × every input family -------------------------------------------------------
@pytest.mark.parametrize(("name", "c", "s", "k"), CASES, ids=CASE_IDS)
def test_forward_backward_and_training(name, c, s, k):
    torch.manual_seed(0)
    model = create_model(name, c, s, k, dropout=0.0)
    images, labels = _batch(c, s, k)
    logits = model(images)
    assert logits.shape == (len(images), num_outputs(k))
    assert torch.isfinite(logits).all()

    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]  # not frozen
    optimizer = torch.optim.Adam([p for _, p in trained], lr=1e-3)
    first_loss = _loss(logits, labels)
    first_loss.backward()
    for pname, p in trained:
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"{pname} got an all-zero gradient"

    before = {pname: p.detach().clone() for pname, p in trained}
    optimizer.step()
    changed = [not torch.equal(before[pname], p) for pname, p in trained]
    assert all(changed)

    for _ in range(4):
        optimizer.zero_grad()
        _loss(model(images), labels).backward()
        optimizer.step()
    with torch.no_grad():
        assert _loss(model(images), labels) < 0.9 * first_loss.detach()


@pytest.mark.parametrize(("name", "c", "s", "k"), CASES, ids=CASE_IDS)
def test_structure_relus_feature_layers_and_summary(name, c, s, k):
    model = create_model(name, c, s, k)
    all_modules = list(model.modules())
    assert len({id(m) for m in all_modules}) == len(all_modules), "a module object is reused"
    relus = [m for m in all_modules if isinstance(m, nn.ReLU)]
    assert relus and not any(r.inplace for r in relus)

    summary = describe_model(name, c, s, k)
    assert summary["params"] == sum(p.numel() for p in model.parameters())
    assert summary["params"] == sum(row["params"] for row in summary["layers"])
    assert summary["flops"] > 0
    forward_order = [row["name"] for row in summary["layers"]]
    assert len(forward_order) == len(set(forward_order))
    assert summary["layers"][-1]["output_shape"] == [num_outputs(k)]

    features = [n for n, _ in feature_layers(model)]
    assert len(features) == len(set(features))
    # each feature layer is a table row or inside one (a pretrained backbone is one row)
    rows = [
        next(i for i, r in enumerate(forward_order) if f"{n}.".startswith(f"{r}."))
        for n in features
    ]
    assert rows == sorted(rows)
    assert dict(model.named_modules())[features[0]] is feature_layers(model)[0][1]
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    assert [n for n, _ in conv_layers(model)] == convs


@pytest.mark.parametrize("name", model_names())
@pytest.mark.parametrize("size", [16, 17, 31, 32, 33, 50, 96, 128])
def test_any_image_size(name, size):
    model = create_model(name, 3, size, 4).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, size, size)).shape == (2, 4)


@pytest.mark.parametrize("name", model_names())
def test_eval_mode_is_deterministic(name):
    model = create_model(name, 1, 28, 10, dropout=0.5).eval()
    images, _ = _batch(1, 28, 10)
    with torch.no_grad():
        assert torch.equal(model(images), model(images))


# ---- v1 is exactly the book's networks ------------------------------------------------------
def _table(summary):
    return [
        (row["name"], row["type"], tuple(row["output_shape"]), row["params"])
        for row in summary["layers"]
    ]


def test_v1_mnist_is_the_book_cnn():
    conv1, conv2 = 1 * 32 * 5 * 5 + 32, 32 * 64 * 5 * 5 + 64
    fc1, fc2 = 64 * 7 * 7 * 1024 + 1024, 1024 * 10 + 10
    assert (conv1, conv2, fc1, fc2) == (832, 51_264, 3_212_288, 10_250)
    summary = describe_model("v1", 1, 28, 10)
    assert summary["params"] == conv1 + conv2 + fc1 + fc2 == 3_274_634
    assert _table(summary) == [
        ("conv1", "conv", (32, 28, 28), conv1),
        ("relu1", "relu", (32, 28, 28), 0),
        ("pool1", "maxpool", (32, 14, 14), 0),
        ("conv2", "conv", (64, 14, 14), conv2),
        ("relu2", "relu", (64, 14, 14), 0),
        ("pool2", "maxpool", (64, 7, 7), 0),
        ("flatten", "flatten", (3136,), 0),
        ("fc1", "linear", (1024,), fc1),
        ("relu3", "relu", (1024,), 0),
        ("dropout", "dropout", (1024,), 0),
        ("fc2", "linear", (10,), fc2),
    ]
    model = create_model("v1", dropout=0.3)
    assert (model.conv1.kernel_size, model.conv1.padding) == ((5, 5), (2, 2))
    assert (model.conv2.kernel_size, model.conv2.padding) == ((5, 5), (2, 2))
    assert model.pool1.kernel_size == 2 and model.dropout.p == 0.3
    flops = 2 * (28 * 28 * 32 * 25 + 14 * 14 * 64 * 32 * 25 + 3136 * 1024 + 1024 * 10)
    assert summary["flops"] == flops == 27_767_808
    assert [n for n, _ in feature_layers(model)] == [
        "conv1",
        "relu1",
        "pool1",
        "conv2",
        "relu2",
        "pool2",
    ]


def test_v1_smile_is_the_book_cnn():
    convs = [3 * 32 * 9 + 32, 32 * 64 * 9 + 64, 64 * 128 * 9 + 128, 128 * 256 * 9 + 256]
    fc = 256 + 1
    summary = describe_model("v1", 3, 64, 2)
    assert summary["params"] == sum(convs) + fc == 388_673
    assert _table(summary) == [
        ("conv1", "conv", (32, 64, 64), convs[0]),
        ("relu1", "relu", (32, 64, 64), 0),
        ("pool1", "maxpool", (32, 32, 32), 0),
        ("dropout1", "dropout", (32, 32, 32), 0),
        ("conv2", "conv", (64, 32, 32), convs[1]),
        ("relu2", "relu", (64, 32, 32), 0),
        ("pool2", "maxpool", (64, 16, 16), 0),
        ("dropout2", "dropout", (64, 16, 16), 0),
        ("conv3", "conv", (128, 16, 16), convs[2]),
        ("relu3", "relu", (128, 16, 16), 0),
        ("pool3", "maxpool", (128, 8, 8), 0),
        ("conv4", "conv", (256, 8, 8), convs[3]),
        ("relu4", "relu", (256, 8, 8), 0),
        ("pool4", "avgpool", (256, 1, 1), 0),
        ("flatten", "flatten", (256,), 0),
        ("fc", "linear", (1,), fc),
    ]
    model = create_model("v1", 3, 64, 2)
    assert model.pool4.kernel_size == 8 and model.conv1.padding == (1, 1)
    assert isinstance(create_model("v1", 3, 72, 2).pool4, nn.AdaptiveAvgPool2d)


def test_progression_shares_v1_layout():
    v1, v2 = describe_model("v1", 1, 28, 10), describe_model("v2", 1, 28, 10)
    assert [r["name"] for r in v2["layers"] if not r["name"].startswith("bn")] == [
        r["name"] for r in v1["layers"]
    ]
    assert describe_model("v3", 1, 28, 10)["params"] < v1["params"] / 20
    assert create_model("v4").block2.shortcut.conv.stride == (2, 2)


def test_summarize_restores_training_mode():
    model = create_model("v2").train()
    summarize(model, 1, 28)
    assert model.training and model.bn1.training
