"""Load check: training images/s of a background run alone and while N app sessions watch it.

    python -m benchmarks.load_sessions [--sessions 10] [--whole-page | --both] [--processes 1]
        [--train-size 20000] [--epochs 2] [--profile PATH] [--json]

A *session* is one browser tab on the Runs page of the live run, as the server sees it: it opens
the whole page once (AppTest, the real page scripts), then reruns what the browser asks the
server to rerun: the page's live fragment every ``LIVE_S`` (progress, headline numbers, step
curves) and its snapshot fragment every ``SNAPSHOT_S``, each an AppTest of a two-line script
calling the very function the fragment calls (``ui.run_widgets.live_panel``,
``snapshot_frame``). When the run's status changes the fragment asks for the whole page, and so
does the session; once the run is finished nothing reruns. ``--whole-page`` reruns the whole
page every ``LIVE_S`` instead (the older, heavier check); ``--both`` measures both.

The sessions live in one process, as a Streamlit server's sessions do (one interpreter, its
caches shared), and run one at a time when due (the worker trains on all cores but one,
``cnn_core.runs.worker.default_threads``, leaving that one to the app); ``--processes K``
spreads them over K processes (K servers: nothing shared, up to K cores busy). They open
(importing Streamlit and torch) before training starts, so only their reruns overlap it: the
worker lock is held meanwhile, as the app itself starts a worker for a queued run. Prints the
worker's training images/s alone (measured before and after the sessions, so the machine's drift
shows) and with the sessions, their ratio, the reruns made, the CPU the sessions' processes used
(per rerun, and in cores: this includes AppTest's own work) and how late the reruns started on
average (a server that cannot keep up falls behind).

(Browser tabs were tried as sessions: in one headless Chromium only the visible tab keeps its
fragment timer running, so they do not load the server as ten users would.)
"""

from __future__ import annotations

import contextlib
import cProfile
import heapq
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


def live_fragment(run_id: str) -> None:
    """The script a session reruns for the live fragment: the fragment's own body, for the
    status the page shows (``shown_status`` in its session state)."""
    import streamlit as st

    from ui.charts import STEP_AXES
    from ui.run_widgets import SMOOTHING, live_panel

    shown = st.session_state["shown_status"]
    st.session_state["same_status"] = live_panel(run_id, shown, next(iter(STEP_AXES)), SMOOTHING)


def snapshot_fragment(run_id: str) -> None:
    """The script a session reruns for the snapshot fragment (not playing)."""
    from ui.run_widgets import snapshot_frame

    snapshot_frame(run_id, False)


class Session:
    """One browser tab on the Runs page of ``run_id``, opened: the whole page and the first
    run of both fragments (one AppTest each, made once: AppTest's first run of a script scans
    every installed package for components, which a server does once at start). :meth:`rerun`
    does what the browser asks the server for at a tick of ``what`` ("live", "snapshots" or
    "page")."""

    def __init__(self, run_id: str):
        from streamlit.testing.v1 import AppTest

        self.run_id, self.page_loads, self.errors = run_id, 0, []
        self.page = AppTest.from_file(str(APP), default_timeout=60)
        self.page.query_params["run"] = run_id
        self.page.run()
        self.page.switch_page("pages/runs.py")
        self.live, self.snapshots = (
            AppTest.from_function(script, args=(run_id,), default_timeout=60)
            for script in (live_fragment, snapshot_fragment)
        )
        self.open_page()
        self._run(self.snapshots)

    def open_page(self) -> None:
        """The whole page, then its live fragment for the status the page shows."""
        from cnn_core.runs import api

        self._run(self.page)
        self.page_loads += 1
        self.status = api.get_run(self.run_id)["status"]  # what the page has just shown
        self.live.session_state["shown_status"] = self.status
        self._run(self.live)

    def _run(self, at) -> None:
        at.run()
        self.errors += [str(e.value) for e in at.exception]

    def rerun(self, what: str) -> None:
        if what == "page":
            self.open_page()
        elif what == "snapshots":
            self._run(self.snapshots)
        else:
            self._run(self.live)
            if not self.live.session_state["same_status"]:
                self.open_page()  # the fragment's st.rerun(): the browser reruns the page


def script_profiler(profile: str):
    """With ``profile``, a cProfile of every script run of this process (AppTest runs a script
    in its own thread, which a profiler of the calling thread does not see), else None."""
    if not profile:
        return None
    from streamlit.testing.v1.local_script_runner import LocalScriptRunner

    profiler, run_thread = cProfile.Profile(), LocalScriptRunner._run_script_thread
    LocalScriptRunner._run_script_thread = lambda self: profiler.runcall(run_thread, self)
    return profiler


def serve(
    run_id: str, n: int, first: int, total: int, whole_page: bool, profile: str, events, out
) -> None:
    """A server process: ``n`` sessions, the ``first``-th to the ``first + n - 1``-th of
    ``total`` (their ticks spread evenly over the interval, as tabs opened at random times),
    each rerun when due, one at a time, until ``stop``; puts its counts on ``out``. With
    ``profile``, the script runs of its reruns are profiled into ``{profile}.{first}``."""
    from ui.run_widgets import LIVE_S, SNAPSHOT_S
    from ui.widgets import ACTIVE

    ready, go, stop = events
    sessions = [Session(run_id) for _ in range(n)]
    profiler = script_profiler(profile)
    ready.release()
    go.wait()  # every process has opened its sessions
    every = {"page": LIVE_S} if whole_page else {"live": LIVE_S, "snapshots": SNAPSHOT_S}
    start, cpu = time.monotonic(), time.process_time()
    due = [
        (start + (first + i) / total * interval, i, what)
        for i in range(n)
        for what, interval in every.items()
    ]
    heapq.heapify(due)
    reruns, late = 0, 0.0
    while due and not stop.is_set():
        when, i, what = heapq.heappop(due)
        if stop.wait(max(0.0, when - time.monotonic())):
            break
        late += time.monotonic() - when
        sessions[i].rerun(what)
        reruns += 1
        if sessions[i].status in ACTIVE:  # a finished run's page reruns nothing
            heapq.heappush(due, (max(when + every[what], time.monotonic()), i, what))
    if profiler:
        profiler.dump_stats(f"{profile}.{first}")
    out.put(
        {
            "page_loads": sum(s.page_loads for s in sessions),
            "reruns": reruns,
            "late_s": late,
            "seconds": time.monotonic() - start,
            "cpu_s": time.process_time() - cpu,
            "errors": [e for s in sessions for e in s.errors],
        }
    )


@contextlib.contextmanager
def watching(
    run_id: str, n: int, processes: int, whole_page: bool, profile: str = ""
) -> Iterator[Callable[[], dict]]:
    """``n`` sessions watching the Runs page of ``run_id`` in ``processes`` server processes;
    yields a function that stops them and returns their counts and errors."""
    ctx = multiprocessing.get_context("spawn")
    ready, go, stop, out = ctx.Semaphore(0), ctx.Event(), ctx.Event(), ctx.Queue()
    shares = [n // processes + (k < n % processes) for k in range(processes)]
    procs = [
        ctx.Process(
            target=serve,
            args=(run_id, share, sum(shares[:k]), n, whole_page, profile, (ready, go, stop), out),
        )
        for k, share in enumerate(shares)
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.acquire()
    go.set()
    results: list[dict] = []

    def finish() -> dict:
        stop.set()
        results.extend(out.get() for _ in procs)
        seconds = max(r["seconds"] for r in results)
        reruns = sum(r["reruns"] for r in results)
        return {
            "page_loads": sum(r["page_loads"] for r in results),
            "reruns_per_s": reruns / seconds,
            "server_cores": sum(r["cpu_s"] for r in results) / seconds,
            "cpu_ms_per_rerun": 1000 * sum(r["cpu_s"] for r in results) / max(1, reruns),
            "mean_lateness_s": sum(r["late_s"] for r in results) / max(1, reruns),
            "errors": [e for r in results for e in r["errors"]],
        }

    try:
        yield finish
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
    from cnn_core.runs.supervisor import supervisor_files

    return supervisor_files().acquire(attempts=50)


def train_images_per_s(
    config, sessions: int, processes: int = 1, whole_page: bool = False, profile: str = ""
):
    """Training images/s of ``config`` while ``sessions`` sessions watch its Runs page, and the
    sessions' counts. The sessions are open before training starts, so only reruns overlap."""
    from cnn_core.runs import api

    stop_worker()  # a worker still alive from the last measurement would start at once
    run_id = api.submit(config, start_worker=False)
    held = hold_worker_lock()  # the app starts a worker for queued runs: not before all watch
    with (
        watching(run_id, sessions, min(processes, sessions), whole_page, profile)
        if sessions
        else contextlib.nullcontext()
    ) as finish:
        held.close()
        api.ensure_worker()
        run = wait_status(run_id, ("completed", "failed", "stopped", "interrupted"))
        facts = finish() if finish else {}
    if run["status"] != "completed":
        raise RuntimeError(f"run ended {run['status']}: {run.get('error')}")
    history = api.metrics(run_id)
    return sum(m["images_per_s"] for m in history) / len(history), facts


def main() -> int:
    p = parser("benchmarks.load_sessions", __doc__)
    p.add_argument("--sessions", type=int, default=10)
    p.add_argument("--processes", type=int, default=1, help="server processes (default 1)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--whole-page", action="store_true", help="rerun the whole page")
    mode.add_argument("--both", action="store_true", help="fragments, then the whole page")
    p.add_argument("--profile", default="", help="cProfile the script runs into PROFILE.<k>")
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
    modes = [False, True] if args.both else [args.whole_page]
    before, _ = train_images_per_s(config, 0)
    loaded = {
        mode: train_images_per_s(config, args.sessions, args.processes, mode, args.profile)
        for mode in modes
    }
    after, _ = train_images_per_s(config, 0)  # alone again: the machine's drift shows
    alone = (before + after) / 2
    result = {
        "sessions": args.sessions,
        "processes": args.processes,
        "images_per_s_alone": alone,
        "alone_before_after": [before, after],
    }
    for whole_page, (images_per_s, facts) in loaded.items():
        errors = facts.pop("errors")
        result["whole_page" if whole_page else "fragments"] = {
            "images_per_s_with_sessions": images_per_s,
            "ratio": images_per_s / alone,
            "drop_percent": 100 * (1 - images_per_s / alone),
            **facts,
            "page_errors": errors[:5],
            "error_count": len(errors),
        }
    stop_worker()  # the last run's worker would otherwise linger
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"training alone:                        {alone:8,.0f} images/s "
        f"(mean of {before:,.0f} before and {after:,.0f} after the sessions)"
    )
    for name in ("fragments", "whole_page"):
        if name not in result:
            continue
        r = result[name]
        label = "rerunning the whole page" if name == "whole_page" else "rerunning the fragments"
        print(
            f"with {args.sessions:2d} sessions {label}: {r['images_per_s_with_sessions']:8,.0f} "
            f"images/s — ratio {r['ratio']:.2f}, drop {r['drop_percent']:.1f} %; "
            f"{r['reruns_per_s']:.1f} reruns/s ({r['cpu_ms_per_rerun']:.0f} ms CPU each, "
            f"{r['server_cores']:.2f} cores busy), {1000 * r['mean_lateness_s']:.0f} ms late on "
            f"average, {r['page_loads']} page loads, errors: {r['error_count']}"
        )
        for error in r["page_errors"]:
            print(f"  error: {error}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
