"""AppTest for the Compare page: URL selection, config diff, CSV, evaluation and the gallery."""

from __future__ import annotations

import io
import json
from urllib.parse import parse_qs

import pandas as pd
import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from cnn_core import compare, jobs, sweeps
from cnn_core.data import load_dataset
from cnn_core.evaluation import evaluate_checkpoint, run_data_spec
from cnn_core.models import MODELS
from cnn_core.runs import api
from tests.conftest import PROJECT
from tests.run_fixtures import finished_run, stop_supervisor, wait_for
from tests.test_pages_app import open_page
from ui import compare_widgets
from ui.compare_widgets import style_summary


def open_compare(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(PROJECT / "app.py"), default_timeout=120)
    at.query_params.update(query or {})
    at.run()
    at.switch_page("pages/compare.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def downloads(monkeypatch):
    """Every file handed to a download button: ``[(data, mimetype, filename)]``."""
    files = []
    real = MemoryMediaFileStorage.load_and_get_id

    def record(self, data, mimetype, kind, filename=None):
        files.append((data, mimetype, filename))
        return real(self, data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    return files


def test_empty_store_and_bogus_ids_show_messages_not_tracebacks():
    at = open_compare()
    assert at.title[0].value == "Compare" and "No runs yet" in at.info[0].value
    finished_run("only", train_size=200, val_size=100)
    at = open_compare({"runs": "nope-123,../../etc"})
    warning = " ".join(w.value for w in at.warning)
    assert "nope-123" in warning and "../../etc" in warning
    assert at.multiselect(key="cmp_runs").value == []
    assert "Pick runs above" in at.info[0].value


@pytest.mark.fashion
def test_every_architecture_is_a_sweep_shown_on_the_sweep_page_and_it_stops():
    base = finished_run("base", train_size=300, val_size=100, seed=3)
    at = open_compare({"runs": base})
    at.selectbox(key="cmp_sweep_base").select(base).run()
    next(b for b in at.button if b.label == "Start the sweep").click().run()
    assert not at.exception and not at.error
    (sweep,) = sweeps.list_sweeps()
    assert f"Sweep {sweep['id']} started" in at.success[0].value
    status = sweeps.sweep_status(sweep["id"], importances=False)
    assert status["space"] == {"model": {"choices": list(MODELS)}}
    assert status["budget"]["trials"] == len(MODELS)
    assert {k: status["base_config"][k] for k in ("train_size", "val_size", "seed")} == {
        "train_size": 300,
        "val_size": 100,
        "seed": 3,
    }
    assert ("sweep", sweep["id"], "running") in [(j.kind, j.id, j.state) for j in jobs.list_jobs()]
    sweep_page = open_page("pages/sweep.py", {"sweep": sweep["id"]})
    assert "every architecture on fashion-mnist" in sweep_page.subheader[0].value

    try:
        stopped = sweeps.stop_sweep(sweep["id"], wait=30)
        assert stopped["status"] == "stopped" and not stopped["driver_alive"]
        tag = sweeps.sweep_tag(sweep["id"])
        ended = ("stopped", "completed")  # a training trial saves its checkpoint, then stops
        wait_for(lambda: all(r["status"] in ended for r in api.list_runs(tag=tag)), 60, "trials")
    finally:
        stop_supervisor()


@pytest.mark.fashion
def test_selection_diff_csv_evaluation_and_gallery(downloads, monkeypatch):
    a = finished_run("base", ["t1"])
    b = finished_run("faster", lr=0.01)
    at = open_compare({"runs": f"{a},{b},gone-1"})
    assert at.multiselect(key="cmp_runs").value == [a, b]
    assert at.query_params["runs"] == f"{a},{b}"
    assert "gone-1" in at.warning[0].value

    table = at.dataframe[0].value
    assert list(table["id"]) == [a, b] and list(table["#"]) == [1, 2]
    assert "settings that differ: lr." in " ".join(c.value for c in at.caption)
    csv = next(data for data, mime, _ in downloads if mime == "text/csv")
    csv = pd.read_csv(io.BytesIO(csv))
    assert list(csv["id"]) == [a, b] and list(csv["lr"]) == [0.001, 0.01]
    assert csv["best_val_accuracy"].tolist() == pytest.approx(
        [api.metrics(i)[-1]["val_accuracy"] for i in (a, b)]
    )

    next(x for x in at.button if x.label == "Evaluate 2 runs on the test split").click().run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert table["test_accuracy"].notna().all()
    assert (table["test_ci_low"] < table["test_accuracy"]).all()
    assert (table["test_accuracy"] < table["test_ci_high"]).all()
    assert table["best_val_ci_low"].notna().all()  # val_images is recorded with each evaluation
    assert "95% CI" in " ".join(c.value for c in at.caption)
    assert "Is the difference real?" in [h.value for h in at.subheader]
    verdict = " ".join(m.value for m in at.markdown)
    evaluations = [compare.cached_evaluation(i) for i in (a, b)]
    test = compare.paired_test(api.get_run(a), evaluations[0], api.get_run(b), evaluations[1])
    assert test is not None and test.n == evaluations[0].result.n
    assert f"on {max(test.a_only, test.b_only):,} images, loses on" in verdict

    at.selectbox(key="cmp_gallery_run").select(b).run()
    cells = at.selectbox(key="cmp_cell")
    cells.select_index(len(cells.options) - 1).run()  # the rarest confusion
    true, predicted = at.selectbox(key="cmp_cell").value
    reference = evaluate_checkpoint(api.get_run(b)["checkpoint"], "test")
    labels = load_dataset(run_data_spec(api.get_run(b)["config"])).test.labels.tolist()
    expected = [
        i
        for i in reference.misclassified
        if (labels[i], reference.predicted[i]) == (true, predicted)
    ]
    shown = [int(img.captions[0].split()[0][1:]) for img in at.image]
    assert shown == expected[:40] and expected
    assert all(labels[i] == true and reference.predicted[i] == predicted for i in shown)

    monkeypatch.setattr(compare_widgets, "EXPLAIN_PAGE", "pages/not-there-yet.py")
    at.run()
    assert "Explain page is part of the app" in " ".join(c.value for c in at.caption)
    monkeypatch.setattr(compare_widgets, "EXPLAIN_PAGE", "pages/runs.py")  # any registered page
    at.run()
    links = [link.proto for link in at.get("page_link") if link.value == "Explain"]
    assert [parse_qs(p.query_string) for p in links[:2]] == [
        {"run": [b], "split": ["test"], "index": [str(i)]} for i in shown[:2]
    ]

    at.multiselect(key="cmp_runs").unselect(b).run()
    assert not at.exception and at.query_params["runs"] == a


def test_overlays_line_up_runs_of_different_batch_sizes_by_images_seen():
    small = finished_run("batch 32", batch_size=32)
    large = finished_run("batch 100", batch_size=100)
    at = open_compare({"runs": f"{small},{large}"})
    assert at.radio[0].value == "images_seen"  # the default axis

    def val_x(metric: str = "val_accuracy") -> list[list]:
        (chart,) = [c for c in at.get("plotly_chart") if f"cmp-curve-{metric}" in c.proto.id]
        return [t["x"] for t in json.loads(chart.proto.spec)["data"] if t.get("name")]

    assert val_x() == [[400], [400]]  # one epoch of 400 images each, whatever the batch
    at.radio[0].set_value("step").run()
    assert val_x() == [[13], [4]]  # but 13 and 4 batches
    at.multiselect[-1].set_value(["train_loss"]).run()
    at.radio[0].set_value("images_seen").run()
    (first, second) = val_x("train_loss")
    assert first[0] == 32 and second[0] == 100  # each first batch, in images seen


def test_the_summary_writes_settings_and_percentages_one_way():
    """Settings as the CLI and the Sweep page write them (0.008, not 0.008000), percentages with
    two decimals each (67.00%, not 67% beside 93.76%)."""
    table = pd.DataFrame(
        {
            "name": ["a", "b"],
            "lr": [0.008, 1e-05],
            "dropout": [0.5, 0.25],
            "batch_size": [64, 128],
            "best_val_accuracy": [0.67, 0.9376],
            "final_val_accuracy": [0.722, None],
        }
    )
    shown = style_summary(table, ["lr"]).to_html()
    for text in ("0.008<", "1e-05<", "0.5<", "0.25<", "64<", "67.00%", "93.76%", "72.20%", "—"):
        assert text in shown, text
    assert "0.008000" not in shown and "0.500000" not in shown


@pytest.mark.fashion
def test_the_curves_say_why_training_loss_sits_above_validation_loss():
    plain = finished_run("plain")
    smoothed = finished_run("smoothed", label_smoothing=0.3)
    at = open_compare({"runs": f"{plain},{smoothed}"})
    at.tabs[0].multiselect[0].set_value(["train_loss", "val_loss"]).run()
    notes = [c.value for c in at.tabs[0].caption if "label smoothing" in c.value]
    assert len(notes) == 1 and "2. smoothed" in notes[0] and "1. plain" not in notes[0]
    assert "cannot fall below 1.18" in notes[0], notes  # the entropy of its 10-class targets


@pytest.mark.fashion
def test_runs_on_different_datasets_get_a_per_class_chart_each_and_a_note():
    clothes = finished_run("clothes")
    digits = finished_run("digits", dataset="mnist")
    at = open_compare({"runs": f"{clothes},{digits}"})
    assert any("different datasets" in i.value for i in at.info), [i.value for i in at.info]
    next(x for x in at.button if x.label.startswith("Evaluate 2 runs")).click().run()
    assert not at.exception and not at.error
    charts = [json.loads(c.proto.spec) for c in at.tabs[3].get("plotly_chart")]
    per_class = [c for c in charts if c["data"][0]["type"] == "bar"]
    assert len(per_class) == 2  # digits and clothes never share a class axis
    assert [[t["name"] for t in c["data"]] for c in per_class] == [["1. clothes"], ["2. digits"]]
