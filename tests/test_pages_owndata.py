"""Your data, Data health and Embedding map pages (AppTest): create a dataset, add files, a
camera shot and zips (good and hostile), train from it; find planted label errors and save
exclusions; draw a run's embedding map."""

from __future__ import annotations

import io
import json

from PIL import Image
from streamlit.testing.v1 import AppTest

from cnn_core.data import builder
from cnn_core.data.choices import load_choices
from cnn_core.runs import api
from cnn_core.settings import default_data_dir
from tests.conftest import PROJECT
from tests.run_fixtures import finished_run, wait_for
from tests.test_builder import good_zip, make_zip, png
from tests.test_health import FLIPPED, write_folder
from tests.test_pages_app import open_page
from ui.owndata_widgets import selected_index


def rerun(at: AppTest) -> AppTest:
    """Run again; no exception (user errors shown with st.error are checked by the tests)."""
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def successes(at: AppTest) -> str:
    return " | ".join(s.value for s in at.success)


def jpeg(colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_create_a_dataset_add_files_and_camera_shots_then_train_on_it():
    at = open_page("pages/dataset_builder.py")
    assert "No dataset of your own yet" in at.info[0].value
    at.text_input(key="yd_new_name").input("my pets")
    at.text_input(key="yd_new_classes").input("cat, dog")
    rerun(at)
    at.button(key="yd_create").click()
    rerun(at)
    assert at.selectbox(key="yd_dataset").value == "my pets"
    assert [m.value for m in at.metric] == ["2", "0"]
    assert at.button(key="yd_train").disabled  # empty classes cannot train yet

    at.selectbox(key="yd_target").select("cat")
    at.file_uploader(key="yd_files").set_value(
        [("a.png", png(40), "image/png"), ("b.png", b"not an image", "image/png")]
    )
    rerun(at)
    at.button(key="yd_add_files").click()
    rerun(at)
    assert "Added 1 image(s) to my pets" in successes(at)
    assert "1 file(s) skipped" in at.warning[0].value

    at.selectbox(key="yd_target").select("dog")
    at.camera_input(key="yd_camera").set_value(("shot.jpg", jpeg(), "image/jpeg"))
    rerun(at)
    assert "Added 1 image(s)" in successes(at)
    rerun(at)  # the same shot is not added twice
    counts = {c: len(f) for c, f in builder.list_images("my pets").items()}
    assert counts == {"cat": 1, "dog": 1}
    urls = [url for e in at.main if type(e).__name__ == "Image" for url in e.value]
    assert len(urls) == 2 and all(u.startswith("data:image/jpeg;base64,") for u in urls)
    assert builder.list_images("my pets")["dog"][0].suffix == ".jpg"

    assert at.get("download_button")
    at.button(key="yd_train").click()
    rerun(at)
    assert at.session_state["t_dataset"] == "image-folder"
    assert at.session_state["t_data_dir"] == "datasets/my pets"
    assert at.title[0].value == "Train"


def test_zip_import_good_and_hostile_and_class_edits():
    at = open_page("pages/dataset_builder.py")
    at.file_uploader(key="yd_zip").set_value(
        ("evil.zip", make_zip({"a/x.png": png(1), "../y.png": png(2)}), "application/zip")
    )
    rerun(at)
    assert at.text_input(key="yd_zip_name").placeholder == "evil"
    at.button(key="yd_import").click()
    rerun(at)
    assert "escaping its folder" in at.error[0].value
    assert builder.list_datasets() == []

    at.file_uploader(key="yd_zip").set_value(("pets.zip", good_zip(per_class=3), "application/zip"))
    rerun(at)
    at.button(key="yd_import").click()
    rerun(at)
    assert "Added 6 image(s) to pets" in successes(at)
    assert at.selectbox(key="yd_dataset").value == "pets"
    at.text_input(key="yd_rename_cat").input("kitten")
    rerun(at)
    at.button(key="yd_do_rename_cat").click()
    rerun(at)
    assert list(builder.list_images("pets")) == ["dog", "kitten"]
    at.button(key="yd_delete_image_dog").click()
    rerun(at)
    assert len(builder.list_images("pets")["dog"]) == 2


def test_health_page_finds_planted_flips_and_saves_exclusions():
    name = write_folder(per_class=20)
    at = open_page("pages/health.py")
    at.selectbox(key="dh_dataset").select("image-folder")
    rerun(at)
    at.text_input(key="dh_data_dir").input(name)
    at.number_input(key="dh_epochs").set_value(4)
    rerun(at)
    at.button(key="dh_run").click()
    rerun(at)
    assert "Checking in the background" in at.info[0].value  # a worker process trains, not the page
    wait_for(lambda: "dh_job" not in rerun(at).session_state, 180, "the health check", 0.5)
    rerun(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Images"] == "60" and int(metrics["Likely label errors"]) >= len(FLIPPED)
    choices = [s for s in at.selectbox if s.key and s.key.startswith("dh_lab_")]
    assert len(choices) == int(metrics["Likely label errors"])
    choices[0].select("exclude")
    choices[1].select(choices[1].options[2])  # relabel → suggested class
    rerun(at)
    at.button(key="dh_save").click()
    rerun(at)
    assert "Saved version 1: 1 excluded, 1 relabelled" in successes(at)
    saved = load_choices(default_data_dir() / name)
    planted = {f"{wrong}/{cls}{i}.png" for (cls, i), wrong in FLIPPED.items()}
    assert saved.exclude | set(saved.relabel) <= planted


def test_embedding_map_draws_a_runs_split_and_picks_a_point(monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr("cnn_core.demo.DEMO_CHECKPOINT", PROJECT / "no-such.pt")
        at = open_page("pages/embedding_map.py")
        assert "No finished run yet" in at.info[0].value
    run_id = finished_run()
    at = open_page("pages/embedding_map.py")
    at.selectbox(key="em_run").select(run_id)
    at.number_input(key="em_limit").set_value(200)
    rerun(at)
    assert at.get("plotly_chart")
    assert any(c.value.startswith("200 val images") for c in at.caption)
    config = api.get_run(run_id)["config"]
    issues = {"label_issues": [{"split": "val", "index": 3}, {"split": "train", "index": 4}]}
    at.session_state["dh_result"] = (json.dumps(config), issues, None)
    rerun(at)
    assert any("· 1 flagged" in c.value for c in at.caption)  # the health check's finding
    at.session_state["dh_result"] = (json.dumps({**config, "seed": 7}), issues, None)
    rerun(at)
    assert any("· 0 flagged" in c.value for c in at.caption)  # another split: not this image
    state = {"selection": {"points": [{"customdata": [17, "Bag", 0.9]}]}}
    assert selected_index(state) == 17 and selected_index({"selection": {"points": []}}) is None
