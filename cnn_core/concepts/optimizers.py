"""Gradient descent and its adaptive variants on classic 2-D loss surfaces, by hand.

Each update rule is written out as in the chapter (and as ``torch.optim`` implements it with
default settings), so the trajectories can be checked against ``torch.optim`` step by step;
:func:`adam_table` lists Adam's intermediate quantities (g, m, v, m̂, v̂, update).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError

OPTIMIZERS = ("SGD", "Momentum", "AdaGrad", "RMSprop", "Adam")
MOMENTUM, RMS_ALPHA, ADAGRAD_EPS, EPS = 0.9, 0.99, 1e-10, 1e-8
BETAS = (0.9, 0.999)
DIVERGED = 1e6  # a coordinate this large ends the trajectory


@dataclass(frozen=True)
class Surface:
    """A 2-D loss ``f(x, y)`` (numpy or torch arrays), a start point, a plotting box and
    where its minima (f = 0) are."""

    f: Callable[[Any, Any], Any]
    start: tuple[float, float]
    box: tuple[float, float, float, float]  # x_min, x_max, y_min, y_max
    minima: tuple[tuple[float, float], ...]


SURFACES = {
    "elongated bowl": Surface(
        lambda x, y: 0.5 * x**2 + 5 * y**2, (-4.0, 1.5), (-5, 5, -2, 2), ((0, 0),)
    ),
    "Rosenbrock": Surface(
        lambda x, y: (1 - x) ** 2 + 100 * (y - x**2) ** 2, (-1.5, 2.0), (-2, 2, -1, 3), ((1, 1),)
    ),
    "Himmelblau": Surface(
        lambda x, y: (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2,
        (0.0, -4.0),
        (-5, 5, -5, 5),
        ((3, 2), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126)),
    ),
    "Booth": Surface(
        lambda x, y: (x + 2 * y - 7) ** 2 + (2 * x + y - 5) ** 2,
        (-8.0, 8.0),
        (-10, 10, -10, 10),
        ((1, 3),),
    ),
}


def surface(name: str) -> Surface:
    """The registered surface ``name``; ConfigError for an unknown one."""
    if name not in SURFACES:
        raise ConfigError("surface", f"{name!r} is not one of {', '.join(SURFACES)}")
    return SURFACES[name]


def gradient(f: Callable[[Any, Any], Any], point: np.ndarray) -> np.ndarray:
    """∇f at ``point`` by autograd (float64)."""
    p = torch.tensor(point, dtype=torch.float64, requires_grad=True)
    f(p[0], p[1]).backward()
    assert p.grad is not None  # backward() filled it
    return p.grad.numpy()


def _check(name: str, lr: float, steps: int) -> None:
    if name not in OPTIMIZERS:
        raise ConfigError("optimizer", f"{name!r} is not one of {', '.join(OPTIMIZERS)}")
    if not (lr > 0 and np.isfinite(lr)):
        raise ConfigError("learning rate", f"must be a positive number, got {lr}")
    if not 1 <= steps <= 10_000:
        raise ConfigError("steps", f"must be between 1 and 10000, got {steps}")


def trajectory(
    name: str, surface_name: str, lr: float, steps: int, start: tuple[float, float] | None = None
) -> np.ndarray:
    """Points ``[n, 2]`` visited by optimizer ``name`` from the surface's start (or ``start``);
    fewer than ``steps + 1`` when it diverged."""
    _check(name, lr, steps)
    f = surface(surface_name).f
    theta = np.array(start or surface(surface_name).start, dtype=np.float64)
    state = {"m": np.zeros(2), "v": np.zeros(2)}
    points = [theta.copy()]
    for t in range(1, steps + 1):
        g = gradient(f, theta)
        if name == "SGD":
            step = lr * g
        elif name == "Momentum":  # torch: b ← μ·b + g (b₁ = g), θ ← θ − lr·b
            state["m"] = MOMENTUM * state["m"] + g if t > 1 else g
            step = lr * state["m"]
        elif name == "AdaGrad":  # s ← s + g², θ ← θ − lr·g / (√s + ε)
            state["v"] = state["v"] + g**2
            step = lr * g / (np.sqrt(state["v"]) + ADAGRAD_EPS)
        elif name == "RMSprop":  # v ← α·v + (1 − α)·g², θ ← θ − lr·g / (√v + ε)
            state["v"] = RMS_ALPHA * state["v"] + (1 - RMS_ALPHA) * g**2
            step = lr * g / (np.sqrt(state["v"]) + EPS)
        else:
            step = _adam_row(g, state, t, lr)["update"]
        theta = theta - step
        if not np.isfinite(theta).all() or np.abs(theta).max() > DIVERGED:
            break
        points.append(theta.copy())
    return np.array(points)


def _adam_row(g: np.ndarray, state: dict[str, np.ndarray], t: int, lr: float) -> dict[str, Any]:
    b1, b2 = BETAS
    state["m"] = b1 * state["m"] + (1 - b1) * g
    state["v"] = b2 * state["v"] + (1 - b2) * g**2
    m_hat, v_hat = state["m"] / (1 - b1**t), state["v"] / (1 - b2**t)
    update = lr * m_hat / (np.sqrt(v_hat) + EPS)
    return {"t": t, "g": g, "m": state["m"].copy(), "v": state["v"].copy()} | {
        "m_hat": m_hat,
        "v_hat": v_hat,
        "update": update,
    }


def adam_table(surface_name: str, lr: float, steps: int) -> list[dict[str, Any]]:
    """Adam's first ``steps`` steps from the surface's start: per step t the gradient g, the
    moments m and v, their bias-corrected m̂ = m/(1−β₁ᵗ) and v̂ = v/(1−β₂ᵗ), the update
    lr·m̂/(√v̂ + ε) and the new point θ (all 2-vectors)."""
    _check("Adam", lr, steps)
    f = surface(surface_name).f
    theta = np.array(surface(surface_name).start, dtype=np.float64)
    state = {"m": np.zeros(2), "v": np.zeros(2)}
    rows = []
    for t in range(1, steps + 1):
        row = _adam_row(gradient(f, theta), state, t, lr)
        theta = theta - row["update"]
        rows.append(row | {"theta": theta.copy()})
    return rows


TORCH_OPTIMIZERS: dict[str, Callable[[list[torch.Tensor], float], torch.optim.Optimizer]] = {
    "SGD": lambda p, lr: torch.optim.SGD(p, lr=lr),
    "Momentum": lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=MOMENTUM),
    "AdaGrad": lambda p, lr: torch.optim.Adagrad(p, lr=lr, eps=ADAGRAD_EPS),
    "RMSprop": lambda p, lr: torch.optim.RMSprop(p, lr=lr, alpha=RMS_ALPHA, eps=EPS),
    "Adam": lambda p, lr: torch.optim.Adam(p, lr=lr, betas=BETAS, eps=EPS),
}


def torch_trajectory(name: str, surface_name: str, lr: float, steps: int) -> np.ndarray:
    """The same walk made by ``torch.optim`` (float64): the reference for :func:`trajectory`."""
    _check(name, lr, steps)
    spec = surface(surface_name)
    p = torch.tensor(spec.start, dtype=torch.float64, requires_grad=True)
    optimizer = TORCH_OPTIMIZERS[name]([p], lr)
    points = [p.detach().numpy().copy()]
    for _ in range(steps):
        optimizer.zero_grad()
        spec.f(p[0], p[1]).backward()
        optimizer.step()
        point = p.detach().numpy().copy()
        if not np.isfinite(point).all() or np.abs(point).max() > DIVERGED:
            break
        points.append(point)
    return np.array(points)


def surface_grid(
    surface_name: str, resolution: int = 80
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(xs, ys, z)`` over the surface's box for a contour plot (z[i, j] = f(xs[j], ys[i]))."""
    spec = surface(surface_name)
    x0, x1, y0, y1 = spec.box
    xs, ys = np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution)
    gx, gy = np.meshgrid(xs, ys)
    return xs, ys, spec.f(gx, gy)
