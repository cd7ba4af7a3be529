"""Your-data builder: uploads, zips (good and hostile), names, atomic changes, export, CLI,
and a built dataset that trains."""

from __future__ import annotations

import io
import stat
import zipfile

import numpy as np
import pytest
from PIL import Image

from cnn_core.config import TrainConfig
from cnn_core.data import DataSpec, builder, load_dataset
from cnn_core.errors import DataError, UserError
from cnn_core.resolve import resolve
from cnn_core.trainer import fit
from tests.run_fixtures import cli_here


def png(value: int, size: int = 20, seed: int = 0, mode: str = "L") -> bytes:
    """A small noisy PNG around grey ``value`` (distinct bytes per seed)."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(rng.normal(value, 20, (size, size)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


def make_zip(entries: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return buffer.getvalue()


def good_zip(per_class: int = 12, top: str = "pets/") -> bytes:
    entries = {
        f"{top}{cls}/img{i}.png": png(value, seed=i + 100 * k)
        for k, (cls, value) in enumerate((("cat", 50), ("dog", 200)))
        for i in range(per_class)
    }
    return make_zip(entries)


def leftovers() -> list[str]:
    """Anything in the datasets folder besides the lock file (stages, half datasets)."""
    root = builder.datasets_root()
    return sorted(p.name for p in root.iterdir() if p.name != ".lock") if root.is_dir() else []


def test_names_are_sanitised_and_confined():
    assert builder.sanitize_name("My pets!") == "My pets"
    assert builder.sanitize_name("../../etc/passwd") == "etc_passwd"
    assert builder.sanitize_name("  .hidden  ") == "hidden"
    assert builder.sanitize_name("Ünïcode café") == "Ünïcode café"
    assert len(builder.sanitize_name("x" * 300)) == 64
    for bad in ("", "...", "/", "***"):
        with pytest.raises(UserError, match="no usable characters"):
            builder.sanitize_name(bad)
    assert builder.dataset_path("../../x").parent == builder.datasets_root()


def test_a_good_zip_is_imported_listed_and_trains():
    report = builder.import_zip("pets", good_zip())
    assert report.added == {"cat": 12, "dog": 12} and not report.skipped
    assert report.data_dir == "datasets/pets"
    listed = builder.list_datasets()
    assert [(d["name"], d["classes"]) for d in listed] == [("pets", {"cat": 12, "dog": 12})]
    config = TrainConfig(
        dataset="image-folder", data_dir=report.data_dir, epochs=1, threads=1, batch_size=8
    )
    data = load_dataset(DataSpec.of(config))
    assert data.class_names == ["cat", "dog"] and len(data.train) + len(data.val) == 24
    result = fit(config, data=data)
    assert result.completed and result.history[-1]["val_accuracy"] >= 0.5
    assert leftovers() == ["pets"]


def test_reimporting_the_same_zip_adds_nothing_and_new_names_never_clash():
    builder.import_zip("pets", good_zip())
    again = builder.import_zip("pets", good_zip())
    assert again.total == 0
    assert all("identical" in s["reason"] for s in again.skipped) and len(again.skipped) == 24
    # same file name, different pixels: kept under a free name
    report = builder.add_images("pets", "cat", [("img0.png", png(60, seed=999))])
    assert report.added == {"cat": 1}
    names = sorted(p.name for p in builder.list_images("pets")["cat"])
    assert "img0.png" in names and "img0-2.png" in names


@pytest.mark.parametrize(
    ("entries", "symlinks", "message"),
    [
        ({"../evil/x.png": png(1)}, None, "escaping its folder"),
        ({"a/../../x.png": png(1)}, None, "escaping its folder"),
        ({"/etc/x.png": png(1)}, None, "absolute path"),
        ({"C:/x/y.png": png(1)}, None, "absolute path"),
        ({"cat/a.png": png(1)}, {"cat/link.png": "/etc/passwd"}, "symlink"),
    ],
)
def test_hostile_archives_are_refused_whole_and_leave_nothing(entries, symlinks, message):
    entries = {"cat/ok.png": png(10), "dog/ok.png": png(200), **entries}
    with pytest.raises(UserError, match=message):
        builder.import_zip("bad", make_zip(entries, symlinks))
    assert leftovers() == []


def test_limits_on_files_and_bytes_refuse_the_archive():
    archive = good_zip(per_class=3)
    with pytest.raises(UserError, match="more than the limit of 4"):
        builder.import_zip("x", archive, builder.Limits(max_files=4))
    with pytest.raises(UserError, match="MB unpacked is more than"):
        builder.import_zip("x", archive, builder.Limits(max_bytes=1000))
    with pytest.raises(UserError, match="not a readable zip"):
        builder.import_zip("x", b"PK\x03\x04 not really a zip")
    assert leftovers() == []


def test_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("CNN_LAB_IMPORT_MAX_FILES", "7")
    assert builder.Limits.from_env().max_files == 7
    monkeypatch.setenv("CNN_LAB_IMPORT_MAX_FILES", "lots")
    with pytest.raises(UserError, match="positive number"):
        builder.Limits.from_env()


def test_bombs_junk_and_non_images_are_skipped_with_a_reason_each():
    huge = io.BytesIO()
    Image.new("1", (8000, 8000)).save(huge, format="PNG")  # 64 MP in a few kB
    entries = {
        "cat/ok.png": png(10),
        "dog/ok.png": png(200),
        "cat/zeros.png": bytes(5_000_000),  # 5 MB of zeros deflates ~1000:1
        "cat/huge.png": huge.getvalue(),
        "cat/notes.txt": b"hello",
        "cat/fake.png": b"this is not a png",
        "__MACOSX/cat/._ok.png": b"junk",
        "cat/.DS_Store": b"junk",
        "cat/deeper/nested.png": png(10),
        "loose.png": png(10),
    }
    report = builder.import_zip("mixed", make_zip(entries))
    assert report.added == {"cat": 1, "dog": 1}
    reasons = {s["file"]: s["reason"] for s in report.skipped}
    assert "decompression bomb" in reasons["cat/zeros.png"]
    assert "too large" in reasons["cat/huge.png"]
    assert "not an image file" in reasons["cat/notes.txt"]
    assert "not an image PIL can read" in reasons["cat/fake.png"]
    assert reasons["__MACOSX/cat/._ok.png"] == reasons["cat/.DS_Store"] == "hidden or system file"
    assert "nested too deep" in reasons["cat/deeper/nested.png"]
    assert "not inside a class folder" in reasons["loose.png"]
    assert len(reasons) == 8


def test_an_archive_without_any_usable_image_is_refused():
    with pytest.raises(UserError, match="no usable images"):
        builder.import_zip("empty", make_zip({"cat/notes.txt": b"x"}))
    assert leftovers() == []


def test_uploads_are_decoded_and_stored_in_a_kept_format():
    gif = io.BytesIO()
    Image.new("P", (16, 16)).save(gif, format="GIF")
    jpeg = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 10, 10)).save(jpeg, format="JPEG")
    builder.create_dataset("shapes", ["red", "blue"])
    report = builder.add_images(
        "shapes",
        "red",
        [("a.gif", gif.getvalue()), ("photo.jpeg.png", jpeg.getvalue()), ("x.png", b"nope")],
    )
    assert report.added == {"red": 2}
    assert [s["file"] for s in report.skipped] == ["red/x.png"]
    stored = sorted(p.name for p in builder.list_images("shapes")["red"])
    assert stored == ["a.png", "photo.jpeg.jpg"]  # GIF re-encoded as PNG; JPEG kept as JPEG


def test_class_and_image_edits_and_a_failed_change_leaves_the_dataset_as_it_was():
    builder.import_zip("pets", good_zip(per_class=3))
    assert builder.rename_class("pets", "cat", "kitten!") == "kitten"
    builder.delete_image("pets", "dog", "img0.png")
    assert {k: len(v) for k, v in builder.list_images("pets").items()} == {"dog": 2, "kitten": 3}
    with pytest.raises(UserError, match="already exists"):
        builder.rename_class("pets", "kitten", "dog")
    with pytest.raises(UserError, match="no image"):
        builder.delete_image("pets", "dog", "../kitten/img0.png")
    builder.delete_class("pets", "dog")
    assert list(builder.list_images("pets")) == ["kitten"]
    with pytest.raises(UserError, match="already exists"):
        builder.create_dataset("pets")
    builder.delete_dataset("pets")
    assert builder.list_datasets() == [] and leftovers() == []


def test_export_round_trips_through_import():
    builder.import_zip("pets", good_zip(per_class=4))
    exported = builder.export_zip("pets")
    with zipfile.ZipFile(io.BytesIO(exported)) as zf:
        assert sorted(n for n in zf.namelist() if n.endswith(".png"))[0] == "pets/cat/img0.png"
    report = builder.import_zip("copy", exported)
    assert report.added == {"cat": 4, "dog": 4} and not report.skipped


def test_cli_import_json_and_one_line_refusal(capsys, isolated_dirs):
    archive = isolated_dirs / "data" / "pets.zip"
    archive.write_bytes(good_zip(per_class=2))
    code, out, _ = cli_here(capsys, "datasets", "import", "pets", str(archive), "--json")
    assert code == 0 and out["added"] == {"cat": 2, "dog": 2} and out["data_dir"] == "datasets/pets"
    bad = isolated_dirs / "data" / "bad.zip"
    bad.write_bytes(make_zip({"../x.png": png(1)}))
    code, out, err = cli_here(capsys, "datasets", "import", "bad", str(bad))
    assert code == 2 and err.count("\n") == 1 and "escaping its folder" in err
    code, _, err = cli_here(capsys, "datasets", "import", "x", "/etc/hostname")
    assert code == 2 and err.count("\n") == 1 and "not a readable zip file" in err
    code, out, _ = cli_here(capsys, "datasets", "--json")
    assert "image-folder" in {row["name"] for row in out}


def folder_bundle(data_dir: str):
    """The images a run created now on ``data_dir`` sees."""
    return load_dataset(
        DataSpec.of(resolve(TrainConfig(dataset="image-folder", data_dir=data_dir)))
    )


def split_zip(top: str = "pets/", with_val: bool = False) -> bytes:
    """A Kaggle-style zip: ``pets/train/<class>/…`` 6 each, ``pets/test/<class>/…`` 2 each."""
    entries = {}
    for k, (cls, value) in enumerate((("cats", 50), ("dogs", 200))):
        splits = (("train", 6), ("test", 2), *((("valid", 2),) if with_val else ()))
        for j, (split, n) in enumerate(splits):
            for i in range(n):
                seed = 1000 * k + 100 * j + i
                entries[f"{top}{split}/{cls}/{i}.png"] = png(value, seed=seed)
    return make_zip(entries)


def test_a_train_test_zip_imports_as_one_dataset_whose_splits_are_kept():
    report = builder.import_zip("pets", split_zip())
    assert report.added == {"cats": 8, "dogs": 8} and not report.skipped
    assert report.splits == {"train": 12, "test": 4}
    assert "recognised train/test split folders" in report.summary()
    assert sorted(builder.list_images("pets")) == ["cats", "dogs"]
    bundle = folder_bundle("datasets/pets")
    assert len(bundle.test) == 4 and bundle.test.class_counts(2) == [2, 2]
    assert len(bundle.train) + len(bundle.val) == 12 and bundle.val.class_counts(2) == [1, 1]
    assert "test split kept" in bundle.note
    builder.rename_class("pets", "cats", "kittens")
    renamed = folder_bundle("datasets/pets")
    sums = [sorted(b.test.images.sum((1, 2, 3)).tolist()) for b in (renamed, bundle)]
    assert sums[0] == sums[1]  # the same test images under the new class order
    with zipfile.ZipFile(io.BytesIO(builder.export_zip("pets"))) as zf:
        assert sum(n.startswith("pets/test/kittens/") for n in zf.namelist()) == 2
    again = builder.import_zip("copy", builder.export_zip("pets"))
    assert again.splits == {"train": 12, "test": 4}


def test_given_validation_split_is_kept_without_a_top_folder():
    report = builder.import_zip("shots", split_zip(top="", with_val=True))
    assert report.splits == {"train": 12, "test": 4, "val": 4}
    bundle = folder_bundle("datasets/shots")
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (12, 4, 4)


def test_split_folders_beside_loose_class_folders_refuse_the_zip():
    entries = {"pets/train/cats/0.png": png(50), "pets/dogs/0.png": png(200, seed=3)}
    with pytest.raises(UserError, match=r"split folders \(train/\) beside loose class folders"):
        builder.import_zip("mixed", make_zip(entries))
    assert leftovers() == [] and builder.list_datasets() == []


def test_a_hand_unzipped_split_folder_is_named_not_read_as_classes(isolated_dirs):
    root = isolated_dirs / "data" / "kaggle"
    for split in ("train", "test"):
        (root / split / "cats").mkdir(parents=True)
        (root / split / "cats" / "0.png").write_bytes(png(50))
    with pytest.raises(DataError, match="holds split folders"):
        folder_bundle("kaggle")
