"""The command line end to end (real subprocesses on real Fashion-MNIST) and its user errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cnn_core.models import MODELS, PRETRAINED
from tests.conftest import FASHION_DIR, PROJECT

TINY = [
    "--dataset",
    "fashion-mnist",
    "--epochs",
    "1",
    "--train-size",
    "600",
    "--val-size",
    "300",
    "--threads",
    "2",
]


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "cnn_core", *args],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=300,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def last_json(proc: subprocess.CompletedProcess):
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny run trained through the CLI, shared by the tests below."""
    if not FASHION_DIR.is_dir():
        pytest.skip("real Fashion-MNIST not available")
    runs = tmp_path_factory.mktemp("cli-runs")
    proc = cli("train", *TINY, "--model", "v1", "--runs-dir", str(runs), "--json")
    return runs, proc


def test_train_json_contract_and_progress_bar(trained):
    _, proc = trained
    out = last_json(proc)
    assert set(out) >= {"run_id", "checkpoint", "dataset_note", "val_accuracy", "history"}
    (row,) = out["history"]
    assert set(row) == {
        "epoch",
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "seconds",
        "images_per_s",
    }
    assert out["val_accuracy"] == row["val_accuracy"] > 0.4
    assert out["dataset_note"] == ""  # the real dataset, not a sample
    assert "epoch 1/1" in proc.stderr  # the progress bar goes to stderr
    assert os.path.isfile(out["checkpoint"])


def test_evaluate_and_predict(trained):
    runs, proc = trained
    ck = last_json(proc)["checkpoint"]
    ev = last_json(
        cli("evaluate", "--checkpoint", ck, "--split", "val", "--runs-dir", str(runs), "--json")
    )
    assert set(ev) >= {"accuracy", "loss", "n", "per_class_accuracy", "confusion"}
    assert ev["n"] == 300 and len(ev["confusion"]) == 10
    assert ev["accuracy"] == pytest.approx(last_json(proc)["val_accuracy"])
    from scipy.stats import binomtest

    ref = binomtest(round(ev["accuracy"] * 300), 300).proportion_ci(method="wilson")
    assert (ev["ci_low"], ev["ci_high"]) == pytest.approx((ref.low, ref.high))

    from cnn_core.data.idx import read_idx

    images = read_idx(FASHION_DIR / "t10k-images-idx3-ubyte.gz")[:3]
    data_dir = os.environ["CNN_LAB_DATA_ROOTS"].split(os.pathsep)[0]
    files = []
    for i, img in enumerate(images):
        path = os.path.join(data_dir, f"sample{i}.png")
        Image.fromarray(np.asarray(img, dtype=np.uint8)).save(path)
        files.append(path)
    out = last_json(cli("predict", "--checkpoint", ck, *files, "--runs-dir", str(runs), "--json"))
    assert [o["file"] for o in out] == files
    for o in out:
        assert len(o["probabilities"]) == 10 and abs(sum(o["probabilities"]) - 1) < 1e-4
        assert o["class_name"] in (
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        )


def test_datasets_and_models_listings():
    names = [d["name"] for d in last_json(cli("datasets", "--json"))]
    assert names == ["mnist", "fashion-mnist", "celeba", "image-folder"]
    models = last_json(cli("models", "--json"))
    assert [m["name"] for m in models] == [*MODELS, *PRETRAINED]  # registered, in order
    assert models[0]["params_digits"] == 3_274_634


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--model", "v9"], "unknown model"),
        (["train", "--lr", "-1"], "lr"),
        (["train", "--epochs", "0"], "epochs"),
        (["train", "--dataset", "imagenet"], "unknown dataset"),
        (["train", "--dataset", "fashion-mnist", "--data-dir", "/etc"], "outside the allowed"),
        (
            ["train", "--dataset", "fashion-mnist", "--data-dir", "../../../etc"],
            "outside the allowed",
        ),
        (["train", "--dataset", "image-folder"], "data_dir"),
        (["evaluate", "--checkpoint", "/etc/passwd"], "not a readable CNN Lab checkpoint"),
        (["runs", "show", "../../etc"], "invalid run id"),
    ],
)
def test_user_errors_exit_2_with_one_line(args, message):
    proc = cli(*args, check=False)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_missing_data_dir_and_corrupt_idx(isolated_dirs):
    root = isolated_dirs / "data"
    proc = cli(
        "train", "--dataset", "fashion-mnist", "--data-dir", str(root / "nothing-here"), check=False
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    bad = root / "broken"
    bad.mkdir()
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        (bad / name).write_bytes(b"\x00\x00\x08\x03garbage")
    proc = cli("train", "--dataset", "fashion-mnist", "--data-dir", str(bad), check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr


def test_training_options_are_generated_from_the_config():
    """Every scalar TrainConfig field is an option of train / submit / sweep, with the config's
    choices (the field added by a subclass: tests/test_config.py)."""
    import dataclasses

    from cnn_core.cli import build_parser, common
    from cnn_core.config import TrainConfig, knobs
    from cnn_core.errors import ConfigError

    parser = build_parser()
    for command in (["train"], ["submit"], ["sweep"]):
        args = parser.parse_args([*command, "--optimizer", "sgd", "--no-augment", "--tag", "a"])
        assert (args.optimizer, args.augment, args.tags) == ("sgd", False, ["a"])
    options = common.config_options()
    structured = {"model_spec"}  # a JSON spec: its own --model-spec FILE option
    assert set(options) == {f.name for f in dataclasses.fields(TrainConfig)} - structured
    for name, knob in knobs().items():
        if knob.choices:
            assert options[name]["metavar"] == "{" + ",".join(knob.choices) + "}"
    with pytest.raises(ConfigError, match="optimizer: must be one of adam, adamw, sgd"):
        common.config_from_args(parser.parse_args(["train", "--optimizer", "lbfgs"]))


def test_json_history_is_a_subset_of_the_trainers_history():
    from cnn_core.cli.main import JSON_HISTORY_KEYS
    from cnn_core.trainer import HISTORY_KEYS

    assert set(JSON_HISTORY_KEYS) <= set(HISTORY_KEYS)
