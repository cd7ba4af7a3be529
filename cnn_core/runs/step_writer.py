"""The callback that reports a run's step series: running training loss and accuracy every
few batches (at most ``1 / interval`` points a second, and always one after the first batch),
a validation point and an evaluation snapshot after every validation pass.

Training points are written by a background thread (SQLite releases the GIL while it writes),
so a busy disk never stalls a batch; the queue is drained before every validation point, and
so before every checkpoint, and when training stops or ends."""

from __future__ import annotations

import queue
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import torch

from ..callbacks import Callback
from ..scoring import probabilities
from ..speed import autocast, to_device
from .writer import RunWriter

if TYPE_CHECKING:
    from ..scoring import EvalResult
    from ..state import TrainState

POINT_INTERVAL_S = 0.5  # at most ~2 training points a second
PANEL_SIZE = 24  # validation images whose predictions every snapshot keeps


def panel_indices(seed: int, n_val: int, size: int = PANEL_SIZE) -> list[int]:
    """The run's fixed panel: ``size`` validation indices drawn from the seed, ascending."""
    order = torch.randperm(n_val, generator=torch.Generator().manual_seed(seed))
    return sorted(order[: min(size, n_val)].tolist())


class StepWriter(Callback):
    """Writes step points and evaluation snapshots to the store. On (re)start it forgets what
    lies past the resumed position, so a resume rewrites the lost part once, with no gap and
    no duplicate step."""

    def __init__(self, store: RunWriter, run_id: str, interval: float = POINT_INTERVAL_S):
        self.store, self.run_id, self.interval = store, run_id, interval
        self._last = 0.0
        # (epoch, loss sum, correct, seen) at the last point
        self._mark: tuple[int, float, float, float] = (0, 0.0, 0, 0)
        self._panel: list[int] = []
        self._pending: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def _write_pending(self) -> None:
        while (point := self._pending.get()) is not None:
            try:
                self.store.write_point(self.run_id, "train", point)
            except Exception as exc:  # a busy database must not kill training
                print(f"step point of {self.run_id} not written: {exc}", file=sys.stderr)
            finally:
                self._pending.task_done()
        self._pending.task_done()

    def _drain(self, last: bool = False) -> None:
        """Wait until every queued point is written (and end the writer thread if ``last``)."""
        if self._thread is None:
            return
        if last:
            self._pending.put(None)
            self._thread.join()
            self._thread = None
        else:
            self._pending.join()

    def _point(self, state: TrainState) -> dict[str, Any]:
        """Where the run is: the x of a point (``step`` is unique per point of a kind)."""
        return {
            "step": state.global_step,
            "epoch_fraction": state.epoch_fraction,
            "images_seen": state.images_seen(),
        }

    def on_fit_start(self, state: TrainState) -> None:
        self.store.truncate_series(self.run_id, state.global_step)
        p = state.partial
        self._mark = (state.epoch, p["loss"], p["correct"], p["seen"])
        self._last = 0.0  # the first batch always gets a point
        self._panel = panel_indices(state.config.seed, len(state.data.val))
        self._thread = threading.Thread(
            target=self._write_pending, name=f"steps-{self.run_id}", daemon=True
        )
        self._thread.start()
        if self._panel and not self.store.has_panel(self.run_id):
            val = state.data.val
            self.store.save_panel(
                self.run_id,
                self._panel,
                val.labels[self._panel].tolist(),
                list(state.data.class_names),
                val.images[self._panel].numpy(),
            )

    def on_batch_end(self, state: TrainState, loss: float) -> None:
        now = time.monotonic()
        if now - self._last < self.interval:
            return
        p = state.partial
        epoch, loss_sum, correct, seen = self._mark
        if epoch != state.epoch or p["seen"] < seen:  # a new epoch restarted the sums
            loss_sum, correct, seen = 0.0, 0, 0
        n = p["seen"] - seen
        if n <= 0:
            return
        self._last = now
        self._mark = (state.epoch, p["loss"], p["correct"], p["seen"])
        point = self._point(state)
        point.update(
            loss=(p["loss"] - loss_sum) / n,
            accuracy=(p["correct"] - correct) / n,
            wall_time=time.time(),
        )
        self._pending.put(point)

    def on_stop(self, state: TrainState) -> None:
        self._drain(last=True)

    def on_fit_end(self, state: TrainState) -> None:
        self._drain(last=True)

    def on_evaluation(self, state: TrainState, metrics: dict[str, Any], result: EvalResult) -> None:
        self._drain()
        point = self._point(state)
        self.store.write_point(
            self.run_id, "val", {**point, "loss": result.loss, "accuracy": result.accuracy}
        )
        self.store.save_snapshot(self.run_id, point, self._snapshot(state, result))

    @torch.no_grad()
    def _snapshot(self, state: TrainState, result: EvalResult) -> dict[str, Any]:
        """The confusion matrix and the panel's predictions (model in eval mode meanwhile)."""
        predicted: list[int] = []
        confidence: list[float] = []
        if self._panel:
            model = state.eval_model
            was_training = model.training
            model.eval()
            try:
                x = state.data.transform.eval(state.data.val.images[self._panel])
                with autocast(state.config.precision, state.device):
                    probs = probabilities(model(to_device(x, state.device)))
                conf, pred = probs.max(1)
                predicted, confidence = pred.cpu().tolist(), conf.cpu().tolist()
            finally:
                model.train(was_training)
        return {
            "accuracy": result.accuracy,
            "loss": result.loss,
            "confusion": result.confusion,
            "predicted": predicted,
            "confidence": confidence,
        }
