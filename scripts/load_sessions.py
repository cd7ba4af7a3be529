"""Load check: training images/s of a background run with and without N app sessions polling it.

    python scripts/load_sessions.py [--sessions 10] [--train-size 6000] [--json]

Runs the same config twice, one after the other, in a temporary runs folder: first alone, then
while N Streamlit sessions (AppTest, the real page scripts, each in its own thread) reload the
Runs page of the live run once a second, the way the page's live fragment polls. Prints the
worker's training images/s for both and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))


def wait_status(run_id: str, statuses: tuple[str, ...], timeout: float = 900) -> dict:
    from cnn_core.runs import api

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = api.get_run(run_id)
        if run["status"] in statuses:
            return run
        time.sleep(0.2)
    raise TimeoutError(f"run {run_id} did not reach {statuses}")


def poll_page(run_id: str, stop: threading.Event, counts: list[int], errors: list[str]) -> None:
    """One session: reload the Runs page of ``run_id`` every second until ``stop``."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(PROJECT / "app.py"), default_timeout=60)
    at.query_params["run"] = run_id
    at.run()
    at.switch_page("pages/runs.py")
    while not stop.is_set():
        started = time.monotonic()
        at.run()
        if at.exception:
            errors.append(str(at.exception[0].value))
        counts.append(1)
        stop.wait(max(0.0, 1.0 - (time.monotonic() - started)))


def train_images_per_s(config, sessions: int) -> tuple[float, int, list[str]]:
    from cnn_core.runs import api

    run_id = api.submit(config)
    wait_status(run_id, ("running",))
    stop, counts, errors = threading.Event(), [], []
    threads = [
        threading.Thread(target=poll_page, args=(run_id, stop, counts, errors))
        for _ in range(sessions)
    ]
    for t in threads:
        t.start()
    run = wait_status(run_id, ("completed", "failed", "stopped", "interrupted"))
    stop.set()
    for t in threads:
        t.join()
    if run["status"] != "completed":
        raise RuntimeError(f"run ended {run['status']}: {run.get('error')}")
    history = api.metrics(run_id)
    return sum(m["images_per_s"] for m in history) / len(history), len(counts), errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--train-size", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ["CNN_LAB_RUNS_DIR"] = tempfile.mkdtemp(prefix="cnn-lab-load-")

    from cnn_core.config import TrainConfig

    config = TrainConfig(
        dataset="fashion-mnist",
        model="v1",
        epochs=args.epochs,
        train_size=args.train_size,
        val_size=1000,
        name="load check",
    )
    alone, _, _ = train_images_per_s(config, 0)
    loaded, page_loads, errors = train_images_per_s(config, args.sessions)
    result = {
        "sessions": args.sessions,
        "images_per_s_alone": alone,
        "images_per_s_with_sessions": loaded,
        "ratio": loaded / alone,
        "drop_percent": 100 * (1 - loaded / alone),
        "page_loads": page_loads,
        "page_errors": errors[:5],
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"training alone:                 {alone:8,.0f} images/s")
        print(
            f"with {args.sessions:2d} sessions polling/s:   {loaded:8,.0f} images/s  ({page_loads} page loads)"
        )
        print(
            f"ratio {result['ratio']:.2f} — drop {result['drop_percent']:.1f} %; page errors: {len(errors)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
