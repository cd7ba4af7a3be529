"""Taking turns: pipelines advance a few batches each in rotation, so machine noise hits them
alike. cnn_core's side pauses ``trainer.fit`` with a callback and resumes it exactly from the
checkpoint payload; the book's side (:func:`benchmarks.book.book_run`) yields between batches."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

from cnn_core import trainer
from cnn_core.callbacks import Callback
from cnn_core.data import DatasetBundle

from .book import Family


class Pause(Callback):
    """Stops ``fit`` every ``turn`` batches (it then resumes exactly from the checkpoint)."""

    def __init__(self, turn: int):
        self.target = turn  # stop once this many batches are done in all

    def should_stop(self, state) -> bool:
        return state.global_step >= self.target


def core_run(
    fam: Family,
    epochs: int,
    turn: int,
    out: list,
    *,
    data: DatasetBundle | None = None,
    results: list | None = None,
    callbacks: Sequence[Callback] = (),
    **overrides,
) -> Iterator[None]:
    """``trainer.fit`` with the family's default config (plus ``overrides``) on ``data`` (default:
    the family's), pausing every ``turn`` batches; appends each epoch's metrics to ``out`` and
    the final FitResult to ``results``. ``callbacks`` (the same objects) see every stretch."""
    config = dataclasses.replace(fam.config, epochs=epochs, **overrides)
    data, pause, resume = data or fam.bundle, Pause(turn), None
    while not (
        result := trainer.fit(config, [pause, *callbacks], data=data, resume=resume)
    ).completed:
        resume, pause.target = result.state.checkpoint_payload(), pause.target + turn
        yield
    out.extend(result.history)
    if results is not None:
        results.append(result)


def alternate(runs: list[Iterator[None]]) -> None:
    """Advance every run one turn at a time until all are finished."""
    done = object()
    while runs:
        runs = [run for run in runs if next(run, done) is not done]
