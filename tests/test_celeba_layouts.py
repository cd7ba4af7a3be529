"""Every CelebA layout loads to the same images and labels; zips and Parquet are made
readable once, safely, and bad copies fail with one line naming the file."""

from __future__ import annotations

import os

import pytest
import torch

from cnn_core.config import TrainConfig
from cnn_core.data import DataSpec, celeba, load_dataset
from cnn_core.data.celeba_layouts import STAGING_PREFIX
from cnn_core.errors import DataError
from tests import celeba_fixtures as fx

CONFIG = dict(dataset="celeba", image_size=16, train_size=12, val_size=5, attribute="Heavy_Makeup")


def load_from(root, monkeypatch, **values):
    monkeypatch.setenv("CNN_LAB_DATA_ROOTS", str(root))
    return load_dataset(DataSpec.of(TrainConfig(**{**CONFIG, **values})))


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return fx.source(tmp_path_factory.mktemp("celeba-source"))


@pytest.fixture(scope="module")
def reference(source, tmp_path_factory):
    """The bundle of the reference copy (torchvision layout, read in place)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNN_LAB_CACHE_DIR", str(tmp_path_factory.mktemp("ref-cache")))
        return load_from(source.parent, mp)


def hidden_leftovers(root):
    return [p for p in root.rglob(f"{STAGING_PREFIX}*")]


@pytest.mark.parametrize("layout", fx.LAYOUTS)
def test_every_layout_loads_the_same_images_and_labels(
    layout, source, reference, tmp_path, monkeypatch
):
    root = tmp_path / "data"
    fx.build(layout, source, root)
    monkeypatch.setenv("CNN_LAB_DATA_ROOTS", str(root))
    status = celeba.source_status()  # only reads: nothing unpacked or converted yet
    assert status["available"], status
    assert not (root / "celeba" / "img_align_celeba").is_dir() or layout in (
        "torchvision",
        "kaggle-nested",
        "mixed",
    )
    bundle = load_from(root, monkeypatch)
    for split in ("train", "val", "test"):
        got, want = bundle.split(split), reference.split(split)
        assert torch.equal(got.images, want.images), split
        assert torch.equal(got.labels, want.labels), split
    assert bundle.class_names == reference.class_names
    assert not hidden_leftovers(root)
    files = celeba.find_celeba()
    mtime = files.image_dir.stat().st_mtime_ns
    load_from(root, monkeypatch, seed=2)  # made readable once: nothing is unpacked again
    assert celeba.find_celeba().image_dir.stat().st_mtime_ns == mtime


def test_parquet_with_integer_attributes_and_missing_columns(
    source, reference, tmp_path, monkeypatch
):
    root = tmp_path / "data"
    shards = fx.parquet_shards(source, root / "celeba", bool_attributes=False)
    bundle = load_from(root, monkeypatch)
    assert torch.equal(bundle.train.labels, reference.train.labels)

    import pyarrow.parquet as pq

    bad_root = tmp_path / "bad"
    bad = fx.parquet_shards(source, bad_root / "celeba")
    table = pq.read_table(bad[0]).drop_columns(["Smiling", "Young"])
    pq.write_table(table, bad[0])
    with pytest.raises(
        DataError, match=r"train-00000-of-00001.parquet is missing column\(s\) Smiling, Young"
    ):
        load_from(bad_root, monkeypatch)
    assert not (bad_root / "celeba" / "img_align_celeba").exists()
    assert not hidden_leftovers(bad_root)
    assert shards


def test_a_hostile_zip_is_refused_whole_and_leaves_nothing(source, tmp_path, monkeypatch):
    root = tmp_path / "data"
    folder = root / "celeba"
    fx.csv_lists(source, folder)
    fx.hostile_zip(folder / "img_align_celeba.zip")
    with pytest.raises(DataError, match=r"img_align_celeba.zip: refused: .*escaping its folder"):
        load_from(root, monkeypatch)
    assert sorted(p.name for p in folder.iterdir()) == [
        "img_align_celeba.zip",
        "list_attr_celeba.csv",
        "list_eval_partition.csv",
    ]
    assert not (tmp_path / "evil.txt").exists() and not (root / "evil.txt").exists()


def test_a_damaged_zip_names_the_file(source, tmp_path, monkeypatch):
    root = tmp_path / "data"
    folder = fx.build("official", source, root)
    path = folder / "Img" / "img_align_celeba.zip"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match=r"Img/img_align_celeba.zip is not a readable zip"):
        load_from(root, monkeypatch)
    assert not hidden_leftovers(root) and not (folder / "Img" / "img_align_celeba").exists()


def test_lists_that_disagree_with_the_images_name_the_file(source, tmp_path, monkeypatch):
    root = tmp_path / "data"
    folder = fx.build("mixed", source, root)
    csv = folder / "list_eval_partition.csv"
    csv.write_text("\n".join(csv.read_text().splitlines()[:-3]) + "\n")  # three images unlisted
    with pytest.raises(DataError, match=r"list_eval_partition.csv has no partition for 000028.jpg"):
        load_from(root, monkeypatch)
    os.remove(folder / "img_align_celeba" / "000003.jpg")
    (folder / "list_eval_partition.csv").unlink()
    fx.csv_lists(source, folder, attr=False)
    with pytest.raises(
        DataError, match=r"000003.jpg is missing \(listed in list_attr_celeba.txt\)"
    ):
        load_from(root, monkeypatch, train_size=18)


def test_incomplete_copy_says_what_is_missing(source, tmp_path, monkeypatch):
    root = tmp_path / "data"
    folder = fx.build("official", source, root)
    (folder / "Eval" / "list_eval_partition.txt").unlink()
    monkeypatch.setenv("CNN_LAB_DATA_ROOTS", str(root))
    status = celeba.source_status()
    assert not status["available"] and "missing list_eval_partition.txt" in status["note"]
    with pytest.raises(DataError, match="incomplete: missing list_eval_partition.txt"):
        load_from(root, monkeypatch)
