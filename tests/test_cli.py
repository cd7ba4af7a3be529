"""The command line in this process on real Fashion-MNIST (the library behind each command
runs as the CLI runs it) and its user errors; one real ``python -m cnn_core`` process pins the
exit-code contract."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cnn_core.models import MODELS, PRETRAINED
from cnn_core.runs import api
from tests.conftest import FASHION_DIR, PROJECT
from tests.run_fixtures import cli_here, finished_run

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


@pytest.mark.fashion
def test_train_json_contract_and_progress_bar(capsys):
    code, out, err = cli_here(capsys, "train", *TINY, "--model", "v1", "--json")
    assert code == 0, err
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
    assert "epoch 1/1" in err  # the progress bar goes to stderr
    assert os.path.isfile(out["checkpoint"])


@pytest.mark.fashion
def test_evaluate_and_predict(capsys, isolated_dirs):
    run = api.get_run(finished_run())
    ck = run["checkpoint"]
    code, ev, err = cli_here(capsys, "evaluate", "--checkpoint", ck, "--split", "val", "--json")
    assert code == 0, err
    assert set(ev) >= {"accuracy", "loss", "n", "per_class_accuracy", "confusion"}
    assert ev["n"] == 200 and len(ev["confusion"]) == 10
    assert ev["accuracy"] == pytest.approx(run["val_accuracy"])
    from scipy.stats import binomtest

    ref = binomtest(round(ev["accuracy"] * 200), 200).proportion_ci(method="wilson")
    assert (ev["ci_low"], ev["ci_high"]) == pytest.approx((ref.low, ref.high))

    from cnn_core.data.idx import read_idx

    images = read_idx(FASHION_DIR / "t10k-images-idx3-ubyte.gz")[:3]
    files = []
    for i, img in enumerate(images):
        path = str(isolated_dirs / "data" / f"sample{i}.png")
        Image.fromarray(np.asarray(img, dtype=np.uint8)).save(path)
        files.append(path)
    code, out, err = cli_here(capsys, "predict", "--checkpoint", ck, *files, "--json")
    assert code == 0, err
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


@pytest.mark.fast
def test_datasets_listing(capsys):
    names = [d["name"] for d in cli_here(capsys, "datasets", "--json")[1]]
    assert names == ["mnist", "fashion-mnist", "celeba", "image-folder"]


def test_models_listing(capsys):
    """Not in make test-fast: counting the pretrained backbones' parameters builds them."""
    models = cli_here(capsys, "models", "--json")[1]
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
@pytest.mark.fast
def test_user_errors_exit_2_with_one_line(capsys, args, message):
    code, _, err = cli_here(capsys, *args)
    assert code == 2, err
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_a_real_process_exits_2_with_one_line():
    """The contract of ``python -m cnn_core`` itself: a user error exits 2 with one line on
    stderr and no traceback (the in-process tests above check each error's text)."""
    proc = subprocess.run(
        [sys.executable, "-m", "cnn_core", "train", "--model", "v9"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and "unknown model" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_missing_data_dir_and_corrupt_idx(capsys, isolated_dirs):
    root = isolated_dirs / "data"
    code, _, err = cli_here(
        capsys, "train", "--dataset", "fashion-mnist", "--data-dir", str(root / "nothing-here")
    )
    assert code == 2 and err.startswith("error: "), err
    bad = root / "broken"
    bad.mkdir()
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        (bad / name).write_bytes(b"\x00\x00\x08\x03garbage")
    code, _, err = cli_here(capsys, "train", "--dataset", "fashion-mnist", "--data-dir", str(bad))
    assert code == 2 and err.startswith("error: "), err


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
