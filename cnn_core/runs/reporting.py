"""The callbacks that report a training run to the run store: live progress and per-epoch
metrics (:class:`StoreWriter`), the time to target (:class:`TargetWriter`) and the stop flag
(:class:`StopFlag`); the step series and snapshots are :class:`.step_writer.StepWriter`."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..callbacks import Callback
from .store import RunStore

if TYPE_CHECKING:
    from ..trainer import TrainState


class StoreWriter(Callback):
    """Writes per-epoch metrics and live progress (epoch, batch i of n, images/s) to the store
    (the step series and snapshots: :class:`cnn_core.runs.step_writer.StepWriter`)."""

    def __init__(self, store: RunStore, run_id: str, interval: float = 1.0):
        self.store, self.run_id, self.interval = store, run_id, interval
        self._last = 0.0

    def _progress(self, state: TrainState, **extra: Any) -> None:
        now = time.time()
        self.store.update(
            self.run_id,
            epoch=state.epoch,
            step=state.step,
            num_batches=state.num_batches,
            progress_at=now,
            heartbeat_at=now,
            **extra,
        )
        self._last = time.monotonic()

    def on_fit_start(self, state: TrainState) -> None:
        self._progress(state, dataset_note=state.data.note)

    def on_batch_end(self, state: TrainState, loss: float) -> None:
        if time.monotonic() - self._last >= self.interval:
            self._progress(state, images_per_s=state.images_per_s())

    def on_epoch_end(self, state: TrainState, metrics: dict[str, Any]) -> None:
        self.store.write_metrics(
            self.run_id,
            metrics["epoch"],
            state.num_batches,
            {k: v for k, v in metrics.items() if k != "epoch"},
        )
        self._progress(state, images_per_s=metrics["images_per_s"])

    def on_stop(self, state: TrainState) -> None:
        self._progress(state)


TARGET_EPOCH = 0  # metric rows of "epoch 0" hold run-level results: the time to target
TARGET_KEYS = ("time_to_target_s", "images_to_target", "epoch_fraction", "val_accuracy")


class TargetWriter(Callback):
    """Records when the run reached its target accuracy, as metric rows of epoch
    :data:`TARGET_EPOCH` (read back by :func:`cnn_core.runs.api.get_run`)."""

    def __init__(self, store: RunStore, run_id: str):
        self.store, self.run_id = store, run_id

    def on_fit_end(self, state: TrainState) -> None:
        if state.target:
            values = {k: state.target[k] for k in TARGET_KEYS}
            self.store.write_metrics(self.run_id, TARGET_EPOCH, 0, values)


class StopFlag(Callback):
    """Stops training when the run's ``stop_requested`` is set (read at most every ``interval`` s)."""

    def __init__(self, store: RunStore, run_id: str, interval: float = 0.25):
        self.store, self.run_id, self.interval = store, run_id, interval
        self._checked = 0.0
        self._stop = False

    def should_stop(self, state: TrainState) -> bool:
        now = time.monotonic()
        if not self._stop and now - self._checked >= self.interval:
            self._checked = now
            self._stop = self.store.stop_requested(self.run_id)
        return self._stop
