"""The shipped demo model: small, loads, right on held-out digits, and rebuilt exactly by its command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cnn_core.checkpoints import load_checkpoint
from cnn_core.cli import main
from cnn_core.data import DataSpec
from cnn_core.data.idx import load_mnist_sample
from cnn_core.demo import DEMO_CHECKPOINT, DEMO_CONFIG, DEMO_NOTE, build_demo_model
from cnn_core.predict import Predictor
from cnn_core.scoring import evaluate


@pytest.fixture(scope="module")
def held_out():
    """The part of the 5,000-digit sample the demo model never trained on (833 digits)."""
    return load_mnist_sample(DataSpec.of(DEMO_CONFIG), DEMO_NOTE).val


@pytest.fixture(scope="module")
def demo() -> Predictor:
    return Predictor.from_checkpoint(DEMO_CHECKPOINT)


def test_shipped_checkpoint_is_small_and_describes_itself(demo):
    assert DEMO_CHECKPOINT.stat().st_size < 1_000_000
    data = load_checkpoint(DEMO_CHECKPOINT)
    assert "optimizer_state" not in data
    config = data["config"]
    assert (config["seed"], config["model"], config["precision"]) == (
        DEMO_CONFIG.seed,
        "v3",
        "fp32",
    )
    assert demo.accepts_digits and demo.class_names == [str(d) for d in range(10)]
    assert demo.note == DEMO_NOTE and "5,000" in demo.note
    assert (DEMO_CHECKPOINT.parent / "README.md").is_file()


def test_shipped_model_is_right_on_held_out_digits(demo, held_out):
    result = evaluate(
        demo.model, held_out, load_mnist_sample(DataSpec.of(DEMO_CONFIG)).transform, 10
    )
    assert result.n == 833 and result.accuracy >= 0.97


def test_shipped_model_reads_photos_of_held_out_digits(demo, held_out):
    """Dark ink on noisy light paper at 5× size, through the drawing-pad preprocessing."""
    rng = np.random.default_rng(0)
    right = 0
    for image, label in zip(held_out.images[:100, 0], held_out.labels[:100], strict=True):
        paper = Image.fromarray(255 - image.numpy()).resize((140, 140), Image.BICUBIC)
        noisy = np.asarray(paper, np.float32) * 0.8 + 40 + rng.normal(0, 4, (140, 140))
        pred = demo.predict(Image.fromarray(noisy.clip(0, 255).astype(np.uint8)), kind="canvas")
        right += pred.label == int(label)
    assert right >= 95


def test_same_seed_gives_the_same_weights(tmp_path):
    first = build_demo_model(tmp_path / "a.pt", epochs=1, train_size=400)
    second = build_demo_model(tmp_path / "b.pt", epochs=1, train_size=400)
    a, b = (load_checkpoint(tmp_path / n)["model_state"] for n in ("a.pt", "b.pt"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert first["val_accuracy"] == second["val_accuracy"] and first["train_size"] == 400
    assert first["bytes"] < 1_000_000 and first["params"] == 127_466


@pytest.mark.slow
def test_demo_model_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CNN_LAB_RUNS_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # --out is relative to the current folder, written in the runs dir
    assert main(["demo-model", "--out", "demo.pt", "--epochs", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["path"] == str(tmp_path / "demo.pt") and out["epochs"] == 1
    assert out["train_size"] == 4167 and out["val_size"] == 833 and out["val_accuracy"] > 0.5
    assert main(["demo-model", "--out", "/etc/demo.pt", "--epochs", "1"]) == 2
    assert "outside the allowed" in capsys.readouterr().err
