"""Security of user-given paths and ids, config validation (incl. property tests), and the CLI
rejecting a corpus of bad files and bad checkpoints with one clear line each."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnn_core.cli import main
from cnn_core.config import TrainConfig
from cnn_core.errors import ConfigError, UserError
from cnn_core.resolve import resolve
from cnn_core.settings import data_roots, resolve_within
from tests.image_corpus import BAD

# ---- paths ---------------------------------------------------------------------------------


def test_symlinks_out_of_a_root_are_refused(isolated_dirs):
    """(Browser folders: tests/test_paths.py.)"""
    root = data_roots()[0]
    os.symlink("/etc", root / "sneaky")
    with pytest.raises(UserError, match="outside the allowed"):
        resolve_within(root / "sneaky" / "passwd", [root])


# ---- config --------------------------------------------------------------------------------

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.lists(st.text(max_size=5), max_size=3),
)
FIELDS = list(TrainConfig().to_dict())


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS + ["bogus"]), values, max_size=6))
def test_config_validation_only_ever_raises_config_errors(data):
    try:
        cfg = TrainConfig.from_dict(data)
    except ConfigError as exc:
        assert exc.field and exc.message
    else:
        assert TrainConfig.from_dict(cfg.to_dict()) == cfg  # a valid config round-trips


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("epochs", 0),
        ("epochs", 1.5),
        ("batch_size", 0),
        ("lr", float("nan")),
        ("lr", 0),
        ("optimizer", "rmsprop"),
        ("dropout", 1.0),
        ("balance", "oversample"),
        ("device", "tpu"),
        ("precision", "fp8"),
        ("tags", ["x" * 60]),
        ("model", "v9"),
        ("dataset", "imagenet"),
        ("seed", -1),
        ("augment", "yes"),
    ],
)
def test_bad_config_values_name_the_field(field, value):
    """Each field alone (from_dict validates) or, for names, against its registry (resolve)."""
    with pytest.raises(ConfigError) as info:
        resolve(TrainConfig.from_dict({field: value}))
    assert info.value.field == field


# ---- the CLI on bad files ------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A real (tiny) trained checkpoint in a module-wide runs folder."""
    from tests.run_fixtures import finished_run

    runs = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNN_LAB_RUNS_DIR", str(runs))
        from cnn_core.runs import api

        run_id = finished_run()
        return runs, api.get_run(run_id)["checkpoint"]


def run_cli(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr()


@pytest.mark.parametrize("name", list(BAD))
@pytest.mark.parametrize("kind", ["canvas", "dataset"])
def test_predict_rejects_every_bad_file_with_one_line(
    name, kind, checkpoint, isolated_dirs, capsys, monkeypatch
):
    runs, ck = checkpoint
    monkeypatch.setenv("CNN_LAB_RUNS_DIR", str(runs))
    path = isolated_dirs / "data" / "bad.bin"
    path.write_bytes(BAD[name][0])
    code, out = run_cli(capsys, "predict", "--checkpoint", ck, "--input", kind, str(path))
    assert code == 2
    assert out.err.startswith("error: ") and len(out.err.strip().splitlines()) == 1


@pytest.mark.parametrize("content", [b"", b"garbage", b"PK\x03\x04" + b"\0" * 100])
def test_evaluate_and_predict_reject_corrupt_checkpoints(content, checkpoint, capsys, monkeypatch):
    runs, _ = checkpoint
    monkeypatch.setenv("CNN_LAB_RUNS_DIR", str(runs))
    bad = runs / "bad.pt"
    bad.write_bytes(content)
    for argv in (
        ["evaluate", "--checkpoint", str(bad)],
        ["predict", "--checkpoint", str(bad), "x.png"],
    ):
        code, out = run_cli(capsys, *argv)
        assert code == 2 and "bad.pt" in out.err and len(out.err.strip().splitlines()) == 1


def test_wrong_family_checkpoint_is_explained(checkpoint, isolated_dirs, capsys, monkeypatch):
    from PIL import Image

    runs, ck = checkpoint
    monkeypatch.setenv("CNN_LAB_RUNS_DIR", str(runs))
    path = isolated_dirs / "data" / "face.png"
    Image.new("RGB", (178, 218), (200, 150, 120)).save(path)
    code, out = run_cli(capsys, "predict", "--checkpoint", ck, "--input", "face", str(path))
    assert code == 2 and "face model" in out.err
