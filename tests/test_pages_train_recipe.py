"""Train page: the Recipe choice fills the fields, the run stores them, and every widget's
bounds are TrainConfig's LIMITS."""

from __future__ import annotations

from cnn_core.config import LIMITS
from cnn_core.recipes import RECIPES
from cnn_core.runs import api
from tests.test_pages_app import no_worker, open_page  # noqa: F401 - the fixture is used

__all__ = ["no_worker"]


def test_fast_recipe_fills_the_form_and_the_run_stores_the_fields(no_worker):  # noqa: F811
    at = open_page("pages/train.py")
    at.selectbox(key="t_dataset").select("fashion-mnist").run()
    at.selectbox(key="t_recipe").select("fast").run()
    fast = RECIPES["fast"]
    assert at.selectbox(key="t_model").value == fast["model"]
    assert at.number_input(key="t_batch_size").value == fast["batch_size"]
    assert at.selectbox(key="t_lr_schedule").value == "onecycle"
    at.number_input(key="t_target_accuracy").set_value(0.9)
    at.run()
    at.button[0].click().run()
    assert not at.exception and not at.error
    (run,) = api.list_runs()
    stored = run["config"]
    assert "recipe" not in stored and stored["target_accuracy"] == 0.9
    assert {k: stored[k] for k in fast} == fast
    at.selectbox(key="t_recipe").select("book").run()
    assert at.selectbox(key="t_model").value == "v1"
    assert at.number_input(key="t_batch_size").value == 64  # the dataset's book batch size


def test_widget_bounds_are_the_config_limits(no_worker):  # noqa: F811
    at = open_page("pages/train.py")
    for name in ("epochs", "batch_size", "lr", "weight_decay", "warmup", "evals_per_epoch"):
        widget = at.number_input(key=f"t_{name}").proto
        assert (widget.min, widget.max) == LIMITS[name], name
    smoothing = at.number_input(key="t_label_smoothing").proto
    assert smoothing.min == 0 and smoothing.max < LIMITS["label_smoothing"][1]
    dropout = at.slider(key="t_dropout").proto
    assert (dropout.min, dropout.max) == LIMITS["dropout"]
