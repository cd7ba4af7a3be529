"""What reporting to the run store costs training: images/s without it, with progress + epoch
metrics, and with the step series and evaluation snapshots too.

    python -m benchmarks.overhead [train options] [--repeats 2] [--json]

Trains the same config (default: v1 on 4,000 Fashion-MNIST images, 1 epoch) ``--repeats`` times
in each mode, in rotating order, in one process on the same data, into a temporary run store;
prints the best training images/s of each, the ratios to plain, and the share of training time
the step points' writes took (timed inside the same runs: robust to a busy machine).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from cnn_core.cli.common import add_config_args, config_from_args
from cnn_core.config import TrainConfig
from cnn_core.data import DataSpec, load_dataset
from cnn_core.resolve import resolve
from cnn_core.runs.reporting import StopFlag, StoreWriter
from cnn_core.runs.step_writer import StepWriter
from cnn_core.runs.store import DB_NAME, RunStore
from cnn_core.trainer import fit

from .common import emit, parser

OVERHEAD_MODES = ("plain", "tracked", "steps")


class _TimedStepWriter(StepWriter):
    """A StepWriter that adds up the seconds its per-batch hook takes (inside training time),
    so its share of training time is measured in the same run, whatever else loads the machine."""

    seconds = 0.0

    def on_batch_end(self, state: Any, loss: float) -> None:
        started = time.perf_counter()
        super().on_batch_end(state, loss)
        self.seconds += time.perf_counter() - started


def _reporters(mode: str, store: RunStore, run_id: str, config: TrainConfig) -> list:
    """The store callbacks of an overhead mode: none; progress + epoch metrics + stop flag;
    those plus the step series and evaluation snapshots."""
    if mode == "plain":
        return []
    store.add_run(run_id, config.to_dict(), status="running")
    callbacks = [StoreWriter(store, run_id), StopFlag(store, run_id)]
    return callbacks + ([_TimedStepWriter(store, run_id)] if mode == "steps" else [])


def measure_overhead(config: TrainConfig, repeats: int = 2) -> dict[str, Any]:
    """Train ``config`` ``repeats`` times in each mode (plain, tracked = StoreWriter + StopFlag,
    steps = tracked + StepWriter), in rotating order, one process, same data; best training
    images/s of each, the ratios to plain, and the share of training time the step points'
    writes took (timed inside the same runs: robust to a busy machine)."""
    config = resolve(config)
    data = load_dataset(DataSpec.of(config))
    rates: dict[str, list[float]] = {mode: [] for mode in OVERHEAD_MODES}
    step_writing = train_seconds = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(Path(tmp) / DB_NAME)
        for i in range(max(1, repeats)):
            k = i % len(OVERHEAD_MODES)
            for mode in OVERHEAD_MODES[k:] + OVERHEAD_MODES[:k]:
                callbacks = _reporters(mode, store, f"overhead-{mode}-{i}", config)
                history = fit(config, callbacks, data=data).history
                seconds = sum(h["seconds"] for h in history)
                rates[mode].append(sum(h["images_per_s"] * h["seconds"] for h in history) / seconds)
                if mode == "steps":
                    step_writing += callbacks[-1].seconds
                    train_seconds += seconds
    best = {mode: max(r) for mode, r in rates.items()}
    return {
        "plain_images_per_s": best["plain"],
        "tracked_images_per_s": best["tracked"],
        "steps_images_per_s": best["steps"],
        "ratio": best["tracked"] / best["plain"],
        "steps_ratio": best["steps"] / best["plain"],
        "step_writing_share": step_writing / train_seconds,
        "repeats": max(1, repeats),
        "config": config.to_dict(),
    }


def cmd_overhead(args) -> int:
    """Measure the config of ``args`` and print the result."""
    r = measure_overhead(config_from_args(args), args.repeats)
    emit(
        args,
        r,
        f"training images/s without store reporting {r['plain_images_per_s']:,.0f}, "
        f"with progress + epoch metrics {r['tracked_images_per_s']:,.0f} (ratio {r['ratio']:.3f}), "
        f"with step metrics + snapshots too {r['steps_images_per_s']:,.0f} "
        f"(ratio {r['steps_ratio']:.3f}); writing step points took "
        f"{100 * r['step_writing_share']:.2f} % of the training time",
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.overhead``."""
    p = parser("benchmarks.overhead", __doc__)
    add_config_args(p)
    p.add_argument("--repeats", type=int, default=2, help="rounds of the three modes")
    p.set_defaults(dataset="fashion-mnist", model="v1", epochs=1, train_size=4000, val_size=500)
    args = p.parse_args(argv)
    return cmd_overhead(args)


if __name__ == "__main__":
    raise SystemExit(main())
