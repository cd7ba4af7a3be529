"""Every CelebA layout people end up with, built on the fly from one tiny torchvision-layout
copy (``tests.data_fixtures.make_celeba``): the same JPEG bytes and labels in each, so each
must load to the same images and labels."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from tests.data_fixtures import make_celeba


def source(tmp: Path, n: int = 30) -> Path:
    """The reference copy (torchvision layout) in ``tmp/source/celeba``."""
    return make_celeba(tmp / "source", n=n, layout="torchvision")


def _rows(src: Path) -> tuple[list[str], list[list[str]], list[tuple[str, str]]]:
    lines = (src / "list_attr_celeba.txt").read_text().splitlines()
    header = lines[1].split()
    rows = [line.split() for line in lines[2:]]
    parts = [
        tuple(line.split()) for line in (src / "list_eval_partition.txt").read_text().splitlines()
    ]
    return header, rows, parts


def csv_lists(src: Path, dest: Path, attr: bool = True, partition: bool = True) -> None:
    """Kaggle's ``.csv`` lists of ``src`` in ``dest``."""
    header, rows, parts = _rows(src)
    dest.mkdir(parents=True, exist_ok=True)
    if attr:
        text = ["image_id," + ",".join(header)] + [",".join(r) for r in rows]
        (dest / "list_attr_celeba.csv").write_text("\n".join(text) + "\n")
    if partition:
        text = ["image_id,partition"] + [f"{name},{p}" for name, p in parts]
        (dest / "list_eval_partition.csv").write_text("\n".join(text) + "\n")


def images(src: Path) -> list[Path]:
    return sorted((src / "img_align_celeba").glob("*.jpg"))


def image_zip(src: Path, path: Path, top: str | None = "img_align_celeba") -> Path:
    """``img_align_celeba.zip`` of ``src``'s images (inside ``top/`` or loose)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for image in images(src):
            zf.write(image, f"{top}/{image.name}" if top else image.name)
    return path


def zip_tree(folder: Path, path: Path, top: str | None = None) -> Path:
    """A zip of everything in ``folder`` (under ``top/`` when given)."""
    with zipfile.ZipFile(path, "w") as zf:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                name = file.relative_to(folder).as_posix()
                zf.write(file, f"{top}/{name}" if top else name)
    return path


def parquet_shards(src: Path, dest: Path, bool_attributes: bool = True) -> list[Path]:
    """Hugging Face shards (``train/valid/test-00000-of-00001.parquet``): ``image`` as
    {bytes, path}, ``celeb_id`` and the 40 attributes (bool, as the Hub mirror has them)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    header, rows, parts = _rows(src)
    split_of = dict(parts)
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for split, p in (("train", "0"), ("valid", "1"), ("test", "2")):
        chosen = [r for r in rows if split_of[r[0]] == p]
        columns = {
            "image": [
                {"bytes": (src / "img_align_celeba" / r[0]).read_bytes(), "path": r[0]}
                for r in chosen
            ],
            "celeb_id": [i for i, _ in enumerate(chosen)],
        }
        for j, name in enumerate(header):
            values = [int(r[1 + j]) for r in chosen]
            columns[name] = [v == 1 for v in values] if bool_attributes else values
        path = dest / f"{split}-00000-of-00001.parquet"
        pq.write_table(pa.table(columns), path)
        written.append(path)
    return written


def build(layout: str, src: Path, root: Path) -> Path:
    """Lay ``src`` out in data root ``root`` as ``layout``; returns what was written."""
    folder = root / "celeba"
    if layout == "torchvision":
        shutil.copytree(src, folder)
    elif layout == "kaggle-nested":
        nested = folder / "img_align_celeba" / "img_align_celeba"
        shutil.copytree(src / "img_align_celeba", nested)
        csv_lists(src, folder)
    elif layout == "kaggle-inner-zip":
        image_zip(src, folder / "img_align_celeba.zip")
        csv_lists(src, folder)
    elif layout == "kaggle-archive":  # Kaggle's download: archive.zip of the nested layout
        staging = root.parent / "kaggle-archive"
        shutil.copytree(src / "img_align_celeba", staging / "img_align_celeba" / "img_align_celeba")
        csv_lists(src, staging)
        folder.mkdir(parents=True)
        zip_tree(staging, folder / "archive.zip")
    elif layout == "official":  # the Drive/Baidu tree
        (folder / "Anno").mkdir(parents=True)
        (folder / "Eval").mkdir()
        shutil.copy(src / "list_attr_celeba.txt", folder / "Anno")
        shutil.copy(src / "list_eval_partition.txt", folder / "Eval")
        image_zip(src, folder / "Img" / "img_align_celeba.zip")
    elif layout == "official-loose-zip":  # an image zip with the JPEGs at its top
        shutil.copy(src / "list_attr_celeba.txt", folder.mkdir(parents=True) or folder)
        shutil.copy(src / "list_eval_partition.txt", folder)
        image_zip(src, folder / "img_align_celeba.zip", top=None)
    elif layout == "book":  # the book's celeba.zip beside the CelebA folder: celeba/ inside
        staging = root.parent / "book"
        staging.mkdir(parents=True)
        shutil.copy(src / "list_attr_celeba.txt", staging)
        shutil.copy(src / "list_eval_partition.txt", staging)
        image_zip(src, staging / "img_align_celeba.zip")
        root.mkdir(parents=True, exist_ok=True)
        zip_tree(staging, root / "celeba.zip", top="celeba")
    elif layout == "parquet":
        parquet_shards(src, folder / "img_align+identity+attr")
    elif layout == "mixed":  # attributes as .txt, partitions as .csv
        shutil.copytree(src / "img_align_celeba", folder / "img_align_celeba")
        shutil.copy(src / "list_attr_celeba.txt", folder)
        csv_lists(src, folder, attr=False)
    else:
        raise ValueError(layout)
    return folder


LAYOUTS = (
    "torchvision",
    "kaggle-nested",
    "kaggle-inner-zip",
    "kaggle-archive",
    "official",
    "official-loose-zip",
    "book",
    "parquet",
    "mixed",
)


def hostile_zip(path: Path) -> Path:
    """An image zip with an entry escaping its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("img_align_celeba/000001.jpg", b"\xff\xd8\xff" + b"0" * 10)
        zf.writestr("../../evil.txt", "owned")
    return path
