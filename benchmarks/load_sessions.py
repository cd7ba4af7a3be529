"""Load check: training images/s of a background run with and without N app sessions polling it.

    python -m benchmarks.load_sessions [--sessions 10] [--train-size 20000] [--json]

Runs the same config twice, one after the other, in a temporary runs folder: first alone, then
while N Streamlit sessions (AppTest, the real page scripts, each in its own process) rerun the
whole Runs page of the live run once a second — more work than the page's live fragment, which
reruns only progress and curves. The sessions open (ten processes importing Streamlit and
torch) before training starts, so only their polling overlaps it: the worker lock is held
meanwhile, as the app itself starts a worker for a queued run. Prints the worker's training
images/s for both and their ratio.

(Browser tabs were tried as sessions: in one headless Chromium only the visible tab keeps its
fragment timer running, so they do not load the server as ten users would.)
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import tempfile
import time
from collections.abc import Callable, Iterator

from .common import APP, parser


def wait_status(run_id: str, statuses: tuple[str, ...], timeout: float = 900) -> dict:
    from cnn_core.runs import api

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = api.get_run(run_id)
        if run["status"] in statuses:
            return run
        time.sleep(0.2)
    raise TimeoutError(f"run {run_id} did not reach {statuses}")


def poll_page(run_id: str, ready, stop, page_loads, errors) -> None:
    """One session (its own process, as Streamlit sessions do not share a script thread): open
    the Runs page of ``run_id``, then reload it every second until ``stop``."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params["run"] = run_id
    at.run()
    at.switch_page("pages/runs.py")
    at.run()
    ready.release()
    while not stop.is_set():
        started = time.monotonic()
        at.run()
        if at.exception:
            errors.put(str(at.exception[0].value))
        with page_loads.get_lock():
            page_loads.value += 1
        stop.wait(max(0.0, 1.0 - (time.monotonic() - started)))


@contextlib.contextmanager
def apptest_sessions(run_id: str, n: int) -> Iterator[Callable[[], dict]]:
    """``n`` AppTest sessions polling the Runs page of ``run_id``, each in its own process;
    yields a function returning the page loads so far and the errors."""
    ctx = multiprocessing.get_context("spawn")
    ready, stop = ctx.Semaphore(0), ctx.Event()
    page_loads, errors = ctx.Value("i", 0), ctx.Queue()
    procs = [
        ctx.Process(target=poll_page, args=(run_id, ready, stop, page_loads, errors))
        for _ in range(n)
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.acquire()
    page_loads.value = 0
    try:
        yield lambda: {
            "page_loads": page_loads.value,
            "errors": [errors.get() for _ in range(errors.qsize())],
        }
    finally:
        stop.set()
        for proc in procs:
            proc.join()


def stop_worker() -> None:
    """Stop the background worker if one is alive, and wait until it has exited."""
    from cnn_core.runs.supervisor import worker_pid

    while pid := worker_pid():
        os.kill(pid, signal.SIGTERM)
        time.sleep(0.2)


def hold_worker_lock():
    """Take the worker lock (as a live worker holds it); closing the file releases it."""
    from cnn_core.processes import try_lock
    from cnn_core.runs.supervisor import lock_path

    lock = try_lock(lock_path(), attempts=50)
    lock.truncate(0)
    lock.write(str(os.getpid()))
    lock.flush()
    return lock


def train_images_per_s(config, sessions: int) -> tuple[float, dict]:
    """Training images/s of ``config`` while ``sessions`` sessions watch its Runs page. The
    sessions are open (everything imported) before training starts, so only polling overlaps."""
    from cnn_core.runs import api

    stop_worker()  # a worker still alive from the last measurement would start at once
    run_id = api.submit(config, start_worker=False)
    held = hold_worker_lock()  # the app starts a worker for queued runs: not before all watch
    with apptest_sessions(run_id, sessions) if sessions else contextlib.nullcontext() as status:
        held.close()
        api.ensure_worker()
        run = wait_status(run_id, ("completed", "failed", "stopped", "interrupted"))
        facts = status() if status else {}
    if run["status"] != "completed":
        raise RuntimeError(f"run ended {run['status']}: {run.get('error')}")
    history = api.metrics(run_id)
    return sum(m["images_per_s"] for m in history) / len(history), facts


def main() -> int:
    p = parser("benchmarks.load_sessions", __doc__)
    p.add_argument("--sessions", type=int, default=10)
    p.add_argument("--train-size", type=int, default=20000)
    p.add_argument("--epochs", type=int, default=2)
    args = p.parse_args()
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
    alone, _ = train_images_per_s(config, 0)
    loaded, facts = train_images_per_s(config, args.sessions)
    errors = facts.pop("errors")
    result = {
        "sessions": args.sessions,
        "images_per_s_alone": alone,
        "images_per_s_with_sessions": loaded,
        "ratio": loaded / alone,
        "drop_percent": 100 * (1 - loaded / alone),
        **facts,
        "page_errors": errors[:5],
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"training alone:                {alone:8,.0f} images/s")
    print(f"with {args.sessions:2d} sessions:         {loaded:8,.0f} images/s")
    print(
        f"ratio {result['ratio']:.2f} — drop {result['drop_percent']:.1f} %; errors: {len(errors)}"
    )
    for key, value in facts.items():
        print(f"{key}: {value:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
