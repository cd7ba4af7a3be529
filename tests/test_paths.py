"""One path policy: paths typed on the command line are the user's own (relative to the current
folder, absolute anywhere readable); folders typed in the browser stay inside the data roots;
every write stays under the runs dir and the data roots."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
from PIL import Image

from cnn_core.checkpoints import CHECKPOINT_NAME, run_dir
from cnn_core.data.choices import save_choices
from cnn_core.errors import ConfigError, UserError
from cnn_core.runs import api
from cnn_core.settings import data_roots
from tests.data_fixtures import make_image_folder
from tests.run_fixtures import cli_here, finished_run, run_here

FOLDER = ["--dataset", "image-folder", "--image-size", "16", "--epochs", "1", "--threads", "1"]


@pytest.fixture
def home(tmp_path, monkeypatch):
    """The user's home and current folder: outside every data root and the runs dir."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(home)
    return home


def test_a_checkpoint_path_is_relative_to_the_current_folder(tmp_path, monkeypatch, capsys):
    """From the folder holding the runs dir (the project root), the README's
    ``evaluate --checkpoint checkpoints/<run_id>/checkpoint.pt`` reads that checkpoint."""
    monkeypatch.setenv("CNN_LAB_RUNS_DIR", str(tmp_path / "checkpoints"))
    run_id = finished_run(train_size=200, val_size=100)
    monkeypatch.chdir(tmp_path)
    argv = ["--checkpoint", f"checkpoints/{run_id}/checkpoint.pt", "--json"]
    code, out, err = cli_here(capsys, "evaluate", *argv, "--split", "val")
    assert code == 0, err
    assert out["n"] == 100


def test_files_typed_on_the_command_line_may_be_anywhere(home, capsys):
    """``predict --input canvas ~/x.png``, ``datasets import pets ~/pets.zip`` and
    ``train --model-spec ~/my.json`` read the user's own files."""
    checkpoint = str(run_dir(finished_run(train_size=200, val_size=100)) / CHECKPOINT_NAME)
    Image.fromarray(np.full((28, 28), 255, np.uint8)).save(home / "x.png")
    code, out, err = cli_here(
        capsys, "predict", "--checkpoint", checkpoint, "--input", "canvas", "~/x.png", "--json"
    )
    assert code == 0, err
    assert out[0]["file"] == "~/x.png"

    pets = make_image_folder(home / "pets-src", n_per_class=4)
    with zipfile.ZipFile(home / "pets.zip", "w") as archive:
        for image in sorted(pets.rglob("*.png")):
            archive.write(image, image.relative_to(pets).as_posix())
    code, out, err = cli_here(capsys, "datasets", "import", "pets", "~/pets.zip", "--json")
    assert code == 0, err
    assert out["total"] == 8 and (data_roots()[0] / "datasets" / "pets" / "a").is_dir()

    code, spec, err = cli_here(capsys, "models", "--spec", "v1")
    (home / "my.json").write_text(spec)
    code, out, err = cli_here(
        capsys, "train", *FOLDER, "--data-dir", "pets-src", "--model-spec", "~/my.json", "--json"
    )
    assert code == 0, err
    assert api.get_run(out["run_id"])["config"]["model_spec"]["name"] == "my-v1"


def test_a_relative_data_dir_is_stored_absolute_for_the_worker(home, tmp_path, capsys, monkeypatch):
    """``submit --data-dir pets`` from the user's folder: the stored config names the folder
    absolutely, so the worker (another process, another folder) trains on it."""
    make_image_folder(home / "pets", n_per_class=6)
    code, out, err = cli_here(
        capsys, "submit", *FOLDER, "--data-dir", "pets", "--no-worker", "--json"
    )
    assert code == 0, err
    run = api.get_run(out["run_id"])
    assert run["config"]["data_dir"] == str(home / "pets")
    monkeypatch.chdir(tmp_path)
    assert run_here(run["id"]) == 0
    assert api.get_run(run["id"])["status"] == "completed"


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "--checkpoint", "checkpoints/nope/checkpoint.pt"],
        ["predict", "--checkpoint", "checkpoints/nope/checkpoint.pt", "x.png"],
        ["datasets", "import", "pets", "nope.zip"],
        ["train", "--model-spec", "nope.json"],
        ["train", "--dataset", "image-folder", "--data-dir", "nope"],
        ["models", "--check", "nope.json"],
    ],
)
def test_a_missing_path_is_named_as_given_and_as_resolved(argv, home, capsys):
    code, _, err = cli_here(capsys, *argv)
    given = next(a for a in argv if "nope" in a)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert repr(given) in err and str(home / given) in err, err


def test_a_data_dir_outside_the_roots_is_read_but_never_written(home, capsys):
    """Reading an image folder anywhere is fine; a download or saved data choices would write,
    so they stay inside the data roots."""
    empty = home / "empty"
    empty.mkdir()
    code, _, err = cli_here(capsys, "train", "--dataset", "fashion-mnist", "--data-dir", "empty")
    assert code == 2 and "outside the allowed" in err, err
    assert list(empty.iterdir()) == []
    pets = make_image_folder(home / "pets", n_per_class=2)
    with pytest.raises(UserError, match="outside the allowed"):
        save_choices(pets, {"a/0.png"}, {})
    assert sorted(p.name for p in pets.iterdir()) == ["a", "b"]


def test_a_folder_typed_in_the_browser_stays_inside_the_data_roots(isolated_dirs, tmp_path):
    from cnn_core.settings import browser_data_dir

    root = data_roots()[0]
    (root / "ok").mkdir()
    assert browser_data_dir("ok") == str(root / "ok")
    assert browser_data_dir(str(root / "ok")) == str(root / "ok")
    assert browser_data_dir("") is None and browser_data_dir(None) is None
    (root / "sneaky").symlink_to(tmp_path)
    for bad in ("../", "../../etc", "/etc", "ok/../../..", str(isolated_dirs / "runs"), "sneaky"):
        with pytest.raises(ConfigError, match="outside the allowed") as exc:
            browser_data_dir(bad)
        assert exc.value.field == "data_dir"


def test_a_run_stores_the_data_dir_the_cli_was_given_absolutely(home, capsys):
    make_image_folder(home / "pets", n_per_class=6)
    code, out, err = cli_here(capsys, "train", *FOLDER, "--data-dir", "~/pets", "--json")
    assert code == 0, err
    assert api.get_run(out["run_id"])["config"]["data_dir"] == str(home / "pets")
