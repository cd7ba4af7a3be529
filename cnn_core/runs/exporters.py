"""Export a run's model to ONNX or TorchScript and check the outputs match PyTorch's.

An ONNX file is self-contained (its weights inside, no side file), so it loads wherever it is
copied; the parity check loads the exported bytes alone in a temporary folder to prove it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checkpoints import CHECKPOINT_NAME, run_dir
from ..errors import UserError

FORMATS = ("onnx", "torchscript", "checkpoint")
FILE_NAMES = {"onnx": "model.onnx", "torchscript": "model.torchscript.pt"}
EXAMPLE_BATCH = 2  # traced with this batch size ...
CHECK_BATCH = 8  # ... and checked with another, so the batch dimension must really be dynamic
ONNX_MAX_BYTES = 2**31 - 1  # protobuf's limit: weights beyond it need a side file

Runner = Callable[[torch.Tensor], torch.Tensor]


def export_run(run_id: str, fmt: str) -> dict[str, Any]:
    """Write ``runs_dir/<id>/model.onnx`` or ``model.torchscript.pt`` and compare its outputs with
    PyTorch's on a batch of random validation-shaped inputs. Returns ``{"path", "max_abs_diff"}``
    (``checkpoint`` returns the checkpoint path and no difference)."""
    from ..predict import Predictor

    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    folder = run_dir(run_id)
    checkpoint = folder / CHECKPOINT_NAME
    if not checkpoint.is_file():
        raise UserError(
            f"run {run_id} has no checkpoint yet: it must finish at least one epoch or be stopped"
        )
    if fmt == "checkpoint":
        return {"path": str(checkpoint), "max_abs_diff": None}
    predictor = Predictor.from_checkpoint(checkpoint)
    model = predictor.model.eval()
    shape = (predictor.in_channels, predictor.image_size, predictor.image_size)
    gen = torch.Generator().manual_seed(0)
    example, check = (
        torch.rand(EXAMPLE_BATCH, *shape, generator=gen),
        torch.rand(CHECK_BATCH, *shape, generator=gen),
    )
    path = folder / FILE_NAMES[fmt]
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        runner = (_export_onnx if fmt == "onnx" else _export_torchscript)(model, example, tmp)
        got = runner(check)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    with torch.no_grad():
        expected = model(check)
    return {"path": str(path), "max_abs_diff": float((got - expected).abs().max())}


def _export_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> Runner:
    """Export with the dynamo exporter (dynamic batch, weights inside the file) and return an
    onnxruntime runner of a copy of the file alone in a temporary folder."""
    import onnxruntime as ort

    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    if weights >= ONNX_MAX_BYTES:
        raise UserError(
            f"the model's weights take {weights / 2**30:.1f} GiB: an ONNX file holds at most "
            "2 GiB; export torchscript instead"
        )
    torch.onnx.export(
        model,
        (example,),
        str(path),
        input_names=["images"],
        output_names=["logits"],
        dynamo=True,
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        external_data=False,
        verbose=False,
    )
    with tempfile.TemporaryDirectory() as alone:
        copy = shutil.copyfile(path, Path(alone) / FILE_NAMES["onnx"])
        session = ort.InferenceSession(str(copy), providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(None, {"images": x.numpy()})[0])


def _export_torchscript(model: nn.Module, example: torch.Tensor, path: Path) -> Runner:
    """Trace to TorchScript, save, and return the reloaded module."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit.*deprecated")
        torch.jit.trace(model, example).save(str(path))
        loaded = torch.jit.load(str(path))

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return loaded(x)

    return run
