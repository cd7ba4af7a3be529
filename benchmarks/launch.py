"""What a user waits for after pressing Launch: a run queued the way the Train page queues it
(``runs.submit``), a supervisor started for it, followed through the store to completion —
with run children forked from the warm supervisor (``fork``, what Linux does) and started as
a fresh ``python -m cnn_core worker --run`` (``exec``, what other systems do), side by side.

    python -m benchmarks.launch [--recipe fast] [--dataset fashion-mnist] [--epochs 1]
                                [--repeats 2] [--json]

Each launch uses a fresh runs folder with no supervisor running (a cold Launch), the modes in
alternation; the cache folder is shared, as on a user's machine. Phases, in seconds from the
submit call: the supervisor claimed the run, the first training point is stored, the run is
completed; beside them the run's own training seconds (validation excluded) and the wait that
is not training (completed − training seconds). Prints the median of each phase per mode and
the exec/fork ratio of the wait for the first point.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from .common import parser


def _wait(store: Any, run_id: str, sql: str, timeout: float) -> float:
    """The first non-null value of ``sql`` (one ``?``: the run id), waited for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = store.query(sql, (run_id,))
        if row and row[0][0] is not None:
            return float(row[0][0])
        time.sleep(0.02)
    raise TimeoutError(f"run {run_id}: gave up waiting for {sql!r}")


MODES = ("fork", "exec")
SUPERVISOR = (  # a supervisor whose children are forked (FORK=True) or started afresh
    "from cnn_core.runs import supervisor; supervisor.FORK = {fork}; "
    "supervisor.Supervisor(idle_exit=2).run()"
)


def one_launch(
    mode: str, recipe: str, dataset: str, epochs: int, timeout: float
) -> dict[str, float]:
    """Phases of one cold launch in ``mode``, seconds from the submit call."""
    from cnn_core import runs
    from cnn_core.config import TrainConfig
    from cnn_core.recipes import apply_recipe
    from cnn_core.runs.store import RunStore

    with tempfile.TemporaryDirectory() as folder:
        os.environ["CNN_LAB_RUNS_DIR"] = folder
        config = TrainConfig.from_dict(
            apply_recipe(recipe, {"dataset": dataset, "epochs": epochs}), strict=False
        )
        start = time.time()
        run_id = runs.submit(config, name="launch bench", start_worker=False)
        code = SUPERVISOR.format(fork=mode == "fork")
        worker = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL)
        submitted = time.time() - start
        store = RunStore()
        claimed = _wait(store, run_id, "SELECT started_at FROM runs WHERE id = ?", timeout)
        first = _wait(
            store,
            run_id,
            "SELECT MIN(wall_time) FROM steps WHERE run_id = ? AND kind = 'train'",
            timeout,
        )
        done = _wait(
            store,
            run_id,
            "SELECT finished_at FROM runs WHERE id = ? AND status != 'running'",
            timeout,
        )
        row = store.get(run_id)
        assert row is not None and row["status"] == "completed", row and row["status"]
        training = float(row["train_seconds"])
        worker.wait(timeout)
        return {
            "submit_s": submitted,
            "claimed_s": claimed - start,
            "first_point_s": first - start,
            "completed_s": done - start,
            "train_s": training,
            "not_training_s": done - start - training,
        }


def main() -> None:
    p = parser("benchmarks.launch", __doc__)
    p.add_argument("--recipe", default="fast")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--timeout", type=float, default=600.0)
    args = p.parse_args()
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    for _ in range(args.repeats):
        for mode in MODES:
            launch = one_launch(mode, args.recipe, args.dataset, args.epochs, args.timeout)
            results[mode].append(launch)
    median = {
        mode: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        for mode, rs in results.items()
    }
    ratio = median["exec"]["first_point_s"] / median["fork"]["first_point_s"]
    if args.json:
        print(json.dumps({"median": median, "first_point_ratio": ratio, "runs": results}))
        return
    print(f"{args.recipe} on {args.dataset}, {args.epochs} epoch(s), {args.repeats} cold launches")
    for key in median["fork"]:
        fork, exec_ = median["fork"][key], median["exec"][key]
        print(f"  {key:>15}: fork {fork:6.2f} s · exec {exec_:6.2f} s (medians)")
    print(f"  first point: exec / fork = {ratio:.2f}×")


if __name__ == "__main__":
    main()
