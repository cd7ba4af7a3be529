"""AppTest for the Sweep page: empty store, the launch form, a finished tiny sweep."""

from __future__ import annotations

import pytest
from optuna.trial import TrialState

from cnn_core import sweeps
from cnn_core.config import knobs
from tests.test_pages_app import open_page
from tests.test_sweep import finished_sweep, inline_runs  # noqa: F401 - inline_runs: fixture

PAGE = "pages/sweep.py"


def test_sweep_page_renders_on_an_empty_store():
    at = open_page(PAGE)
    assert at.title[0].value == "Sweep"
    assert any("No sweeps yet" in i.value for i in at.info)


def test_launch_creates_the_sweep_from_the_form(monkeypatch):
    started = []
    monkeypatch.setattr(sweeps, "start_sweep", started.append)
    at = open_page(PAGE)
    for name in sweeps.searchable():
        if name not in ("optimizer", "model"):
            at.toggle(key=f"sw_on_{name}").set_value(False)
    at.run()
    at.multiselect(key="sw_space_model").set_value(["v1", "v2"])
    at.number_input(key="sw_trials").set_value(3)
    at.selectbox(key="sw_dataset").select("fashion-mnist")
    at.selectbox(key="sw_pruner").select("none")
    at.run()
    next(b for b in at.button if b.label == "Launch sweep").click().run()
    assert not at.exception and not at.error
    (sweep,) = sweeps.list_sweeps()
    assert started == [sweep["id"]] and sweep["trials"] == 3 and sweep["pruner"] == "none"
    status = sweeps.sweep_status(sweep["id"], importances=False)
    assert status["space"] == {
        "optimizer": {"choices": list(knobs()["optimizer"].choices)},  # every optimizer
        "model": {"choices": ["v1", "v2"]},
    }
    assert status["base_config"]["lr"] == 1e-3 and status["base_config"]["batch_size"] == 64
    assert status["base_config"]["dataset"] == "fashion-mnist"
    assert any(sweep["id"] in s.value for s in at.success)


@pytest.mark.fashion
def test_a_finished_sweep_shows_trials_best_value_and_links(inline_runs):  # noqa: F811
    sweep_id = finished_sweep()
    study = sweeps.load_study(sweep_id)
    trial = study.ask()  # a pruned trial, as the driver leaves one
    trial.suggest_categorical("optimizer", ["adam", "sgd"])
    trial.report(0.1, 1)
    study.tell(trial, state=TrialState.PRUNED)
    status = sweeps.sweep_status(sweep_id)

    at = open_page(PAGE, {"sweep": sweep_id})
    assert "completed" in at.subheader[0].value and "tiny sweep" in at.subheader[0].value
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["best val accuracy"] == f"{status['best']['value']:.2%}"
    assert metrics["trials"] == "3/2" and metrics["pruned"] == "1"
    table = at.dataframe[0].value
    assert list(table["#"]) == [0, 1, 2] and table["state"].iloc[2] == "✂️ pruned"
    assert any("Best: trial" in s.value for s in at.success)
    labels = " ".join(str(link.label) for link in at.get("page_link"))
    assert status["best"]["run_id"] in labels and "Compare them all" in labels
    assert [b for b in at.button if "Train it for" in b.label]
    caption = " | ".join(c.value for c in at.caption)
    assert "1 epoch per trial" in caption and "so far" not in caption, caption
    assert "in all" in caption  # a finished sweep's time is a total
    assert "from only 2 complete trials" in caption  # importances this early are a hint
