"""The one list of models the Draw, Faces and Explain pages pick from, and the input kind
checkpoints carry (stored, or derived from the family of older checkpoints)."""

from __future__ import annotations

import torch

from cnn_core.checkpoints import checkpoint_input_kind, describe_checkpoint
from cnn_core.demo import DEMO_CHECKPOINT, DEMO_LABEL
from cnn_core.runs import api
from cnn_core.trained import DEMO_KEY, digits_first, trained_models
from tests.run_fixtures import finished_run
from tests.test_new_dataset import open_page


def test_input_kind_is_stored_and_derived_for_older_checkpoints():
    assert checkpoint_input_kind({"family": "digits"}) == "canvas"
    assert checkpoint_input_kind({"family": "faces"}) == "face"
    assert checkpoint_input_kind({"family": "folder"}) == "dataset"
    assert checkpoint_input_kind({"family": "digits", "input_kind": "dataset"}) == "dataset"
    shipped = torch.load(DEMO_CHECKPOINT, weights_only=True)
    assert "input_kind" not in shipped  # written before the kind was stored
    assert describe_checkpoint(DEMO_CHECKPOINT)["input_kind"] == "canvas"
    run_id = finished_run(name="kind", train_size=100, val_size=50)
    stored = torch.load(api.get_run(run_id)["checkpoint"], weights_only=True)
    assert stored["input_kind"] == "canvas"


def test_draw_answers_with_the_best_finished_digits_model_not_the_latest_run():
    weak = finished_run(name="weak digits", dataset="mnist", train_size=100, val_size=200, lr=1e-6)
    strong = finished_run(name="strong digits", dataset="mnist", train_size=600, val_size=200)
    clothes = finished_run(name="latest clothes")  # the newest run: once Draw's default
    assert [m.key for m in trained_models("canvas")] == [clothes, strong, weak, DEMO_KEY]
    models = digits_first(trained_models("canvas"))
    keys = [m.key for m in models]
    assert set(keys[:2]) == {weak, strong} and keys[2:] == [DEMO_KEY, clothes]
    assert models[0].val_accuracy >= models[1].val_accuracy and models[0].reads_digits
    assert models[2].label == f"{DEMO_LABEL} — handwritten digits"
    assert models[3].label.endswith("· v1 · fashion-mnist — clothing")

    at = open_page("pages/draw.py")
    assert at.selectbox(key="draw_model").value == models[0].label
    assert f"**{models[0].label}** is answering" in at.markdown[0].value
    assert models[0].val_images == 200 and "95% CI" in at.markdown[0].value
    assert models[0].accuracy_text in at.markdown[0].value
