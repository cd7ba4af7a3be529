"""How the trainer runs fast: memory layout, precision, fused Adam, dropout masks, device copies.

* ``channels_last`` on CPU and CUDA; ``precision="auto"`` = bf16 autocast on CPUs with native
  bf16 (AVX512-BF16 or AMX) and on GPUs that support it, fp16 with a GradScaler on other GPUs,
  fp32 elsewhere; Adam/AdamW's fused kernel on CPU and CUDA; CPU dropout masks from
  ``torch.rand`` (:class:`RandDropout`); pinned non-blocking copies to a GPU, and a small
  dataset without augmentation kept on the GPU whole (:func:`resident_split`).

Each choice was made by measurement; why, and the numbers: ``benchmarks/README.md``.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch
from torch import nn

from .errors import ConfigError

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of native bf16 arithmetic


@functools.lru_cache(maxsize=1)
def cpu_words() -> frozenset[str]:
    """The words of /proc/cpuinfo (vendor, flags); empty where there is none (not Linux)."""
    try:
        return frozenset(Path("/proc/cpuinfo").read_text(errors="replace").split())
    except OSError:
        return frozenset()


def cpu_has_fast_bf16() -> bool:
    """True when oneDNN is available and the CPU has native bf16 arithmetic (AVX512-BF16/AMX)."""
    return torch.backends.mkldnn.is_available() and any(f in cpu_words() for f in BF16_CPU_FLAGS)


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """``fp32``, ``bf16`` or ``fp16``: ``auto`` is bf16 on a CPU with native bf16 and on a GPU
    that supports it, fp16 on other CUDA GPUs, else fp32."""
    if precision != "auto":
        return precision
    kind = torch.device(device).type
    if kind == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if kind == "cpu" and cpu_has_fast_bf16() else "fp32"


AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(precision: str, device: torch.device):
    """bf16/fp16 autocast when ``precision`` resolves to one on ``device``, else a no-op."""
    dtype = AUTOCAST_DTYPES.get(resolve_precision(precision, device))
    return torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler | None:
    """A GradScaler for fp16 training on CUDA (fp16 gradients underflow without one), else None."""
    if device.type == "cuda" and resolve_precision(precision, device) == "fp16":
        return torch.amp.GradScaler("cuda")
    return None


def memory_format(device: torch.device | str) -> torch.memory_format:
    """``channels_last`` on CPU and CUDA, contiguous elsewhere (MPS)."""
    fast = torch.device(device).type in ("cpu", "cuda")
    return torch.channels_last if fast else torch.contiguous_format


RESIDENT_MAX_BYTES = 2 << 30  # datasets up to this size are kept whole on the GPU


def resident_split(
    images: torch.Tensor, labels: torch.Tensor, device: torch.device, augment: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """The training images and labels where batches are cut from: on a CUDA ``device`` the
    whole (small, un-augmented) split is copied there once; elsewhere they stay on the host.
    Augmentation draws from a CPU generator, so augmented data stays on the host."""
    small = images.numel() * images.element_size() <= RESIDENT_MAX_BYTES
    if device.type == "cuda" and small and not augment:
        return images.to(device), labels.to(device)
    return images, labels


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A batch on ``device`` in its memory format (CUDA: pinned host memory, non-blocking copy)."""
    if device.type == "cuda" and x.device.type == "cpu":
        x = x.pin_memory()
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=memory_format(device)) if x.ndim == 4 else x


def fused(params: list[torch.Tensor]) -> bool | None:
    """The ``fused`` argument for Adam/AdamW: True when every parameter is on CPU or CUDA."""
    return (bool(params) and all(p.device.type in ("cpu", "cuda") for p in params)) or None


class RandDropout(nn.Dropout):
    """``nn.Dropout`` whose mask is ``torch.rand(shape) >= p``: the same Bernoulli(1 - p) mask
    and 1 / (1 - p) scaling from the same (seeded) generator, but vectorised. torch's CPU
    ``bernoulli_`` draws one number at a time except on Intel CPUs with MKL (its cost:
    ``benchmarks/README.md``). It gives other masks than ``nn.Dropout`` for the same seed."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = torch.rand(x.shape, device=x.device) >= self.p
        return x * keep.to(x.dtype).mul_(1 / (1 - self.p))


def use_rand_dropout(model: nn.Module) -> nn.Module:
    """Replace every ``nn.Dropout`` in ``model`` by :class:`RandDropout` (in place)."""
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if type(child) is nn.Dropout:
                setattr(parent, name, RandDropout(child.p))
    return model


def rand_dropout_on(device: torch.device | str) -> bool:
    """True where dropout draws its masks with :class:`RandDropout` (CPU)."""
    return torch.device(device).type == "cpu"


def prepare_model(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` on ``device`` in its memory format, with :class:`RandDropout` where it is
    faster (parameters and state dict unchanged)."""
    if rand_dropout_on(device):
        use_rand_dropout(model)
    # torch's overloads of Module.to omit memory_format, which it takes
    return model.to(device, memory_format=memory_format(device))  # type: ignore[call-overload]


def pick_device(name: str) -> torch.device:
    """Resolve ``auto`` to cuda, then mps, then cpu; check an explicit choice is available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", "CUDA was requested but no CUDA GPU is available")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device", "MPS was requested but is not available on this machine")
    return torch.device(name)


def set_threads(threads: int) -> int:
    """Set torch's intra-op threads explicitly (0 = all cores); returns the number used."""
    n = threads or os.cpu_count() or 1
    torch.set_num_threads(n)
    return n
