"""Numbers for the data-health and embedding-map features, measured in one run.

    python -m benchmarks.owndata [--images 10000] [--threads 2]

1. Label issues: a Fashion-MNIST training subset with a known 3 % of labels flipped to another
   class; precision and recall of the top-k list (k = number flipped) and of cleanlab's own
   flagged list, with the health check's wall time.
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

from .common import parser


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
    from cnn_core.health.labels import out_of_sample_probabilities, rank_label_issues

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
    p.add_argument("--skip", action="append", default=[], choices=("labels", "dups", "map"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("CNN_LAB_CACHE_DIR", tmp)
        os.environ.setdefault("CNN_LAB_RUNS_DIR", tmp)
        bundle = fashion_pool(args.images)
        out = {"cpu_threads": args.threads, "cores_on_machine": os.cpu_count()}
        if "dups" not in args.skip:
            out["duplicates"] = duplicate_bench(bundle)
        if "labels" not in args.skip:
            out["labels"] = label_bench(bundle, args.threads, args.folds, args.epochs)
        if "map" not in args.skip:
            out["embedding_map"] = embedding_bench(bundle, args.threads, 10_000)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
