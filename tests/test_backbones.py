"""Transfer learning: a pretrained torchvision backbone + a new head. The ImageNet weights come
through torchvision's weights API from the file the test writes where it looks
(``$TORCH_HOME/hub/checkpoints``); downloads are refused, so no test reaches the internet."""

from __future__ import annotations

import urllib.error

import numpy as np
import pytest
import torch

from cnn_core.config import TrainConfig
from cnn_core.errors import CheckpointError
from cnn_core.health.embedding import embedding_map
from cnn_core.interpret.attributions import attribute, gradcam_layer
from cnn_core.interpret.features import feature_maps
from cnn_core.models import PRETRAINED, architecture, create_model, describe_model
from cnn_core.models.backbones import ARCHS, BACKBONE_LR_SCALE, weights_file
from cnn_core.models.summary import diagram_blocks, summarize
from cnn_core.predict import Predictor
from cnn_core.runs import api
from cnn_core.runs.exporters import export_run
from cnn_core.settings import default_data_dir
from cnn_core.trainer import fit
from tests.data_fixtures import make_image_folder, make_shapes
from tests.layer_oracle import measured_leaves
from tests.run_fixtures import cli_here, run_here

MOBILENET = ARCHS["mobilenet_v3_small"]


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty TORCH_HOME where every download fails as it does offline."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(url, dst, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return tmp_path / "torch"


def write_weights(arch=MOBILENET, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict of torchvision's own network (random, seeded) saved under the file name
    the weights API expects; returns it."""
    import torchvision.models as tvm

    torch.manual_seed(seed)
    state = getattr(tvm, arch.builder)(weights=None).state_dict()
    path = weights_file(arch)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def shapes_run(**values) -> TrainConfig:
    make_shapes(default_data_dir() / "shapes", per_class=8, size=32)
    base = dict(dataset="image-folder", data_dir="shapes", image_size=32, epochs=1, threads=1)
    return TrainConfig(**{**base, **values})


def test_head_only_training_loads_the_weights_file_and_keeps_the_backbone(torch_home):
    state = write_weights()
    result = fit(shapes_run(model="mobilenet-head", batch_size=4))
    model = result.state.model
    backbone = model.backbone.net.state_dict()
    for key, value in state.items():
        if not key.startswith("classifier."):
            assert torch.equal(backbone[key], value), key  # weights and BN statistics kept
    assert not any(p.requires_grad for p in model.backbone.parameters())
    groups = result.state.optimizer.param_groups
    assert [g["lr_scale"] for g in groups] == [1.0] and len(groups[0]["params"]) == 2


def test_whole_net_fine_tuning_scales_the_backbone_learning_rate(torch_home):
    state = write_weights()
    result = fit(shapes_run(model="mobilenet-tune", batch_size=4, lr=1e-3))
    groups = result.state.optimizer.param_groups
    assert [g["lr_scale"] for g in groups] == [1.0, BACKBONE_LR_SCALE]
    assert groups[1]["lr"] == pytest.approx(groups[0]["lr"] * BACKBONE_LR_SCALE)
    first = result.state.model.backbone.net.features[0][0].weight
    assert not torch.equal(first, state["features.0.0.weight"])  # the backbone learned too


def test_offline_without_the_file_is_one_line_naming_file_and_folder(torch_home, capsys):
    with pytest.raises(CheckpointError) as err:
        fit(shapes_run(model="mobilenet-head"))
    message = str(err.value)
    assert "mobilenet_v3_small-047dcff4.pth" in message and str(torch_home / "hub") in message
    assert "could not be downloaded (<urlopen error no network>)" in message
    code, _, stderr = cli_here(
        capsys, "train", "--dataset", "image-folder", "--data-dir", str(default_data_dir() / "shapes"), "--model",
        "mobilenet-head", "--image-size", "32", "--epochs", "1", "--batch-size", "3",
    )  # fmt: skip
    assert code == 2 and len(stderr.strip().splitlines()) == 1 and "TORCH_HOME" in stderr


@pytest.mark.parametrize("content", [b"not a weights file", None])
def test_a_corrupt_weights_file_is_one_line(torch_home, content):
    path = weights_file(MOBILENET)
    path.parent.mkdir(parents=True)
    if content is None:  # a real file of the wrong network
        torch.save({"conv.weight": torch.zeros(3)}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match="is not a usable mobilenet_v3_small weights file"):
        fit(shapes_run(model="mobilenet-head"))


def test_grey_28px_images_are_converted_for_the_backbone(torch_home):
    write_weights()
    make_image_folder(default_data_dir() / "grey", n_per_class=6, mode="L", size=(28, 28))
    config = TrainConfig(dataset="image-folder", data_dir="grey", model="mobilenet-head", epochs=1)
    result = fit(config)
    assert result.state.data.in_channels == 1 and result.completed
    desc = describe_model("mobilenet-head", 1, 28, 2)
    assert desc["layers"][0]["type"] == "mobilenet_v3_small"
    assert desc["layers"][0]["output_shape"] == [576] and desc["flops"] > 100e6


@pytest.mark.parametrize("name", list(PRETRAINED))
def test_summaries_count_the_backbones_own_cost_once(name):
    """Parameters, FLOPs and shapes equal torch's own measurement (the oracle that proves the
    arithmetic of the other models); the diagram draws the backbone as one block."""
    model = create_model(name, 1, 40, 10)
    summary = summarize(model, 1, 40)
    table = [
        {k: r[k] for k in ("name", "output_shape", "params", "flops")} for r in summary["layers"]
    ]
    assert table == measured_leaves(model, 1, 40)
    assert summary["params"] == sum(p.numel() for p in model.parameters())
    blocks = diagram_blocks(model, 1, 40)
    kind = "mobilenet_v3_small" if name.startswith("mobilenet") else "resnet18"
    assert [b["type"] for b in blocks] == ["Input", kind, "dropout", "linear"]
    spec = architecture(name, 1, 40, 10)  # read back as a spec and built again: the same net
    assert create_model(spec["name"], 1, 40, 10, spec=spec).state_dict().keys() == (
        model.state_dict().keys()
    )


def test_a_backbone_run_trains_in_the_background_exports_and_explains(torch_home):
    write_weights()
    config = shapes_run(model="mobilenet-head", epochs=2, batch_size=4)
    run_id = api.submit(config, start_worker=False)
    assert run_here(run_id) == 0
    run = api.get_run(run_id)
    assert run["status"] == "completed"
    predictor = Predictor.from_checkpoint(run["checkpoint"])
    x = torch.rand(3, 32, 32)
    assert gradcam_layer(predictor.model) == "backbone.net.features.12.0"  # the last conv block
    cam = attribute(predictor, x, "gradcam")
    assert cam.map.shape == (32, 32) and np.isfinite(cam.map).all()
    maps = feature_maps(predictor.model, x)
    assert list(maps)[-1] == "backbone.net.avgpool" and maps["backbone.net.avgpool"].shape == (
        576,
        1,
        1,
    )
    emap = embedding_map(run["checkpoint"], "train", "pca")
    assert emap.xy.shape[1] == 2
    out = export_run(run_id, "onnx")
    assert out["max_abs_diff"] < 1e-3
