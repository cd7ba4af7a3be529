"""cnn_core.compare on real tiny Fashion-MNIST runs: summary table, config diff, cached
evaluations (and their invalidation), confusion-cell indices (training every architecture is a sweep: tests/test_sweep.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cnn_core import compare, evaluation
from cnn_core.data import load_dataset
from cnn_core.errors import UserError
from cnn_core.evaluation import run_data_spec
from cnn_core.models import describe_model
from cnn_core.runs import api
from cnn_core.runs.store import RunStore
from tests.conftest import small_fashion_config
from tests.run_fixtures import finished_run

pytestmark = pytest.mark.fashion


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """Two finished runs (v1 lr 1e-3, v2 lr 1e-2; 2 epochs each) in a module-wide store."""
    root = tmp_path_factory.mktemp("compare-store")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNN_LAB_RUNS_DIR", str(root / "runs"))
        mp.setenv("CNN_LAB_CACHE_DIR", str(root / "cache"))
        a = finished_run("base", ["t1"], epochs=2)
        b = finished_run("wider", model="v2", lr=0.01, epochs=2)
    return root, a, b


@pytest.fixture
def store(seeded, monkeypatch):
    """Point this test at the seeded store; returns the two run ids."""
    root, a, b = seeded
    monkeypatch.setenv("CNN_LAB_RUNS_DIR", str(root / "runs"))
    monkeypatch.setenv("CNN_LAB_CACHE_DIR", str(root / "cache"))
    return a, b


def test_summary_table_matches_the_metrics(store):
    a, b = store
    rows = compare.summary_table([b, a])
    assert [r["id"] for r in rows] == [b, a]
    for row in rows:
        history = api.metrics(row["id"])
        val = [m["val_accuracy"] for m in history]
        assert row["epochs_done"] == 2
        assert row["best_val_accuracy"] == max(val) and row["final_val_accuracy"] == val[-1]
        assert row["train_seconds"] == pytest.approx(sum(m["seconds"] for m in history))
        assert row["images_per_s"] == pytest.approx(
            sum(m["images_per_s"] for m in history) / len(history)
        )
        desc = describe_model(row["model"], 1, 28, 10)
        assert (row["params"], row["flops"]) == (desc["params"], desc["flops"])
        assert row["lr"] == api.get_run(row["id"])["config"]["lr"]
    assert rows[0]["model"] == "v2" and rows[1]["tags"] == "t1"
    assert compare.differing_columns(rows) == ["model", "lr"]
    assert compare.differing_columns(rows[:1]) == [] and compare.differing_columns([]) == []
    with pytest.raises(UserError, match="no run"):
        compare.summary_table(["no-such-run"])


def test_run_history_has_wall_time_and_smoothing():
    assert compare.smooth([1.0, None, 3.0], 0.5) == [1.0, None, 2.0]
    assert compare.smooth([1.0, 5.0], 0.0) == [1.0, 5.0]
    run_id = finished_run(epochs=2, train_size=200, val_size=100)
    history = compare.run_history(run_id)
    assert [m["epoch"] for m in history] == [1, 2]
    assert history[0]["elapsed_s"] == pytest.approx(history[0]["seconds"], abs=0.05)
    assert history[1]["elapsed_s"] >= history[0]["elapsed_s"] + history[1]["seconds"] - 0.05


def test_evaluate_run_matches_evaluate_checkpoint_and_is_cached(store, monkeypatch):
    a, _ = store
    checkpoint = Path(api.get_run(a)["checkpoint"])
    first = compare.evaluate_run(a)  # loads the dataset itself
    data = load_dataset(run_data_spec(api.get_run(a)["config"]))
    reference = evaluation.evaluate_checkpoint(checkpoint, "test", data=data)
    assert not first.cached and first.result.split == "test" and not first.fell_back
    assert first.result.confusion == reference.confusion
    assert first.result.accuracy == pytest.approx(reference.accuracy)
    assert first.result.n == 10_000 and len(first.class_names) == 10

    calls = []
    real = compare.evaluate_checkpoint
    monkeypatch.setattr(
        compare, "evaluate_checkpoint", lambda *args, **kw: calls.append(1) or real(*args, **kw)
    )
    again = compare.evaluate_run(a)
    assert again.cached and not calls and again.result.confusion == reference.confusion
    row = compare.summary_table([a])[0]
    assert row["test_accuracy"] == pytest.approx(reference.accuracy)
    assert row["evaluated_on"] == "test"

    checkpoint.write_bytes(checkpoint.read_bytes())  # rewritten: the stored result is stale
    assert compare.cached_evaluation(a) is None
    assert compare.summary_table([a])[0]["test_accuracy"] is None
    fresh = compare.evaluate_run(a, data=data)
    assert calls == [1] and not fresh.cached and fresh.result.confusion == reference.confusion
    assert compare.evaluate_run(a, data=data).cached and calls == [1]
    stat = checkpoint.stat()  # merely touched: stale as well
    os.utime(checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert compare.cached_evaluation(a) is None


def test_cell_indices_are_exactly_the_misclassified_items(store):
    a, _ = store
    result = compare.evaluate_run(a).result
    labels = load_dataset(run_data_spec(api.get_run(a)["config"])).test.labels.tolist()
    cells = compare.confusion_cells(result)
    assert [n for _, _, n in cells] == sorted((n for _, _, n in cells), reverse=True)
    seen = []
    for true, predicted, count in cells:
        indices = compare.cell_indices(result, labels, true, predicted)
        assert len(indices) == count == result.confusion[true][predicted]
        assert all(labels[i] == true and result.predicted[i] == predicted for i in indices)
        seen += indices
    assert sorted(seen) == result.misclassified
    assert set(seen) == {i for i, p in enumerate(result.predicted) if p != labels[i]}


def test_bad_state_is_a_user_error_and_evaluations_go_with_their_run(store):
    queued = api.submit(small_fashion_config(), start_worker=False)
    assert compare.cached_evaluation(queued) is None
    with pytest.raises(UserError, match="no checkpoint"):
        compare.evaluate_run(queued)
    with pytest.raises(UserError, match="unknown split"):
        compare.evaluate_run(queued, "holdout")
    assert compare.summary_table([queued])[0]["params"] == describe_model("v1", 1, 28, 10)["params"]
    store_ = RunStore()
    store_.save_evaluation(queued, "test", 1, {"accuracy": 1.0})
    assert store_.load_evaluation(queued, "test")["result"] == {"accuracy": 1.0}
    api.delete(queued)
    assert store_.load_evaluation(queued, "test") is None


def test_paired_test_counts_the_images_one_run_gets_right_and_the_other_wrong(store):
    a, b = store
    runs = [api.get_run(i) for i in (a, b)]
    ev = [compare.evaluate_run(i) for i in (a, b)]
    test = compare.paired_test(runs[0], ev[0], runs[1], ev[1])
    right = [e.result.correct() for e in ev]
    assert test.a_only == sum(x and not y for x, y in zip(*right, strict=True))
    assert test.b_only == sum(y and not x for x, y in zip(*right, strict=True))
    assert test.both + test.neither + test.a_only + test.b_only == ev[0].result.n
    from scipy.stats import binomtest

    assert test.p_value == pytest.approx(
        binomtest(test.a_only, test.a_only + test.b_only).pvalue if test.a_only + test.b_only else 1
    )
    other = {**runs[1], "config": {**runs[1]["config"], "seed": 99}}
    assert compare.paired_test(runs[0], ev[0], other, ev[1]) is None  # other images
    augmented = {**runs[1], "config": {**runs[1]["config"], "augment": True}}
    assert compare.paired_test(runs[0], ev[0], augmented, ev[1]) is not None
    row = compare.summary_row(runs[0])
    assert row["test_ci_low"] < row["test_accuracy"] < row["test_ci_high"]
    n = api.metrics(a)[-1]["val_images"]
    assert n == 200 and row["best_val_ci_low"] < row["best_val_accuracy"] < row["best_val_ci_high"]
