"""The Ray executor: runs queued with executor "ray" train as Ray tasks on a cluster.

``python -m cnn_core worker --executor ray`` (started by ``submit --executor ray``) connects
to the cluster at :func:`cnn_core.settings.ray_address`, claims those runs FIFO and sends each
to the cluster as one task (``--cpus-per-run`` CPUs, or one GPU with ``--gpus-per-run 1``).
The task trains with the usual callbacks, but its "store" is a :class:`RemoteStore` that
forwards every write, and each saved checkpoint, through a small per-run :class:`Channel` actor;
the supervisor drains the channel into the run store and the run's folder, so the app sees a
Ray run exactly as a local one. A stop request goes the other way through the same channel.
A task whose worker or node dies leaves its run interrupted (resumable from the last shipped
checkpoint), like a killed local worker.

Cluster nodes need Python with ``requirements.txt`` and the data under their own data roots;
the supervisor ships the ``cnn_core`` package itself (``py_modules``) and forwards
``CNN_LAB_DATA_ROOTS`` / ``CNN_LAB_CACHE_DIR`` when they are set.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import ray
from ray import exceptions as rex

from .. import distributed
from ..callbacks import Callback
from ..checkpoints import CHECKPOINT_NAME, load_resumable, run_dir
from ..config import TrainConfig
from ..settings import ray_address
from ..trainer import fit
from .store import RunStore
from .supervisor import RunHandle, Supervisor
from .worker import OURS, log, recorded, train_run

PACKAGE = Path(__file__).resolve().parents[1]
FORWARDED_ENV = ("CNN_LAB_DATA_ROOTS", "CNN_LAB_CACHE_DIR")
# a run whose task died with one of these is resumable, like a killed local worker
LOST = (
    rex.WorkerCrashedError,
    rex.NodeDiedError,
    rex.TaskCancelledError,
    rex.ObjectLostError,
    rex.OwnerDiedError,
    rex.LocalRayletDiedError,
    rex.OutOfMemoryError,
)


class Channel:
    """Events from a run's task to the supervisor, and the stop request back."""

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.stop = False

    def push(self, event: tuple) -> None:
        self.events.append(event)

    def drain(self) -> list[tuple]:
        events, self.events = self.events, []
        return events

    def request_stop(self) -> None:
        self.stop = True

    def stop_requested(self) -> bool:
        return self.stop


class RemoteStore:
    """The part of :class:`RunStore` a training run writes to, sent through a :class:`Channel`.
    Each process's calls on one actor run in the order they were made."""

    def __init__(self, channel: Any, notes: str):
        self.channel, self.notes = channel, notes

    def _push(self, *event: Any) -> None:
        self.channel.push.remote(event)

    def get(self, run_id: str) -> dict[str, Any]:
        return {"notes": self.notes}

    def update(self, run_id: str, *, only_if: Iterable[str] | None = None, **fields: Any) -> bool:
        self._push("update", fields)
        return True

    def write_metrics(self, run_id: str, epoch: int, step: int, values: dict[str, Any]) -> None:
        self._push("metrics", epoch, step, values)

    def clear_metrics(self, run_id: str) -> None:
        self._push("clear")

    def finish(
        self,
        run_id: str,
        status: str,
        error: str | None = None,
        *,
        only_if: Iterable[str] | None = None,
    ) -> bool:
        self._push("finish", status, error)
        return True

    def stop_requested(self, run_id: str) -> bool:
        return bool(ray.get(self.channel.stop_requested.remote()))

    # the step series, snapshots and results (step_writer, reporting), applied by the supervisor
    def record_evaluation(
        self, run_id: str, accuracy: float, epoch_fraction: float, fields: dict[str, Any]
    ) -> None:
        self._push("series", "record_evaluation", (accuracy, epoch_fraction, fields))

    def write_point(self, run_id: str, kind: str, point: dict[str, Any]) -> None:
        self._push("series", "write_point", (kind, point))

    def truncate_series(self, run_id: str, after_step: int) -> int:
        self._push("series", "truncate_series", (after_step,))
        return 0  # the supervisor's store removes them; nobody here counts

    def save_snapshot(self, run_id: str, point: dict[str, Any], result: dict[str, Any]) -> None:
        self._push("series", "save_snapshot", (point, result))

    def save_panel(
        self,
        run_id: str,
        indices: list[int],
        labels: list[int],
        class_names: list[str],
        images: np.ndarray,
    ) -> None:
        self._push("series", "save_panel", (indices, labels, class_names, images))

    def has_panel(self, run_id: str) -> bool:
        return False  # saving it again replaces it

    def ship_checkpoint(self, path: Path) -> None:
        """Send the checkpoint file (bytes) and wait until the channel has it."""
        ray.get(self.channel.push.remote(("checkpoint", path.read_bytes())))


class ShipCheckpoint(Callback):
    """After each save, sends the checkpoint to the supervisor (before the epoch's metrics)."""

    def __init__(self, store: RemoteStore, path: Path):
        self.store, self.path = store, path

    def on_epoch_end(self, state, metrics: dict[str, Any]) -> None:
        self.store.ship_checkpoint(self.path)

    def on_stop(self, state) -> None:
        self.store.ship_checkpoint(self.path)


def train_here(
    run_id: str,
    stored: dict[str, Any],
    checkpoint: bytes | None,
    notes: str,
    channel: Any,
    threads: int,
) -> None:
    """Train a run, or this rank's share of a data-parallel run, in a scratch runs folder; rank
    0 reports to ``channel`` (a failure is reported, then re-raised so Ray sees it)."""
    with tempfile.TemporaryDirectory(prefix="cnn-lab-ray-") as scratch:
        os.environ["CNN_LAB_RUNS_DIR"] = scratch  # this worker process's own runs folder
        path = run_dir(run_id) / CHECKPOINT_NAME
        if checkpoint is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(checkpoint)
        config = TrainConfig.from_dict(stored, strict=False)
        if config.threads == 0:
            config.threads = threads
        if distributed.world()[0] > 0:  # another rank: train in step, report nothing
            fit(config, resume=load_resumable(path.parent)[0])
            return
        store = RemoteStore(channel, notes)
        with recorded(store, run_id):
            train_run(store, run_id, config, extra_callbacks=[ShipCheckpoint(store, path)])


def train_task(
    run_id: str,
    config: dict[str, Any],
    checkpoint: bytes | None,
    notes: str,
    channel: Any,
    per_worker: dict[str, float],
) -> None:
    """The body of a run's Ray task: train here, or drive a Ray Train group of
    ``config["workers"]`` data-parallel ranks (DDP; gloo on CPU) with ``per_worker`` each."""
    args = (run_id, config, checkpoint, notes, channel, max(1, int(per_worker["CPU"])))
    workers = int(config.get("workers") or 1)
    if workers == 1:
        with contextlib.suppress(Exception):  # recorded() reported it as failed
            train_here(*args)
    else:
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer

        with tempfile.TemporaryDirectory(prefix="cnn-lab-ray-train-") as storage:
            trainer = TorchTrainer(
                lambda: train_here(*args),
                scaling_config=ScalingConfig(
                    num_workers=workers,
                    use_gpu=per_worker["GPU"] > 0,
                    resources_per_worker=per_worker,
                ),
                run_config=RunConfig(name=f"cnn-lab-{run_id}", storage_path=storage),
            )
            try:
                trainer.fit()
            except Exception as exc:  # rank 0 reported its own failure; else a rank was lost
                lost = f"Ray Train worker lost ({type(exc).__name__})"
                RemoteStore(channel, notes).finish(run_id, "interrupted", error=lost, only_if=OURS)
    ray.get(channel.push.remote(("done",)))  # everything above has reached the channel


class RayRun:
    """A run training as a Ray task: pumps its channel into the store, forwards a stop."""

    def __init__(self, store: RunStore, row: dict[str, Any], per_worker: dict[str, float]):
        self.run_id = row["id"]
        self.path = run_dir(self.run_id) / CHECKPOINT_NAME
        checkpoint = self.path.read_bytes() if self.path.is_file() else None
        # an actor handle: its methods' .remote() are untyped in ray
        self.channel: Any = ray.remote(Channel).options(num_cpus=0).remote()
        data_parallel = int(row["config"].get("workers") or 1) > 1
        task = ray.remote(train_task).options(  # a data-parallel run's ranks hold its resources
            name=f"cnn-lab-run-{self.run_id}",
            max_retries=0,
            num_cpus=0 if data_parallel else per_worker["CPU"],
            num_gpus=0 if data_parallel else per_worker["GPU"],
        )
        self.ref = task.remote(
            self.run_id, row["config"], checkpoint, row["notes"], self.channel, per_worker
        )
        self.stop_sent, self.beat = False, 0.0

    def poll(self, store: RunStore) -> tuple[str, str] | None:
        """Apply what the task sent; None while it trains, else the (status, reason) for a run
        it left unfinished."""
        done = bool(ray.wait([self.ref], timeout=0)[0])
        with contextlib.suppress(rex.RayActorError):  # the channel's node died: the task's
            self._apply(store, ray.get(self.channel.drain.remote()))  # outcome tells
        if not done:
            if time.monotonic() - self.beat >= 1.0:  # the task is alive: so is the run
                store.update(self.run_id, only_if=("running",), heartbeat_at=time.time())
                self.beat = time.monotonic()
            if not self.stop_sent and store.stop_requested(self.run_id):
                self.channel.request_stop.remote()
                self.stop_sent = True
            return None
        try:
            ray.get(self.ref)
        except LOST as exc:
            return "interrupted", f"Ray worker lost ({type(exc).__name__})"
        except rex.RayError as exc:
            return "failed", f"Ray task failed: {exc}".splitlines()[0]
        return "interrupted", "the Ray task ended before finishing"

    def _apply(self, store: RunStore, events: list[tuple]) -> None:
        for kind, *args in events:
            if kind == "update":
                now = time.time()  # this machine's clock, not the node's
                fields = {k: now if k.endswith("_at") else v for k, v in args[0].items()}
                store.update(self.run_id, only_if=("running",), **fields)
            elif kind == "metrics":
                store.write_metrics(self.run_id, *args)
            elif kind == "clear":
                store.clear_metrics(self.run_id)
            elif kind == "series":
                getattr(store, args[0])(self.run_id, *args[1])
            elif kind == "finish":
                store.finish(self.run_id, args[0], error=args[1], only_if=OURS)
            elif kind == "checkpoint":
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.path.with_suffix(".incoming")
                tmp.write_bytes(args[0])
                os.replace(tmp, self.path)

    def shutdown(self) -> None:
        ray.kill(self.channel)


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Raise OSError if nothing listens at ``host:port`` (``ray.init`` would retry for minutes);
    "auto" is left to Ray, which fails at once when no local cluster runs."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise OSError(f"not host:port or ray://host:port: {address!r}")
    with socket.create_connection((host, int(port)), timeout=timeout):
        pass


class RaySupervisor(Supervisor):
    """The supervisor of runs with executor "ray": each claimed run becomes a Ray task."""

    executor = "ray"

    def __init__(
        self,
        max_concurrent: int = 0,
        *,
        cpus_per_run: int = 1,
        gpus_per_run: int = 0,
        **kwargs: Any,
    ):
        super().__init__(max_concurrent, threads=cpus_per_run, **kwargs)
        self.auto_concurrency = max_concurrent < 1  # 0: as many runs as the cluster's CPUs allow
        self.cpus_per_run, self.gpus_per_run = max(1, cpus_per_run), max(0, gpus_per_run)

    def connect(self, store: RunStore) -> bool:
        """Join the cluster; if it cannot be reached, fail the queued Ray runs saying why."""
        address = ray_address()
        env = {k: os.environ[k] for k in FORWARDED_ENV if os.environ.get(k)}
        try:
            check_reachable(address)
            ray.init(
                address=address,
                runtime_env={"py_modules": [str(PACKAGE)], "env_vars": env},
                logging_level=logging.WARNING,
                log_to_driver=False,
            )
        except Exception as exc:
            error = f"cannot reach the Ray cluster at {address!r}: {exc}".splitlines()[0]
            log(error)
            while (row := store.claim_next(os.getpid(), self.executor)) is not None:
                store.finish(row["id"], "failed", error=error)
            return False
        if self.auto_concurrency:
            resources = ray.cluster_resources()
            slots = int(resources.get("CPU", 1)) // self.cpus_per_run
            if self.gpus_per_run:
                slots = min(slots, int(resources.get("GPU", 0)) // self.gpus_per_run)
            self.max_concurrent = max(1, slots)
        return True

    def launch(self, store: RunStore, row: dict[str, Any]) -> RunHandle:
        """Send a claimed run to the cluster as one task."""
        per_worker = {"CPU": float(self.cpus_per_run), "GPU": float(self.gpus_per_run)}
        log(f"claimed run {row['id']} (Ray task)")
        return RayRun(store, row, per_worker)
