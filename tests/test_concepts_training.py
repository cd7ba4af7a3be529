"""Losses, optimizer steps, dropout and a real layer's forward pass by hand against torch."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from cnn_core.concepts import losses, optimizers, regularization
from cnn_core.concepts.layer import channel_by_hand, layer_by_hand, record_layer
from cnn_core.demo import DEMO_CHECKPOINT
from cnn_core.errors import ConfigError
from cnn_core.models import create_model
from cnn_core.predict import Predictor

FAST = settings(max_examples=50, deadline=None)
logit = st.floats(-30, 30)


@FAST
@given(st.lists(st.tuples(logit, st.integers(0, 1)), min_size=1, max_size=8))
def test_binary_losses_match_torch(pairs):
    z, y = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs], dtype=float)
    zt, yt = torch.tensor(z), torch.tensor(y)
    assert losses.bce_with_logits(z, y) == pytest.approx(
        float(F.binary_cross_entropy_with_logits(zt, yt)), rel=1e-9, abs=1e-12
    )
    p = losses.sigmoid(z)
    np.testing.assert_allclose(p, torch.sigmoid(zt).numpy(), rtol=1e-12)
    assert losses.bce(p, y) == pytest.approx(
        float(F.binary_cross_entropy(torch.tensor(p), yt)), rel=1e-9, abs=1e-12
    )


@FAST
@given(st.integers(1, 6), st.integers(2, 5), st.integers(0, 2**32 - 1))
def test_multiclass_losses_match_torch(rows, classes, seed):
    rng = np.random.default_rng(seed)
    z, y = rng.normal(scale=10, size=(rows, classes)), rng.integers(0, classes, rows)
    zt, yt = torch.tensor(z), torch.tensor(y)
    assert losses.cross_entropy(z, y) == pytest.approx(float(F.cross_entropy(zt, yt)), rel=1e-9)
    logp = losses.log_softmax(z)
    np.testing.assert_allclose(logp, F.log_softmax(zt, 1).numpy(), atol=1e-12)
    assert losses.nll(logp, y) == pytest.approx(float(F.nll_loss(zt.log_softmax(1), yt)), rel=1e-9)


def test_the_stability_lesson_at_logit_100():
    wrong = {r["logit"]: r for r in losses.stability_table([-100.0, 100.0], 0)}[100.0]
    assert wrong["sigmoid_bce_grad"] == 0.0  # the saturated sigmoid stops learning
    assert wrong["with_logits_grad"] == pytest.approx(1.0)  # σ(z) − y
    assert wrong["with_logits_loss"] == pytest.approx(wrong["exact_loss"])
    far = losses.stability_table([200.0], 0)[0]
    assert far["sigmoid_bce_loss"] == pytest.approx(100.0)  # log 0 clamped at −100
    assert far["with_logits_loss"] == pytest.approx(200.0) == far["exact_loss"]


def test_bad_labels_are_reported():
    with pytest.raises(ConfigError, match="must be 0 or 1"):
        losses.bce_with_logits([0.5], [2])
    with pytest.raises(ConfigError, match="whole numbers 0–2"):
        losses.cross_entropy(np.zeros((1, 3)), [3])
    with pytest.raises(ConfigError, match="one label per logit"):
        losses.bce_with_logits([0.5, 1.0], [1])


@pytest.mark.parametrize("name", optimizers.OPTIMIZERS)
@pytest.mark.parametrize("surface", list(optimizers.SURFACES))
def test_every_optimizer_walks_exactly_like_torch_optim(name, surface):
    lr = 0.002 if name in ("SGD", "Momentum") else 0.05
    ours = optimizers.trajectory(name, surface, lr, 60)
    reference = optimizers.torch_trajectory(name, surface, lr, 60)
    assert ours.shape == reference.shape == (61, 2)
    np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=1e-12)


def test_adam_table_is_the_reports_algorithm():
    rows = optimizers.adam_table("Rosenbrock", 0.1, 5)
    first = rows[0]
    np.testing.assert_allclose(first["m_hat"], first["g"])  # bias correction undoes (1 − β₁)
    np.testing.assert_allclose(first["v_hat"], first["g"] ** 2)
    np.testing.assert_allclose(np.abs(first["update"]), 0.1, rtol=1e-6)  # ≈ lr·sign(g)
    thetas = np.array([r["theta"] for r in rows])
    np.testing.assert_allclose(
        thetas, optimizers.torch_trajectory("Adam", "Rosenbrock", 0.1, 5)[1:]
    )


def test_a_diverging_walk_stops_and_bad_settings_are_reported():
    walk = optimizers.trajectory("SGD", "Rosenbrock", 0.1, 100)
    assert len(walk) < 101 and np.isfinite(walk).all()
    with pytest.raises(ConfigError, match="learning rate"):
        optimizers.trajectory("Adam", "Booth", 0.0, 10)
    with pytest.raises(ConfigError, match="not one of"):
        optimizers.trajectory("Adam", "nowhere", 0.1, 10)


def test_dropout_train_scales_the_kept_units_and_eval_is_the_identity():
    x = np.random.default_rng(0).random((1, 32, 14, 14))
    mask, out = regularization.dropout(x, 0.5, seed=3)
    assert 0.4 < mask.mean() < 0.6
    np.testing.assert_allclose(out[mask], x[mask] * 2)
    assert (out[~mask] == 0).all()
    torch_out = F.dropout(torch.tensor(x), 0.5, training=True).numpy()  # torch's own mask
    kept = torch_out != 0
    np.testing.assert_allclose(torch_out[kept], x[kept] * 2)
    layer = nn.Dropout(0.5).eval()
    mask, out = regularization.dropout(x, 0.5, training=False)
    assert mask.all()
    np.testing.assert_array_equal(out, layer(torch.tensor(x)).numpy())


def test_weight_histograms_share_bins_and_sum_to_one():
    small = create_model("v1", 1, 28, 10, 0.0)
    big = copy.deepcopy(small)
    with torch.no_grad():
        for p in big.parameters():
            p.mul_(3)
    edges, shares = regularization.histograms(
        {"small": regularization.weights(small), "big": regularization.weights(big)}
    )
    assert len(edges) == 61 and all(s.sum() == pytest.approx(1) for s in shares.values())
    assert regularization.weights(big).std() == pytest.approx(
        3 * regularization.weights(small).std()
    )
    with pytest.raises(ConfigError, match="no conv or linear"):
        regularization.weights(nn.Sequential(nn.ReLU()))


def test_a_real_layer_by_hand_equals_the_layer_with_and_without_batch_norm():
    x = torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    plain = create_model("v1", 1, 28, 10, 0.0)
    result = layer_by_hand(plain, x, "conv2", 7)
    assert result.normalised is None and result.bias != 0
    assert result.contributions.shape == (32, 14, 14) and result.max_difference < 1e-4
    np.testing.assert_allclose(result.a, np.maximum(result.z, 0))
    if DEMO_CHECKPOINT.is_file():
        demo = Predictor.from_checkpoint(DEMO_CHECKPOINT)
        with_bn = layer_by_hand(demo, x, "conv1", 0)
        assert with_bn.normalised is not None and with_bn.max_difference < 1e-4
    record = record_layer(plain, x, "conv1")  # one forward pass, every channel by hand
    assert all(channel_by_hand(record, k).max_difference < 1e-4 for k in range(32))
    with pytest.raises(ConfigError, match="no convolution layers"):
        layer_by_hand(nn.Sequential(nn.Flatten(), nn.Linear(784, 2)), x, "fc", 0)
    with pytest.raises(ConfigError, match="channels 0–31"):
        layer_by_hand(plain, x, "conv1", 32)


@pytest.mark.parametrize("name", list(optimizers.SURFACES))
def test_each_surfaces_marked_minima_are_minima(name):
    spec = optimizers.surface(name)
    for point in spec.minima:
        assert spec.f(*point) == pytest.approx(0, abs=1e-9)
        np.testing.assert_allclose(optimizers.gradient(spec.f, np.array(point)), 0, atol=1e-4)
    x0, x1, y0, y1 = spec.box
    assert x0 < spec.start[0] < x1 and y0 < spec.start[1] < y1
