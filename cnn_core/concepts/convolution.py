"""Discrete convolution by hand, in 1-D and 2-D, with the chapter's padding modes.

True convolution flips the kernel (``y[i] = Σ_k x[i−k] w[k]``, the textbook formula);
cross-correlation does not (``y[i] = Σ_k x[i+k] w[k]``, what ``torch.nn.Conv2d`` computes).
Both are computed here from explicit index arithmetic, so each output value can be traced
back to the input cells and kernel weights it multiplies (:func:`receptive_field`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..errors import ConfigError

PADDINGS = ("valid", "same", "full", "custom")
MAX_SIDE = 64  # the playground's largest input and kernel side


@dataclass(frozen=True)
class Geometry:
    """How a kernel slides: ``padding`` is one of :data:`PADDINGS` (``custom`` uses ``p`` on
    every side); ``stride`` and ``dilation`` are at least 1."""

    padding: str = "valid"
    p: int = 0
    stride: int = 1
    dilation: int = 1

    def check(self) -> None:
        """Raise ConfigError for an unknown padding mode or a non-positive stride/dilation."""
        if self.padding not in PADDINGS:
            raise ConfigError("padding", f"{self.padding!r} is not one of {', '.join(PADDINGS)}")
        if self.stride < 1:
            raise ConfigError("stride", f"must be at least 1, got {self.stride}")
        if self.dilation < 1:
            raise ConfigError("dilation", f"must be at least 1, got {self.dilation}")
        if self.padding == "custom" and not 0 <= self.p <= MAX_SIDE:
            raise ConfigError("padding", f"p must be between 0 and {MAX_SIDE}, got {self.p}")


def effective_kernel(k: int, dilation: int) -> int:
    """The span a dilated kernel covers: ``d(k−1) + 1``."""
    return dilation * (k - 1) + 1


def pad_amounts(k: int, geometry: Geometry) -> tuple[int, int]:
    """Zeros added (before, after) along one axis.

    valid: none; full: ``d(k−1)`` on each side (every partial overlap); same: ``d(k−1)`` in
    total, the extra one after when it is odd (as ``torch`` pads ``'same'``), so that with
    stride 1 the output is as long as the input; custom: ``p`` on each side.
    """
    total = effective_kernel(k, geometry.dilation) - 1
    if geometry.padding == "full":
        return total, total
    if geometry.padding == "same":
        return total // 2, total - total // 2
    if geometry.padding == "custom":
        return geometry.p, geometry.p
    return 0, 0


def output_size(n: int, k: int, geometry: Geometry) -> int:
    """``⌊(n + p_before + p_after − d(k−1) − 1)/s⌋ + 1``; ConfigError when the (dilated)
    kernel is bigger than the padded input."""
    geometry.check()
    if k < 1 or n < 1:
        raise ConfigError("kernel", "input and kernel need at least one cell")
    before, after = pad_amounts(k, geometry)
    span = effective_kernel(k, geometry.dilation)
    if n + before + after < span:
        raise ConfigError(
            "kernel",
            f"the kernel spans {span} cells (d(k−1)+1 with k={k}, d={geometry.dilation}) but the "
            f"padded input has only {n + before + after} ({n} + {before} + {after}): "
            "use a smaller kernel or dilation, or more padding",
        )
    return (n + before + after - span) // geometry.stride + 1


def _check_matrix(name: str, a: np.ndarray, ndim: int) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != ndim or 0 in a.shape:
        raise ConfigError(name, f"needs a non-empty {ndim}-D array, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ConfigError(name, "every cell must be a finite number")
    return a


def windows(x: np.ndarray, kernel_shape: tuple[int, ...], geometry: Geometry) -> np.ndarray:
    """Every placement of a kernel on the zero-padded ``x``, as ``[o_1 … o_D, k_1 … k_D]``."""
    dims = x.ndim
    xp = np.pad(x, [pad_amounts(k, geometry) for k in kernel_shape])
    indices = []
    for axis, (n, k) in enumerate(zip(x.shape, kernel_shape, strict=True)):
        starts = np.arange(output_size(n, k, geometry)) * geometry.stride
        shape = [1] * (2 * dims)
        shape[axis], shape[dims + axis] = -1, k
        indices.append((starts[:, None] + np.arange(k) * geometry.dilation).reshape(shape))
    return xp[tuple(indices)]


def _correlate(x: np.ndarray, w: np.ndarray, geometry: Geometry, flip: bool) -> np.ndarray:
    """N-D cross-correlation (of the flipped kernel when ``flip``): Σ window × kernel."""
    return np.tensordot(windows(x, w.shape, geometry), np.flip(w) if flip else w, axes=x.ndim)


def conv2d(
    x: np.ndarray, w: np.ndarray, geometry: Geometry = Geometry(), *, flip: bool = False
) -> np.ndarray:
    """2-D cross-correlation of ``x`` [H, W] with ``w`` [kh, kw] (what ``nn.Conv2d`` does);
    ``flip=True`` flips the kernel first, which makes it true convolution."""
    return _correlate(_check_matrix("input", x, 2), _check_matrix("kernel", w, 2), geometry, flip)


def conv1d(
    x: np.ndarray, w: np.ndarray, geometry: Geometry = Geometry(), *, flip: bool = True
) -> np.ndarray:
    """1-D convolution, by default the chapter's true one, ``y[i] = Σ_k x[i−k] w[k]`` (with
    'full' padding, i runs over every partial overlap); ``flip=False`` correlates."""
    return _correlate(_check_matrix("input", x, 1), _check_matrix("kernel", w, 1), geometry, flip)


class Term(NamedTuple):
    """One multiply of an output value: the input cell (its index in the unpadded input; out of
    range, and ``inside`` false, in the zero padding), the kernel cell of ``w`` as written that
    it meets, and the two numbers."""

    cell: tuple[int, ...]
    inside: bool
    kernel_cell: tuple[int, ...]
    x: float
    w: float

    @property
    def product(self) -> float:
        return self.x * self.w


def receptive_field(
    x: np.ndarray,
    w: np.ndarray,
    position: tuple[int, ...],
    geometry: Geometry = Geometry(),
    *,
    flip: bool,
) -> list[Term]:
    """The multiply-add terms of one output ``position`` of a 1-D or 2-D input: their sum is
    the convolution's value there. With ``flip`` the first input cell meets the last weight."""
    x, w = np.asarray(x, dtype=np.float64), np.asarray(w, dtype=np.float64)
    if x.ndim != w.ndim or len(position) != x.ndim:
        raise ConfigError("position", f"needs {x.ndim} indices, got {len(position)}")
    sizes = [output_size(n, k, geometry) for n, k in zip(x.shape, w.shape, strict=True)]
    if not all(0 <= p < o for p, o in zip(position, sizes, strict=True)):
        raise ConfigError(
            "position", f"{tuple(position)} is outside the {'×'.join(map(str, sizes))} output"
        )
    firsts = [
        p * geometry.stride - pad_amounts(k, geometry)[0]
        for p, k in zip(position, w.shape, strict=True)
    ]
    terms = []
    for offset in np.ndindex(*w.shape):
        cell = tuple(f + o * geometry.dilation for f, o in zip(firsts, offset, strict=True))
        inside = all(0 <= c < n for c, n in zip(cell, x.shape, strict=True))
        used = tuple(k - 1 - o for k, o in zip(w.shape, offset, strict=True)) if flip else offset
        value = float(x[cell]) if inside else 0.0
        terms.append(Term(cell, inside, used, value, float(w[used])))
    return terms


KERNELS: dict[str, list[list[float]]] = {
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "box blur": [[1 / 9] * 3] * 3,
    "Gaussian": [[1 / 16, 2 / 16, 1 / 16], [2 / 16, 4 / 16, 2 / 16], [1 / 16, 2 / 16, 1 / 16]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "Sobel x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "Sobel y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "Laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
}


def parse_matrix(text: str, name: str = "matrix", ndim: int = 2) -> np.ndarray:
    """Numbers separated by spaces or commas, one row per line (``ndim=1``: one row only).

    Raises ConfigError naming the first cell that is not a number, ragged rows, or a side
    over :data:`MAX_SIDE`.
    """
    rows = [line.replace(",", " ").split() for line in text.strip().splitlines() if line.strip()]
    if not rows:
        raise ConfigError(name, "is empty: enter numbers separated by spaces, one row per line")
    if ndim == 1 and len(rows) > 1:
        raise ConfigError(name, f"needs a single row of numbers, got {len(rows)} rows")
    values = []
    for r, row in enumerate(rows, 1):
        if len(row) != len(rows[0]):
            raise ConfigError(name, f"row {r} has {len(row)} cells but row 1 has {len(rows[0])}")
        for c, cell in enumerate(row, 1):
            try:
                value = float(cell)
            except ValueError:
                raise ConfigError(name, f"cell ({r}, {c}) is {cell!r}, not a number") from None
            if not np.isfinite(value):
                raise ConfigError(name, f"cell ({r}, {c}) is {cell!r}, not a finite number")
            values.append(value)
    if max(len(rows), len(rows[0])) > MAX_SIDE:
        raise ConfigError(name, f"is larger than {MAX_SIDE}×{MAX_SIDE}")
    array = np.array(values).reshape(len(rows), len(rows[0]))
    return array[0] if ndim == 1 else array


def matrix_text(a: np.ndarray, digits: int = 3) -> str:
    """The inverse of :func:`parse_matrix`: one line per row, ``digits`` significant figures."""
    rows = np.atleast_2d(np.asarray(a, dtype=np.float64))
    return "\n".join(" ".join(f"{v:.{digits}g}" for v in row) for row in rows)
