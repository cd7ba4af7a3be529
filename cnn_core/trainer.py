"""The training loop: ``fit(config, callbacks) -> FitResult`` (scoring lives in :mod:`cnn_core.scoring`).

Plain functions in the style of pytorch/examples mnist. All randomness (shuffling,
augmentation, dropout) is derived from (seed, epoch, batch), so a run stopped at any
batch and resumed from its checkpoint gives exactly the numbers of an uninterrupted run.
The trainer does no I/O policy of its own: saving is a callback (``Checkpointer``).

The loop has one owner: this module moves the position and the epochs, banks the training
clock around evaluations, records the history and calls every callback hook (through
``dispatch``); :mod:`cnn_core.validation` only evaluates, :mod:`cnn_core.state` holds the
state, :mod:`cnn_core.callbacks` documents the hooks.

Speed: images are decoded once into uint8 tensors and indexed directly (no DataLoader),
transforms run on whole batches, threads are set explicitly; :mod:`cnn_core.speed` holds the
rest (memory format, precision policy, fused Adam, dropout masks, pinned memory). With
``workers > 1`` (started by Ray Train), :mod:`cnn_core.distributed` gives each rank its slice
of every batch and keeps the ranks' statistics and stop decisions in step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from . import distributed, validation
from .averaging import WeightAverage
from .callbacks import Callback, from_config
from .checkpoints import Checkpoint
from .config import TrainConfig
from .data import DatasetBundle, DataSpec, load_dataset
from .errors import CheckpointError, ConfigError, filled
from .models import create_model, load_pretrained, param_groups
from .models.summary import TrainingTime, time_training_step
from .optimizers import make_optimizer
from .resolve import resolve
from .schedule import lr_factor
from .scoring import loss_value, make_loss, predictions
from .speed import (
    autocast,
    grad_scaler,
    pick_device,
    prepare_model,
    resident_split,
    set_threads,
    to_device,
)
from .state import END_REASONS, TrainState, new_partial
from .stats import accuracy_interval
from .whitening import MAX_IMAGES, whiten_first_conv

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


def _mix(*parts: int) -> int:
    """Deterministic 63-bit seed from integers (seed, epoch, batch)."""
    h = 1469598103934665603
    for p in parts:
        h = ((h ^ (p + 0x9E3779B9)) * 1099511628211) % (1 << 63)
    return h


@dataclass
class FitResult:
    """What ``fit`` returns: the final state and whether training finished (every epoch, or
    an end of its own accord: ``state.stopped_by``) rather than being stopped by a callback."""

    state: TrainState
    completed: bool

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.state.history


def _check_resume(config: TrainConfig, checkpoint: Checkpoint) -> None:
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
    config: TrainConfig, data: DatasetBundle | None = None, checkpoint: Checkpoint | None = None
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
    if config.whiten:
        data = _whiten(model, data, fill=checkpoint is None)
    model = prepare_model(model, device)
    optimizer = make_optimizer(config, param_groups(model))
    state = TrainState(config, data, model, optimizer, device)
    state.scaler = grad_scaler(config.precision, device)
    if checkpoint is not None:
        model.load_state_dict(checkpoint.get("training_weights", checkpoint["model_state"]))
    if config.ema:
        state.average = WeightAverage(model, config.ema)
    if checkpoint is not None:
        if state.average:
            state.average.model.load_state_dict(checkpoint["model_state"])
        optimizer.load_state_dict(checkpoint["optimizer_state"])
        if state.scaler and (scaler_state := checkpoint.get("scaler_state")):
            state.scaler.load_state_dict(scaler_state)
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
    state.num_batches = -(-len(data.train) // state.batch_size)
    return state


def _whiten(model: nn.Module, data: DatasetBundle, fill: bool) -> DatasetBundle:
    """Patch-whiten ``model``'s first convolution from ``data``'s training images (as the model
    sees them; ``fill`` False: only freeze it, a checkpoint restores it); ``data`` with the note
    of why not added when it cannot."""
    images = data.transform.eval(data.train.images[:MAX_IMAGES])
    note = whiten_first_conv(model, images, fill)
    return dataclasses.replace(data, note="; ".join(filter(None, [data.note, note])))


def estimate_training(config: TrainConfig, data: DatasetBundle) -> TrainingTime:
    """How long ``fit(config)`` takes on this machine, from a few timed steps of its model on
    ``data``'s input (the Builder's Measure) and the sizes of its splits, validations included."""
    config = resolve(config)
    model = create_model(
        config.model,
        data.in_channels,
        data.image_size,
        data.num_classes,
        dropout=config.dropout,
        spec=config.model_spec,
    )
    batch_size = filled(config.batch_size, "batch_size")
    step = time_training_step(model, data.in_channels, data.image_size, batch_size)
    return TrainingTime(
        step,
        len(data.train),
        batch_size,
        config.epochs,
        len(data.val),
        config.evals_per_epoch,
    )


def train_batch(state: TrainState, loss_fn: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """One optimisation step on ``(x, y)`` (the schedule's learning rate, autocast, the loss,
    backward, the optimizer, the weight average) added to the epoch's running statistics;
    returns the loss."""
    config = state.config
    factor = lr_factor(config.lr_schedule, config.warmup, state.global_step, state.total_steps)
    for group in state.optimizer.param_groups:
        group["lr"] = config.lr * factor * group.get("lr_scale", 1.0)
    state.optimizer.zero_grad(set_to_none=True)
    with autocast(config.precision, state.device):
        logits = (state.train_module or state.model)(x)
    smooth = config.label_smoothing
    target = y.float() * (1 - smooth) + smooth / 2 if logits.shape[1] == 1 and smooth else y
    loss = loss_value(loss_fn, logits, target)
    if state.scaler:  # fp16: scale the loss so small gradients do not underflow
        state.scaler.scale(loss).backward()
        state.scaler.step(state.optimizer)
        state.scaler.update()
    else:
        loss.backward()
        state.optimizer.step()
    if state.average:
        state.average.update(state.model, state.global_step + 1)
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
    A run that ends of its own accord (target reached, early stopping, divergence) counts as
    completed, ``state.stopped_by`` naming the reason."""
    config, data = state.config, state.data
    loss_fn = train_loss(config, data).to(state.device)
    eval_loss = make_loss(data.num_classes, data.loss_weights).to(state.device)
    augment = filled(config.augment, "augment")
    images, labels = resident_split(data.train.images, data.train.labels, state.device, augment)
    mid_epoch = validation.evaluation_steps(config, state.num_batches)
    while state.epoch < config.epochs:
        dispatch(callbacks, "on_epoch_start", state)
        perm = torch.randperm(
            len(labels), generator=torch.Generator().manual_seed(_mix(config.seed, state.epoch))
        ).to(images.device)
        state.model.train()
        state.clock.start()
        while state.step < state.num_batches:
            if (ended := _poll(state, callbacks, stops=True)) is not None:
                return ended
            idx = perm[state.step * state.batch_size : (state.step + 1) * state.batch_size]
            idx = distributed.shard(idx)  # all of it, or this rank's part of it
            batch_seed = _mix(config.seed, state.epoch, state.step)
            x = images[idx]
            x = (
                data.transform.train(x, torch.Generator().manual_seed(batch_seed))
                if augment
                else data.transform.eval(x)
            )
            x, y = to_device(x, state.device), to_device(labels[idx], state.device)
            torch.manual_seed(batch_seed)  # dropout masks depend only on (seed, epoch, batch)
            loss = train_batch(state, loss_fn, x, y)
            state.step += 1
            dispatch(callbacks, "on_batch_end", state, loss)
            if state.step in mid_epoch:
                _evaluate(state, eval_loss, callbacks, final=False)
        state.partial["seconds"] += state.clock.stop()
        _evaluate(state, eval_loss, callbacks, final=True)
        if (ended := _poll(state, callbacks, stops=state.epoch < config.epochs)) is not None:
            return ended
    return True


def dispatch(callbacks: Sequence[Callback], hook: str, state: TrainState, *args: Any) -> None:
    """Call hook ``hook`` of every callback, in order (the one place the loop calls them)."""
    for cb in callbacks:
        getattr(cb, hook)(state, *args)


def _evaluate(
    state: TrainState, eval_loss: nn.Module, callbacks: Sequence[Callback], *, final: bool
) -> None:
    """Evaluate on the validation split with the training clock stopped; at the epoch's end (``final``) record the
    epoch's row and move to the next epoch; note the target's moment; tell the callbacks."""
    if final:
        _sum_partial(state)
    else:
        state.partial["seconds"] += state.clock.stop()
    record = validation.evaluate_state(state, eval_loss)
    state.eval_seconds += record.seconds
    metrics = {
        "epoch": state.epoch + 1,
        **state.running_metrics(),
        **record.metrics(),
        "lr": state.optimizer.param_groups[0]["lr"],
    }
    if final:
        p = state.partial
        metrics |= {
            "seconds": p["seconds"],
            "images_per_s": p["seen"] / p["seconds"] if p["seconds"] > 0 else 0.0,
        }
        state.epoch, state.step, state.partial = state.epoch + 1, 0, new_partial()
        state.history.append(metrics)
    metrics |= {
        "epoch_fraction": state.epoch_fraction,
        "images_seen": state.images_seen(),
        "train_seconds": state.train_seconds(),
        "eval_seconds": state.eval_seconds,
    }
    state.last_evaluation = dict(metrics)
    _note_target(state, metrics)
    dispatch(callbacks, "on_evaluation", state, metrics, record.result)
    if final:
        dispatch(callbacks, "on_epoch_end", state, metrics)
    else:
        state.clock.start()


def _note_target(state: TrainState, metrics: dict[str, Any]) -> None:
    """The first validation (on any rank) whose 95 % Wilson interval lies at or above
    ``config.target_accuracy`` sets ``state.target`` and asks to end the run: one lucky
    validation just over the target does not count (:func:`target_proven`)."""
    target = state.config.target_accuracy
    reached = distributed.any_rank(
        target is not None
        and state.target is None
        and target_proven(metrics["val_accuracy"], metrics["val_images"], target)
    )
    if reached:
        state.target = {
            "time_to_target_s": metrics["train_seconds"],
            "images_to_target": metrics["images_seen"],
            "epoch_fraction": metrics["epoch_fraction"],
            "val_accuracy": metrics["val_accuracy"],
            "eval_seconds": state.eval_seconds,
        }
        low = accuracy_interval(metrics["val_accuracy"], metrics["val_images"])[0]
        state.request_end(
            "target",
            f"validation accuracy {metrics['val_accuracy']:.4f} "
            f"(95 % interval from {low:.4f}, {metrics['val_images']:,} images)",
        )


def target_proven(accuracy: float, images: int, target: float) -> bool:
    """True when an accuracy measured on ``images`` validation images shows the model reaches
    ``target``: the lower end of its 95 % Wilson interval is at or above it."""
    return accuracy_interval(accuracy, images)[0] >= target


def _poll(state: TrainState, callbacks: Sequence[Callback], *, stops: bool) -> bool | None:
    """Between batches and after an epoch: True when the run ends here of its own accord (an
    end request, on any rank), False when a callback asks it to stop (with ``stops``), None to
    go on. Every rank decides alike; the callbacks see the end in ``on_stop``."""
    stopper = next((cb for cb in callbacks if cb.should_stop(state)), None) if stops else None
    request = state.end_request
    mine = request[0] if request else ""
    flags = [stopper is not None, *(r == mine for r in END_REASONS)]
    votes = distributed.all_sum([float(f) for f in flags])
    reason = next((r for r, v in zip(END_REASONS, votes[1:], strict=True) if v), None)
    if reason is None and not votes[0]:
        return None
    if reason is not None:
        by, state.end_detail = reason, request[1] if request and reason == mine else ""
    else:
        by = type(stopper).__name__ if stopper else "another rank"
    state.end_request = None
    if state.step:  # mid-epoch: bank the time spent so far
        state.partial["seconds"] += state.clock.stop()
        _sum_partial(state)
    state.stopped_by = by
    dispatch(callbacks, "on_stop", state)
    return reason is not None


def _sum_partial(state: TrainState) -> None:
    """The epoch's loss / correct / seen so far, summed over data-parallel ranks."""
    p = state.partial
    p["loss"], p["correct"], p["seen"] = distributed.all_sum([p["loss"], p["correct"], p["seen"]])


def fit(
    config: TrainConfig,
    callbacks: Sequence[Callback] = (),
    *,
    data: DatasetBundle | None = None,
    resume: Checkpoint | None = None,
) -> FitResult:
    """Train ``config`` (resuming from a loaded checkpoint dict if given) and return the result.
    The callbacks the config asks for (:func:`cnn_core.callbacks.from_config`) run first. With ``config.workers > 1`` it must run on every rank of a process group (Ray Train)."""
    if config.workers != distributed.world()[1]:
        raise ConfigError(
            "workers",
            f"{config.workers} data-parallel workers need as many processes (the Ray executor "
            "starts them); this process trains alone",
        )
    set_threads(config.threads)
    state = build_state(config, data, resume)
    callbacks = [*from_config(state.config), *callbacks]
    state.callbacks = _stateful(callbacks)
    saved = (resume.get("callbacks") if resume else None) or {}
    for cb in state.callbacks:
        if cb.state_key in saved:
            cb.load_state_dict(saved[cb.state_key])
    dispatch(callbacks, "on_fit_start", state)
    completed = run_epochs(state, callbacks)
    dispatch(callbacks, "on_fit_end", state)
    return FitResult(state, completed)


def _stateful(callbacks: Sequence[Callback]) -> list[Callback]:
    """The callbacks that keep state in checkpoints; ValueError if two share a key."""
    keeping = [cb for cb in callbacks if type(cb).state_dict is not Callback.state_dict]
    keys = [cb.state_key for cb in keeping]
    if len(set(keys)) < len(keys):
        raise ValueError(f"callbacks keeping state need distinct state_key values: {keys}")
    return keeping
