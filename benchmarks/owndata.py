"""Numbers for your own images, data health and the embedding map, measured in one run.

    python -m benchmarks.owndata [--images 10000] [--threads 2] [--seeds 3] [--skip …]

0. Your own small data (issue 29): the 20 circles + 20 squares (64 px) trained with the
   settings "Train on it" fills (``resolve.small_data_settings``), final validation accuracy on
   each seed, with and without a pretrained backbone (``mobilenet-head``; only where its ImageNet
   weights file is in ``$TORCH_HOME/hub/checkpoints``: nothing is downloaded); a 10-class
   Fashion-MNIST folder of 30 images per class, the same way, scored on the real 10,000 test
   images; data health on the clean 40-image set (label issues listed, the note).

1. Label issues: a Fashion-MNIST training subset with a known 3 % of labels flipped to another
   class; precision and recall of the top-k list (k = number flipped), of the list the check
   shows (cleanlab's flags reaching the models' own accuracy) and of cleanlab's flags alone,
   with the health check's wall time.
2. Duplicates: the same subset with planted exact copies and near copies (±8 grey levels of
   noise, then contrast ×0.9 and brightness +10); recall on each, and how many other images the finder calls
   near-duplicates at its threshold.
3. Embedding map: a 1-epoch run on the subset, then PCA of the penultimate features of
   10,000 images, and the plotly figure built and serialised as the page sends it.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .common import parser


def weights_present(model: str) -> str:
    """ "" when ``model``'s ImageNet weights file is on disk, else why it is not measured."""
    from cnn_core.models import PRETRAINED
    from cnn_core.models.backbones import ARCHS, weights_file

    if model not in PRETRAINED:
        return ""
    arch = ARCHS["mobilenet_v3_small" if model.startswith("mobilenet") else "resnet18"]
    path = weights_file(arch)
    return "" if path.is_file() else f"not measured: no ImageNet weights file {path}"


def small_folder_runs(data_dir: str, seeds: list[int], threads: int, model: str | None, test=None):
    """Final validation (and, given ``test``, test) accuracy per seed of the settings "Train on
    it" fills for ``data_dir`` (the model replaced by ``model`` when given)."""
    from cnn_core.config import TrainConfig
    from cnn_core.health.labels import predict_probabilities
    from cnn_core.resolve import small_data_settings
    from cnn_core.trainer import fit

    base = TrainConfig(dataset="image-folder", data_dir=data_dir, threads=threads)
    settings = {**small_data_settings(base), **({"model": model} if model else {})}
    why = weights_present(settings.get("model", ""))
    if why:
        return {"settings": settings, "skipped": why}
    rows = []
    for seed in seeds:
        result = fit(TrainConfig(**{**base.__dict__, **settings, "seed": seed}))
        row = {"seed": seed, "val_accuracy": result.history[-1]["val_accuracy"]}
        row["val_images"] = len(result.state.data.val)
        if test is not None:
            probs = predict_probabilities(
                result.state.model, test.images, result.state.data.transform
            )
            row["test_accuracy"] = float((probs.argmax(1) == test.labels.numpy()).mean())
        rows.append(row)
    mean = {
        k: sum(r[k] for r in rows) / len(rows)
        for k in ("val_accuracy", "test_accuracy")
        if k in rows[0]
    }
    return {"settings": settings, "runs": rows, "mean": mean}


def small_data_bench(threads: int, seeds: list[int], backbone: str) -> dict:
    """Section 0 of the docstring (a temporary data root holds the folders)."""
    from cnn_core.config import TrainConfig
    from cnn_core.data import DataSpec, load_dataset
    from cnn_core.health.report import check_health
    from cnn_core.resolve import resolve
    from cnn_core.settings import default_data_dir
    from tests.data_fixtures import make_shapes

    make_shapes(default_data_dir() / "shapes")
    out: dict = {"shapes": {}, "fashion_30_per_class": {}}
    for model in (None, backbone):
        out["shapes"][model or "defaults"] = small_folder_runs("shapes", seeds, threads, model)
    fashion = load_dataset(DataSpec.of(resolve(TrainConfig(dataset="fashion-mnist"))))
    folder = default_data_dir() / "fashion30"
    picked = subset_per_class(fashion.train.labels, 30, seed=0)
    for i in picked.tolist():
        cls = fashion.class_names[int(fashion.train.labels[i])].replace("/", "-")
        (folder / cls).mkdir(parents=True, exist_ok=True)
        Image.fromarray(fashion.train.images[i, 0].numpy()).save(folder / cls / f"{i}.png")
    test = fashion.test
    # the folder's classes are sorted by name: map the test labels to that order
    names = sorted(n.replace("/", "-") for n in fashion.class_names)
    order = torch.tensor([names.index(n.replace("/", "-")) for n in fashion.class_names])
    test = type(test)(test.images, order[test.labels])
    for model in (None, backbone):
        out["fashion_30_per_class"][model or "defaults"] = small_folder_runs(
            "fashion30", seeds, threads, model, test
        )
    health = []
    for seed in seeds:
        report = check_health(
            TrainConfig(dataset="image-folder", data_dir="shapes", seed=seed, threads=threads)
        )
        health.append(
            {
                "seed": seed,
                "label_issues": len(report["label_issues"]),
                "oos_accuracy": report["oos_accuracy"],
                "note": report.get("label_note", ""),
            }
        )
    out["health_clean_shapes"] = health
    return out


def subset_per_class(labels: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    """Positions of ``per_class`` random images of every class (fixed by ``seed``)."""
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    return torch.cat([order[labels[order] == k][:per_class] for k in range(int(labels.max()) + 1)])


def fashion_pool(n: int):
    from cnn_core.config import TrainConfig
    from cnn_core.data import DataSpec, load_dataset

    bundle = load_dataset(
        DataSpec.of(TrainConfig(dataset="fashion-mnist", train_size=n, val_size=10_000))
    )
    return bundle


def health_pool(bundle, images, labels):
    from cnn_core.health.source import HealthData

    return HealthData(
        name="fashion-bench",
        images=images,
        labels=labels,
        splits=["train"] * len(labels),
        positions=list(range(len(labels))),
        class_names=bundle.class_names,
        transform=bundle.transform,
    )


def label_bench(bundle, threads: int, folds: int, epochs: int) -> dict:
    from cnn_core.config import TrainConfig
    from cnn_core.health.labels import (
        judge,
        out_of_sample_probabilities,
        rank_label_issues,
        suggestion_threshold,
    )

    rng = np.random.default_rng(0)
    labels = bundle.train.labels.clone()
    n = len(labels)
    flipped = rng.choice(n, size=int(round(0.03 * n)), replace=False)
    for i in flipped:
        labels[i] = int((labels[i] + rng.integers(1, 10)) % 10)
    data = health_pool(bundle, bundle.train.images, labels)
    config = TrainConfig(dataset="fashion-mnist", model="v1", epochs=epochs, threads=threads)
    started = time.perf_counter()
    probs = out_of_sample_probabilities(data, config, folds)
    flagged, scores = rank_label_issues(labels.numpy(), probs)
    seconds = time.perf_counter() - started
    truth = set(flipped.tolist())
    k = len(truth)
    top = set(np.argsort(scores, kind="stable")[:k].tolist())
    hits_flagged = len(truth & set(flagged))
    from cleanlab.filter import find_label_issues

    raw = set(find_label_issues(labels.numpy(), probs).nonzero()[0].tolist())  # no threshold
    return {
        "images": n,
        "flipped": k,
        "folds": folds,
        "epochs": epochs,
        "oos_accuracy": float((probs.argmax(1) == labels.numpy()).mean()),
        "precision_at_k": len(top & truth) / k,
        "recall_at_k": len(top & truth) / k,
        "cleanlab_flagged": len(flagged),
        "cleanlab_precision": hits_flagged / max(1, len(flagged)),
        "cleanlab_recall": hits_flagged / k,
        "threshold": suggestion_threshold(labels.numpy(), probs),
        "judge_note": judge(labels.numpy(), probs, bundle.class_names),
        "cleanlab_unthresholded_flagged": len(raw),
        "cleanlab_unthresholded_precision": len(truth & raw) / max(1, len(raw)),
        "cleanlab_unthresholded_recall": len(truth & raw) / k,
        "seconds_labels": seconds,
    }


def duplicate_bench(bundle, planted: int = 200) -> dict:
    from cnn_core.health.duplicates import find_pairs

    rng = np.random.default_rng(1)
    images = bundle.train.images
    n = len(images)
    before = {(i, j) for i, j, _, _ in find_pairs(images)}  # duplicates already in the data
    sources = rng.choice(n, size=2 * planted, replace=False)
    exact_src, near_src = sources[:planted], sources[planted:]
    exact = images[exact_src].clone()
    near = images[near_src].to(torch.int16)
    near = near + torch.from_numpy(rng.integers(-8, 9, near.shape)).to(torch.int16)
    near = (near * 0.9 + 10).clamp(0, 255).to(torch.uint8)  # noise, then contrast / brightness
    pool = torch.cat([images, exact, near])
    started = time.perf_counter()
    pairs = find_pairs(pool)
    seconds = time.perf_counter() - started
    found = {(i, j): kind for i, j, kind, _ in pairs}
    exact_hits = sum(found.get((int(s), n + k)) == "exact" for k, s in enumerate(exact_src))
    near_hits = sum((int(s), n + planted + k) in found for k, s in enumerate(near_src))
    originals = {p for p in before}
    flagged_originals = {i for i, j in originals} | {j for i, j in originals}
    return {
        "images": len(pool),
        "planted_exact": planted,
        "planted_near": planted,
        "exact_recall": exact_hits / planted,
        "near_recall": near_hits / planted,
        "pairs_in_original_subset": len(originals),
        "original_images_flagged_rate": len(flagged_originals) / n,
        "seconds_duplicates": seconds,
    }


def embedding_bench(bundle, threads: int, points: int) -> dict:
    import plotly.io as pio

    from cnn_core.config import TrainConfig
    from cnn_core.health.embedding import features_and_probabilities, project
    from cnn_core.trainer import fit
    from ui.owndata_widgets import embedding_figure

    config = TrainConfig(dataset="fashion-mnist", model="v1", epochs=1, threads=threads)
    model = fit(config, data=bundle).state.model
    images = bundle.val.images[:points]
    t0 = time.perf_counter()
    feats, probs = features_and_probabilities(model, images, bundle.transform)
    t1 = time.perf_counter()
    xy = project(feats, "pca")
    t2 = time.perf_counter()
    from cnn_core.health.embedding import EmbeddingMap

    emap = EmbeddingMap(
        "val",
        "pca",
        xy,
        np.arange(len(images)),
        bundle.val.labels[:points].numpy(),
        probs.argmax(1),
        probs.max(1),
        bundle.class_names,
    )
    fig = embedding_figure(emap)
    payload = pio.to_json(fig)
    t3 = time.perf_counter()
    return {
        "points": len(images),
        "seconds_features": t1 - t0,
        "seconds_pca": t2 - t1,
        "seconds_figure_and_json": t3 - t2,
        "figure_json_bytes": len(payload),
        "seconds_map_total": t3 - t0,
        "seconds_browser_draw": browser_draw_seconds(fig),
    }


def browser_draw_seconds(fig) -> float | None:
    """Seconds headless Chromium takes to draw ``fig`` with plotly.js already loaded: from
    ``Plotly.newPlot`` until two animation frames after its promise resolves (the WebGL points
    are on screen); None without Chromium."""
    import shutil

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).is_file():
        return None
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        page_path = Path(tmp) / "map.html"
        page_path.write_text(fig.to_html(include_plotlyjs=True, full_html=True, div_id="map"))
        spec = fig.to_json()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(page_path.as_uri())
            page.wait_for_function("() => document.getElementById('map').data")
            seconds = page.evaluate(
                """async (spec) => {
                    const fig = JSON.parse(spec);
                    const div = document.createElement('div');
                    document.body.appendChild(div);
                    const start = performance.now();
                    await new Promise(done => {
                        Plotly.newPlot(div, fig.data, fig.layout).then(() => {
                            requestAnimationFrame(() => requestAnimationFrame(done));
                        });
                    });
                    return (performance.now() - start) / 1000;
                }""",
                spec,
            )
            browser.close()
    return seconds


def main() -> None:
    p = parser("benchmarks.owndata", __doc__, json=False)
    p.add_argument("--images", type=int, default=10_000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--backbone", default="mobilenet-head")
    p.add_argument(
        "--skip", action="append", default=[], choices=("small", "labels", "dups", "map")
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("CNN_LAB_CACHE_DIR", tmp)
        os.environ.setdefault("CNN_LAB_RUNS_DIR", tmp)
        roots = os.environ.get("CNN_LAB_DATA_ROOTS", "")
        os.environ["CNN_LAB_DATA_ROOTS"] = os.pathsep.join(p for p in (tmp, roots) if p)
        out = {"cpu_threads": args.threads, "cores_on_machine": os.cpu_count()}
        if "small" not in args.skip:
            seeds = list(range(1, args.seeds + 1))
            out["small_data"] = small_data_bench(args.threads, seeds, args.backbone)
        bundle = fashion_pool(args.images)
        if "dups" not in args.skip:
            out["duplicates"] = duplicate_bench(bundle)
        if "labels" not in args.skip:
            out["labels"] = label_bench(bundle, args.threads, args.folds, args.epochs)
        if "map" not in args.skip:
            out["embedding_map"] = embedding_bench(bundle, args.threads, 10_000)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
