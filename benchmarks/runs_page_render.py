"""Render time of the Runs page for a long run: 50 epochs of step metrics (2 points a second
of a 60 s epoch: 6,000 training points), 50 validation points and snapshots.

    python -m benchmarks.runs_page_render [--epochs 50] [--points-per-epoch 120] [--json]

Fills a temporary run store through the store's own methods, then times whole-page runs of
the Runs page (AppTest, the real page script) side by side: drawing thinned to
``ui.charts.MAX_DRAWN`` points per line (what the page does) and every stored point drawn.
The first render of each builds the figure; the next ones hit the shared figure cache, as
every later refresh of a watching session does (a warm-up render first imports the page's
modules, as a running server has). Prints the median of each and their ratio.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time

import numpy as np

from .common import APP, parser


def fill_store(epochs: int, per_epoch: int) -> str:
    """A completed run with ``epochs`` epochs of step points, snapshots and epoch metrics."""
    from cnn_core.config import TrainConfig
    from cnn_core.resolve import resolve
    from cnn_core.runs.store import RunStore

    store = RunStore()
    config = resolve(TrainConfig(dataset="fashion-mnist", epochs=epochs, batch_size=64))
    run_id = "20260101-000000-render"
    store.add_run(run_id, config.to_dict(), name="long run", status="completed", epoch=epochs)
    rng = np.random.default_rng(0)
    batches, train_size, start = 938, 60000, time.time() - epochs * 60
    store.save_panel(
        run_id,
        list(range(24)),
        [int(v) for v in rng.integers(0, 10, 24)],
        [str(i) for i in range(10)],
        rng.integers(0, 255, (24, 1, 28, 28), dtype=np.uint8),
    )
    for epoch in range(epochs):
        for k in range(1, per_epoch + 1):
            step = epoch * batches + k * batches // per_epoch
            store.write_point(
                run_id,
                "train",
                {
                    "step": step,
                    "epoch_fraction": step / batches,
                    "images_seen": min(step * 64, (epoch + 1) * train_size),
                    "loss": float(1 / (1 + step / 500) + rng.normal(0, 0.05)),
                    "accuracy": float(0.9 - 0.5 / (1 + step / 500) + rng.normal(0, 0.02)),
                    "wall_time": start + step / batches * 60,
                },
            )
        point = {
            "step": (epoch + 1) * batches,
            "epoch_fraction": epoch + 1.0,
            "images_seen": (epoch + 1) * train_size,
        }
        store.write_point(run_id, "val", {**point, "loss": 0.4, "accuracy": 0.85})
        store.save_snapshot(
            run_id,
            point,
            {
                "accuracy": 0.85,
                "loss": 0.4,
                "confusion": rng.integers(0, 100, (10, 10)).tolist(),
                "predicted": [int(v) for v in rng.integers(0, 10, 24)],
                "confidence": [float(v) for v in rng.uniform(0.3, 1, 24)],
            },
        )
        store.write_metrics(
            run_id,
            epoch + 1,
            batches,
            {
                "train_loss": 0.4,
                "train_accuracy": 0.86,
                "val_loss": 0.4,
                "val_accuracy": 0.85,
                "seconds": 60.0,
                "images_per_s": 1000.0,
            },
        )
    return run_id


def page_seconds(run_id: str, renders: int) -> list[float]:
    """Seconds of ``renders`` whole-page runs of the Runs page of ``run_id`` (one session)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=120)
    at.query_params["run"] = run_id
    at.run()
    at.switch_page("pages/runs.py")
    times = []
    for _ in range(renders):
        started = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - started)
        if at.exception:
            raise RuntimeError(at.exception[0].value)
    return times


def main() -> int:
    p = parser("benchmarks.runs_page_render", __doc__)
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--points-per-epoch", type=int, default=120)
    p.add_argument("--renders", type=int, default=5)
    args = p.parse_args()
    os.environ["CNN_LAB_RUNS_DIR"] = tempfile.mkdtemp(prefix="cnn-lab-render-")
    from ui import cache, charts

    run_id = fill_store(args.epochs, args.points_per_epoch)
    page_seconds(run_id, 1)  # warm-up: the page's modules imported, as in a running server
    limit = charts.MAX_DRAWN
    timed = {}
    for drawn in (10**9, limit):  # every point, then thinned; each from a cold figure cache
        charts.MAX_DRAWN = drawn
        cache.clear_figures()
        timed[drawn] = page_seconds(run_id, args.renders)
    charts.MAX_DRAWN = limit
    thinned, everything = timed[limit], timed[10**9]
    result = {
        "points": args.epochs * args.points_per_epoch,
        "thinned_to": limit,
        "first_render_s": thinned[0],
        "median_render_s": statistics.median(thinned[1:] or thinned),
        "first_render_all_points_s": everything[0],
        "median_render_all_points_s": statistics.median(everything[1:] or everything),
    }
    result["ratio"] = result["median_render_s"] / result["median_render_all_points_s"]
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"Runs page, {result['points']:,} training points: first render "
        f"{result['first_render_s']:.2f} s, then {result['median_render_s']:.2f} s (median; "
        f"lines thinned to {limit}); every point drawn: first {result['first_render_all_points_s']:.2f} s, "
        f"then {result['median_render_all_points_s']:.2f} s; ratio {result['ratio']:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
