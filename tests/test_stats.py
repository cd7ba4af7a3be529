"""Wilson intervals and McNemar's exact test against scipy's reference implementations."""

from __future__ import annotations

import random

import pytest
from scipy import stats as sp

from cnn_core.scoring import EvalResult
from cnn_core.stats import (
    accuracy_interval,
    binomial_two_sided_half,
    interval_text,
    mcnemar_exact,
    mcnemar_text,
    p_text,
    wilson_interval,
)


@pytest.mark.parametrize(
    ("k", "n"),
    [(0, 1), (1, 1), (0, 10), (3, 10), (10, 10), (900, 1000), (17_966, 19_962), (1, 20_000)],
)
def test_wilson_matches_scipy(k, n):
    ref = sp.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = wilson_interval(k, n)
    assert low == pytest.approx(ref.low, abs=1e-12)
    assert high == pytest.approx(ref.high, abs=1e-12)


def test_wilson_width_for_the_celeba_test_partition():
    """90 % on the 19,962 official test images is good to about ±0.4 points; on a 1,000-image
    subset, about ±1.9."""
    low, high = accuracy_interval(0.9, 1000)
    assert (high - low) / 2 == pytest.approx(0.0186, abs=5e-4)
    low, high = accuracy_interval(0.9, 19_962)
    assert (high - low) / 2 == pytest.approx(0.0042, abs=2e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert interval_text(0.9, 1000) == "90.0% (95% CI 88.0%–91.7%, 1,000 images)"
    assert interval_text(0.9, None) == "90.0%"


@pytest.mark.parametrize(("a_only", "b_only"), [(41, 19), (0, 0), (0, 5), (7, 7), (3, 250)])
def test_mcnemar_exact_matches_scipy(a_only, b_only):
    both, neither = 500, 60
    pairs = (
        [(True, False)] * a_only
        + [(False, True)] * b_only
        + [(True, True)] * both
        + [(False, False)] * neither
    )
    random.Random(0).shuffle(pairs)
    test = mcnemar_exact([a for a, _ in pairs], [b for _, b in pairs])
    assert (test.a_only, test.b_only, test.both, test.neither) == (a_only, b_only, both, neither)
    expected = sp.binomtest(a_only, a_only + b_only, 0.5).pvalue if a_only + b_only else 1.0
    assert test.p_value == pytest.approx(expected, rel=1e-9)


def test_mcnemar_words():
    test = mcnemar_exact([True] * 41 + [False] * 19, [False] * 41 + [True] * 19)
    text = mcnemar_text("v1", "v3", test)
    assert text.startswith("v1 beats v3 on 41 images, loses on 19 (of 60): p = 0.0")
    assert "unlikely to be chance" in text
    even = mcnemar_exact([True, False, True], [False, True, True])
    assert "could well be chance" in mcnemar_text("a", "b", even)
    same = mcnemar_exact([True, False], [True, False])
    assert "no difference to test" in mcnemar_text("a", "b", same)
    with pytest.raises(ValueError, match="different images"):
        mcnemar_exact([True], [True, False])


def test_interval_edges_stay_inside_zero_and_one():
    """All right (rounding puts the upper bound a hair above 1 for some n: clipped), one image,
    no image, and a count that cannot be."""
    assert [wilson_interval(n, n)[1] for n in (16, 40, 46)] == [1.0] * 3
    assert [wilson_interval(0, n)[0] for n in (16, 40, 46)] == [0.0] * 3
    assert accuracy_interval(1.0, 1) == pytest.approx(wilson_interval(1, 1))
    assert accuracy_interval(1.0, 1)[0] > 0.2  # one right answer already says something
    assert accuracy_interval(0.5, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match=r"correct must be between 0 and n=10, not 11"):
        wilson_interval(11, 10)


def test_the_binomial_tail_is_exact_for_thousands_of_images():
    """Integer arithmetic all the way: C(3000, k) overflows a float."""
    assert binomial_two_sided_half(1400, 3000) == pytest.approx(
        sp.binomtest(1400, 3000, 0.5).pvalue, rel=1e-9
    )
    assert binomial_two_sided_half(0, 0) == 1.0


def test_p_values_in_words():
    assert p_text(0.0004) == "p < 0.001"
    assert p_text(0.001) == "p = 0.001"
    assert p_text(0.5) == "p = 0.5"
    assert p_text(0.0456) == "p = 0.046"
    assert p_text(1.0) == "p = 1"


def test_mcnemar_sentences_whole():
    """The exact sentences (who leads on a tie, the other way round, both verdicts)."""
    b_leads = mcnemar_exact([False] * 41 + [True] * 19, [True] * 41 + [False] * 19)
    assert mcnemar_text("v1", "v3", b_leads) == (
        "v3 beats v1 on 41 images, loses on 19 (of 60): p = 0.006 — unlikely to be chance."
    )
    tie = mcnemar_exact([True, False], [False, True])
    assert mcnemar_text("a", "b", tie) == (
        "a beats b on 1 images, loses on 1 (of 2): p = 1 — could well be chance (a difference "
        "this size often appears between equal models)."
    )
    same = mcnemar_exact([True, False], [True, False])
    assert mcnemar_text("a", "b", same) == (
        "a and b get exactly the same 2 images right: no difference to test."
    )


def test_eval_result_carries_its_interval():
    result = EvalResult(
        accuracy=0.75,
        loss=0.5,
        n=4,
        per_class_accuracy=[1.0, 0.5],
        confusion=[[2, 0], [1, 1]],
        misclassified=[2],
        predicted=[0, 0, 0, 1],
        confidence=[0.9] * 4,
    )
    summary = result.summary()
    ref = sp.binomtest(3, 4).proportion_ci(method="wilson")
    assert summary["ci_low"] == pytest.approx(ref.low) and summary["ci_high"] == pytest.approx(
        ref.high
    )
    assert result.correct() == [True, True, False, True]
