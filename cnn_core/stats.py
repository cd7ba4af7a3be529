"""Is a difference real? Confidence intervals of accuracies and paired tests of two models.

* :func:`wilson_interval`: the 95 % Wilson score interval of an accuracy measured on ``n``
  images (it stays inside [0, 1] and behaves near 0 % and 100 %, unlike the normal one).
* :func:`mcnemar_exact`: McNemar's exact test of two models scored on the same images: only
  the images one gets right and the other wrong count; under "no difference" each such image
  is a fair coin, so the two-sided p-value is a binomial tail with p = 1/2.

Plain functions of counts, with no imports from the rest of the package; every accuracy
shown with an interval (evaluate --json, Runs, Compare, Explain) comes from here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z_95 = 1.959963984540054  # the normal quantile of 0.975: a two-sided 95 % interval
CHANCE_P = 0.05  # p below this: "unlikely to be chance"


def wilson_interval(correct: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval (low, high) of ``correct`` successes out of ``n``; (0, 1)
    when ``n`` is 0 (nothing measured says nothing)."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= correct <= n:
        raise ValueError(f"correct must be between 0 and n={n}, not {correct}")
    p = correct / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_interval(accuracy: float, n: int) -> tuple[float, float]:
    """The 95 % Wilson interval of an accuracy measured on ``n`` images."""
    return wilson_interval(round(accuracy * n), n) if n > 0 else (0.0, 1.0)


def interval_text(accuracy: float, n: int | None) -> str:
    """``90.1 % (95 % CI 88.1–91.8 %, 1,000 images)``; just the accuracy when ``n`` is unknown."""
    if not n:
        return f"{accuracy:.1%}"
    low, high = accuracy_interval(accuracy, n)
    return f"{accuracy:.1%} (95% CI {low:.1%}–{high:.1%}, {n:,} images)"


@dataclass(frozen=True)
class McNemar:
    """Two models on the same images: ``a_only`` images only A gets right, ``b_only`` only B,
    ``both``/``neither`` the rest, and the exact two-sided p-value."""

    a_only: int
    b_only: int
    both: int
    neither: int
    p_value: float

    @property
    def n(self) -> int:
        return self.a_only + self.b_only + self.both + self.neither

    @property
    def significant(self) -> bool:
        return self.p_value < CHANCE_P


def binomial_two_sided_half(k: int, n: int) -> float:
    """P(X <= min(k, n-k)) + P(X >= max(k, n-k)) for X ~ Binomial(n, 1/2), capped at 1
    (exact integer arithmetic, so it stays exact for tens of thousands of images)."""
    if n == 0:
        return 1.0
    low = min(k, n - k)
    term, tail = 1, 0
    for i in range(low + 1):
        if i:
            term = term * (n - i + 1) // i
        tail += term
    return min(1.0, 2 * tail / (1 << n))


def mcnemar_exact(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> McNemar:
    """McNemar's exact test of two models' per-image correctness on the same images."""
    if len(correct_a) != len(correct_b):
        raise ValueError(
            f"the two evaluations cover different images ({len(correct_a)} vs {len(correct_b)})"
        )
    counts = {(True, True): 0, (True, False): 0, (False, True): 0, (False, False): 0}
    for a, b in zip(correct_a, correct_b, strict=True):
        counts[bool(a), bool(b)] += 1
    a_only, b_only = counts[True, False], counts[False, True]
    return McNemar(
        a_only=a_only,
        b_only=b_only,
        both=counts[True, True],
        neither=counts[False, False],
        p_value=binomial_two_sided_half(a_only, a_only + b_only),
    )


def p_text(p: float) -> str:
    """``p = 0.006``, ``p < 0.001`` or ``p = 1``."""
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}".rstrip("0").rstrip(".") if p < 1 else "p = 1"


def mcnemar_text(name_a: str, name_b: str, test: McNemar) -> str:
    """In words a student reads: ``v3 beats v1 on 41 images, loses on 19: p = 0.006 — unlikely
    to be chance``."""
    if test.a_only == test.b_only == 0:
        return (
            f"{name_a} and {name_b} get exactly the same {test.n:,} images right: "
            "no difference to test."
        )
    if test.a_only >= test.b_only:
        lead, other, wins, losses = name_a, name_b, test.a_only, test.b_only
    else:
        lead, other, wins, losses = name_b, name_a, test.b_only, test.a_only
    verdict = (
        "unlikely to be chance"
        if test.significant
        else "could well be chance (a difference this size often appears between equal models)"
    )
    return (
        f"{lead} beats {other} on {wins:,} images, loses on {losses:,} "
        f"(of {test.n:,}): {p_text(test.p_value)} — {verdict}."
    )
