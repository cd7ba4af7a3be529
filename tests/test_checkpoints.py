"""Checkpoints: atomic writes, safe loading, clear errors, run-id validation."""

from __future__ import annotations

import pytest
import torch

from cnn_core.checkpoints import (
    describe_checkpoint,
    load_checkpoint,
    new_run_id,
    run_dir,
    save_checkpoint,
    validate_run_id,
)
from cnn_core.errors import CheckpointError, UserError


def payload():
    return {
        "config": {"model": "v1"},
        "class_names": ["a", "b"],
        "epoch": 1,
        "history": [{"val_accuracy": 0.5}],
        "model_state": {"w": torch.ones(2)},
    }


def test_save_is_atomic_and_roundtrips(tmp_path):
    path = save_checkpoint(tmp_path / "run" / "checkpoint.pt", payload())
    assert [p.name for p in path.parent.iterdir()] == ["checkpoint.pt"]  # no temp file left behind
    data = load_checkpoint(path)
    assert torch.equal(data["model_state"]["w"], torch.ones(2))
    assert describe_checkpoint(path)["val_accuracy"] == 0.5


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "ck" / "checkpoint.pt", payload())

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(CheckpointError, match="No space left"):
        save_checkpoint(path, {**payload(), "epoch": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["checkpoint.pt"]


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", b"PK\x03\x04garbage"])
def test_corrupt_files_give_a_clear_error(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="bad.pt"):
        load_checkpoint(path)


def test_truncated_checkpoint(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", payload())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_foreign_torch_file_and_pickled_object_are_refused(tmp_path):
    torch.save({"weights": torch.ones(1)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a CNN Lab checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    torch.save({"format": "cnn-lab-checkpoint", "obj": ValueError("x")}, tmp_path / "pickle.pt")
    with pytest.raises(CheckpointError):  # weights_only=True refuses arbitrary objects
        load_checkpoint(tmp_path / "pickle.pt")


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_run_ids():
    rid = new_run_id()
    assert validate_run_id(rid) == rid
    for bad in ["", "..", "../etc", "a/b", "A B", "x" * 80, "/abs", "ok\n"]:
        with pytest.raises(UserError):
            validate_run_id(bad)
    assert run_dir(rid).name == rid
