"""Convolution, pooling and output-size arithmetic by hand against torch (and numpy's own
1-D convolution), for every padding mode with strides and dilations (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnn_core.concepts.convolution import (
    KERNELS,
    PADDINGS,
    Geometry,
    conv1d,
    conv2d,
    matrix_text,
    output_size,
    pad_amounts,
    parse_matrix,
    receptive_field,
)
from cnn_core.concepts.pooling import global_average_pool, pool2d, pool_window
from cnn_core.errors import ConfigError

FAST = settings(max_examples=60, deadline=None)


@st.composite
def cases(draw, dims: int):
    """A random input, kernel and geometry whose (dilated) kernel fits the padded input."""
    padding = draw(st.sampled_from(PADDINGS))
    geometry = Geometry(
        padding,
        draw(st.integers(0, 3)),
        draw(st.integers(1, 3)),
        draw(st.integers(1, 3)),
    )
    k = draw(st.integers(1, 5))
    before, after = pad_amounts(k, geometry)
    span = geometry.dilation * (k - 1) + 1
    fits = st.integers(max(1, span - before - after), max(1, span - before - after) + 10)
    shape = tuple(draw(fits) for _ in range(dims))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.normal(size=shape), rng.normal(size=(k,) * dims), geometry


def torch_reference(x: np.ndarray, w: np.ndarray, geometry: Geometry) -> np.ndarray:
    """What torch's conv1d/conv2d computes (cross-correlation) on the same zero padding."""
    pads = [pad_amounts(k, geometry) for k in w.shape][::-1]  # F.pad: last axis first
    xt = F.pad(torch.tensor(x)[None, None], [p for pair in pads for p in pair])
    conv = F.conv1d if x.ndim == 1 else F.conv2d
    out = conv(xt, torch.tensor(w)[None, None], stride=geometry.stride, dilation=geometry.dilation)
    return out[0, 0].numpy()


@FAST
@given(cases(2))
def test_conv2d_is_torch_cross_correlation_and_flipped_is_true_convolution(case):
    x, w, geometry = case
    reference = torch_reference(x, w, geometry)
    ours = conv2d(x, w, geometry)
    assert ours.shape == reference.shape
    assert ours.shape == tuple(
        output_size(n, k, geometry) for n, k in zip(x.shape, w.shape, strict=True)
    )
    np.testing.assert_allclose(ours, reference, atol=1e-10)
    true = conv2d(x, w, geometry, flip=True)
    np.testing.assert_allclose(true, torch_reference(x, w[::-1, ::-1].copy(), geometry), atol=1e-10)


@FAST
@given(cases(1))
def test_conv1d_matches_torch_conv1d(case):
    x, w, geometry = case
    np.testing.assert_allclose(conv1d(x, w, geometry, flip=False), torch_reference(x, w, geometry))


@FAST
@given(
    st.lists(st.floats(-10, 10), min_size=1, max_size=15),
    st.lists(st.floats(-10, 10), min_size=1, max_size=6),
)
def test_true_1d_convolution_is_the_formula_and_numpys(xs, ws):
    """y[i] = Σ_k x[i−k] w[k]: 'full' is np.convolve's full, 'valid' its valid."""
    x, w = np.array(xs), np.array(ws)
    full = conv1d(x, w, Geometry("full"))
    formula = [
        sum(x[i - k] * w[k] for k in range(len(w)) if 0 <= i - k < len(x))
        for i in range(len(x) + len(w) - 1)
    ]
    np.testing.assert_allclose(full, formula, atol=1e-9)
    np.testing.assert_allclose(full, np.convolve(x, w, "full"), atol=1e-9)
    if len(x) >= len(w):
        np.testing.assert_allclose(conv1d(x, w), np.convolve(x, w, "valid"), atol=1e-9)


@FAST
@given(cases(2), st.data())
def test_receptive_field_terms_add_up_to_the_output(case, data):
    x, w, geometry = case
    for flip in (False, True):
        out = conv2d(x, w, geometry, flip=flip)
        i = data.draw(st.integers(0, out.shape[0] - 1))
        j = data.draw(st.integers(0, out.shape[1] - 1))
        terms = receptive_field(x, w, (i, j), geometry, flip=flip)
        assert len(terms) == w.size
        assert sum(t.product for t in terms) == pytest.approx(out[i, j], abs=1e-9)
        for t in terms:
            assert t.w == w[t.kernel_cell]
            assert (not t.inside and t.x == 0) or t.x == x[t.cell]


@pytest.mark.filterwarnings("ignore:Using padding=.same.")
def test_same_padding_keeps_the_size_and_full_grows_it():
    x = np.arange(49.0).reshape(7, 7)
    for k in (1, 2, 3, 4, 5):
        w = np.ones((k, k))
        assert conv2d(x, w, Geometry("same")).shape == (7, 7)
        assert conv2d(x, w, Geometry("full")).shape == (6 + k, 6 + k)
        same = F.conv2d(torch.tensor(x)[None, None], torch.tensor(w)[None, None], padding="same")
        np.testing.assert_allclose(conv2d(x, w, Geometry("same")), same[0, 0].numpy())
    assert output_size(28, 5, Geometry("custom", 2, 2)) == 14  # ⌊(28 + 4 − 4 − 1)/2⌋ + 1
    assert output_size(28, 3, Geometry("valid", 0, 1, 2)) == 24  # dilation 2: spans 5


def test_true_convolution_and_correlation_differ_unless_the_kernel_is_symmetric():
    x = np.random.default_rng(0).normal(size=(6, 6))
    sobel = np.array(KERNELS["Sobel x"])
    np.testing.assert_allclose(conv2d(x, sobel, flip=True), -conv2d(x, sobel))
    gauss = np.array(KERNELS["Gaussian"])
    np.testing.assert_allclose(conv2d(x, gauss, flip=True), conv2d(x, gauss))


def test_bad_geometry_and_matrices_get_one_clear_message():
    with pytest.raises(ConfigError, match="kernel spans 7 cells.*padded input has only 5"):
        output_size(5, 7, Geometry())
    with pytest.raises(ConfigError, match="stride: must be at least 1"):
        output_size(5, 3, Geometry(stride=0))
    with pytest.raises(ConfigError, match=r"cell \(2, 3\) is 'x', not a number"):
        parse_matrix("1 2 3\n4 5 x")
    with pytest.raises(ConfigError, match="row 2 has 2 cells but row 1 has 3"):
        parse_matrix("1 2 3\n4 5")
    with pytest.raises(ConfigError, match="not a finite number"):
        parse_matrix("1 nan")
    with pytest.raises(ConfigError, match="single row"):
        parse_matrix("1\n2", ndim=1)
    a = np.array([[0.5, -1.0], [2.0, 1 / 3]])
    np.testing.assert_allclose(parse_matrix(matrix_text(a, 6)), a, rtol=1e-5)
    np.testing.assert_array_equal(parse_matrix("1, 2,3", ndim=1), [1, 2, 3])


BAD = [  # (call, field, message): every ConfigError the playground can show, word for word
    (lambda: output_size(5, 3, Geometry(padding="diagonal")), "padding",
     "'diagonal' is not one of valid, same, full, custom"),
    (lambda: output_size(5, 3, Geometry(stride=0)), "stride", "must be at least 1, got 0"),
    (lambda: output_size(5, 3, Geometry(dilation=0)), "dilation", "must be at least 1, got 0"),
    (lambda: output_size(5, 3, Geometry("custom", p=65)), "padding",
     "p must be between 0 and 64, got 65"),
    (lambda: output_size(5, 3, Geometry("custom", p=-1)), "padding",
     "p must be between 0 and 64, got -1"),
    (lambda: output_size(0, 3, Geometry()), "kernel", "input and kernel need at least one cell"),
    (lambda: output_size(5, 0, Geometry()), "kernel", "input and kernel need at least one cell"),
    (lambda: output_size(5, 3, Geometry(dilation=3)), "kernel",
     "the kernel spans 7 cells (d(k−1)+1 with k=3, d=3) but the padded input has only 5 "
     "(5 + 0 + 0): use a smaller kernel or dilation, or more padding"),
    (lambda: conv2d(np.zeros(2), np.ones((1, 1))), "input",
     "needs a non-empty 2-D array, got shape (2,)"),
    (lambda: conv2d(np.ones((2, 2)), np.zeros((0, 3))), "kernel",
     "needs a non-empty 2-D array, got shape (0, 3)"),
    (lambda: conv1d(np.array([1.0, np.inf]), np.ones(1)), "input",
     "every cell must be a finite number"),
    (lambda: receptive_field(np.zeros((4, 4)), np.ones((3, 3)), (1,), flip=False), "position",
     "needs 2 indices, got 1"),
    (lambda: receptive_field(np.zeros((4, 4)), np.ones(3), (1, 1), flip=False), "position",
     "needs 2 indices, got 2"),
    (lambda: receptive_field(np.zeros((4, 4)), np.ones((3, 3)), (2, 0), flip=False), "position",
     "(2, 0) is outside the 2×2 output"),
    (lambda: receptive_field(np.zeros((4, 4)), np.ones((3, 3)), (-1, 0), flip=False),
     "position", "(-1, 0) is outside the 2×2 output"),
    (lambda: parse_matrix("  \n "), "matrix",
     "is empty: enter numbers separated by spaces, one row per line"),
    (lambda: parse_matrix("1\n2", "kernel", ndim=1), "kernel",
     "needs a single row of numbers, got 2 rows"),
    (lambda: parse_matrix("1 2 3\n4 5", "kernel"), "kernel", "row 2 has 2 cells but row 1 has 3"),
    (lambda: parse_matrix("1 x", "kernel"), "kernel", "cell (1, 2) is 'x', not a number"),
    (lambda: parse_matrix("1 inf", "kernel"), "kernel", "cell (1, 2) is 'inf', not a finite number"),
    (lambda: parse_matrix(" ".join(["1"] * 65), "kernel"), "kernel", "is larger than 64×64"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "field", "message"), BAD)
def test_every_error_names_its_field_and_says_exactly_what_is_wrong(call, field, message):
    with pytest.raises(ConfigError) as caught:
        call()
    assert (caught.value.field, caught.value.message) == (field, message)


def test_padding_amounts_the_largest_matrix_and_the_text_of_one():
    assert pad_amounts(4, Geometry("same")) == (1, 2)  # odd total: the extra zero after
    assert pad_amounts(3, Geometry("same", dilation=2)) == (2, 2)
    assert pad_amounts(3, Geometry("full", dilation=2)) == (4, 4)
    assert pad_amounts(3, Geometry("custom", p=2)) == (2, 2)
    assert pad_amounts(3, Geometry()) == (0, 0)
    assert parse_matrix(" ".join(["1"] * 64)).shape == (1, 64)  # MAX_SIDE itself is allowed
    assert parse_matrix("1 2\n3 4").shape == (2, 2)  # two dimensions unless asked for one
    assert matrix_text(np.array([[1 / 3, 2]])) == "0.333 2"  # 3 significant figures


def test_receptive_field_cells_of_same_padding_with_an_even_kernel():
    """'same' pads an even kernel unevenly (0 before, 1 after): the first output meets the
    first input cell; the last reaches into the zero padding after the input."""
    x, w = np.arange(16.0).reshape(4, 4), np.arange(4.0).reshape(2, 2)
    first = receptive_field(x, w, (0, 0), Geometry("same"), flip=False)
    assert [(t.cell, t.inside, t.kernel_cell) for t in first] == [
        ((0, 0), True, (0, 0)),
        ((0, 1), True, (0, 1)),
        ((1, 0), True, (1, 0)),
        ((1, 1), True, (1, 1)),
    ]
    last = receptive_field(x, w, (3, 3), Geometry("same"), flip=True)
    assert [(t.cell, t.inside, t.kernel_cell, t.x) for t in last] == [
        ((3, 3), True, (1, 1), 15.0),
        ((3, 4), False, (1, 0), 0.0),
        ((4, 3), False, (0, 1), 0.0),
        ((4, 4), False, (0, 0), 0.0),
    ]


@FAST
@given(
    st.integers(1, 4),
    st.integers(1, 4),
    st.sampled_from(["max", "mean"]),
    st.integers(0, 2**32 - 1),
)
def test_pooling_matches_torch_overlapping_or_not(kernel, stride, mode, seed):
    x = np.random.default_rng(seed).normal(size=(9, 8))
    pool = F.max_pool2d if mode == "max" else F.avg_pool2d
    reference = pool(torch.tensor(x)[None, None], kernel, stride)[0, 0].numpy()
    np.testing.assert_allclose(pool2d(x, kernel, stride, mode), reference, atol=1e-12)
    rows, cols, top = pool_window(x, kernel, stride, (0, reference.shape[1] - 1))
    assert x[top] == x[rows, cols].max()


def test_global_average_pooling_is_adaptive_avg_pool_to_one():
    fmap = np.random.default_rng(1).normal(size=(5, 7, 7))
    reference = F.adaptive_avg_pool2d(torch.tensor(fmap), 1).flatten().numpy()
    np.testing.assert_allclose(global_average_pool(fmap), reference)
    with pytest.raises(ConfigError, match="window: 9×9 does not fit the 7×7 feature map"):
        pool2d(fmap[0], 9, 1)
