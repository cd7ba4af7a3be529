"""The optimizer a run trains with (:func:`make_optimizer`): torch's Adam/AdamW (fused kernel
on CPU and CUDA), SGD with momentum, or Muon.

Muon (Jordan et al., 2024): momentum orthogonalised by a Newton–Schulz iteration, for
convolution filters; Adam for every other parameter, in one optimizer.

For a filter bank W (``[out, in·k·k]``) Muon keeps Nesterov momentum of the gradient and steps
along the nearest semi-orthogonal matrix to it (U·Vᵀ of its SVD, approximated by five
Newton–Schulz iterations in bf16): every direction of the update gets the same size, so rarely
used filters learn as fast as common ones. Groups marked ``muon`` get it at their ``lr``; the
others (biases, BatchNorm, linear layers) get Adam. The state (momentum, Adam's moments and
step counts) is in ``state_dict``, so a resumed run continues exactly.
"""

from __future__ import annotations

from typing import Any

import torch

from .config import TrainConfig
from .speed import fused

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)  # the quintic iteration of Muon's reference code
NS_STEPS = 5


def orthogonalise(g: torch.Tensor, steps: int = NS_STEPS) -> torch.Tensor:
    """An approximation of U·Vᵀ (the SVD of the 2-D ``g``) by a Newton–Schulz iteration."""
    a, b, c = NS_COEFFICIENTS
    x = g.bfloat16() if g.device.type in ("cpu", "cuda") else g.float()
    x = x / (x.norm() + 1e-7)
    tall = g.size(0) > g.size(1)
    if tall:
        x = x.T
    for _ in range(steps):
        s = x @ x.T
        x = a * x + (b * s + c * s @ s) @ x
    return (x.T if tall else x).to(g.dtype)


class Muon(torch.optim.Optimizer):
    """Muon for parameter groups with ``muon: True`` (≥ 2-D weights), Adam for the rest."""

    def __init__(
        self,
        params,
        lr: float,
        weight_decay: float = 0.0,
        momentum: float = 0.95,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        defaults = dict(
            lr=lr, weight_decay=weight_decay, momentum=momentum, betas=betas, eps=eps, muon=False
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if (grad := p.grad) is not None:
                    (_muon if group["muon"] else _adam)(p, grad, self.state[p], group)


def _muon(p: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
    buf = state.setdefault("momentum_buffer", torch.zeros_like(grad))
    buf.mul_(group["momentum"]).add_(grad)
    nesterov = grad.add(buf, alpha=group["momentum"]).reshape(len(grad), -1)
    update = orthogonalise(nesterov)
    update *= max(1.0, nesterov.size(0) / nesterov.size(1)) ** 0.5
    if group["weight_decay"]:
        p.mul_(1 - group["lr"] * group["weight_decay"])
    p.add_(update.view_as(p), alpha=-group["lr"])


def _adam(p: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
    if group["weight_decay"]:
        grad = grad.add(p, alpha=group["weight_decay"])
    if not state:
        state["step"] = 0
        state["exp_avg"], state["exp_avg_sq"] = torch.zeros_like(p), torch.zeros_like(p)
    state["step"] += 1
    beta1, beta2 = group["betas"]
    state["exp_avg"].lerp_(grad, 1 - beta1)
    state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    t = state["step"]
    denom = (state["exp_avg_sq"].sqrt() / (1 - beta2**t) ** 0.5).add_(group["eps"])
    p.addcdiv_(state["exp_avg"], denom, value=-group["lr"] / (1 - beta1**t))


def muon_groups(groups: list[dict[str, Any]], scale: float) -> list[dict[str, Any]]:
    """Optimizer groups split for Muon: each group's convolution filters (4-D weights) in a
    ``muon`` group whose ``lr_scale`` is multiplied by ``scale`` (muon_lr / lr), after all the
    other weights' groups (the first group's rate is the one a run records)."""
    rest = [{**g, "params": [p for p in g["params"] if p.ndim != 4]} for g in groups]
    filters = [
        {**g, "params": [p for p in g["params"] if p.ndim == 4], "muon": True,
         "lr_scale": g.get("lr_scale", 1.0) * scale}
        for g in groups
    ]  # fmt: skip
    return [g for g in [*rest, *filters] if g["params"]]


def make_optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    """The configured optimizer over parameters or groups (a group's ``lr_scale`` scales the
    run's learning rate for it, see :func:`train_batch`); Adam/AdamW use the fused kernel on
    CPU and CUDA (same maths)."""
    params = list(params)
    tensors = [p for g in params for p in (g["params"] if isinstance(g, dict) else [g])]
    lr, decay = config.lr, config.weight_decay
    if config.optimizer == "muon":
        return Muon(muon_groups(params, config.muon_lr / lr), lr=lr, weight_decay=decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=decay, fused=fused(tensors))
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=decay, fused=fused(tensors))
    return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=decay)
