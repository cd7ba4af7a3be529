"""CNN Lab core: datasets, models, training, runs and interpretation (no UI code)."""

__version__ = "0.1.0"
