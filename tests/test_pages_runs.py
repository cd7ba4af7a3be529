"""AppTest for the Runs page: the step curve grows during the first epoch, a stopped run that
never finished an epoch keeps its curve and offers only resume/delete, the snapshot slider and
its play button, a corrupt snapshot noted, and the run table's filters and multi-select
actions."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cnn_core.callbacks import Callback
from cnn_core.config import TrainConfig
from cnn_core.runs import api
from cnn_core.runs.store import RunStore
from cnn_core.runs.worker import recorded, train_run
from cnn_core.settings import runs_dir
from tests.conftest import PROJECT, small_fashion_config
from tests.run_fixtures import finished_run
from tests.test_pages_app import no_worker, open_page  # noqa: F401 - the fixture is used
from ui.widgets import NOTHING

pytestmark = pytest.mark.usefixtures("no_worker")


def chart_traces(at, key: str) -> dict[str, list]:
    """The x values of each named trace of the page's plotly chart ``key``."""
    (chart,) = [c for c in at.get("plotly_chart") if key in c.proto.id]
    return {t.get("name"): t.get("x", []) for t in json.loads(chart.proto.spec)["data"]}


class WatchThenStop(Callback):
    """Opens the Runs page once, at batch ``at_step`` of the first epoch (training waits
    meanwhile), then asks the run to stop through the API."""

    def __init__(self, run_id: str, at_step: int):
        self.run_id, self.at_step, self.page = run_id, at_step, None

    def on_batch_end(self, state, loss: float) -> None:
        if self.page is None and state.step == self.at_step:
            self.page = open_page("pages/runs.py", {"run": self.run_id})
            api.stop(self.run_id)


def test_step_curve_grows_in_the_first_epoch_and_a_stopped_run_offers_only_what_it_allows():
    cfg = small_fashion_config(train_size=2000, val_size=200, threads=1)
    run_id = api.submit(cfg, start_worker=False)
    RunStore().claim_next(os.getpid())
    watch = WatchThenStop(run_id, at_step=4)
    with recorded(RunStore(), run_id):
        train_run(RunStore(), run_id, TrainConfig.from_dict(cfg.to_dict()), extra_callbacks=[watch])

    live = watch.page  # while running, 4 batches into epoch 1 of 1
    assert "running" in live.subheader[0].value
    assert [b.label for b in live.button if "Stop" in b.label]
    traces = chart_traces(live, "steps-")
    assert traces["train loss"] and traces["train loss"][0] == 64  # images seen, first batch
    assert traces["val loss"] == []

    run = api.get_run(run_id)
    assert run["status"] == "stopped" and run["progress"]["epoch"] == 0
    at = open_page("pages/runs.py", {"run": run_id})
    labels = [b.label for b in at.button]
    assert "▶️ Resume" in labels and "🗑️ Delete" in labels
    assert not [b for b in labels if "Extend" in b]  # nothing to extend at 0 epochs
    assert len(chart_traces(at, "steps-")["train accuracy"]) >= 1  # the curve is still there
    at.radio(key="runs_x").set_value("step").run()
    assert chart_traces(at, "steps-")["train loss"][0] == 1
    assert any("after the first validation" in c.value for c in at.caption)


def test_snapshot_slider_and_play_move_through_the_evaluations():
    run_id = finished_run(name="snapshots", epochs=3)
    at = open_page("pages/runs.py", {"run": run_id})
    (slider,) = at.select_slider
    steps = [s["step"] for s in api.snapshots(run_id)["snapshots"]]
    assert len(steps) == 3 and slider.value == steps[-1]
    assert any(c.value.startswith("epoch 3.00 ·") for c in at.caption)
    slider.set_value(steps[0]).run()
    assert any(c.value.startswith("epoch 1.00 ·") for c in at.caption)
    assert sum(type(e).__name__ == "Image" for e in at.main) == 24  # the panel
    urls = [url for e in at.main if type(e).__name__ == "Image" for url in e.value]
    assert all(u.startswith("data:image/png;base64,") for u in urls)  # no /media/ file to drop
    at.toggle(key="snap_play").set_value(True).run()  # playing: one evaluation further a tick
    assert at.select_slider[0].value == steps[1]
    assert any(c.value.startswith("epoch 2.00 ·") for c in at.caption)

    with RunStore().transaction() as conn:  # a corrupt row: noted, the page still renders
        conn.execute("UPDATE snapshots SET result = 'garbage' WHERE step = ?", (steps[1],))
    at = open_page("pages/runs.py", {"run": run_id})
    assert any(f"step {steps[1]} is unreadable" in c.value for c in at.caption)
    assert len(at.select_slider[0].options) == 2


def test_run_table_filters_and_acts_on_several_runs():
    done = finished_run(name="finished one", tags=["keep"])
    queued = [api.submit(small_fashion_config(), name=f"q{i}", start_worker=False) for i in (1, 2)]
    at = open_page("pages/runs.py", {"run": done})
    table = at.dataframe[0].value
    assert len(table) == 3 and {"best val acc", "final val acc", "train time (s)"} <= set(table)
    assert "time to target (s)" not in table  # no run has a target
    best = table.set_index("id").loc[done, "best val acc"]
    assert best == pytest.approx(max(m["val_accuracy"] for m in api.metrics(done)))

    assert at.selectbox(key="runs_f_status").format_func(NOTHING) == "any"  # not "Choose an option"
    at.selectbox(key="runs_f_status").set_value("queued").run()
    assert sorted(at.dataframe[0].value["id"]) == sorted(queued)
    at.selectbox(key="runs_f_status").set_value(NOTHING).run()
    at.selectbox(key="runs_f_tag").set_value("keep").run()
    assert list(at.dataframe[0].value["id"]) == [done]
    at.selectbox(key="runs_f_tag").set_value(NOTHING).run()

    at.multiselect(key="runs_selected").set_value(queued).run()
    link = next(p for p in at.get("page_link") if "Compare 2 runs" in p.proto.label)
    assert sorted(link.proto.query_string.split("=")[1].replace("%2C", ",").split(",")) == sorted(
        queued
    )
    at.text_input(key="runs_new_tag").input("batch").run()
    next(b for b in at.button if b.label == "Tag").click().run()
    assert all(api.get_run(i)["tags"] == ["batch"] for i in queued)

    (runs_dir() / queued[0]).mkdir(parents=True)  # a folder to remove with the run
    next(b for b in at.button if b.label == "🗑️ Delete 2 runs").click().run()
    assert {r["id"] for r in api.list_runs()} == {done, *queued}  # it asks first
    next(b for b in at.button if b.label == "Delete for good").click().run()
    assert [r["id"] for r in api.list_runs()] == [done]
    assert not (runs_dir() / queued[0]).exists()


# ---- a run watched live, evaluation by evaluation ----------------------------------------------
BATCHES = 10  # batches an epoch of the synthetic run below


def _live_run(evaluations: int) -> str:
    """A run this test process "trains" (running, its pid, a fresh heartbeat) with an image
    panel and ``evaluations`` end-of-epoch evaluation snapshots (synthetic numbers)."""
    store = RunStore()
    run_id = api.submit(small_fashion_config(epochs=6), start_worker=False)
    store.claim_next(os.getpid())
    rng = np.random.default_rng(0)
    store.save_panel(
        run_id,
        list(range(24)),
        [int(v) for v in rng.integers(0, 10, 24)],
        [str(i) for i in range(10)],
        rng.integers(0, 255, (24, 1, 28, 28), dtype=np.uint8),
    )
    for _ in range(evaluations):
        _evaluate(run_id)
    return run_id


def _evaluate(run_id: str) -> int:
    """One more evaluation of the live run: the next epoch's end; returns its step."""
    store = RunStore()
    epoch = len(store.snapshot_rows(run_id)) + 1
    step = epoch * BATCHES
    point = {"step": step, "epoch_fraction": float(epoch), "images_seen": step * 64}
    accuracy = 0.5 + 0.05 * epoch
    store.save_snapshot(
        run_id,
        point,
        {
            "accuracy": accuracy,
            "loss": 1 / epoch,
            "confusion": np.eye(10, dtype=int).tolist(),
            "predicted": list(range(10)) * 2 + [0] * 4,
            "confidence": [0.9] * 24,
        },
    )
    store.record_evaluation(run_id, accuracy, float(epoch), {})
    store.update(run_id, epoch=epoch, num_batches=BATCHES, heartbeat_at=time.time())
    return step


def _shown(at) -> str:
    return next(c.value for c in at.caption if c.value.startswith("epoch ")).split(" ·")[0]


def test_snapshots_follow_the_newest_evaluation_until_the_user_moves_the_slider():
    run_id = _live_run(2)
    at = open_page("pages/runs.py", {"run": run_id})
    assert "running" in at.subheader[0].value and _shown(at) == "epoch 2.00"
    _evaluate(run_id)
    at.run()  # a refresh while it trains: the newest evaluation
    assert at.select_slider[0].value == 3 * BATCHES and _shown(at) == "epoch 3.00"

    at.select_slider[0].set_value(BATCHES).run()  # the user looks back: it stays there
    _evaluate(run_id)
    at.run()
    assert at.select_slider[0].value == BATCHES and _shown(at) == "epoch 1.00"
    at.select_slider[0].set_value(4 * BATCHES).run()  # back to the newest: following again
    _evaluate(run_id)
    at.run()
    assert _shown(at) == "epoch 5.00"

    RunStore().finish(run_id, "completed")
    at = open_page("pages/runs.py", {"run": run_id})  # a finished run opens on its last one
    assert _shown(at) == "epoch 5.00"
    assert api.extend(run_id, 2)["status"] == "queued"  # Extend: still the newest, not the first
    at.run()
    RunStore().claim_next(os.getpid())
    _evaluate(run_id)
    at.run()
    assert at.select_slider[0].value == 6 * BATCHES and _shown(at) == "epoch 6.00"


def test_play_stops_following_the_newest_evaluation():
    run_id = _live_run(3)
    at = open_page("pages/runs.py", {"run": run_id})
    assert _shown(at) == "epoch 3.00"
    at.toggle(key="snap_play").set_value(True).run()  # from the newest, round to the first
    assert _shown(at) == "epoch 1.00"
    at.toggle(key="snap_play").set_value(False).run()
    _evaluate(run_id)
    at.run()
    assert _shown(at) == "epoch 1.00"  # paused where Play left it


def _progress_everywhere(at, run_id: str) -> tuple[str, str, str]:
    """What the sidebar, the run table and the run panel say about a run's progress."""
    (bar,) = [p.proto.text for p in at.sidebar.get("progress")]
    table = at.dataframe[0].value.set_index("id")
    (panel,) = [p.proto.text for p in at.main.get("progress")]
    return bar.split(" — ")[-1], table.loc[run_id, "progress"], panel


def _watch(run_id: str):
    """A new session on the Runs page of ``run_id`` (its first run draws the sidebar too)."""
    at = AppTest.from_file(str(PROJECT / "app.py"), default_timeout=60)
    at.query_params["run"] = run_id
    at.switch_page("pages/runs.py").run()
    assert not at.exception and at.sidebar.get("progress")
    return at


def test_sidebar_table_and_panel_read_the_same_progress_of_a_live_run():
    run_id = _live_run(2)
    store = RunStore()
    store.update(run_id, epoch=2, step=5, images_per_s=500.0, progress_at=time.time())
    at = _watch(run_id)
    sidebar, table, panel = _progress_everywhere(at, run_id)
    assert sidebar == table == "epoch 3/6 · batch 5/10" and panel.startswith(f"{table} · 500")
    assert table == api.get_run(run_id)["progress"]["text"]  # what `runs show --json` says

    store.update(run_id, epoch=3, step=2, progress_at=time.time(), heartbeat_at=time.time())
    _evaluate(run_id)
    at.run()  # the live view's refresh: table and panel from one reading
    table = at.dataframe[0].value.set_index("id")
    assert table.loc[run_id, "progress"] == "epoch 4/6 · batch 2/10"
    assert table.loc[run_id, "final val acc"] == api.get_run(run_id)["val_accuracy"]
    assert at.main.get("progress")[0].proto.text.startswith("epoch 4/6 · batch 2/10 · ")
    sidebar, table, panel = _progress_everywhere(_watch(run_id), run_id)
    assert sidebar == table == "epoch 4/6 · batch 2/10"


def test_the_run_panel_says_why_training_loss_sits_above_validation_loss():
    smoothed = finished_run(name="smoothed", label_smoothing=0.2)
    plain = finished_run(name="plain")
    captions = " ".join(c.value for c in open_page("pages/runs.py", {"run": smoothed}).caption)
    assert "label smoothing 0.2 trains on softened targets" in captions
    assert "cannot fall below" in captions  # the floor for Fashion-MNIST's 10 classes
    plain_captions = " ".join(c.value for c in open_page("pages/runs.py", {"run": plain}).caption)
    assert "Training loss sits above validation loss" not in plain_captions
