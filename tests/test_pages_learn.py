"""Learn pages (AppTest): Convolution, A layer by hand, Losses & optimizers — defaults, the
query-string round trip, stepping, real runs, and one clear message per bad input."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import PROJECT
from tests.run_fixtures import finished_run

CONVOLUTION, LAYER, TRAINING = (
    "pages/learn_convolution.py",
    "pages/learn_layer.py",
    "pages/learn_training.py",
)


def open_page(page: str, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(PROJECT / "app.py"), default_timeout=120)
    at.query_params.update(query or {})
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def rerun(at: AppTest, errors: int = 0) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.error) == errors, [e.value for e in at.error]
    return at


def chart_titles(at: AppTest) -> list[str]:
    specs = [json.loads(c.proto.spec)["layout"] for c in at.get("plotly_chart")]
    return [s["title"]["text"] for s in specs if "title" in s]


def column_config(table) -> dict:
    """The column settings a dataframe element sends to the browser, by column name."""
    return json.loads(table.proto.columns)


def markdown(at: AppTest) -> str:
    return " | ".join(m.value for m in at.markdown)


def test_convolution_defaults_step_and_geometry_round_trip_through_the_url():
    at = open_page(CONVOLUTION)
    assert not at.error
    text = markdown(at)
    assert "H: ⌊(6 + 2·0 − 1·(3−1) − 1) / 1⌋ + 1 = **4**" in text
    assert "y[0,0] = " in text and "= **2**" in text  # Sobel x on the ring's top-left corner
    assert at.query_params["padding"] == "valid" and at.query_params["kernel"] == "Sobel x"
    assert "computed in" in " ".join(c.value for c in at.caption)

    at.radio(key="cv_padding").set_value("full")
    at.number_input(key="cv_stride").set_value(2)
    at = rerun(at)
    assert "⌊(6 + 2·2 − 1·(3−1) − 1) / 2⌋ + 1 = **4**" in markdown(at)
    at.slider(key="cv_step").set_value(5)
    at.radio(key="cv_op").set_value("true convolution")
    at = rerun(at)
    assert "y[1,1] = " in markdown(at)
    query = dict(at.query_params)
    assert query["step"] == "5" and query["stride"] == "2" and query["op"] == "true convolution"

    shared = open_page(CONVOLUTION, query)  # a shared link reopens the same set-up
    assert shared.radio(key="cv_padding").value == "full"
    assert shared.number_input(key="cv_stride").value == 2
    assert shared.slider(key="cv_step").value == 5
    assert markdown(shared) == markdown(at)


def test_one_dimensional_panel_is_the_chapters_formula():
    at = open_page(CONVOLUTION)
    at.number_input(key="cv_stride").set_value(2)
    at.radio(key="cv_view").set_value("1-D: y[i] = Σ x[i−k] w[k]")
    at = rerun(at)
    assert not at.get("plotly_chart")  # only the chosen view runs
    expected = np.convolve(np.arange(7.0), [1, 0, -1])
    at.slider(key="cv_i1").set_value(7)
    at = rerun(at)
    assert "y[7] = Σₖ x[7−k]·w[k] = x[7]·w[0] + x[6]·w[1] + x[5]·w[2]" in markdown(at)
    assert f"= **{expected[7]:.4g}**" in markdown(at)
    at.selectbox(key="cv_pad1").set_value("valid")
    at = rerun(at)
    assert "valid: 5 outputs from 7 inputs" in " ".join(c.value for c in at.caption)
    at.slider(key="cv_i1").set_value(0)  # valid output 0 is full output 2
    at = rerun(at)
    assert "y[0] = Σₖ x[2−k]·w[k] = x[2]·w[0] + x[1]·w[1] + x[0]·w[2]" in markdown(at)
    at.radio(key="cv_view").set_value("2-D playground")
    at = rerun(at)
    assert at.number_input(key="cv_stride").value == 2  # kept while its view was hidden


@pytest.mark.parametrize(
    ("widget", "value", "message"),
    [
        ("cv_stride", 0, "stride: must be at least 1, got 0"),
        ("cv_matrix", "1 2\n3 x", "input matrix: cell (2, 2) is 'x', not a number"),
        ("cv_weights", "1 1 1 1 1 1 1", "kernel spans 7 cells"),
        ("cv_x1", "1 two 3", "x: cell (1, 2) is 'two', not a number"),
    ],
)
def test_bad_input_gets_one_clear_message(widget, value, message):
    view = "1-D: y[i] = Σ x[i−k] w[k]" if widget == "cv_x1" else "2-D playground"
    at = open_page(CONVOLUTION, {"kernel": "custom", "view": view})
    element = at.number_input(key=widget) if widget == "cv_stride" else None
    if element is None:
        element = at.text_input(key=widget) if widget == "cv_x1" else at.text_area(key=widget)
    element.set_value(value)
    at = rerun(at, errors=1)
    assert message in at.error[0].value


def test_a_kernel_as_large_as_the_input_has_one_output_and_no_slider():
    at = open_page(CONVOLUTION, {"kernel": "custom", "weights": "1 1\n1 1", "matrix": "1 2\n3 4"})
    assert not at.error and all(s.key != "cv_step" for s in at.slider)
    assert "y[0,0] = (1)·(1) + (2)·(1) + (3)·(1) + (4)·(1) = **10**" in markdown(at)


def test_a_link_with_an_unknown_value_falls_back_with_a_warning():
    at = open_page(CONVOLUTION, {"padding": "diagonal", "stride": "3"})
    assert at.radio(key="cv_padding").value == "valid"
    assert at.number_input(key="cv_stride").value == 3
    assert "padding=diagonal is not a valid setting" in at.warning[0].value


@pytest.mark.fashion
def test_a_learned_filter_and_a_real_layer_by_hand():
    run_id = finished_run(name="tiny")
    at = open_page(
        CONVOLUTION,
        {"kernel": "learned filter", "run": run_id, "filter": "3", "source": "dataset image"},
    )
    assert not at.error
    assert at.selectbox(key="cv_run").value == run_id
    assert "conv1 #3 as applied" in chart_titles(at)
    assert "**24**" in markdown(at)  # 5×5 kernel, valid: 28 − 4

    at = open_page(LAYER, {"run": run_id, "layer": "conv2", "channel": "9"})
    assert not at.error
    assert at.selectbox(key="ly_layer").value == "conv2"
    assert "over the 32 input channels of conv2" in markdown(at)
    assert float(at.metric[0].value) < 1e-4  # by hand == the layer's own output
    at.radio(key="ly_view").set_value("Pooling")
    at = rerun(at)
    at.slider(key="ly_step").set_value(10)
    at = rerun(at)
    assert "out[1,3] = " in markdown(at)  # 14×14 → 7×7 by 2×2/2 max pooling: 10 = 1·7 + 3
    at.radio(key="ly_view").set_value("Dropout")
    at = rerun(at)
    at.toggle(key="ly_train").set_value(False)
    at = rerun(at)
    assert any("Eval mode" in c.value for c in at.caption)
    assert at.query_params["train"] == "0" and at.query_params["step"] == "10"
    at.radio(key="ly_view").set_value("Pooling")
    at = rerun(at)
    assert at.slider(key="ly_step").value == 10  # kept while the Dropout view was shown
    at.number_input(key="ly_size").set_value(8)
    at.number_input(key="ly_stride").set_value(1)
    at = rerun(at)
    titles = chart_titles(at)
    assert "max pool 8×8/1: 7×7" in titles and "A 14×14 (overlapping windows)" in titles


def test_losses_optimizers_and_their_bad_input():
    at = open_page(TRAINING)
    assert not at.error
    losses = [df.value for df in at.dataframe if "by hand" in df.value.columns]
    assert all((t["|difference|"] < 1e-9).all() for t in losses) and len(losses) == 2
    at = open_page(
        TRAINING, {"view": "Optimizers", "surface": "Booth", "methods": "Adam,SGD", "rows": "3"}
    )
    assert at.multiselect(key="tr_methods").value == ["Adam", "SGD"]
    adam = next(df.value for df in at.dataframe if "m_hat" in df.value.columns)
    assert len(adam) == 3
    gap = next(c.value for c in at.caption if "torch.optim.Adam" in c.value)
    assert float(gap.split("= ")[-1].rstrip(".")) < 1e-9
    at.radio(key="tr_view").set_value("Losses")
    at = rerun(at)
    at.text_input(key="tr_labels").set_value("1 0 2 1")
    at = rerun(at, errors=1)
    assert "binary labels must be 0 or 1" in at.error[0].value
    at.radio(key="tr_view").set_value("Numerical stability")
    at = rerun(at)
    at.text_input(key="tr_far").set_value("100")
    at.radio(key="tr_target").set_value(0)
    at = rerun(at)
    table = next(df for df in at.dataframe if "exact loss (float64)" in df.value.columns)
    row = table.value.loc[100.0]
    assert row["Sigmoid + BCELoss: ∂loss/∂z"] == 0 and row["BCEWithLogitsLoss: ∂loss/∂z"] == 1
    formats = {k: c.get("type_config", {}).get("format") for k, c in column_config(table).items()}
    assert set(formats.values()) == {"%.4g"} and len(formats) == 5  # 3.7e-44, not "0.0000…"


@pytest.mark.fashion
def test_weight_histograms_of_runs_with_and_without_weight_decay():
    plain, decayed = finished_run(name="plain"), finished_run(name="decay", weight_decay=0.5)
    at = open_page(TRAINING, {"view": "Weight decay", "runs": f"{plain},{decayed}"})
    stats = next(df.value for df in at.dataframe if "‖w‖²" in df.value.columns)
    norms = dict(zip(stats["run"], stats["‖w‖²"], strict=True))
    with_decay = next(v for k, v in norms.items() if "weight decay 0.5" in k)
    without = next(v for k, v in norms.items() if "weight decay 0 " in k + " ")
    assert with_decay < without


def test_explains_filters_view_links_to_the_learn_pages():
    at = open_page("pages/explain.py", {"run": "demo"})
    at.number_input(key="ex_apply_filter").set_value(4)
    at = rerun(at)
    links = [link.proto for link in at.get("page_link")]
    apply = next(link for link in links if link.label == "Apply filter #4 step by step")
    assert "kernel=learned+filter" in apply.query_string and "filter=4" in apply.query_string
    assert "run=demo" in apply.query_string and apply.page.endswith("learn_convolution")


def test_a_rerun_carrying_the_previous_url_does_not_undo_the_change():
    """The browser may send a rerun before it has applied the URL of the last run."""
    at = open_page(CONVOLUTION)
    previous = dict(at.query_params)
    at.slider(key="cv_step").set_value(3)
    at = rerun(at)
    at.query_params.clear()
    at.query_params.update(previous)  # step=0: the URL before the last run
    at.slider(key="cv_step").set_value(5)
    at = rerun(at)
    assert at.slider(key="cv_step").value == 5 and at.query_params["step"] == "5"


def test_a_drawn_digit_is_an_input_once_there_is_one():
    at = open_page(CONVOLUTION, {"source": "drawn digit"})
    assert len(at.error) == 1 and "no drawn digit in this session" in at.error[0].value
    digit = np.zeros((1, 1, 28, 28), dtype=np.float32)
    digit[0, 0, 4:24, 13:15] = 1.0  # a "1"
    at.session_state["explain_input"] = digit
    at.session_state["explain_input_label"] = "drawn 1"
    at = rerun(at)
    assert "drawn 1" in [c.value for c in at.caption]
    assert "H: ⌊(28 + 2·0 − 1·(3−1) − 1) / 1⌋ + 1 = **26**" in markdown(at)


def test_apply_filter_from_explain_slides_it_over_the_image_being_explained():
    at = open_page("pages/explain.py", {"run": "demo"})
    at.number_input(key="ex_index").set_value(5)
    at = rerun(at)
    link = next(
        link.proto for link in at.get("page_link") if link.label.startswith("Apply filter #0")
    )
    at.query_params.clear()
    at.query_params.update({k: v[0] for k, v in parse_qs(link.query_string).items()})
    at.switch_page(CONVOLUTION)
    at = rerun(at)
    assert any("#5 · true class" in c.value for c in at.caption)  # not the default ring matrix
    assert "input 28×28, padded" in chart_titles(at) and "conv1 #0 as applied" in chart_titles(at)


def test_a_link_value_out_of_range_becomes_the_nearest_bound_and_says_so():
    at = open_page(CONVOLUTION, {"dilation": "99", "stride": "2"})
    assert at.number_input(key="cv_dilation").value == 4
    assert at.number_input(key="cv_stride").value == 2
    assert "dilation=99 is out of range (1–4): 4 used" in at.warning[0].value
