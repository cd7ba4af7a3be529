""":class:`RunWriter`: what a training run reports to, in the worker (the local
:class:`cnn_core.runs.store.RunStore`) or on a Ray node (``ray_executor.RemoteStore``, which
sends each call to the supervisor's store)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np


class RunWriter(Protocol):
    """The run store's methods that :func:`cnn_core.runs.worker.train_run` and its callbacks
    (:mod:`.reporting`, :mod:`.step_writer`) call; see RunStore for what each does."""

    def get(self, run_id: str) -> dict[str, Any] | None: ...

    def update(
        self, run_id: str, *, only_if: Iterable[str] | None = None, **fields: Any
    ) -> bool: ...

    def finish(
        self,
        run_id: str,
        status: str,
        error: str | None = None,
        *,
        only_if: Iterable[str] | None = None,
    ) -> bool: ...

    def stop_requested(self, run_id: str) -> bool: ...

    def write_metrics(self, run_id: str, epoch: int, step: int, values: dict[str, Any]) -> None: ...

    def clear_metrics(self, run_id: str) -> None: ...

    def record_evaluation(
        self, run_id: str, accuracy: float, epoch_fraction: float, fields: dict[str, Any]
    ) -> None: ...

    def write_point(self, run_id: str, kind: str, point: dict[str, Any]) -> None: ...

    def truncate_series(self, run_id: str, after_step: int) -> int: ...

    def save_snapshot(self, run_id: str, point: dict[str, Any], result: dict[str, Any]) -> None: ...

    def save_panel(
        self,
        run_id: str,
        indices: list[int],
        labels: list[int],
        class_names: list[str],
        images: np.ndarray,
    ) -> None: ...

    def has_panel(self, run_id: str) -> bool: ...
