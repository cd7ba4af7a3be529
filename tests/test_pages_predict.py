"""Draw and Faces pages (AppTest), their shared helpers (pickers, uploads, bad files, faces)
and `predict --input face` from the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata
from streamlit.testing.v1 import AppTest

from cnn_core.cli import main
from cnn_core.config import TrainConfig
from cnn_core.data import DataSpec
from cnn_core.data.idx import load_mnist_sample
from cnn_core.demo import DEMO_CONFIG, DEMO_LABEL
from cnn_core.faces import locate_faces
from cnn_core.predict import Predictor
from cnn_core.runs import api
from tests.conftest import PROJECT
from tests.data_fixtures import make_celeba
from tests.image_corpus import (
    BAD,
    animated,
    cmyk_jpeg,
    encode,
    palette_with_transparency,
    sixteen_bit_png,
)
from tests.run_fixtures import finished_run, run_here
from ui.predict_widgets import analyse_photo
from ui.widgets import heat_overlay

ASTRONAUT = Image.fromarray(skdata.astronaut())
ODD_BUT_VALID = {  # decodable: each must give an answer or "no face found", never an error
    "animated-gif-renamed.png": animated("GIF"),
    "animated.webp": animated("WEBP", lossless=True),
    "cmyk.jpg": cmyk_jpeg(),
    "16bit.png": sixteen_bit_png(),
    "palette.png": palette_with_transparency(),
    "alpha.png": encode(Image.new("RGBA", (64, 64), (9, 9, 9, 0)), "PNG"),
    "large.png": encode(Image.new("RGB", (6000, 4000), (200, 180, 160)), "PNG"),
}


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(str(PROJECT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def upload(at: AppTest, key: str, files: list[tuple[str, bytes]]) -> AppTest:
    at.file_uploader(key=key).set_value([(name, content, "image/png") for name, content in files])
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def face_run(isolated_dirs) -> str:
    """A tiny v3 smile model trained for one epoch on a 60-image CelebA-layout fixture."""
    make_celeba(isolated_dirs / "data", n=60)
    config = TrainConfig(
        dataset="celeba", model="v3", epochs=1, train_size=36, val_size=12, threads=1
    )
    run_id = api.submit(config, name="tiny smile", start_worker=False)
    assert run_here(run_id) == 0
    return run_id


def digit_photo() -> tuple[bytes, int]:
    """A held-out MNIST digit as a photo: dark ink on light paper, 5× larger."""
    held_out = load_mnist_sample(DataSpec.of(DEMO_CONFIG)).val
    image = Image.fromarray(255 - held_out.images[0, 0].numpy()).resize((140, 140), Image.BICUBIC)
    return encode(image, "PNG"), int(held_out.labels[0])


# ---- Draw ---------------------------------------------------------------------------------
def test_draw_page_offers_the_demo_model_and_waits_for_a_drawing():
    at = open_page("pages/draw.py")
    assert at.selectbox(key="draw_model").options == [f"{DEMO_LABEL} — handwritten digits"]
    assert "trained on the 5,000-digit offline MNIST sample" in at.markdown[0].value
    assert any("Draw a digit on the pad" in i.value for i in at.info)
    assert not at.metric and not at.error


def test_draw_page_reads_a_photo_of_a_digit_and_rejects_bad_files():
    at = open_page("pages/draw.py")
    at.button_group(key="draw_source").set_value("Photo").run()
    content, label = digit_photo()
    upload(at, "draw_photo", [("digit.png", content)])
    said = {m.label: m.value for m in at.metric}
    assert said["The model says"] == str(label) and float(said["Confidence"][:-1]) > 50
    assert any("Preprocessing + forward pass" in c.value for c in at.caption)
    assert [i.captions[0] for i in at.image] == ["ink", "cropped", "20×20", "28×28"]
    for name in ("text file", "bomb 30000x30000 header"):
        upload(at, "draw_photo", [(f"{name}.png", BAD[name][0])])
        assert BAD[name][1] in at.error[0].value and f"{name}.png" in at.error[0].value
        assert not at.metric


def test_explain_this_answer_opens_the_explain_page_on_that_input():
    at = open_page("pages/draw.py")
    at.button_group(key="draw_source").set_value("Photo").run()
    content, label = digit_photo()
    upload(at, "draw_photo", [("digit.png", content)])
    at.button(key="draw_explain").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Explain"
    assert at.radio(key="ex_source").value == "Drawn digit"
    assert at.selectbox(key="ex_model").value == "demo"
    assert at.session_state["explain_input"].shape == (1, 1, 28, 28)
    assert any("digit.png (what the model saw)" in i.captions[0] for i in at.image)


def test_pickers_keep_each_family_and_several_models_answer_side_by_side(face_run):
    finished_run(name="tiny fashion")
    at = open_page("pages/draw.py")
    options = at.selectbox(key="draw_model").options
    assert len(options) == 2 and options[0].startswith(DEMO_LABEL)  # digits before clothes
    assert "tiny fashion" in options[1] and options[1].endswith("— clothing")
    at.button_group(key="draw_source").set_value("Photo").run()
    upload(at, "draw_photo", [("digit.png", digit_photo()[0])])
    at.multiselect(key="draw_compare").set_value(options).run()
    assert not at.exception and not at.error
    assert len(at.get("plotly_chart")) == 3  # the main answer + one per chosen model
    at.switch_page("pages/faces.py").run()
    faces = at.selectbox(key="faces_model").options
    assert len(faces) == 1 and "tiny smile" in faces[0]  # the digits run is not offered


# ---- Faces --------------------------------------------------------------------------------
def test_faces_page_finds_the_astronaut_and_reports_the_attribute(face_run):
    at = open_page("pages/faces.py")
    upload(at, "faces_upload", [("astronaut.png", encode(ASTRONAUT, "PNG"))])
    assert not at.error and not at.warning
    (metric,) = at.metric
    assert metric.label == "Smiling" and 0 <= int(metric.value[:-1]) <= 100
    captions = [i.captions[0] for i in at.image]
    assert "face 1" in captions and "Grad-CAM: where it looked" in captions
    at.toggle(key="faces_align").set_value(False).run()
    assert "centre crop" in [i.captions[0] for i in at.image] and len(at.metric) == 1


def test_faces_page_camera_photo(face_run):
    at = open_page("pages/faces.py")
    at.toggle(key="faces_camera").set_value(True).run()
    at.camera_input(key="faces_shot").set_value(
        ("shot.jpg", encode(ASTRONAUT, "JPEG"), "image/jpeg")
    )
    at.run()
    assert not at.exception and not at.error and len(at.metric) == 1


def test_faces_page_explains_every_bad_file_and_keeps_working():
    at = open_page("pages/faces.py")
    files = [(f"{name}.png", content) for name, (content, _) in BAD.items()]
    upload(at, "faces_upload", files + list(ODD_BUT_VALID.items()))
    errors = [e.value for e in at.error]
    assert len(errors) == len(BAD)
    for (name, (_, expected)), message in zip(BAD.items(), errors, strict=True):
        assert message.startswith(f"{name}.png") and expected in message and "\n" not in message
    assert len(at.warning) == len(ODD_BUT_VALID)  # "no face found", each with a manual crop
    assert len(at.slider) == 2 * len(ODD_BUT_VALID)  # two crop sliders each; no model: no opacity


def test_no_face_offers_a_manual_crop_that_is_classified(face_run):
    at = open_page("pages/faces.py")
    upload(at, "faces_upload", [("wall.png", encode(Image.new("RGB", (300, 200), "tan"), "PNG"))])
    assert "No face found" in at.warning[0].value
    horizontal = next(s for s in at.slider if s.label.startswith("Crop: left"))
    assert horizontal.value == (68, 231)  # CelebA's 178:218 frame, centred
    horizontal.set_value((10, 150)).run()
    assert "your crop" in [i.captions[0] for i in at.image] and len(at.metric) == 1


# ---- helpers ------------------------------------------------------------------------------
def test_group_photo_gets_one_numbered_aligned_face_each():
    group = Image.fromarray(np.hstack([skdata.astronaut(), skdata.astronaut()[:, ::-1]]))
    result = analyse_photo(group, None)
    assert result.mode == "aligned" and [a.title for a in result.answers] == ["face 1", "face 2"]
    assert all(a.crop.size == (178, 218) and a.prediction is None for a in result.answers)
    assert analyse_photo(Image.new("RGB", (178, 218)), None).mode == "as-is"


def test_heat_overlay_blends_only_where_it_is_hot():
    image = np.full((40, 40, 3), 100, np.uint8)
    heat = np.zeros((8, 8), np.float32)
    heat[:4, :4] = 1.0
    out = heat_overlay(image, heat, 0.6, cmap="jet")
    assert out.shape == image.shape and out.dtype == np.uint8
    assert (out[-10:, -10:] == 100).all() and (out[:10, :10] != 100).any()
    assert (heat_overlay(image, heat, 0.0) == image).all()


# ---- the same path from the CLI ------------------------------------------------------------
def test_cli_predict_face_detects_and_aligns_unless_told_not_to(face_run, isolated_dirs, capsys):
    checkpoint = api.get_run(face_run)["checkpoint"]
    photos = isolated_dirs / "data"
    twin = np.hstack([skdata.astronaut(), skdata.astronaut()[:, ::-1]])
    celeba_file = next((photos / "celeba" / "img_align_celeba").glob("*.jpg"))
    for name, image in {
        "astronaut.png": ASTRONAUT,
        "twin.png": Image.fromarray(twin),
        "wall.png": Image.new("RGB", (300, 200), "tan"),
        "aligned.png": Image.open(celeba_file),
    }.items():
        image.save(photos / name)

    def predict(*args: str):
        assert main(["predict", "--checkpoint", checkpoint, "--input", "face", *args]) == 0
        return capsys.readouterr().out

    names = [str(photos / n) for n in ("astronaut.png", "twin.png", "wall.png", "aligned.png")]
    astronaut, twin_out, wall, aligned = json.loads(predict(*names, "--json"))
    model = Predictor.from_checkpoint(checkpoint)
    ((face, crop),) = [(f.face, f.image) for f in locate_faces(ASTRONAUT).inputs]
    assert astronaut["mode"] == "aligned" and astronaut["faces"][0]["box"] == list(face.box)
    want = model.predict(crop, "face").probabilities
    assert astronaut["faces"][0]["probabilities"] == pytest.approx(want)
    assert [f["face"] for f in twin_out["faces"]] == ["face 1", "face 2"]
    assert wall == {"file": names[2], "mode": "no-face", "faces": []}
    as_is = model.predict(Image.open(celeba_file), "face").probabilities
    assert aligned["mode"] == "as-is"
    assert aligned["faces"][0]["probabilities"] == pytest.approx(as_is)

    centre, passed = json.loads(predict("--no-align", names[0], names[3], "--json"))
    assert centre["mode"] == "centre" and centre["faces"][0]["box"] is None
    want = model.predict(ASTRONAUT, "face").probabilities  # the plain centre crop
    assert centre["faces"][0]["probabilities"] == pytest.approx(want)
    assert passed["faces"][0]["probabilities"] == pytest.approx(as_is)

    text = predict(*names[:3])
    assert "astronaut.png: face 1 at (" in text and "twin.png: face 1 at" in text
    assert "wall.png: no face found (--no-align classifies the centre crop)" in text
