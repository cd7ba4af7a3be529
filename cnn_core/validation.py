"""Evaluation on the validation split during training: which batches are followed by one
(``evals_per_epoch``) and :func:`evaluate_state`, which evaluates the model and returns an
:class:`Evaluation`. It changes nothing: the trainer keeps the clock, the history and the
callbacks."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from torch import nn

from .config import TrainConfig
from .scoring import EvalResult, evaluate
from .state import TrainState


def evaluation_steps(config: TrainConfig, num_batches: int) -> set[int]:
    """The batches after which a mid-epoch evaluation runs (the last one is the epoch's end)."""
    n = config.evals_per_epoch
    return {round(k * num_batches / n) for k in range(1, n)} - {0, num_batches}


@dataclass(frozen=True)
class Evaluation:
    """One evaluation during training: its result (confusion matrix, per-class accuracy,
    errors) and the seconds it took."""

    result: EvalResult
    seconds: float

    def metrics(self) -> dict[str, Any]:
        """Its entries of a metrics row."""
        return {
            "val_loss": self.result.loss,
            "val_accuracy": self.result.accuracy,
            "val_images": self.result.n,  # what the accuracy's confidence interval needs
        }


def evaluate_state(state: TrainState, eval_loss: nn.Module) -> Evaluation:
    """Evaluate the state's model (its weight average with ``ema``) on its validation split
    (in the run's precision)."""
    started = time.perf_counter()
    result = evaluate(
        state.eval_model,
        state.data.val,
        state.data.transform,
        state.data.num_classes,
        device=state.device,
        loss_fn=eval_loss,
        config=state.config,
    )
    return Evaluation(result, time.perf_counter() - started)
