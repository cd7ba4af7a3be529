"""Load check: training images/s of a background run with and without N app sessions polling it.

    python scripts/load_sessions.py [--sessions 10] [--mode browser|apptest] [--json]

Runs the same config twice, one after the other, in a temporary runs folder: first alone, then
while N sessions watch the Runs page of the live run. ``browser``: N headless Chromium tabs on
a real ``streamlit run`` (the live fragment refreshes progress and curves every second); the
browser stands in for users on other machines but shares this machine's cores, so the CPU
share of the server and of the browser are printed too. ``apptest``: N AppTest sessions, each
in its own process, rerun the whole Runs page once a second (more work than the fragment).
Prints the worker's training images/s for both and their ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
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


def poll_page(run_id: str, ready, stop, page_loads, errors) -> None:
    """One session (its own process, as Streamlit sessions do not share a script thread): open
    the Runs page of ``run_id``, then reload it every second until ``stop``."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(PROJECT / "app.py"), default_timeout=60)
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


def cpu_seconds(match: Callable[[int, str], bool]) -> float:
    """CPU seconds (user + system) used so far by the processes ``match(pid, command)`` picks."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            if match(int(proc.name), command):
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, ValueError):  # gone meanwhile
            continue
    return total


@contextlib.contextmanager
def browser_sessions(run_id: str, n: int) -> Iterator[Callable[[], dict]]:
    """``n`` tabs of headless Chromium on the Runs page of ``run_id`` served by a real
    ``streamlit run`` (the live fragment refreshes progress and curves every second). Yields a
    function returning the console errors and the CPU share of the server and of the browser
    since the tabs were open (the browser stands in for users on other machines, but here it
    shares the same two cores)."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, start_app, wait_for_app

    folder = Path(os.environ["CNN_LAB_RUNS_DIR"])
    app, url = start_app(dict(os.environ), folder / "streamlit.log")
    errors: list[str] = []
    server = lambda pid, command: pid == app.pid  # noqa: E731
    chromium = lambda pid, command: "chromium" in command  # noqa: E731
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for _ in range(n):
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                page.on("console", lambda m: m.type == "error" and errors.append(m.text))
                page.goto(f"{url}/runs?run={run_id}")
                wait_for_app(page)
            start = (time.monotonic(), cpu_seconds(server), cpu_seconds(chromium))

            def status() -> dict:
                seconds = time.monotonic() - start[0]
                return {
                    "errors": errors,
                    "server_cpu_share": (cpu_seconds(server) - start[1]) / seconds,
                    "browser_cpu_share": (cpu_seconds(chromium) - start[2]) / seconds,
                }

            yield status
            browser.close()
    finally:
        app.terminate()
        app.wait(10)


def train_images_per_s(config, sessions: int, mode: str) -> tuple[float, dict]:
    """Training images/s of ``config`` while ``sessions`` sessions watch its Runs page. The
    sessions are open (everything imported) before training starts, so only polling overlaps."""
    from cnn_core.runs import api

    run_id = api.submit(config, start_worker=False)
    open_sessions = browser_sessions if mode == "browser" else apptest_sessions
    with open_sessions(run_id, sessions) if sessions else contextlib.nullcontext() as status:
        api.ensure_worker()
        run = wait_status(run_id, ("completed", "failed", "stopped", "interrupted"))
        facts = status() if status else {}
    if run["status"] != "completed":
        raise RuntimeError(f"run ended {run['status']}: {run.get('error')}")
    history = api.metrics(run_id)
    return sum(m["images_per_s"] for m in history) / len(history), facts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--train-size", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--mode",
        choices=("apptest", "browser"),
        default="browser",
        help="browser: Chromium tabs on a real server (the app as used); apptest: whole-page "
        "reruns in separate processes (server work only, heavier than the live fragment)",
    )
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
    alone, _ = train_images_per_s(config, 0, args.mode)
    loaded, facts = train_images_per_s(config, args.sessions, args.mode)
    errors = facts.pop("errors")
    result = {
        "mode": args.mode,
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
    print(f"with {args.sessions:2d} {args.mode} sessions: {loaded:8,.0f} images/s")
    print(
        f"ratio {result['ratio']:.2f} — drop {result['drop_percent']:.1f} %; errors: {len(errors)}"
    )
    for key, value in facts.items():
        print(f"{key}: {value:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
