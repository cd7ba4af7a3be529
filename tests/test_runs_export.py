"""Export: ONNX (checked with onnxruntime, dynamic batch) and TorchScript match PyTorch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import small_fashion_config

from cnn_core.checkpoints import CHECKPOINT_NAME, run_dir
from cnn_core.cli import main
from cnn_core.errors import UserError
from cnn_core.runs import RunStore, api
from cnn_core.trainer import build_state


@pytest.fixture
def run_with_checkpoint(fashion_small):
    """A stored run whose checkpoint holds an (untrained) v1 model for Fashion-MNIST."""
    cfg = small_fashion_config()
    run_id = "20260101-000000-export"
    RunStore().add_run(run_id, cfg.to_dict(), status="completed")
    build_state(cfg, data=fashion_small).save(run_dir(run_id) / CHECKPOINT_NAME)
    return run_id


def test_onnx_export_matches_pytorch_with_a_dynamic_batch(run_with_checkpoint):
    import onnxruntime as ort

    result = api.export(run_with_checkpoint, "onnx")
    assert result["path"].endswith("/model.onnx") and result["max_abs_diff"] < 1e-4
    session = ort.InferenceSession(result["path"], providers=["CPUExecutionProvider"])
    for batch in (1, 5):
        (logits,) = session.run(
            None, {"images": np.random.rand(batch, 1, 28, 28).astype(np.float32)}
        )
        assert logits.shape == (batch, 10)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_torchscript_export_matches_pytorch(run_with_checkpoint):
    result = api.export(run_with_checkpoint, "torchscript")
    assert result["path"].endswith("/model.torchscript.pt") and result["max_abs_diff"] < 1e-4
    assert torch.jit.load(result["path"])(torch.rand(3, 1, 28, 28)).shape == (3, 10)


def test_checkpoint_format_and_cli(run_with_checkpoint, capsys):
    result = api.export(run_with_checkpoint, "checkpoint")
    assert result == {
        "path": str(run_dir(run_with_checkpoint) / CHECKPOINT_NAME),
        "max_abs_diff": None,
    }
    assert main(["runs", "export", run_with_checkpoint, "--format", "torchscript"]) == 0
    assert "max abs diff vs PyTorch" in capsys.readouterr().out
    assert main(["runs", "export", run_with_checkpoint, "--format", "checkpoint", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["path"] == result["path"]


def test_export_errors(run_with_checkpoint):
    with pytest.raises(UserError, match="unknown export format"):
        api.export(run_with_checkpoint, "tflite")
    run_id = api.submit(small_fashion_config(), start_worker=False)
    with pytest.raises(UserError, match="has no checkpoint yet"):
        api.export(run_id, "onnx")
