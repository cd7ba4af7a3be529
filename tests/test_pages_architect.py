"""AppTest for the Builder page, and the diagram on Train and Explain."""

from __future__ import annotations

import json

from cnn_core.models import MODELS, create_model
from cnn_core.models.saved import delete_saved, load_saved, save_spec, saved_names
from cnn_core.models.summary import count_params
from tests.run_fixtures import finished_run
from tests.test_pages_app import open_page

BLANK = "blank (one conv block)"

GAP_NET = {
    "name": "gap-net",
    "layers": [
        {"type": "conv", "out": 8, "padding": "same"},
        {"type": "relu"},
        {"type": "adaptive_avgpool"},
        {"type": "flatten"},
        {"type": "linear"},
    ],
}


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def spec_json(at) -> dict:
    return json.loads(at.text_area[0].value)


def test_fork_edit_rows_and_json_with_live_checks():
    at = open_page("pages/architect.py")
    assert metrics(at)["Output"] == "10" and not at.error
    at.selectbox(key="a_dataset").set_value("fashion-mnist")
    at.selectbox(key="a_start").set_value("v1")
    at.button(key="a_load").click().run()
    assert metrics(at)["Parameters"] == f"{count_params(create_model('v1', 1, 28, 10)):,}"
    assert at.text_input(key="a_name").value == "my-v1"
    assert at.get("plotly_chart"), "the diagram is drawn"

    before = [layer["name"] for layer in spec_json(at)["layers"]]
    assert before[:3] == ["conv1", "relu1", "pool1"]
    at.selectbox(key="a_row").set_value(2)
    at.button(key="a_up").click().run()
    assert [layer["name"] for layer in spec_json(at)["layers"]][:3] == ["conv1", "pool1", "relu1"]
    at.button(key="a_duplicate").click().run()  # the moved row stays selected
    layers = spec_json(at)["layers"]
    assert len(layers) == len(before) + 1 and layers[2] == {"type": "maxpool"}
    at.button(key="a_remove").click().run()
    at.button(key="a_down").click().run()
    at.selectbox(key="a_row").set_value(0)
    at.selectbox(key="a_new_type").set_value("batchnorm")
    at.button(key="a_add").click().run()
    assert [layer["type"] for layer in spec_json(at)["layers"]][:3] == [
        "conv",
        "batchnorm",
        "maxpool",
    ]
    assert not at.error

    spec = spec_json(at)
    spec["layers"][0].update(kernel=31, padding=0)  # does not fit a 28 px input
    at.text_area[0].input(json.dumps(spec)).run()
    assert at.error[0].value.startswith("layer 1 (conv1):") and "1×28×28" in at.error[0].value
    assert "Parameters" not in metrics(at)
    at.text_area[0].input("{not json").run()
    assert "not valid JSON" in at.error[0].value


def test_measure_and_save_make_a_model_choice_on_train():
    at = open_page("pages/architect.py")
    at.text_input(key="a_name").input("small-net").run()
    at.number_input(key="a_images").set_value(6400).run()
    at.button(key="a_measure").click().run()
    assert metrics(at)["Estimated time per epoch"].split()[-1] in ("s", "min")
    at.button(key="a_save").click().run()
    assert at.success and saved_names() == ["small-net"]
    assert [layer["type"] for layer in load_saved("small-net")["layers"]][-1] == "linear"

    at.text_input(key="a_name").input("v3").run()
    assert at.button(key="a_save").disabled and "built-in" in at.info[0].value
    assert not [b for b in at.button if b.key == "a_delete"], "a built-in model has no delete"

    train = open_page("pages/train.py")
    assert "small-net — custom architecture (JSON spec)" in train.selectbox(key="t_model").options
    train.selectbox(key="t_model").set_value("small-net").run()
    assert not train.exception and train.get("plotly_chart")


def test_explain_shows_the_diagram_of_a_custom_run():
    save_spec(GAP_NET, list(MODELS))
    run_id = finished_run(model="gap-net", name="gap run")
    at = open_page("pages/explain.py", {"run": run_id})
    assert not at.exception
    diagram = next(e for e in at.expander if e.label == "Network diagram")
    assert diagram.get("plotly_chart")


def test_a_custom_run_on_compare_beside_v1():
    save_spec({**GAP_NET, "name": "cmp-net"}, list(MODELS))
    custom = finished_run(model="cmp-net", name="custom")
    delete_saved("cmp-net")  # Compare works from the run's own spec
    book = finished_run(name="book")
    at = open_page("pages/compare.py", {"runs": f"{custom},{book}"})
    assert not at.exception, [e.value for e in at.exception]
    assert any("model" in c.value for c in at.caption)


def test_delete_a_saved_spec_from_the_builder():
    at = open_page("pages/architect.py")
    at.text_input(key="a_name").input("gone-net").run()
    assert not [b for b in at.button if b.key == "a_delete"], "nothing saved yet"
    at.button(key="a_save").click().run()
    assert saved_names() == ["gone-net"]
    at.button(key="a_delete").click().run()
    assert saved_names() == [] and "Deleted the saved spec gone-net" in at.success[0].value
    assert not at.error and at.button(key="a_save").label == "Save gone-net"


def test_the_builder_counts_layers_from_one_leaves_empty_cells_empty_and_names_its_source():
    at = open_page("pages/architect.py")
    assert at.selectbox(key="a_start").value == BLANK  # the starter net is what the table holds
    editor = at.dataframe[0]
    assert list(editor.value.index) == [1, 2, 3, 4, 5] and editor.proto.placeholder == ""
    assert at.selectbox(key="a_row").options[0] == "1 · conv"  # as errors say "layer 1 (conv1)"
    assert list(at.dataframe[1].value["#"]) == [1, 2, 3, 4, 5]  # the shape flow

    at.selectbox(key="a_start").set_value("v2").run()  # choosing a start loads it
    assert at.text_input(key="a_name").value == "my-v2"
    at.text_input(key="a_name").set_value("views-net").run()
    at.button(key="a_save").click().run()
    assert at.selectbox(key="a_start").value == "views-net"
    at.selectbox(key="a_dataset").set_value("mnist").run()
    at.switch_page("pages/home.py").run()
    at.switch_page("pages/architect.py").run()  # coming back: the saved net, named so
    assert at.selectbox(key="a_start").value == "views-net"
    assert at.selectbox(key="a_dataset").value == "mnist"
    assert at.text_input(key="a_name").value == "views-net" and not at.error
