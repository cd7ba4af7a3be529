"""Data health: planted label flips and duplicates are found, leaks across splits flagged,
odd files listed, exclusions and relabels honoured by training and recorded in the run's
config, the CLI's JSON, and the embedding map of a finished run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cnn_core.config import TrainConfig
from cnn_core.data import DataSpec, load_dataset
from cnn_core.data.choices import latest_version, load_choices, save_choices
from cnn_core.errors import DataError, UserError
from cnn_core.health.duplicates import find_pairs, group_pairs, phash
from cnn_core.health.embedding import embedding_map, project
from cnn_core.health.jobs import check_status, start_check
from cnn_core.health.labels import fold_of, judge, suggestion_threshold
from cnn_core.health.report import check_health
from cnn_core.health.source import HealthData
from cnn_core.processes import ACTIVE
from cnn_core.resolve import resolve
from cnn_core.runs import api
from cnn_core.settings import default_data_dir
from tests.data_fixtures import make_shapes
from tests.run_fixtures import cli_here, finished_run, run_here, wait_for

PATTERNS = ("dark", "stripes", "light")
FLIPPED = {("dark", 3): "light", ("light", 5): "dark", ("stripes", 7): "dark"}  # → wrong class


def pattern(cls: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = {"dark": 30.0, "light": 220.0, "stripes": 128.0}[cls]
    pixels = rng.normal(base, 12, (28, 28))
    if cls == "stripes":
        pixels[:, ::2] = 250 + pixels[:, ::2] - base
        pixels[:, 1::2] = 10 + pixels[:, 1::2] - base
    return np.clip(pixels, 0, 255).astype(np.uint8)


def write_folder(name: str = "shapes", per_class: int = 30) -> str:
    """An easy 3-class folder in the data root with FLIPPED files written in a wrong class."""
    root = default_data_dir() / name
    for cls in PATTERNS:
        (root / cls).mkdir(parents=True, exist_ok=True)
    for k, cls in enumerate(PATTERNS):
        for i in range(per_class):
            folder = FLIPPED.get((cls, i), cls)
            Image.fromarray(pattern(cls, 1000 * k + i)).save(root / folder / f"{cls}{i}.png")
    return name


def folder_config(data_dir: str, **overrides) -> TrainConfig:
    values = dict(dataset="image-folder", data_dir=data_dir, epochs=4, threads=1, batch_size=16)
    values.update(overrides)
    return TrainConfig(**values)


def test_phash_is_stable_under_noise_and_tells_images_apart(fashion_small):
    images = fashion_small.train.images[:50]
    noisy = (images.int() + torch.randint(-6, 7, images.shape)).clamp(0, 255).to(torch.uint8)
    h, h_noisy = phash(images), phash(noisy)
    assert h.dtype == np.uint64 and len(h) == 50
    assert (phash(images.clone()) == h).all()
    assert np.median(np.bitwise_count(h ^ h_noisy)) <= 2
    others = np.bitwise_count(h[:, None] ^ h[None, :])[np.triu_indices(50, 1)]
    assert np.median(others) > 16


def test_planted_exact_and_near_duplicates_are_all_found(fashion_small):
    images = fashion_small.train.images[:300]
    exact = images[[5, 50, 150]]
    near = (images[[7, 70, 170]].int() + 4).clamp(0, 255).to(torch.uint8)  # brighter copies
    pool = torch.cat([images, exact, near])
    found = {(i, j): kind for i, j, kind, _ in find_pairs(pool)}
    assert [found.get((s, 300 + k)) for k, s in enumerate((5, 50, 150))] == ["exact"] * 3
    assert [found.get((s, 303 + k)) for k, s in enumerate((7, 70, 170))] == ["near"] * 3
    groups = group_pairs(len(pool), list((i, j, k, 0) for (i, j), k in found.items()))
    assert {"kind": "exact", "members": [5, 300]} in groups


def test_duplicates_across_splits_are_leaks_and_conflicting_labels_shown(fashion_small):
    images = fashion_small.train.images[:40].clone()
    images[39] = images[0]  # the same image in train and test, under another label
    labels = fashion_small.train.labels[:40].clone()
    labels[39] = (labels[0] + 1) % 10
    data = HealthData(
        name="leaky",
        images=images,
        labels=labels,
        splits=["train"] * 30 + ["test"] * 10,
        positions=list(range(30)) + list(range(10)),
        class_names=fashion_small.class_names,
        transform=fashion_small.transform,
    )
    report = check_health(TrainConfig(dataset="fashion-mnist"), labels=False, data=data)
    assert report["leaks"] and report["leaks"][0]["splits"] == ["test", "train"]
    members = report["leaks"][0]["members"]
    assert {(m["split"], m["index"]) for m in members} == {("train", 0), ("test", 9)}
    assert len(report["leaks"][0]["labels"]) == 2
    assert report["label_issues"] == [] and "folds" not in report
    config = TrainConfig(dataset="fashion-mnist", epochs=1, threads=1)
    report = check_health(config, folds=2, data=data)  # labels: train images only, not test
    assert report["folds"] == 2 and report["oos_accuracy"] >= 0
    # 30 training images of 10 classes: too few to judge a label, so none is called wrong
    assert report["label_issues"] == [] and "Too few images" in report["label_note"]


def test_planted_label_flips_rank_first_and_odd_files_are_listed():
    name = write_folder()
    root = default_data_dir() / name
    Image.new("RGBA", (28, 28), (200, 0, 0, 128)).save(root / "dark" / "odd_rgba.png")
    Image.fromarray(pattern("light", 77)).resize((200, 200)).save(root / "light" / "big.png")
    (root / "dark" / "notes.txt").write_text("not an image")
    (root / "light" / "broken.png").write_bytes(b"\x89PNG broken")
    report = check_health(folder_config(name), folds=3)
    top = {row["file"]: row["suggested"] for row in report["label_issues"][: len(FLIPPED)]}
    moved = {f"{wrong}/{cls}{i}.png": cls for (cls, i), wrong in FLIPPED.items()}
    assert top == moved  # each flipped file found, with its true class suggested
    row = report["label_issues"][0]
    assert set(row) >= {"file", "given", "suggested", "score", "split", "index"}
    assert [row["file"] for row in report["unreadable"]] == ["light/broken.png"]
    assert "PNG file PIL cannot decode" in report["unreadable"][0]["reason"]
    odd = {row["file"]: row["reason"] for row in report["odd"]}
    assert "mode RGBA" in odd["dark/odd_rgba.png"]
    assert "far from the usual" in odd["light/big.png"]
    assert "not an image type" in odd["dark/notes.txt"]
    assert report["class_counts"]["all"] == {"dark": 32, "light": 31, "stripes": 29}


def test_exclusions_and_relabels_are_honoured_and_recorded_by_runs():
    name = write_folder(per_class=10)
    root = default_data_dir() / name
    config = folder_config(name, epochs=1)
    assert resolve(config).data_choices == 0 and latest_version(root) is None
    before = load_dataset(DataSpec.of(resolve(config)))
    n = len(before.train) + len(before.val)
    v1 = save_choices(root, {"dark/dark0.png", "dark/dark1.png"}, {"light/dark3.png": "dark"})
    v2 = save_choices(root, {"stripes/stripes2.png"}, {"dark/light5.png": "light"})
    assert (v1.version, v2.version, latest_version(root)) == (1, 2, 2)
    assert resolve(config).data_choices == 2
    data = load_dataset(DataSpec.of(resolve(config)))
    assert len(data.train) + len(data.val) == n - 1
    assert "data choices v2: 1 excluded, 1 relabelled" in data.note
    old = load_dataset(DataSpec.of(folder_config(name, epochs=1, data_choices=1)))
    assert len(old.train) + len(old.val) == n - 2
    counts = [
        c1 + c2 for c1, c2 in zip(data.train.class_counts(3), data.val.class_counts(3), strict=True)
    ]
    # folders hold dark 11, light 10, stripes 9 (three files were planted in a wrong class)
    assert counts == [10, 11, 8]
    run_id = api.submit(config, start_worker=False)
    assert api.get_run(run_id)["config"]["data_choices"] == 2
    assert run_here(run_id) == 0
    with pytest.raises(DataError, match="no data choices version 9"):
        load_dataset(DataSpec.of(folder_config(name, data_choices=9)))
    with pytest.raises(UserError, match="unknown class"):
        save_choices(root, set(), {"dark/dark0.png": "cats"})
    assert load_choices(root).version == 2


def test_health_cli_json_last_line_is_the_report(capsys):
    name = write_folder(per_class=8)
    code, out, err = cli_here(
        capsys,
        "health",
        "--dataset",
        "image-folder",
        "--data-dir",
        str(default_data_dir() / name),
        "--epochs",
        "1",
        "--folds",
        "2",
        "--threads",
        "1",
        "--json",
    )
    assert code == 0 and "training fold 2/2" in err
    assert set(out) >= {"label_issues", "duplicates", "leaks", "unreadable", "class_counts"}
    assert all({"file", "given", "suggested", "score"} <= set(r) for r in out["label_issues"])
    code, _, err = cli_here(capsys, "health", "--dataset", "image-folder", "--folds", "1")
    assert code == 2 and "--folds" in err


def test_embedding_map_of_a_finished_run():
    run_id = finished_run()
    emap = embedding_map(api.get_run(run_id)["checkpoint"], "val", "pca", limit=150, flagged={3})
    assert emap.xy.shape == (150, 2) and np.isfinite(emap.xy).all()
    assert emap.flagged.sum() == 1 and emap.flagged[3]
    accuracy = float((emap.labels == emap.predicted).mean())
    assert accuracy > 0.3 and emap.misclassified.sum() == round((1 - accuracy) * 150)
    points = emap.to_dict()["points"]
    assert len(points) == 150 and set(points[0]) == {
        "index",
        "x",
        "y",
        "label",
        "predicted",
        "confidence",
    }
    tsne = project(np.random.default_rng(0).normal(size=(40, 8)), "tsne")
    assert tsne.shape == (40, 2)
    with pytest.raises(UserError, match="unknown projection"):
        project(np.zeros((5, 3)), "nope")


def test_background_check_reports_progress_results_and_failures():
    name = write_folder(per_class=6)
    key = start_check(folder_config(name), labels=False)
    status = wait_for(lambda: (s := check_status(key))["state"] not in ACTIVE and s, 120, "check")
    assert status["state"] == "completed" and status["report"]["images"] == 18
    bad = start_check(folder_config("no-such-folder"), labels=False)
    status = wait_for(lambda: (s := check_status(bad))["state"] not in ACTIVE and s, 120, "check")
    assert status["state"] == "failed" and "does not exist" in status["message"]
    with pytest.raises(UserError, match="invalid health check id"):
        check_status("../x")


def test_a_clean_tiny_set_gets_no_label_issues_and_a_note_saying_why():
    """The issue's 20 circles + 20 squares: the fold models cannot judge, so nothing is
    flagged (today's check flagged up to 25 of 40 clean images with below-chance models)."""
    make_shapes(default_data_dir() / "shapes")
    for seed in (1, 2, 3):
        config = TrainConfig(dataset="image-folder", data_dir="shapes", seed=seed, threads=1)
        report = check_health(config)
        assert report["label_issues"] == [], report["oos_accuracy"]
        assert "No label is called wrong" in report["label_note"]


def test_judge_needs_enough_images_per_class_and_models_clearly_better_than_chance():
    names = ["a", "b"]
    labels = np.array([0] * 30 + [1] * 30)
    sure = np.eye(2, dtype=np.float32)[labels] * 0.9 + 0.05
    assert judge(labels, sure, names) == ""
    assert "Too few images" in judge(labels[25:35], sure[25:35], names)
    guessing = np.full((60, 2), 0.5, dtype=np.float32)
    guessing[::2, 1] = 0.6  # right on half the images
    note = judge(labels, guessing, names)
    assert "too weak" in note and "commonest class scores 50%" in note
    mostly = sure.copy()
    mostly[:12] = mostly[:12, ::-1]  # 80 % right: the interval does not clear 75 %
    assert "too weak" in judge(labels, mostly, names)
    assert suggestion_threshold(labels, sure) == 0.95
    assert suggestion_threshold(labels, mostly) == pytest.approx(0.8)


def test_folds_are_stratified_and_balanced():
    labels = np.array([0] * 31 + [1] * 8 + [2] * 3)
    fold = fold_of(labels, 3, seed=4)
    assert np.bincount(fold).tolist() == [14, 14, 14]
    for k in range(3):
        assert (
            np.bincount(fold[labels == k], minlength=3).max()
            - np.bincount(fold[labels == k], minlength=3).min()
            <= 1
        )
    assert (fold_of(labels, 3, seed=4) == fold).all() and (fold_of(labels, 3, seed=5) != fold).any()
