"""The session's golden runs (``tests/run_fixtures.py``): a copy reads exactly like the run
trained for it, under its own id, name and tags, newer than the original; a test with data of its
own trains for real."""

from __future__ import annotations

import filecmp

import numpy as np
import pytest

from cnn_core.checkpoints import CHECKPOINT_NAME, load_checkpoint, run_dir
from cnn_core.runs import api
from tests.run_fixtures import _GOLDEN, finished_run, golden_key

SEED = 4242  # a config no other test trains: the first call below trains it here
TIMES = ("created_at", "started_at", "finished_at", "heartbeat_at")


def test_a_golden_copy_reads_like_the_trained_run(isolated_dirs):
    trained = finished_run("trained", ["a"], seed=SEED)
    assert golden_key(trained) in _GOLDEN
    copied = finished_run("copied", ["b"], seed=SEED)
    a, b = api.get_run(trained), api.get_run(copied)
    assert b["id"] != a["id"] and (b["name"], b["tags"]) == ("copied", ["b"])
    assert b["status"] == "completed" and b["created_at"] >= a["created_at"]
    assert b["finished_at"] - b["created_at"] == pytest.approx(a["finished_at"] - a["created_at"])
    skip = {"id", "name", "tags", "checkpoint", *TIMES}
    assert {k: v for k, v in b.items() if k not in skip} == {
        k: v for k, v in a.items() if k not in skip and k != "progress"
    } | {"progress": {**a["progress"], "updated_at": b["progress"]["updated_at"]}}

    def timeless(rows):
        return [{k: v for k, v in r.items() if k not in ("wall_time", "created_at")} for r in rows]

    assert timeless(api.metrics(copied)) == timeless(api.metrics(trained))
    assert timeless(api.steps(copied)) == timeless(api.steps(trained))
    got, want = api.snapshots(copied), api.snapshots(trained)
    assert got["panel"].keys() == want["panel"].keys()
    for key, value in want["panel"].items():
        assert np.array_equal(got["panel"][key], value), key
    assert repr(timeless(got["snapshots"])) == repr(timeless(want["snapshots"]))
    assert want["snapshots"]
    assert b["checkpoint"] == str(run_dir(copied) / CHECKPOINT_NAME)
    assert filecmp.cmp(a["checkpoint"], b["checkpoint"], shallow=False)
    assert load_checkpoint(b["checkpoint"])["epoch"] == load_checkpoint(a["checkpoint"])["epoch"]
    assert [r["id"] for r in api.list_runs()][:2] == [copied, trained]  # newest first


def test_a_test_with_data_of_its_own_trains_for_real(isolated_dirs):
    (isolated_dirs / "data" / "fashion-mnist").mkdir()  # could hold other images than shared
    run_id = finished_run(seed=SEED + 1)
    assert golden_key(run_id) is None
    assert api.get_run(run_id)["status"] == "completed"
