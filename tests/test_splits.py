"""Stratified, deterministic splits: every class keeps its share of every split the project
makes itself, on every dataset and seed; runs created before the rule keep their images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnn_core.config import TrainConfig, knobs
from cnn_core.data import DataSpec, idx, load_dataset
from cnn_core.data.splits import (
    SPLIT_VERSION,
    STREAM_VAL,
    class_quotas,
    permutation,
    split_train_val,
    val_index,
)
from cnn_core.errors import DataError
from cnn_core.resolve import resolve
from tests.data_fixtures import make_celeba, make_idx_dataset, make_image_folder
from tests.test_data import image_set

SEEDS = (1, 2, 3, 7, 11)


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    root = tmp_path / "data"
    monkeypatch.setenv("CNN_LAB_DATA_ROOTS", str(root))
    return root


def assert_stratified(part: torch.Tensor, whole: torch.Tensor, classes: int) -> None:
    """Each class's count in ``part`` is within one image of its share of ``whole``."""
    counts = torch.bincount(whole, minlength=classes).double()
    got = torch.bincount(part, minlength=classes).double()
    exact = counts * len(part) / len(whole)
    assert ((got - exact).abs() < 1).all(), (got.tolist(), exact.tolist())


def test_quotas_round_by_largest_remainder_within_bounds():
    assert class_quotas([30, 10, 20], 6, [0] * 3, [30, 10, 20]) == [3, 1, 2]
    assert class_quotas([38, 2], 6, [1, 1], [37, 1]) == [5, 1]  # the tiny class keeps one
    assert sum(class_quotas([5, 5, 5], 4, [0] * 3, [5] * 3)) == 4


@pytest.mark.parametrize("seed", SEEDS)
def test_held_out_split_is_stratified_deterministic_and_a_partition(seed):
    labels = [0] * 20 + [1] * 20 + [2] * 7 + [3] * 2
    data = image_set(labels)
    train, val = split_train_val(data, None, seed, SPLIT_VERSION)
    again = split_train_val(data, None, seed, SPLIT_VERSION)[1]
    assert torch.equal(val.images, again.images)
    assert len(val) == 49 // 6
    assert_stratified(val.labels, data.labels, 4)
    assert torch.bincount(val.labels, minlength=4).min() >= 1  # even the 2-image class
    ids = torch.cat([train.images[:, 0, 0, 0], val.images[:, 0, 0, 0]]).sort().values
    assert torch.equal(ids, torch.arange(49, dtype=torch.uint8))


def test_circles_and_squares_validation_holds_both_classes_evenly():
    """The issue's 20 + 20 set: the old rule held out 5 of one class and 1 of the other."""
    data = image_set([0] * 20 + [1] * 20)
    for seed in range(20):
        _, val = split_train_val(data, None, seed, SPLIT_VERSION)
        assert torch.bincount(val.labels).tolist() == [3, 3]


def test_a_class_with_one_image_is_named_in_a_note():
    notes: list[str] = []
    labels = torch.tensor([0] * 10 + [1] * 10 + [2])
    held = val_index(labels, None, 1, SPLIT_VERSION, ["cat", "dog", "owl"], notes)
    assert 20 not in held.tolist() and len(held) == 3
    assert notes == [
        "no validation image of owl (too few images: add some so validation can judge that class)"
    ]


def test_the_legacy_rule_picks_exactly_the_old_random_images():
    data = image_set(torch.arange(60) % 10)
    perm = permutation(60, 4, STREAM_VAL)
    train, val = split_train_val(data, 9, 4, version=0)
    assert torch.equal(val.images, data.images[perm[:9].sort().values])
    assert torch.equal(train.images, data.images[perm[9:].sort().values])


def test_split_version_is_pinned_by_resolve_and_a_stored_config_without_it_is_legacy(data_root):
    assert knobs()["split_version"].high == SPLIT_VERSION
    resolved = resolve(TrainConfig(dataset="mnist"))
    assert resolved.split_version == SPLIT_VERSION and resolve(resolved) == resolved
    assert DataSpec.of(resolved).split_version == SPLIT_VERSION
    stored = resolved.to_dict()
    del stored["split_version"]  # a run created before the rule existed
    assert DataSpec.of(stored).split_version == 0
    assert DataSpec.of(TrainConfig.from_dict(stored, strict=False)).split_version == 0
    make_idx_dataset(data_root, n_train=120, n_test=10)
    _, files = idx.find_idx_files("mnist", data_root)
    raw = torch.from_numpy(idx.read_idx(files[idx.FILES["train"][1]]).astype(np.int64))
    old = load_dataset(DataSpec.of(stored))
    held = permutation(120, 1, STREAM_VAL)[:20].sort().values  # the rule before version 1
    assert torch.equal(old.val.labels, raw[held])
    new = load_dataset(DataSpec.of(resolved))
    assert not torch.equal(new.val.labels, old.val.labels)
    assert_stratified(new.val.labels, raw, 10)


@pytest.mark.parametrize("seed", SEEDS)
def test_every_dataset_split_is_stratified(data_root, seed):
    make_idx_dataset(data_root, n_train=240, n_test=20)
    make_image_folder(data_root / "pets", classes=("a", "b", "c"), n_per_class=9, size=(12, 12))
    make_celeba(data_root, n=90, layout="torchvision")
    cases = [
        dict(dataset="mnist"),
        dict(dataset="mnist", train_size=70, val_size=33),
        dict(dataset="image-folder", data_dir="pets", image_size=8),
        dict(dataset="celeba", image_size=8, train_size=25, val_size=9),
    ]
    for values in cases:
        config = resolve(TrainConfig(seed=seed, **values))
        spec = DataSpec.of(config)
        bundle = load_dataset(spec)
        k = bundle.num_classes
        if spec.dataset == "celeba":  # subsets of CelebA's given partitions
            full = load_dataset(DataSpec.of({**config.to_dict(), "train_size": 10**6}))
            assert_stratified(bundle.train.labels, full.train.labels, k)
            continue
        whole = torch.cat([bundle.train.labels, bundle.val.labels])
        if spec.train_size is None:
            assert_stratified(bundle.val.labels, whole, k)
        else:
            full = load_dataset(DataSpec.of({**config.to_dict(), "train_size": None}))
            assert_stratified(full.val.labels, torch.cat([full.train.labels, full.val.labels]), k)
            assert_stratified(bundle.train.labels, full.train.labels, k)


def test_a_folder_class_with_one_image_trains_with_a_note_and_one_class_is_refused(data_root):
    make_image_folder(data_root / "few", classes=("a", "b"), n_per_class=8, size=(12, 12))
    make_image_folder(data_root / "few_owl", classes=("owl",), n_per_class=1, size=(12, 12))
    (data_root / "few_owl" / "owl").rename(data_root / "few" / "owl")
    bundle = load_dataset(DataSpec.of(resolve(TrainConfig(dataset="image-folder", data_dir="few"))))
    assert bundle.train.class_counts(3)[2] == 1 and "no validation image of owl" in bundle.note
    with pytest.raises(DataError, match="needs at least 2 class sub-folders"):
        load_dataset(DataSpec.of(TrainConfig(dataset="image-folder", data_dir="few_owl")))
