"""What a training run is at one moment: :class:`TrainState` (position, statistics, clock,
results so far) and the :class:`Stopwatch` that times training apart from validation.

A leaf of the training layer: the trainer changes the state, callbacks read it (and may ask
it to end the run), ``save`` writes it as a resumable checkpoint. Where the run is, in batches
(``global_step``), epochs (``epoch_fraction``) and images (``images_seen``), is defined here
once for everyone.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from .averaging import WeightAverage
from .checkpoints import Payload, save_checkpoint
from .config import TrainConfig
from .data import DatasetBundle, dataset_info
from .errors import filled
from .schedule import describe as describe_schedule

# why a run ended before its last epoch of its own accord (``TrainState.request_end``); a
# stop request (``Callback.should_stop``) pauses it instead, resumable
END_REASONS = ("target", "early_stop", "diverged")


class Stopwatch:
    """Times the training in progress: ``start`` it, ``stop`` it for the seconds since
    (0 when it was not running); ``elapsed`` reads it without stopping."""

    def __init__(self) -> None:
        self._started: float | None = None

    def start(self) -> None:
        self._started = time.perf_counter()

    def elapsed(self) -> float:
        return 0.0 if self._started is None else time.perf_counter() - self._started

    def stop(self) -> float:
        seconds, self._started = self.elapsed(), None
        return seconds


class Stateful(Protocol):
    """A callback as the checkpoint sees it (:class:`cnn_core.callbacks.Callback`)."""

    @property
    def state_key(self) -> str: ...

    def state_dict(self) -> dict[str, Any]: ...


def new_partial() -> dict[str, float]:
    """The running statistics of an epoch not yet begun."""
    return {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}


@dataclass
class TrainState:
    """Everything the loop and callbacks share; ``save`` writes a resumable checkpoint.

    ``partial`` holds the running loss / correct / seen of the epoch in progress and its
    training seconds banked so far (``clock`` times the stretch since the last banking)."""

    config: TrainConfig
    data: DatasetBundle
    model: nn.Module
    optimizer: torch.optim.Optimizer
    device: torch.device
    epoch: int = 0  # completed epochs
    step: int = 0  # batches done in the current epoch
    num_batches: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    partial: dict[str, float] = field(default_factory=new_partial)
    clock: Stopwatch = field(default_factory=Stopwatch)
    stopped_by: str = ""  # "" after every epoch, an END_REASONS entry, or who asked to stop
    end_detail: str = ""  # why it ended early, in words (with ``stopped_by``)
    end_request: tuple[str, str] | None = None  # (reason, detail) asked for, not yet acted on
    train_module: nn.Module | None = None  # what the loop calls: the model, or it in DDP
    scaler: torch.amp.GradScaler | None = None  # fp16 on CUDA only
    eval_seconds: float = 0.0  # validation time of the whole run (not training time)
    target: dict[str, Any] | None = None  # when target_accuracy was first reached
    last_evaluation: dict[str, Any] | None = None  # metrics of the latest validation
    callbacks: Sequence[Stateful] = ()  # whose state_dict the checkpoint keeps
    average: WeightAverage | None = None  # config.ema: the averaged weights, validated and saved

    @property
    def eval_model(self) -> nn.Module:
        """The weights a run validates, saves as its model and is used with: the average with
        ``config.ema``, else the trained ones."""
        return self.average.model if self.average else self.model

    @property
    def total_steps(self) -> int:
        return self.config.epochs * self.num_batches

    @property
    def batch_size(self) -> int:
        """Images per step (the resolved config's)."""
        return filled(self.config.batch_size, "batch_size")

    @property
    def global_step(self) -> int:
        """Batches trained since the run began."""
        return self.epoch * self.num_batches + self.step

    @property
    def epoch_fraction(self) -> float:
        """Where the run is in epochs (1.5 = half-way through the second epoch)."""
        return self.global_step / max(1, self.num_batches)

    def images_seen(self) -> int:
        """Training images seen over the run (all ranks), at the current position."""
        n = len(self.data.train)
        return self.epoch * n + min(n, self.step * self.batch_size)

    def train_seconds(self, running: bool = False) -> float:
        """Training seconds over the run (evaluation excluded) up to the last banked moment,
        or with ``running`` up to now (the clock's current stretch included)."""
        now = self.clock.elapsed() if running else 0.0
        banked = sum(float(h["seconds"]) for h in self.history)
        return banked + self.partial["seconds"] + now

    def images_per_s(self) -> float:
        """Training speed of the epoch in progress."""
        elapsed = self.partial["seconds"] + self.clock.elapsed()
        return self.partial["seen"] / elapsed if elapsed > 0 else 0.0

    def running_metrics(self) -> dict[str, float]:
        """The epoch's training loss and accuracy so far (this rank's, until the epoch's end
        sums the ranks' statistics)."""
        p = self.partial
        return {
            "train_loss": p["loss"] / max(1, p["seen"]),
            "train_accuracy": p["correct"] / max(1, p["seen"]),
        }

    def request_end(self, reason: str, detail: str) -> None:
        """Ask the trainer to end the run here, complete, for ``reason`` (an END_REASONS
        entry; ``detail`` says why in words). It ends after the current batch or validation;
        the first request wins."""
        if reason not in END_REASONS:
            raise ValueError(f"unknown end reason {reason!r}; one of {', '.join(END_REASONS)}")
        if self.end_request is None:
            self.end_request = (reason, detail)

    def checkpoint_payload(self) -> Payload:
        payload: Payload = {
            "config": self.config.to_dict(),
            "class_names": list(self.data.class_names),
            "family": self.data.family,
            "input_kind": dataset_info(self.config.dataset).input_kind,
            "in_channels": self.data.in_channels,
            "image_size": self.data.image_size,
            "dataset_note": self.data.note,
            "epoch": self.epoch,
            "step": self.step,
            "partial": dict(self.partial),
            "history": list(self.history),
            "model_state": self.eval_model.state_dict(),
            "optimizer_state": self.optimizer.state_dict(),
            "schedule_state": describe_schedule(
                self.config.lr_schedule,
                self.config.warmup,
                self.global_step,
                self.total_steps,
                self.config.lr,
            ),
            "scaler_state": self.scaler.state_dict() if self.scaler else None,
            "eval_seconds": self.eval_seconds,
            "target": self.target,
            "last_evaluation": self.last_evaluation,
            "callbacks": {
                cb.state_key: saved for cb in self.callbacks if (saved := cb.state_dict())
            },
        }
        if self.average:
            payload["training_weights"] = self.model.state_dict()
        return payload

    def save(self, path: str | os.PathLike[str], keep_previous: bool = False) -> None:
        save_checkpoint(path, self.checkpoint_payload(), keep_previous=keep_previous)
