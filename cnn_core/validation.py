"""Validation during training: mid-epoch (``evals_per_epoch``) and at each epoch's end, the
metrics every validation reports and the moment the run first reaches its target accuracy.

Validation time is kept out of the training clock: mid-epoch, the clock is banked before a
validation and restarted after it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from torch import nn

from . import distributed
from .callbacks import Callback
from .config import TrainConfig
from .scoring import EvalResult, evaluate

if TYPE_CHECKING:
    from .trainer import TrainState


def evaluation_steps(config: TrainConfig, num_batches: int) -> set[int]:
    """The batches after which a mid-epoch validation runs (the last one is the epoch's end)."""
    n = config.evals_per_epoch
    return {round(k * num_batches / n) for k in range(1, n)} - {0, num_batches}


def validate(
    state: TrainState, eval_loss: nn.Module, callbacks: Sequence[Callback], *, final: bool
) -> bool:
    """Validate, tell the callbacks (``on_evaluation``; ``on_epoch_end`` when ``final``) and
    return True when this validation first reached the target accuracy. Mid-epoch, the
    training clock is banked before and restarted after, so validation time is not counted."""
    started = time.perf_counter()
    if final:
        metrics, result = finish_epoch(state, eval_loss)
    else:
        state.partial["seconds"] += started - state._epoch_started
        result = _evaluate(state, eval_loss)
        metrics = _metrics(state, result, state.epoch + 1)
    state.eval_seconds += time.perf_counter() - started
    metrics |= {
        "epoch_fraction": (state.epoch if final else state.epoch + state.step / state.num_batches),
        "images_seen": state.images_seen(),
        "train_seconds": state.train_seconds(),
        "eval_seconds": state.eval_seconds,
    }
    state.last_evaluation = dict(metrics)
    target = state.config.target_accuracy
    reached = distributed.any_rank(
        target is not None and state.target is None and metrics["val_accuracy"] >= target
    )
    if reached:
        state.target = {
            "time_to_target_s": metrics["train_seconds"],
            "images_to_target": metrics["images_seen"],
            "epoch_fraction": metrics["epoch_fraction"],
            "val_accuracy": metrics["val_accuracy"],
            "eval_seconds": state.eval_seconds,
        }
    for cb in callbacks:
        cb.on_evaluation(state, metrics, result)
    if final:
        for cb in callbacks:
            cb.on_epoch_end(state, metrics)
    state._epoch_started = time.perf_counter()
    return reached


def _metrics(state: TrainState, val: EvalResult, epoch: int) -> dict[str, Any]:
    """Running training metrics of the epoch (this rank's mid-epoch) and the validation's."""
    p = state.partial
    return {
        "epoch": epoch,
        "train_loss": p["loss"] / max(1, p["seen"]),
        "train_accuracy": p["correct"] / max(1, p["seen"]),
        "val_loss": val.loss,
        "val_accuracy": val.accuracy,
        "val_images": val.n,  # what the accuracy's confidence interval needs
        "lr": state.optimizer.param_groups[0]["lr"],
    }


def _evaluate(state: TrainState, eval_loss: nn.Module) -> EvalResult:
    return evaluate(
        state.model,
        state.data.val,
        state.data.transform,
        state.data.num_classes,
        device=state.device,
        loss_fn=eval_loss,
        config=state.config,
    )


def sum_partial(state: TrainState) -> None:
    """The epoch's loss / correct / seen so far, summed over data-parallel ranks."""
    p = state.partial
    p["loss"], p["correct"], p["seen"] = distributed.all_sum([p["loss"], p["correct"], p["seen"]])


def finish_epoch(state: TrainState, eval_loss: nn.Module) -> tuple[dict[str, Any], EvalResult]:
    """The epoch's validation and history row; the state moves to the next epoch."""
    sum_partial(state)
    p = state.partial
    val = _evaluate(state, eval_loss)
    state.epoch += 1
    metrics = _metrics(state, val, state.epoch) | {
        "seconds": p["seconds"],
        "images_per_s": p["seen"] / p["seconds"] if p["seconds"] > 0 else 0.0,
    }
    state.history.append(metrics)
    state.step = 0
    state.partial = {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
    return metrics, val
