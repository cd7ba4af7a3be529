"""``datasets fetch celeba`` against a local server answering like each source: the real
download code, resumed after a kill, quota pages named and never kept, checksums checked."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections import namedtuple

import pytest
import torch

from cnn_core.cli.main import main
from cnn_core.config import TrainConfig
from cnn_core.data import DataSpec, celeba_fetch, download, load_dataset
from cnn_core.data.celeba_fetch import fetch_celeba
from tests import celeba_fixtures as fx
from tests.fetch_server import DRIVE_NAMES, serve_celeba
from tests.run_fixtures import wait_for

CONFIG = dict(dataset="celeba", image_size=16, train_size=12, val_size=5, attribute="Smiling")
Usage = namedtuple("Usage", "total used free")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    src = fx.source(tmp_path_factory.mktemp("fetch-source"))
    fx.image_zip(src, src / "img_align_celeba.zip")
    return src


@pytest.fixture(scope="module")
def reference(source, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNN_LAB_DATA_ROOTS", str(source.parent))
        mp.setenv("CNN_LAB_CACHE_DIR", str(tmp_path_factory.mktemp("ref-cache")))
        return load_dataset(DataSpec.of(TrainConfig(**CONFIG)))


@pytest.fixture
def server(source, tmp_path, monkeypatch):
    srv = serve_celeba(source, tmp_path, monkeypatch)
    yield srv
    srv.close()


def same_as_reference(reference):
    bundle = load_dataset(DataSpec.of(TrainConfig(**CONFIG)))
    for split in ("train", "val", "test"):
        assert torch.equal(bundle.split(split).images, reference.split(split).images)
        assert torch.equal(bundle.split(split).labels, reference.split(split).labels)


def data_files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_hugging_face_parquet_fetched_checked_converted(server, reference, tmp_path, capsys):
    assert main(["datasets", "fetch", "celeba", "--source", "hf", "--json"]) == 0
    out, err = capsys.readouterr()
    assert err.startswith("CelebA licence terms") and "non-commercial" in err.splitlines()[0]
    assert "MB/s" in err  # progress: bytes, rate
    import json

    result = json.loads(out.strip().splitlines()[-1])
    assert result | {"folder": ""} == {
        "source": "hf",
        "folder": "",
        "layout": "torchvision",
        "images": 30,
        "train": 18,
        "val": 6,
        "test": 6,
    }
    same_as_reference(reference)
    files = data_files(tmp_path / "data")
    assert not [f for f in files if f.endswith(".parquet") or "/." in f]  # shards removed
    assert main(["datasets", "fetch", "celeba", "--json"]) == 0  # present: nothing fetched again
    assert "already present" in capsys.readouterr().out


def test_auto_names_each_refusal_and_never_keeps_a_quota_page(server, tmp_path, capsys):
    server.hf_status = 403
    server.drive_mode["img_align_celeba.zip"] = "quota"
    assert main(["datasets", "fetch", "celeba"]) == 2
    err = capsys.readouterr().err
    assert "Hugging Face: " in err and "— trying the next source" in err
    assert "Create New Token" in err and "~/.kaggle/kaggle.json" in err
    assert "Google Drive refused the download: daily quota reached (img_align_celeba.zip)" in err
    assert err.strip().splitlines()[-1].startswith("error: CelebA could not be fetched")
    root = tmp_path / "data"
    for path in root.rglob("*"):
        if path.is_file():
            assert b"<html" not in path.read_bytes().lower(), path
    assert not (root / "celeba" / "img_align_celeba").exists()


def test_a_virus_scan_page_is_confirmed(server, reference):
    server.drive_mode["img_align_celeba.zip"] = "virus"
    result = fetch_celeba("drive")
    assert result["source"] == "drive" and result["images"] == 30
    assert len(server.requests_for("img_align_celeba.zip")) == 2  # the page, then the file
    same_as_reference(reference)


def _fetch_in_child():
    fetch_celeba("drive")


def test_a_killed_download_resumes_without_fetching_finished_files(
    server, reference, tmp_path, monkeypatch
):
    monkeypatch.setattr(download, "CHUNK", 1024)  # several chunks even for the tiny fixture zip
    server.drive_mode["img_align_celeba.zip"] = "pause"
    child = multiprocessing.get_context("fork").Process(target=_fetch_in_child)
    child.start()
    part = tmp_path / "data" / "celeba" / ".celeba-download" / "drive" / "img_align_celeba.zip.part"
    wait_for(
        lambda: server.paused.is_set() and part.is_file() and part.stat().st_size > 0, 60, "half"
    )
    os.kill(child.pid, signal.SIGKILL)
    child.join()
    server.release.set()
    size = part.stat().st_size
    del server.drive_mode["img_align_celeba.zip"]

    assert fetch_celeba("drive")["images"] == 30
    assert [r[2] for r in server.requests_for("img_align_celeba.zip")] == [None, f"bytes={size}-"]
    for name in DRIVE_NAMES[:2]:  # finished before the kill: never fetched again
        assert len(server.requests_for(name)) == 1
    same_as_reference(reference)
    assert not (tmp_path / "data" / "celeba" / ".celeba-download").exists()
    assert not (tmp_path / "data" / "celeba" / "img_align_celeba.zip").exists()


def test_wrong_checksum_403_and_no_space_are_one_line(server, tmp_path, monkeypatch, capsys):
    table = [list(row) for row in celeba_fetch.DRIVE_FILES]
    table[0][2] = "0" * 32
    monkeypatch.setattr(celeba_fetch, "DRIVE_FILES", [tuple(r) for r in table])
    assert main(["datasets", "fetch", "celeba", "--source", "drive"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "list_attr_celeba.txt: checksum mismatch" in err and "deleted" in err
    assert not [f for f in data_files(tmp_path / "data") if "list_attr" in f]

    server.drive_mode["list_attr_celeba.txt"] = "403"
    assert main(["datasets", "fetch", "celeba", "--source", "drive"]) == 2
    assert "Google Drive refused the download: the server answered 403" in capsys.readouterr().err

    del server.drive_mode["list_attr_celeba.txt"]
    monkeypatch.setattr(download.shutil, "disk_usage", lambda path: Usage(10**9, 10**9, 10))
    assert main(["datasets", "fetch", "celeba", "--source", "drive"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: not enough space for list_attr_celeba.txt")
