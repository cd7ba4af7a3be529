"""Where sweeps live: Optuna studies in ``runs_dir()/optuna.db`` (RDB storage on SQLite), their
metadata in study user attrs, samplers and pruners rebuilt from that metadata, and the
driver's job files (lock and log: :class:`cnn_core.processes.JobFiles`).

Metadata keys (study user attrs): ``name``, ``base_config``, ``space``, ``trials``, ``timeout``,
``sampler`` / ``pruner`` (``{"name": ..., **options}``), ``parallel``, ``created_at``,
``status``, ``error``, ``driver_pid``, ``stop_requested``, ``elapsed_s``. A sweep's status is
created, running, stopped, completed or failed as its driver records it; readers show a
running sweep without a live driver as interrupted, and one asked to stop as stopping.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import optuna
from optuna.storages import RDBStorage

from ..checkpoints import RUN_ID_RE
from ..errors import ConfigError, UserError
from ..processes import JobFiles
from ..settings import runs_dir
from . import space as spaces

STORAGE_NAME = "optuna.db"
SWEEPS_DIR = "sweeps"  # per-sweep driver lock and log files (see driver_files)
SAMPLERS = {"tpe": ("seed", "n_startup_trials"), "random": ("seed",), "grid": ("seed", "points")}
PRUNERS = {
    "median": ("n_startup_trials", "n_warmup_steps"),
    "hyperband": ("min_resource", "reduction_factor"),
    "none": (),
}
LIVE = ("running", "stopping")  # a driver should be alive

optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own progress lines instead


@functools.cache
def _storage(url: str) -> RDBStorage:
    return RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 30}})


def storage() -> RDBStorage:
    """The Optuna storage of the current runs folder (one engine per process and folder)."""
    runs_dir().mkdir(parents=True, exist_ok=True)
    return _storage(f"sqlite:///{runs_dir() / STORAGE_NAME}")


def has_storage() -> bool:
    """False until the first sweep is created (listing must not create the database)."""
    return (runs_dir() / STORAGE_NAME).is_file()


def validate_sweep_id(sweep_id: str) -> str:
    """``sweep_id`` if it is well formed (like a run id), else UserError."""
    if not isinstance(sweep_id, str) or not RUN_ID_RE.fullmatch(sweep_id):
        raise UserError(f"invalid sweep id {sweep_id!r}")
    return sweep_id


SWEEP_TAG = "sweep:"


def sweep_tag(sweep_id: str) -> str:
    """The tag every trial run of a sweep carries (filter Runs and Compare with it)."""
    return f"{SWEEP_TAG}{sweep_id}"


def sweep_of(tags: Sequence[str]) -> str | None:
    """The sweep whose trial a run with ``tags`` is (see :func:`sweep_tag`), or None."""
    return next((t.removeprefix(SWEEP_TAG) for t in tags if t.startswith(SWEEP_TAG)), None)


def _study_id(sweep_id: str) -> int:
    try:
        return storage().get_study_id_from_name(validate_sweep_id(sweep_id))
    except KeyError:
        raise UserError(f"no sweep {sweep_id}") from None


def attrs(sweep_id: str) -> dict[str, Any]:
    """The sweep's metadata; UserError if there is no such sweep."""
    return storage().get_study_user_attrs(_study_id(sweep_id))


def set_attrs(study: optuna.Study, **values: Any) -> None:
    """Store metadata values on the sweep's study (one user attr each)."""
    for key, value in values.items():
        study.set_user_attr(key, value)


def normalise_choice(kind: str, spec: str | dict[str, Any], table: dict[str, tuple]) -> dict:
    """``"tpe"`` or ``{"name": "tpe", "seed": 3}`` as a checked dict (options are whole numbers)."""
    spec = {"name": spec} if isinstance(spec, str) else dict(spec)
    name = spec.get("name")
    if name not in table:
        raise ConfigError(kind, f"choose one of {', '.join(table)}, got {name!r}")
    for key, value in spec.items():
        if key == "name":
            continue
        if key not in table[name]:
            raise ConfigError(kind, f"{name} takes {', '.join(table[name]) or 'no options'}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(kind, f"{key} must be a whole number >= 0, got {value!r}")
    return spec


class AskTellGridSampler(optuna.samplers.GridSampler):
    """The grid sampler without its ``study.stop()`` once the grid is used up, which only
    works inside ``Study.optimize``; the driver caps a grid sweep's budget at the grid size."""

    def after_trial(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        state: optuna.trial.TrialState,
        values: Sequence[float] | None,
    ) -> None:
        """Nothing to do: see the class docstring."""


def make_sampler(meta: dict[str, Any], n_trials: int) -> optuna.samplers.BaseSampler:
    """The sweep's sampler. TPE and random are re-seeded with the trials so far, so a resumed
    sweep does not repeat its first samples; the grid keeps its seed (it fixes the grid order)."""
    spec = meta["sampler"]
    seed = spec.get("seed", 0)
    if spec["name"] == "grid":
        return AskTellGridSampler(spaces.grid(meta["space"], spec["points"]), seed=seed)
    if spec["name"] == "random":
        return optuna.samplers.RandomSampler(seed=seed + n_trials)
    return optuna.samplers.TPESampler(
        seed=seed + n_trials, n_startup_trials=spec.get("n_startup_trials", 10)
    )


def make_pruner(meta: dict[str, Any]) -> optuna.pruners.BasePruner:
    """The sweep's pruner; steps are 1-based epochs, values validation accuracy."""
    spec = meta["pruner"]
    if spec["name"] == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=spec.get("n_startup_trials", 3),
            n_warmup_steps=spec.get("n_warmup_steps", 0),
        )
    if spec["name"] == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=spec.get("min_resource", 1),
            max_resource=meta["base_config"]["epochs"],
            reduction_factor=spec.get("reduction_factor", 3),
        )
    return optuna.pruners.NopPruner()


def load(sweep_id: str) -> optuna.Study:
    """The sweep's study with its own sampler and pruner."""
    study_id = _study_id(sweep_id)
    meta = storage().get_study_user_attrs(study_id)
    n_trials = storage().get_n_trials(study_id)
    return optuna.load_study(
        study_name=sweep_id,
        storage=storage(),
        sampler=make_sampler(meta, n_trials),
        pruner=make_pruner(meta),
    )


def search_distributions(meta: dict[str, Any]) -> dict[str, Any]:
    """What each trial is asked with: the space, or its grid for the grid sampler."""
    if meta["sampler"]["name"] == "grid":
        return spaces.grid_distributions(meta["space"], meta["sampler"]["points"])
    return spaces.distributions(meta["space"])


# ---- driver process ---------------------------------------------------------------------------
def driver_files(sweep_id: str) -> JobFiles:
    """The lock and log of the sweep's driver (a background job): ``sweeps/<id>.lock`` and
    ``.log`` in the runs folder."""
    return JobFiles(runs_dir() / SWEEPS_DIR, validate_sweep_id(sweep_id))


@contextmanager
def driver_lock(sweep_id: str, attempts: int = 1) -> Iterator[None]:
    """Hold the sweep's driver lock for the body; UserError if another driver of this sweep is
    alive (after ``attempts`` tries 0.1 s apart)."""
    fh = driver_files(sweep_id).acquire(attempts)
    if fh is None:
        raise UserError(f"sweep {sweep_id} already has a running driver")
    with fh:
        yield


def driver_alive(sweep_id: str) -> bool:
    """True while some process holds the sweep's driver lock (asking creates no file)."""
    return driver_files(sweep_id).alive()


def live_drivers() -> list[str]:
    """The ids of the sweeps whose driver is alive now (read from the lock files)."""
    folder = runs_dir() / SWEEPS_DIR
    found = sorted(folder.glob("*.lock")) if folder.is_dir() else []
    return [p.stem for p in found if RUN_ID_RE.fullmatch(p.stem) and driver_alive(p.stem)]
