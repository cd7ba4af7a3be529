"""``--runs-dir`` is one option for every command that reads runs: a run trained with
``train --runs-dir X`` is evaluated, predicted with and exported with ``--runs-dir X``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from cnn_core.cli import main

TINY = ["--dataset", "fashion-mnist", "--model", "v1", "--epochs", "1", "--threads", "1"]


@pytest.mark.fashion
def test_runs_dir_is_accepted_by_evaluate_predict_and_export(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CNN_LAB_RUNS_DIR")  # only the option says where the runs are
    runs = tmp_path / "elsewhere"
    sizes = ["--train-size", "200", "--val-size", "100"]
    assert main(["train", *TINY, *sizes, "--runs-dir", str(runs), "--quiet", "--json"]) == 0
    trained = json.loads(capsys.readouterr().out.splitlines()[-1])
    ck, run_id = trained["checkpoint"], trained["run_id"]
    monkeypatch.delenv("CNN_LAB_RUNS_DIR")  # set by the train command in this process

    digit = tmp_path / "data" / "shirt.png"
    Image.fromarray(np.full((28, 28), 200, np.uint8)).save(digit)
    for argv in (
        ["evaluate", "--checkpoint", ck, "--split", "val"],
        ["predict", "--checkpoint", ck, str(digit)],
        ["runs", "export", run_id, "--format", "checkpoint"],
    ):
        assert main([*argv, "--runs-dir", str(runs), "--json"]) == 0, capsys.readouterr().err
        monkeypatch.delenv("CNN_LAB_RUNS_DIR")
    out = capsys.readouterr().out.splitlines()
    assert json.loads(out[0])["n"] == 100
    assert json.loads(out[-1])["path"] == ck
