"""The callbacks that report a training run to the run store: live progress and per-epoch
metrics (:class:`StoreWriter`), the run's results (:class:`ResultWriter`) and the stop flag
(:class:`StopFlag`); the step series and snapshots are :class:`.step_writer.StepWriter`."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..callbacks import Callback
from .results import TARGET_MISSED, TARGET_REACHED, ended_by
from .writer import RunWriter

if TYPE_CHECKING:
    from ..scoring import EvalResult
    from ..state import TrainState


class StoreWriter(Callback):
    """Writes per-epoch metrics and live progress (epoch, batch i of n, images/s) to the store
    (the step series and snapshots: :class:`cnn_core.runs.step_writer.StepWriter`)."""

    def __init__(self, store: RunWriter, run_id: str, interval: float = 1.0):
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


class ResultWriter(Callback):
    """Writes the run's results (:mod:`.results`) to its row: the latest and best validation
    accuracy, training seconds and the time to target on every evaluation; how, where and why
    training ended (and, with a target never reached after every epoch, that it was missed) at
    the end."""

    def __init__(self, store: RunWriter, run_id: str):
        self.store, self.run_id = store, run_id

    def on_evaluation(self, state: TrainState, metrics: dict[str, Any], result: EvalResult) -> None:
        fields: dict[str, Any] = {"train_seconds": metrics["train_seconds"]}
        if state.target:
            fields.update(
                target_status=TARGET_REACHED,
                time_to_target_s=state.target["time_to_target_s"],
                images_to_target=int(state.target["images_to_target"]),
                target_epoch_fraction=state.target["epoch_fraction"],
            )
        self.store.record_evaluation(
            self.run_id, metrics["val_accuracy"], metrics["epoch_fraction"], fields
        )

    def on_fit_end(self, state: TrainState) -> None:
        how = ended_by(state.stopped_by)
        fields: dict[str, Any] = {
            "ended_by": how,
            "ended_at": state.epoch_fraction,
            "end_detail": state.end_detail or None,
            "train_seconds": state.train_seconds(),
        }
        if how == "epochs" and state.config.target_accuracy is not None and not state.target:
            fields["target_status"] = TARGET_MISSED
        self.store.update(self.run_id, **fields)


class StopFlag(Callback):
    """Stops training when the run's ``stop_requested`` is set (read at most every ``interval`` s)."""

    def __init__(self, store: RunWriter, run_id: str, interval: float = 0.25):
        self.store, self.run_id, self.interval = store, run_id, interval
        self._checked = 0.0
        self._stop = False

    def should_stop(self, state: TrainState) -> bool:
        now = time.monotonic()
        if not self._stop and now - self._checked >= self.interval:
            self._checked = now
            self._stop = self.store.stop_requested(self.run_id)
        return self._stop
