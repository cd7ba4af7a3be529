"""The training loop: ``fit(config, callbacks) -> FitResult`` (scoring lives in :mod:`cnn_core.scoring`).

Plain functions in the style of pytorch/examples mnist. All randomness (shuffling,
augmentation, dropout) is derived from (seed, epoch, batch), so a run stopped at any
batch and resumed from its checkpoint gives exactly the numbers of an uninterrupted run.
The trainer does no I/O policy of its own: saving is a callback (``Checkpointer``).

Speed: images are decoded once into uint8 tensors and indexed directly (no DataLoader),
transforms run on whole batches, threads are set explicitly; :mod:`cnn_core.speed` holds the
rest (memory format, precision policy, fused Adam, dropout masks, pinned memory). With
``workers > 1`` (started by Ray Train), :mod:`cnn_core.distributed` gives each rank its slice
of every batch and keeps the ranks' statistics and stop decisions in step.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from . import distributed, validation
from .callbacks import Callback
from .config import TrainConfig
from .data import DatasetBundle, DataSpec, dataset_info, load_dataset
from .errors import CheckpointError, ConfigError
from .models import create_model, load_pretrained, param_groups
from .resolve import resolve
from .schedule import describe as describe_schedule
from .schedule import lr_factor
from .scoring import loss_value, make_loss, predictions
from .speed import autocast, fused, grad_scaler, prepare_model, resident_split, to_device

HISTORY_KEYS = (
    "epoch",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "val_images",
    "lr",
    "seconds",
    "images_per_s",
    "epoch_fraction",
    "images_seen",
    "train_seconds",
    "eval_seconds",
)
RESUMABLE_CHANGES = {"epochs", "name", "tags", "threads", "workers", "device"}


def pick_device(name: str) -> torch.device:
    """Resolve ``auto`` to cuda, then mps, then cpu; check an explicit choice is available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", "CUDA was requested but no CUDA GPU is available")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device", "MPS was requested but is not available on this machine")
    return torch.device(name)


def set_threads(threads: int) -> int:
    """Set torch's intra-op threads explicitly (0 = all cores); returns the number used."""
    n = threads or os.cpu_count() or 1
    torch.set_num_threads(n)
    return n


def make_optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    """The configured optimizer over parameters or groups (a group's ``lr_scale`` scales the
    run's learning rate for it, see :func:`train_batch`); Adam/AdamW use the fused kernel on
    CPU and CUDA (same maths)."""
    params = list(params)
    tensors = [p for g in params for p in (g["params"] if isinstance(g, dict) else [g])]
    common = {"lr": config.lr, "weight_decay": config.weight_decay}
    if config.optimizer == "adam":
        return torch.optim.Adam(params, **common, fused=fused(tensors))
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, **common, fused=fused(tensors))
    return torch.optim.SGD(params, momentum=0.9, **common)


def _mix(*parts: int) -> int:
    """Deterministic 63-bit seed from integers (seed, epoch, batch)."""
    h = 1469598103934665603
    for p in parts:
        h = ((h ^ (p + 0x9E3779B9)) * 1099511628211) % (1 << 63)
    return h


@dataclass
class TrainState:
    """Everything the loop and callbacks share; ``save`` writes a resumable checkpoint."""

    config: TrainConfig
    data: DatasetBundle
    model: nn.Module
    optimizer: torch.optim.Optimizer
    device: torch.device
    epoch: int = 0  # completed epochs
    step: int = 0  # batches done in the current epoch
    num_batches: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    partial: dict[str, float] = field(
        default_factory=lambda: {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
    )
    stopped_by: str = ""
    train_module: nn.Module | None = None  # what the loop calls: the model, or it in DDP
    scaler: torch.amp.GradScaler | None = None  # fp16 on CUDA only
    eval_seconds: float = 0.0  # validation time of the whole run (not training time)
    target: dict[str, Any] | None = None  # when target_accuracy was first reached (see fit)
    last_evaluation: dict[str, Any] | None = None  # metrics of the latest validation
    _epoch_started: float = 0.0

    @property
    def total_steps(self) -> int:
        return self.config.epochs * self.num_batches

    @property
    def global_step(self) -> int:
        return self.epoch * self.num_batches + self.step

    def images_seen(self) -> int:
        """Training images seen over the run (all ranks), at the current position."""
        n = len(self.data.train)
        return self.epoch * n + min(n, self.step * self.config.batch_size)

    def train_seconds(self, running: bool = False) -> float:
        """Training seconds over the run (evaluation excluded) up to the last banked moment,
        or with ``running`` up to now (call it only while an epoch is in progress)."""
        now = time.perf_counter() - self._epoch_started if running else 0.0
        return sum(h["seconds"] for h in self.history) + self.partial["seconds"] + now

    def images_per_s(self) -> float:
        elapsed = self.partial["seconds"] + (time.perf_counter() - self._epoch_started)
        return self.partial["seen"] / elapsed if elapsed > 0 else 0.0

    def checkpoint_payload(self) -> dict[str, Any]:
        return {
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
            "model_state": self.model.state_dict(),
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
        }

    def save(self, path, keep_previous: bool = False) -> None:
        from .checkpoints import save_checkpoint

        save_checkpoint(path, self.checkpoint_payload(), keep_previous=keep_previous)


@dataclass
class FitResult:
    """What ``fit`` returns: the final state plus a flag saying whether all epochs ran."""

    state: TrainState
    completed: bool

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.state.history


def _check_resume(config: TrainConfig, checkpoint: dict[str, Any]) -> None:
    saved = TrainConfig.from_dict(checkpoint["config"], strict=False).to_dict()
    saved["data_choices"] = saved["data_choices"] or 0  # None: stored before pinning, none
    saved["split_version"] = saved["split_version"] or 0  # None: the legacy random split
    diff = sorted(
        k for k, v in config.to_dict().items() if saved.get(k) != v and k not in RESUMABLE_CHANGES
    )
    if diff:
        raise CheckpointError(
            f"cannot resume: the config differs from the checkpoint's in {', '.join(diff)}"
        )


def build_state(
    config: TrainConfig, data: DatasetBundle | None = None, checkpoint: dict[str, Any] | None = None
) -> TrainState:
    """Load data, build model and optimizer (restored from ``checkpoint`` when given). A new
    run's config is resolved here (library use; a stored run's already is); a resumed run keeps
    the data choices and split rule it was created with (None, from before they were pinned:
    none and the random split; a config leaving the split rule unset takes the checkpoint's)."""
    if checkpoint is not None:
        created = checkpoint["config"].get("split_version") or 0  # None: the random split
        split = created if config.split_version is None else config.split_version
        config = dataclasses.replace(
            config, data_choices=config.data_choices or 0, split_version=split
        )
    config = resolve(config)
    if checkpoint is not None:
        _check_resume(config, checkpoint)
    data = data or load_dataset(DataSpec.of(config))
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    model = create_model(
        config.model,
        data.in_channels,
        data.image_size,
        data.num_classes,
        dropout=config.dropout,
        spec=config.model_spec,
    )
    if checkpoint is None:
        load_pretrained(model)  # a pretrained backbone's ImageNet weights (none: nothing)
    model = prepare_model(model, device)
    optimizer = make_optimizer(config, param_groups(model))
    state = TrainState(config, data, model, optimizer, device)
    state.scaler = grad_scaler(config.precision, device)
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model_state"])
        optimizer.load_state_dict(checkpoint["optimizer_state"])
        if state.scaler and checkpoint.get("scaler_state"):
            state.scaler.load_state_dict(checkpoint["scaler_state"])
        state.epoch, state.step = checkpoint["epoch"], checkpoint.get("step", 0)
        state.history = list(checkpoint["history"])
        state.eval_seconds = checkpoint.get("eval_seconds", 0.0)
        state.target, state.last_evaluation = (
            checkpoint.get("target"),
            checkpoint.get("last_evaluation"),
        )
        if distributed.world()[0] == 0:  # rank 0 saved the epoch's statistics of all ranks
            state.partial = dict(checkpoint.get("partial") or state.partial)
    state.train_module = distributed.wrap(model)
    state.num_batches = -(-len(data.train) // config.batch_size)
    return state


def train_batch(state: TrainState, loss_fn: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """One optimisation step on ``(x, y)`` (the schedule's learning rate, autocast, the loss,
    backward, the optimizer) added to the epoch's running statistics; returns the loss."""
    cfg = state.config
    factor = lr_factor(cfg.lr_schedule, cfg.warmup, state.global_step, state.total_steps)
    for group in state.optimizer.param_groups:
        group["lr"] = cfg.lr * factor * group.get("lr_scale", 1.0)
    state.optimizer.zero_grad(set_to_none=True)
    with autocast(cfg.precision, state.device):
        logits = (state.train_module or state.model)(x)
    smooth = cfg.label_smoothing
    target = y.float() * (1 - smooth) + smooth / 2 if logits.shape[1] == 1 and smooth else y
    loss = loss_value(loss_fn, logits, target)
    if state.scaler:  # fp16: scale the loss so small gradients do not underflow
        state.scaler.scale(loss).backward()
        state.scaler.step(state.optimizer)
        state.scaler.update()
    else:
        loss.backward()
        state.optimizer.step()
    value = loss.item()
    state.partial["loss"] += value * len(y)
    state.partial["correct"] += int((predictions(logits.detach()) == y).sum())
    state.partial["seen"] += len(y)
    return value


def train_loss(config: TrainConfig, data: DatasetBundle) -> nn.Module:
    """The training loss: the evaluation loss with ``config.label_smoothing`` (binary tasks
    smooth their float targets in the step instead)."""
    loss_fn = make_loss(data.num_classes, data.loss_weights)
    if isinstance(loss_fn, nn.CrossEntropyLoss):
        loss_fn.label_smoothing = config.label_smoothing
    return loss_fn


def run_epochs(state: TrainState, callbacks: Sequence[Callback] = ()) -> bool:
    """Train from the state's position to ``config.epochs``; False if a callback stopped it.
    Reaching ``config.target_accuracy`` ends the run early but counts as completed."""
    cfg, data = state.config, state.data
    loss_fn = train_loss(cfg, data).to(state.device)
    eval_loss = make_loss(data.num_classes, data.loss_weights).to(state.device)
    images, labels = resident_split(data.train.images, data.train.labels, state.device, cfg.augment)
    mid_epoch = validation.evaluation_steps(cfg, state.num_batches)
    while state.epoch < cfg.epochs:
        for cb in callbacks:
            cb.on_epoch_start(state)
        perm = torch.randperm(
            len(labels), generator=torch.Generator().manual_seed(_mix(cfg.seed, state.epoch))
        ).to(images.device)
        state.model.train()
        state._epoch_started = time.perf_counter()
        while state.step < state.num_batches:
            if _stop_requested(state, callbacks):
                return False
            idx = perm[state.step * cfg.batch_size : (state.step + 1) * cfg.batch_size]
            idx = distributed.shard(idx)  # all of it, or this rank's part of it
            batch_seed = _mix(cfg.seed, state.epoch, state.step)
            x = images[idx]
            x = (
                data.transform.train(x, torch.Generator().manual_seed(batch_seed))
                if cfg.augment
                else data.transform.eval(x)
            )
            x, y = to_device(x, state.device), to_device(labels[idx], state.device)
            torch.manual_seed(batch_seed)  # dropout masks depend only on (seed, epoch, batch)
            loss = train_batch(state, loss_fn, x, y)
            state.step += 1
            for cb in callbacks:
                cb.on_batch_end(state, loss)
            if state.step in mid_epoch and validation.validate(
                state, eval_loss, callbacks, final=False
            ):
                _halt(state, callbacks, "target")
                return True
        state.partial["seconds"] += time.perf_counter() - state._epoch_started
        reached = validation.validate(state, eval_loss, callbacks, final=True)
        if reached:
            state.stopped_by = "target"
            return True
        if state.epoch < cfg.epochs and _stop_requested(state, callbacks):
            return False
    return True


def _stop_requested(state: TrainState, callbacks: Sequence[Callback]) -> bool:
    stopper = next((cb for cb in callbacks if cb.should_stop(state)), None)
    if not distributed.any_rank(stopper is not None):  # data-parallel ranks stop together
        return False
    _halt(state, callbacks, type(stopper).__name__ if stopper else "another rank")
    return True


def _halt(state: TrainState, callbacks: Sequence[Callback], by: str) -> None:
    """Stop where the state is (callbacks save it in ``on_stop``)."""
    if state.step:  # mid-epoch: bank the time spent so far
        state.partial["seconds"] += time.perf_counter() - state._epoch_started
        validation.sum_partial(state)
    state.stopped_by = by
    for c in callbacks:
        c.on_stop(state)


def fit(
    config: TrainConfig,
    callbacks: Sequence[Callback] = (),
    *,
    data: DatasetBundle | None = None,
    resume: dict[str, Any] | None = None,
) -> FitResult:
    """Train ``config`` (resuming from a loaded checkpoint dict if given) and return the result.
    With ``config.workers > 1`` it must run on every rank of a process group (Ray Train)."""
    if config.workers != distributed.world()[1]:
        raise ConfigError(
            "workers",
            f"{config.workers} data-parallel workers need as many processes (the Ray executor "
            "starts them); this process trains alone",
        )
    set_threads(config.threads)
    state = build_state(config, data, resume)
    for cb in callbacks:
        cb.on_fit_start(state)
    completed = run_epochs(state, callbacks)
    for cb in callbacks:
        cb.on_fit_end(state)
    return FitResult(state, completed)
