"""Train page: the Recipe choice fills the fields, the run stores them; the form is the
config's fields, judged by the config's own rules (an invalid number never launches a run)."""

from __future__ import annotations

import pytest

from cnn_core.config import knobs
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


def test_the_form_is_generated_from_the_knobs(no_worker):  # noqa: F811
    """Every field of the Train groups shown for a dataset has its widget, labelled as its
    Knob says; number widgets carry no Streamlit bounds (the config judges them); the slider's
    range is the Knob's."""
    at = open_page("pages/train.py")
    shown = {w.key: w for kind in ("number_input", "selectbox", "checkbox", "text_input", "slider")
             for w in getattr(at, kind)}  # fmt: skip
    for name, knob in knobs().items():
        if knob.group and not knob.show_if:
            assert shown[f"t_{name}"].label == knob.label, name
    for name in ("epochs", "batch_size", "lr", "weight_decay", "warmup", "evals_per_epoch"):
        proto = at.number_input(key=f"t_{name}").proto
        assert not proto.has_min and not proto.has_max, name
    dropout = at.slider(key="t_dropout").proto
    assert (dropout.min, dropout.max) == (knobs()["dropout"].low, knobs()["dropout"].high)


@pytest.mark.parametrize(
    ("field", "value"), [("epochs", 0), ("lr", 20.0), ("label_smoothing", 1.0)]
)
def test_an_invalid_number_never_launches_a_run(no_worker, field, value):  # noqa: F811
    """Issue 28 item 4: typing 0 in Epochs once launched an 8-epoch run (Streamlit kept the
    last valid value). Now the error names the field beneath its widget, Launch is disabled
    and refuses, and nothing is queued."""
    at = open_page("pages/train.py")
    at.number_input(key=f"t_{field}").set_value(value)  # typed, then Launch pressed at once
    next(b for b in at.button if b.label == "Launch training").click().run()
    assert api.list_runs() == []
    errors = [e.value for e in at.error]
    assert any(e.startswith(f"{field}: must") for e in errors), errors
    launch = next(b for b in at.button if b.label == "Launch training")
    assert launch.disabled and field in launch.proto.help
    at.number_input(key=f"t_{field}").set_value(
        knobs()[field].low + 1 if field == "epochs" else 0.1
    )
    at.run()
    assert not at.error and not next(b for b in at.button if b.label == "Launch training").disabled
