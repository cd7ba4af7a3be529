"""One decoder for every entry point: phone photos (EXIF orientation) train upright on the very
pixels ``predict`` and the thumbnails see, and a bad file gets the same one-line reason from
the loader, data health, the dataset builder and ``predict``."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from cnn_core.config import TrainConfig
from cnn_core.data import DataSpec, builder, load_dataset
from cnn_core.errors import ImageError
from cnn_core.health.report import check_health
from cnn_core.images import DECODER_VERSION
from cnn_core.predict import Predictor
from tests.data_fixtures import make_celeba, make_image_folder
from tests.image_corpus import JPEG, encode, png_with_size, unsupported_png
from ui.widgets import thumbnail_uri

SIZE = 16
# EXIF orientation -> how the camera stored the upright picture (the viewer undoes it)
STORED = {
    1: None,
    3: Image.Transpose.ROTATE_180,
    6: Image.Transpose.ROTATE_90,
    8: Image.Transpose.ROTATE_270,
}


class Recorder(nn.Module):
    """A two-class model that keeps every input it is given (and answers 50/50)."""

    def __init__(self):
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.clone())
        return torch.zeros(len(x), 2)


def upright(k: int) -> Image.Image:
    """48 wide × 32 tall, four quadrants of clearly different colours (turned by ``k``), and
    one marker pixel so that every file differs."""
    colours = [(230, 20, 20), (20, 230, 20), (20, 20, 230), (230, 230, 20)]
    quadrants = [colours[(q + k) % 4] for q in range(4)]
    pixels = np.array(quadrants, np.uint8).reshape(2, 2, 3).repeat(16, axis=0).repeat(24, axis=1)
    pixels[0, 0] = (k * 17) % 256
    return Image.fromarray(pixels)


def phone_photo(k: int, orientation: int) -> bytes:
    """``upright(k)`` as a camera stores it: pixels turned, EXIF orientation saying how to undo it."""
    stored = (
        upright(k) if STORED[orientation] is None else upright(k).transpose(STORED[orientation])
    )
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, "JPEG", quality=95, exif=exif.tobytes())


def as_chw(img: Image.Image) -> np.ndarray:
    return np.asarray(img.resize((SIZE, SIZE), Image.Resampling.BILINEAR)).transpose(2, 0, 1)


def folder_config(data_dir: str) -> TrainConfig:
    return TrainConfig(dataset="image-folder", data_dir=data_dir, image_size=SIZE, threads=1)


def predictor(config: TrainConfig) -> Predictor:
    return Predictor(
        Recorder(), config, ["a", "b"], input_kind="dataset", in_channels=3, image_size=SIZE
    )


def test_exif_rotated_celeba_photos_decode_upright_and_a_new_decoder_is_not_served_stale_cache(
    tmp_path, monkeypatch
):
    folder = make_celeba(tmp_path / "data", n=10)
    face = np.zeros((218, 178, 3), np.uint8)
    face[:109] = (230, 20, 20)  # red above, blue below
    face[109:] = (20, 20, 230)
    for path in (folder / "img_align_celeba").iterdir():
        stored = Image.fromarray(face).transpose(STORED[6])  # 218 wide × 178 tall on disk
        exif = Image.Exif()
        exif[0x0112] = 6
        stored.save(path, quality=95, exif=exif.tobytes())
    config = TrainConfig(dataset="celeba", image_size=16, train_size=4, val_size=2)
    images = load_dataset(DataSpec.of(config)).train.images.numpy().astype(int)  # [4, 3, 19, 16]
    assert (images[:, 0, :8] > 180).all() and (images[:, 2, :8] < 80).all()  # red on top
    assert (images[:, 2, -8:] > 180).all() and (images[:, 0, -8:] < 80).all()  # blue below
    caches = sorted((tmp_path / "cache").glob("celeba-*.npy"))
    assert len(caches) == 3
    monkeypatch.setattr("cnn_core.data.celeba.DECODER_VERSION", DECODER_VERSION + 1)
    load_dataset(DataSpec.of(config))
    assert len(list((tmp_path / "cache").glob("celeba-*.npy"))) == 6  # decoded again, new keys


def test_exif_rotated_photos_train_on_the_upright_pixels_predict_and_thumbnails_see(tmp_path):
    root = tmp_path / "data" / "phone"
    files = []
    for c, cls in enumerate("ab"):
        (root / cls).mkdir(parents=True)
        for orientation in STORED:
            k = 4 * c + len(files) % 4
            path = root / cls / f"o{orientation}.jpg"
            path.write_bytes(phone_photo(k, orientation))
            files.append((path, upright(k)))
    config = folder_config("phone")
    bundle = load_dataset(DataSpec.of(config))
    trained = torch.cat([bundle.train.images, bundle.val.images]).numpy()
    assert trained.shape == (len(files), 3, SIZE, SIZE)
    model = predictor(config)
    for path, picture in files:
        model.predict(path)
        seen = np.rint(model.model.seen[-1][0].numpy() * 255).astype(np.uint8)
        matches = [i for i, image in enumerate(trained) if np.array_equal(image, seen)]
        assert len(matches) == 1, f"{path.name}: predict saw pixels no training image has"
        reference = as_chw(picture).astype(int)
        assert np.abs(seen.astype(int) - reference).mean() < 10, f"{path.name} is not upright"
        uri = thumbnail_uri(str(path), path.stat().st_mtime_ns)
        thumb = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
        assert thumb.size == (48, 32)  # upright; thumbnails never enlarge
        assert np.abs(as_chw(thumb).astype(int) - reference).mean() < 10


BAD_FILES = {  # name -> (bytes, what the reason says)
    "truncated.jpg": (JPEG[: len(JPEG) // 2], "truncated or corrupt"),
    "bomb.png": (png_with_size(30000, 30000), "too large"),
    "mode.png": (unsupported_png(), "pixel format"),
}


def test_a_bad_file_gets_the_same_one_line_reason_from_every_entry_point(tmp_path):
    root = make_image_folder(tmp_path / "data" / "mixed", n_per_class=4)
    for name, (data, _) in BAD_FILES.items():
        (root / "a" / name).write_bytes(data)
    config = folder_config("mixed")
    bundle = load_dataset(DataSpec.of(config))
    assert len(bundle.train) + len(bundle.val) == 8
    health = check_health(config, labels=False)
    unreadable = {row["file"]: row["reason"] for row in health["unreadable"]}
    assert set(unreadable) == {f"a/{name}" for name in BAD_FILES}
    builder.create_dataset("mine", ["a"])
    imported = builder.add_images("mine", "a", [(n, d) for n, (d, _) in BAD_FILES.items()])
    built = {row["file"]: row["reason"] for row in imported.skipped}
    model = predictor(config)
    for name, (_, expected) in BAD_FILES.items():
        reason = unreadable[f"a/{name}"]
        assert expected in reason and "\n" not in reason
        assert f"a/{name}: {reason}" in bundle.note
        assert built[f"a/{name}"] == reason
        with pytest.raises(ImageError) as info:
            model.predict(root / "a" / name)
        assert str(info.value) == f"{name}: {reason}"
        assert (info.value.file, info.value.reason) == (name, reason)
