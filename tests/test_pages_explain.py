"""Explain page (AppTest): empty store, a real finished run (dataset sample from a Compare
link, feature maps, filters, attributions, deletion curves, drawn and uploaded inputs) and
the across-runs view."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from cnn_core.demo import DEMO_CHECKPOINT
from tests.conftest import PROJECT
from tests.run_fixtures import finished_run

PAGE = "pages/explain.py"


def open_explain(query: dict | None = None, state: dict | None = None) -> AppTest:
    """The Explain page, opened with ``query`` params and ``state`` in session_state."""
    at = AppTest.from_file(str(PROJECT / "app.py"), default_timeout=120)
    at.query_params.update(query or {})
    for key, value in (state or {}).items():
        at.session_state[key] = value
    at.run()
    at.switch_page(PAGE)
    return rerun(at)


def rerun(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def captions(at: AppTest) -> str:
    return " | ".join(c.value for c in at.caption)


def test_empty_store_offers_the_demo_model_or_says_what_to_do(monkeypatch):
    at = open_explain()
    assert at.title[0].value == "Explain"
    if DEMO_CHECKPOINT.is_file():
        assert at.selectbox(key="ex_model").value == "demo"
        assert [m.label for m in at.metric] == ["Predicted class", "Confidence"]
    monkeypatch.setattr("cnn_core.demo.DEMO_CHECKPOINT", PROJECT / "no-such.pt")
    at = open_explain()
    assert "No finished run yet" in at.info[0].value
    assert not at.selectbox


def test_a_compare_link_opens_that_sample_and_everything_renders():
    run_id = finished_run(name="tiny fashion")
    at = open_explain({"run": run_id, "split": "val", "index": "7"})
    assert at.selectbox(key="ex_model").value == run_id
    assert at.selectbox(key="ex_split").value == "val"
    assert at.number_input(key="ex_index").value == 7
    assert at.query_params["index"] == "7" and at.query_params["run"] == run_id
    maps, filters, attributions, faithfulness, _ = at.tabs
    assert "**conv1**" in maps.markdown[0].value and "→ **fc2** 10" in maps.markdown[0].value
    assert maps.image and filters.image
    assert attributions.image and "Saliency for class" in captions(attributions)
    assert "AUC" in str(faithfulness.get("plotly_chart")[0].proto.spec)

    at.selectbox(key="ex_method").select("gradcam")
    at = rerun(at)
    assert "Grad-CAM for class" in captions(at.tabs[2]) and len(at.tabs[2].image) == 2
    at.selectbox(key="ex_method").select("occlusion")
    at = rerun(at)
    assert "Occlusion for class" not in captions(at.tabs[2])  # heavy: waits for a click
    at.button(key="ex_compute").click()
    at = rerun(at)
    assert "Occlusion for class" in captions(at.tabs[2]) and "computed in" in captions(at.tabs[2])

    at.selectbox(key="ex_layer").select("pool2")
    at.toggle(key="ex_sort").set_value(True)
    at = rerun(at)
    assert "pool2: 64 channels of 64×7×7" in captions(at.tabs[0])
    at.selectbox(key="ex_conv").select("conv2")
    at = rerun(at)
    assert "Output channel 0 of conv2 adds up its 32 input channels, each" in captions(at.tabs[1])


def test_drawn_and_uploaded_inputs_and_incompatible_ones():
    run_id = finished_run()
    digit = torch.zeros(1, 1, 28, 28)
    digit[0, 0, 6:22, 12:16] = 1.0
    at = open_explain({"run": run_id}, {"explain_input": digit, "explain_input_label": "my 1"})
    assert at.radio(key="ex_source").value == "Drawn digit"
    assert at.metric and at.tabs

    gone = "20260101-000000-abcdef"  # a link to a deleted run: the newest model is offered
    at = open_explain({"run": gone}, {"explain_input": torch.zeros(1, 3, 64, 64)})
    assert f"Run {gone} is not a finished run" in at.warning[0].value
    assert at.selectbox(key="ex_model").value == run_id
    assert "expects 1×28×28 images" in at.warning[1].value and not at.tabs

    at.radio(key="ex_source").set_value("Upload an image")
    at = rerun(at)
    paper = np.full((120, 100), 235, np.uint8)
    paper[20:100, 45:58] = 20  # a dark stroke on light paper: a "1"
    png = io.BytesIO()
    Image.fromarray(paper).save(png, format="PNG")
    at.file_uploader(key="ex_upload").set_value([("one.png", png.getvalue(), "image/png")])
    at = rerun(at)
    assert "one.png (prepared as: canvas)" in str(at.image[0].proto) and at.tabs
    assert "split" not in at.query_params


def test_across_runs_shows_one_row_per_chosen_run():
    first = finished_run(name="run A")
    second = finished_run(name="run B", model="v2")
    at = open_explain({"run": first, "split": "val", "index": "0"})
    across = at.multiselect(key="ex_across")
    assert across.value == [first] and any("run B" in label for label in across.options)
    across.set_value([first, second])
    at = rerun(at)
    rows = [m.value for m in at.tabs[4].markdown if m.value.startswith("predicts")]
    names = [m.value for m in at.tabs[4].markdown if m.value.startswith("**")]
    assert len(rows) == 2 and "Grad-CAM in" in rows[0]
    assert any("run A" in n for n in names) and any("run B" in n for n in names)
    assert len(at.tabs[4].image) == 4  # input + heatmap per row


def test_across_runs_follows_a_change_of_the_page_model():
    first = finished_run(name="run A")
    second = finished_run(name="run B", model="v2")
    third = finished_run(name="run C")
    at = open_explain({"run": first, "split": "val", "index": "0"})
    at.multiselect(key="ex_across").set_value([first, third])
    at = rerun(at)
    at.selectbox(key="ex_model").select(second)
    at = rerun(at)
    assert at.multiselect(key="ex_across").value == [second, third]  # run A was the page's
    rows = [m.value for m in at.tabs[4].markdown if m.value.startswith("**")]
    assert "run B" in rows[0] and "run C" in rows[1] and len(rows) == 2
