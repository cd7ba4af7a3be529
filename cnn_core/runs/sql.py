"""What the run store's parts (:class:`.series.SeriesStore`, :class:`.results.ResultStore`)
ask of the SQLite file: :class:`cnn_core.runs.store.RunStore` provides it."""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Any


class SqlStore(ABC):
    """A SQLite file read by one statement at a time and written in short transactions."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """A write transaction, committed unless its body raises."""

    @abstractmethod
    def query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        """All rows of one read statement."""
