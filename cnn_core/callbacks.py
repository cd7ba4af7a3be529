"""Training callbacks (Lightning-style): every hook is a no-op unless overridden.

The trainer (:func:`cnn_core.trainer.fit`) calls the hooks, in the order the callbacks were
given, at these moments (``state`` is the :class:`cnn_core.state.TrainState`):

==================  ==========================================================================
``on_fit_start``    once, before the first batch; a resumed run's state is at its checkpoint's
                    position and every callback's ``load_state_dict`` has run.
``on_epoch_start``  before an epoch's batches (a resumed run: also when it goes on mid-epoch,
                    ``state.step > 0``).
``on_batch_end``    after every optimizer step, with this rank's loss of the batch (a float,
                    possibly nan or inf); ``state.step`` already counts the batch.
``on_evaluation``   after every validation (mid-epoch ones and the epoch's last), with the
                    metrics row (training loss / accuracy of the epoch so far, ``val_loss``,
                    ``val_accuracy``, ``val_images``, ``lr``, ``epoch_fraction``,
                    ``images_seen``, ``train_seconds``, ``eval_seconds``; at the epoch's end
                    also ``seconds`` and ``images_per_s``) and the
                    :class:`~cnn_core.scoring.EvalResult` (confusion matrix, per-class
                    accuracy). ``state.target`` is already set if this one reached the target.
``on_epoch_end``    after the epoch's last validation, with the same metrics row (now the
                    epoch's row of ``state.history``; ``state.epoch`` counts the epoch): the
                    moment to save a checkpoint.
``on_stop``         when training ends before its last epoch: a stop request or an end
                    request (target, early stopping, divergence); the state is where it ended,
                    mid-epoch or not, its training time banked: save here to resume exactly.
``on_fit_end``      once, after training ended for any reason but an exception;
                    ``state.stopped_by`` says how ("" = every epoch ran).
==================  ==========================================================================

``should_stop`` is polled before every batch and after every epoch but the last: True pauses
the run (``fit`` returns ``completed=False``; resumable from the checkpoint ``on_stop`` saved).

What a hook may change: nothing of the model, the optimizer or the position (the learning
rate is set from the schedule before every step). To end the run, complete, a hook calls
``state.request_end(reason, detail)`` (reasons: :data:`cnn_core.state.END_REASONS`); the
trainer ends it after the current batch or validation and calls ``on_stop``.

A callback with memory (counters, a best value) returns it from ``state_dict`` (plain numbers,
texts, lists and dicts); every checkpoint keeps it under ``state_key`` (the class name unless
overridden) and a resumed run hands it back to ``load_state_dict`` before ``on_fit_start``.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from .config import TrainConfig
    from .scoring import EvalResult
    from .state import TrainState


class Callback:
    """Base class: override the hooks you need (see the module's docstring for when each
    fires and what it may change)."""

    def on_fit_start(self, state: TrainState) -> None:
        pass

    def on_epoch_start(self, state: TrainState) -> None:
        pass

    def on_batch_end(self, state: TrainState, loss: float) -> None:
        pass

    def on_evaluation(self, state: TrainState, metrics: dict[str, Any], result: EvalResult) -> None:
        pass

    def on_epoch_end(self, state: TrainState, metrics: dict[str, Any]) -> None:
        pass

    def on_stop(self, state: TrainState) -> None:
        pass

    def on_fit_end(self, state: TrainState) -> None:
        pass

    def should_stop(self, state: TrainState) -> bool:
        return False

    @property
    def state_key(self) -> str:
        """The key of this callback's state in a checkpoint (unique among a run's callbacks
        that keep state)."""
        return type(self).__name__

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of this callback ({} = nothing)."""
        return {}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        """Take back what ``state_dict`` returned when the resumed checkpoint was saved."""


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
    """Ends the run, complete, once ``patience`` validations in a row have not beaten its best
    validation accuracy (``config.early_stop_patience``; the trainer adds it). The run's last
    validation asks nothing: every epoch ran. Its counters are kept in checkpoints."""

    def __init__(self, patience: int):
        self.patience = patience
        self.best: float | None = None
        self.best_at = 0.0  # the epoch fraction of the best
        self.waited = 0  # validations since the best

    def on_evaluation(self, state: TrainState, metrics: dict[str, Any], result: EvalResult) -> None:
        accuracy = metrics["val_accuracy"]
        if self.best is None or accuracy > self.best:
            self.best, self.best_at, self.waited = accuracy, metrics["epoch_fraction"], 0
            return
        self.waited += 1
        if self.waited >= self.patience and state.epoch < state.config.epochs:
            state.request_end(
                "early_stop",
                f"{self.waited} validations without beating {self.best:.2%} "
                f"(epoch {self.best_at:.2f})",
            )

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_at": self.best_at, "waited": self.waited}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.best, self.best_at, self.waited = saved["best"], saved["best_at"], saved["waited"]


class DivergenceGuard(Callback):
    """Ends the run as diverged (the learning rate is probably too high) when either

    * ``IN_A_ROW`` batches in a row have a loss that is not finite or above ``EXPLODED`` times
      the reference loss, or
    * a validation after the first epoch and at least ``MIN_BATCHES`` batches is at chance
      (mean per-class accuracy within ``CHANCE_MARGIN`` of 1 / classes) although the training
      loss once rose above ``ROSE`` times the reference: the network collapsed and stayed
      collapsed (one that only spiked is off chance again within a few dozen batches).

    The reference is the larger of the run's first batch loss (the untrained network's) and
    ln(classes) (a uniform guess's). Healthy runs of the registered recipes stay far from both
    (their loss never rises above 1.5 times the reference). The trainer adds it to every run;
    its counters are kept in checkpoints."""

    EXPLODED, IN_A_ROW = 100.0, 3
    ROSE, MIN_BATCHES, CHANCE_MARGIN = 3.0, 100, 0.05

    def __init__(self) -> None:
        self.reference: float | None = None
        self.peak = 0.0  # the highest loss / reference so far (inf: a loss was not finite)
        self.in_a_row = 0  # batches in a row with an exploded loss

    def on_batch_end(self, state: TrainState, loss: float) -> None:
        finite = math.isfinite(loss)
        if self.reference is None and finite:
            self.reference = max(loss, math.log(state.data.num_classes))
        ratio = loss / self.reference if finite and self.reference else math.inf
        self.peak = max(self.peak, ratio)
        self.in_a_row = self.in_a_row + 1 if ratio > self.EXPLODED else 0
        if self.in_a_row >= self.IN_A_ROW:
            how = (
                f"over {self.EXPLODED:.0f}× its start ({self.reference:.3g})"
                if finite and self.reference
                else "not a finite number"
            )
            state.request_end(
                "diverged", f"training loss {loss:.3g} on {self.in_a_row} batches in a row, {how}"
            )

    def on_evaluation(self, state: TrainState, metrics: dict[str, Any], result: EvalResult) -> None:
        if state.epoch < 1 or state.global_step < self.MIN_BATCHES or self.peak <= self.ROSE:
            return
        recalls = [row[i] / sum(row) for i, row in enumerate(result.confusion) if sum(row)]
        if recalls and sum(recalls) / len(recalls) <= 1 / len(recalls) + self.CHANCE_MARGIN:
            rose = (
                "was not finite" if math.isinf(self.peak) else f"rose to {self.peak:.3g}× its start"
            )
            state.request_end(
                "diverged",
                f"validation accuracy {metrics['val_accuracy']:.2%} is chance for "
                f"{len(recalls)} classes after the training loss {rose}",
            )

    def state_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "peak": self.peak, "in_a_row": self.in_a_row}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.reference, self.peak = saved["reference"], saved["peak"]
        self.in_a_row = saved["in_a_row"]


def from_config(config: TrainConfig) -> list[Callback]:
    """The callbacks every run gets (divergence detection) and those its config asks for
    (early stopping); the trainer runs them before the caller's."""
    patience = config.early_stop_patience
    return [DivergenceGuard(), *([EarlyStopping(patience)] if patience else [])]


class Checkpointer(Callback):
    """Saves a resumable checkpoint to ``path`` after every epoch and when training stops
    (the previous one is kept beside it, in case the newest is ever damaged)."""

    def __init__(self, path):
        self.path = path

    def on_epoch_end(self, state: TrainState, metrics: dict[str, Any]) -> None:
        state.save(self.path, keep_previous=True)

    def on_stop(self, state: TrainState) -> None:
        state.save(self.path, keep_previous=True)
