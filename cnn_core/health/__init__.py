"""Data health: likely label errors (confident learning), duplicates and train/val/test leaks,
unreadable or odd files, class balance — and the embedding map of a finished run.

:func:`cnn_core.health.report.check_health` returns one JSON-able report;
:mod:`cnn_core.health.embedding` projects a run's penultimate-layer features to 2-D.
"""
