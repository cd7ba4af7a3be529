"""Training callbacks (Lightning-style): every hook is a no-op unless overridden."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from .scoring import EvalResult
    from .trainer import TrainState


class Callback:
    """Base class: override the hooks you need. ``should_stop`` is polled between batches."""

    def on_fit_start(self, state: TrainState) -> None:
        pass

    def on_epoch_start(self, state: TrainState) -> None:
        pass

    def on_batch_end(self, state: TrainState, loss: float) -> None:
        pass

    def on_evaluation(self, state: TrainState, metrics: dict[str, Any], result: EvalResult) -> None:
        """Called after every validation pass (with the epoch's last one just before
        ``on_epoch_end``); ``result`` holds the confusion matrix and per-class accuracy."""

    def on_epoch_end(self, state: TrainState, metrics: dict[str, Any]) -> None:
        pass

    def on_stop(self, state: TrainState) -> None:
        """Called when training stops early (a stop request) with the state mid-epoch."""

    def on_fit_end(self, state: TrainState) -> None:
        pass

    def should_stop(self, state: TrainState) -> bool:
        return False


class ProgressBar(Callback):
    """A one-line text progress bar (stderr by default), redrawn at most ``fps`` times a second."""

    def __init__(self, stream: TextIO | None = None, fps: float = 5.0, width: int = 28):
        self.stream = stream or sys.stderr
        self.interval = 1.0 / fps
        self.width = width
        self._last = 0.0

    def on_batch_end(self, state: TrainState, loss: float) -> None:
        now = time.monotonic()
        if now - self._last < self.interval and state.step < state.num_batches:
            return
        self._last = now
        done = state.step / max(1, state.num_batches)
        bar = "#" * int(done * self.width)
        rate = state.images_per_s()
        self.stream.write(
            f"\repoch {state.epoch + 1}/{state.config.epochs} [{bar:<{self.width}}] "
            f"{state.step}/{state.num_batches} loss {loss:.4f} {rate:,.0f} img/s"
        )
        self.stream.flush()

    def on_epoch_end(self, state: TrainState, metrics: dict[str, Any]) -> None:
        self.stream.write(
            f"\repoch {metrics['epoch']}/{state.config.epochs} "
            f"train loss {metrics['train_loss']:.4f} acc {metrics['train_accuracy']:.4f} | "
            f"val loss {metrics['val_loss']:.4f} acc {metrics['val_accuracy']:.4f} | "
            f"{metrics['seconds']:.1f}s {metrics['images_per_s']:,.0f} img/s{' ' * 10}\n"
        )
        self.stream.flush()


class EarlyStopping(Callback):
    """Stop when ``monitor`` (default val_accuracy) has not improved for ``patience`` epochs."""

    def __init__(self, patience: int = 3, monitor: str = "val_accuracy", mode: str = "max"):
        self.patience, self.monitor, self.mode = patience, monitor, mode
        self.best: float | None = None
        self.bad_epochs = 0

    def on_epoch_end(self, state: TrainState, metrics: dict[str, Any]) -> None:
        value = metrics[self.monitor]
        better = self.best is None or (
            value > self.best if self.mode == "max" else value < self.best
        )
        if better:
            self.best, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1

    def should_stop(self, state: TrainState) -> bool:
        return self.bad_epochs >= self.patience and state.step == 0


class Checkpointer(Callback):
    """Saves a resumable checkpoint to ``path`` after every epoch and when training stops
    (the previous one is kept beside it, in case the newest is ever damaged)."""

    def __init__(self, path):
        self.path = path

    def on_epoch_end(self, state: TrainState, metrics: dict[str, Any]) -> None:
        state.save(self.path, keep_previous=True)

    def on_stop(self, state: TrainState) -> None:
        state.save(self.path, keep_previous=True)
