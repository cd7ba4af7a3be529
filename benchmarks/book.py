"""The book's side of the bench: its datasets and its training loop.

* Digits: ``torchvision.datasets.FashionMNIST``/``MNIST`` with ``transforms.Compose([ToTensor()])``
  on the real IDX files, unpacked where torchvision looks for them; ``Subset`` splits.
* Faces: generated CelebA-layout 178×218 JPEGs (:func:`face_image`), cached in the temp folder,
  read by :class:`CelebAFiles`, which does what ``torchvision.datasets.CelebA.__getitem__`` does
  (``PIL.Image.open``, then the book's transform). CelebA itself is not used: it insists on all
  five list files and their md5 sums.
* :func:`book_run`: the book's ``train()`` loop (Raschka et al., ch. 14) over a ``DataLoader``.

cnn_core reads the very same images with its own loaders into a :class:`Family`.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn

from cnn_core import settings
from cnn_core.config import TrainConfig
from cnn_core.data import DatasetBundle, DataSpec, ImageSet, load_dataset
from cnn_core.data.celeba import ATTRIBUTES
from cnn_core.data.idx import DIGIT_NAMES, FASHION_NAMES, FILES, find_idx_files, read_idx
from cnn_core.data.transforms import DigitsTransform
from cnn_core.errors import DataError
from cnn_core.models import create_model
from cnn_core.resolve import with_defaults

TORCHVISION_NAMES = {"fashion-mnist": "FashionMNIST", "mnist": "MNIST"}
FACES_VERSION = 7  # bump when face_image changes (it names the cache folder)


@dataclass
class Family:
    """One dataset prepared for both pipelines."""

    name: str
    bundle: DatasetBundle  # cnn_core: decoded uint8 tensors
    book_train: Any  # the book: torchvision-style datasets (PIL per sample)
    book_val: Any
    config: TrainConfig  # cnn_core's default config on this data

    @property
    def binary(self) -> bool:
        return self.bundle.num_classes == 2

    @property
    def batch_size(self) -> int:
        return int(with_defaults(self.config).batch_size)


def digits_family(name: str, root: Path, n_train: int, n_val: int) -> Family | None:
    """Real MNIST/Fashion-MNIST unpacked into ``root/<Name>/raw``; None when not present."""
    from torch.utils.data import Subset
    from torchvision import datasets, transforms

    try:
        found = find_idx_files(name, None)
    except DataError:
        found = None
    if found is None:
        return None
    raw = root / TORCHVISION_NAMES[name] / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for base, path in found[1].items():
        data = path.read_bytes()
        (raw / base).write_bytes(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    transform = transforms.Compose([transforms.ToTensor()])
    dataset = getattr(datasets, TORCHVISION_NAMES[name])(
        root=str(root), train=True, transform=transform, download=False
    )
    valid, train = torch.arange(n_val), torch.arange(n_val, n_val + n_train)
    images, labels = (torch.from_numpy(read_idx(raw / base)) for base in FILES["train"])
    every = ImageSet(images.unsqueeze(1), labels.long())
    names = FASHION_NAMES if name == "fashion-mnist" else DIGIT_NAMES
    bundle = DatasetBundle(
        name, "digits", every.subset(train), every.subset(valid), None, names, DigitsTransform()
    )
    config = TrainConfig(dataset=name, train_size=len(train), val_size=n_val)
    return Family(name, bundle, Subset(dataset, train), Subset(dataset, valid), config)


def digits_test_set(name: str, root: Path) -> tuple[ImageSet, Any]:
    """The 10,000 test images of a family made by :func:`digits_family` in ``root``: for
    cnn_core (uint8 tensors) and for the book (torchvision, ``ToTensor``)."""
    from torchvision import datasets, transforms

    raw = root / TORCHVISION_NAMES[name] / "raw"
    images, labels = (torch.from_numpy(read_idx(raw / base)) for base in FILES["test"])
    book = getattr(datasets, TORCHVISION_NAMES[name])(
        root=str(root), train=False, transform=transforms.ToTensor(), download=False
    )
    return ImageSet(images.unsqueeze(1), labels.long()), book


def face_image(i: int) -> tuple[Image.Image, int]:
    """Synthetic aligned face ``i`` (178×218) and its label: 1 = smiling.

    A smile is an open mouth whose upward curvature (uniform in 0-1; frowns: -1-0) sets the
    teeth shown, with rosy cheeks and narrowed eyes. Faces vary in place, size, skin, hair and
    background, with pixel noise; 5 % of labels are flipped (annotators disagree), so no
    model reaches 100 %.
    """
    rng = np.random.default_rng(i)
    curve = rng.uniform(-1, 1)
    img = Image.new("RGB", (178, 218), tuple(rng.integers(30, 200, 3).tolist()))
    draw = ImageDraw.Draw(img)
    cx, cy = 89 + int(rng.integers(-8, 9)), 112 + int(rng.integers(-8, 9))
    rx, ry = int(rng.integers(48, 62)), int(rng.integers(62, 78))
    draw.ellipse(
        (cx - rx - 4, cy - ry - 10, cx + rx + 4, cy), fill=tuple(rng.integers(0, 120, 3).tolist())
    )
    skin = tuple((np.array([220, 170, 130]) * rng.uniform(0.45, 1.1)).astype(int).tolist())
    draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=skin)
    joy = 0.5 + curve / 2 if curve > 0 else 0.0  # how rosy the cheeks, how narrow the eyes
    cheek = tuple(int(s + joy * (t - s)) for s, t in zip(skin, (255, 80, 100), strict=True))
    for side in (-1, 1):
        ex, kx = cx + side * rx * 0.4, cx + side * rx * 0.55
        draw.ellipse((kx - 24, cy - 4, kx + 24, cy + 32), fill=cheek)
        draw.ellipse(
            (ex - 8, cy - 18 - 5 * (1 - joy), ex + 8, cy - 18 + 5 * (1 - joy)), fill=(30, 30, 40)
        )
    draw.line((cx, cy - 10, cx - 4, cy + 12), fill=tuple(v // 2 for v in skin), width=3)
    xs = np.linspace(-1, 1, 16)
    mx, bend = (cx + xs * rx * rng.uniform(0.5, 0.8)).tolist(), 1 - xs**2
    if curve > 0:  # an open smile: teeth between a flat upper lip and the curved lower one
        lips = [
            *zip(mx, cy + ry / 2 + curve * (8 * bend - 15), strict=True),
            *zip(mx[::-1], cy + ry / 2 + curve * (30 * bend - 15)[::-1], strict=True),
        ]
        draw.polygon(
            [(float(x), float(y)) for x, y in lips],
            fill=(250, 250, 245),
            outline=(110, 20, 35),
            width=4,
        )
    else:  # closed: straight to frowning
        lips = zip(mx, cy + ry / 2 + 30 * curve * (bend - 0.5), strict=True)
        draw.line([(float(x), float(y)) for x, y in lips], fill=(110, 20, 35), width=7)
    pixels = np.asarray(img, np.float32) + rng.normal(0, 8, (218, 178, 3))
    label = int(curve > 0) ^ int(rng.random() < 0.05)
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8)), label


def make_faces(folder: Path, n: int) -> Path:
    """``n`` faces in CelebA's torchvision layout in ``folder`` (made once, then reused)."""
    if (folder / "complete").is_file():
        return folder
    (folder / "img_align_celeba").mkdir(parents=True, exist_ok=True)
    attrs, parts, smiling = [], [], ATTRIBUTES.index("Smiling")
    for i in range(n):
        img, label = face_image(i)
        name = f"{i + 1:06d}.jpg"
        img.save(folder / "img_align_celeba" / name, quality=90)
        values = ["-1"] * len(ATTRIBUTES)
        values[smiling] = "1" if label else "-1"
        attrs.append(f"{name} {' '.join(values)}")
        parts.append(f"{name} {int(i >= int(n * 0.8))}")
    head = [str(n), " ".join(ATTRIBUTES)]
    (folder / "list_attr_celeba.txt").write_text("\n".join(head + attrs) + "\n")
    (folder / "list_eval_partition.txt").write_text("\n".join(parts) + "\n")
    (folder / "complete").write_text("ok\n")
    return folder


class CelebAFiles(torch.utils.data.Dataset):
    """``torchvision.datasets.CelebA.__getitem__`` over the same files: PIL open, transform."""

    def __init__(self, image_dir: Path, names: list[str], labels: torch.Tensor, transform):
        self.image_dir, self.names = image_dir, names
        self.labels, self.transform = labels, transform

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int):  # torchvision's code, its names
        X = Image.open(os.path.join(self.image_dir, self.names[index]))  # noqa: N806
        return self.transform(X), self.labels[index]


@contextlib.contextmanager
def data_root_added(folder: Path) -> Iterator[None]:
    """``folder`` among cnn_core's data roots (``CNN_LAB_DATA_ROOTS``) for the ``with`` block:
    the generated faces live in a temp folder, where the loader reads nothing by default."""
    before = os.environ.get("CNN_LAB_DATA_ROOTS")
    roots = [*settings.data_roots(), folder]
    os.environ["CNN_LAB_DATA_ROOTS"] = os.pathsep.join(str(r) for r in roots)
    try:
        yield
    finally:
        if before is None:
            del os.environ["CNN_LAB_DATA_ROOTS"]
        else:
            os.environ["CNN_LAB_DATA_ROOTS"] = before


def faces_family(n: int) -> Family:
    """Generated faces: cnn_core reads them with its CelebA loader, the book with PIL."""
    from torchvision import transforms as T  # noqa: N812

    base = Path(tempfile.gettempdir()) / "cnn-lab-bench" / f"faces-v{FACES_VERSION}-{n}"
    folder = make_faces(base / "celeba", n)
    n_train = int(n * 0.8)
    config = TrainConfig(
        dataset="celeba", data_dir=str(folder), train_size=n_train, val_size=n - n_train
    )
    with data_root_added(base):
        bundle = load_dataset(DataSpec.of(config))
    rows = [line.split() for line in (folder / "list_attr_celeba.txt").read_text().splitlines()[2:]]
    names, labels = [r[0] for r in rows], torch.tensor([int(r[1 + 31] == "1") for r in rows])
    train_tf = T.Compose(  # the book's transform_train and transform (for validation)
        [T.RandomCrop([178, 178]), T.RandomHorizontalFlip(), T.Resize([64, 64]), T.ToTensor()]
    )
    eval_tf = T.Compose([T.CenterCrop([178, 178]), T.Resize([64, 64]), T.ToTensor()])
    book = [
        CelebAFiles(folder / "img_align_celeba", names[s], labels[s], tf)
        for s, tf in ((slice(n_train), train_tf), (slice(n_train, None), eval_tf))
    ]
    return Family("faces", bundle, *book, config)


def new_model(fam: Family) -> nn.Module:
    """v1 with the initial weights ``trainer.build_state`` draws for the same seed."""
    torch.manual_seed(fam.config.seed)
    b = fam.bundle
    return create_model("v1", b.in_channels, b.image_size, b.num_classes, fam.config.dropout)


def book_run(
    fam: Family,
    epochs: int,
    turn: int,
    threads: int,
    out: list,
    *,
    valid: Any = None,
    until: float | None = None,
) -> Iterator[None]:
    """The book's ``train(model, num_epochs, train_dl, valid_dl)``, pausing every ``turn``
    batches; appends each epoch's metrics to ``out``. Faces: Sigmoid output, BCELoss.
    ``valid`` replaces the validation set (the bench's time to accuracy: the test images);
    with ``until`` it stops after the first epoch whose validation accuracy reaches it."""
    from torch.utils.data import DataLoader

    valid = fam.book_val if valid is None else valid
    torch.manual_seed(fam.config.seed)
    train_dl = DataLoader(fam.book_train, fam.batch_size, shuffle=True)
    valid_dl = DataLoader(valid, fam.batch_size, shuffle=False)
    model = nn.Sequential(new_model(fam), *([nn.Sigmoid()] if fam.binary else []))
    loss_fn = nn.BCELoss() if fam.binary else nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)

    def forward(x_batch, y_batch):
        pred = model(x_batch)[:, 0] if fam.binary else model(x_batch)
        loss = loss_fn(pred, y_batch.float() if fam.binary else y_batch)
        is_correct = ((pred >= 0.5).float() if fam.binary else torch.argmax(pred, dim=1)) == y_batch
        return loss, is_correct.float()

    for _ in range(epochs):
        model.train()
        loss_hist = accuracy_hist = seconds = 0.0
        start = time.perf_counter()
        for i, (x_batch, y_batch) in enumerate(train_dl):
            loss, is_correct = forward(x_batch, y_batch)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            loss_hist += loss.item() * y_batch.size(0)  # the book's bookkeeping (part of its cost)
            accuracy_hist += is_correct.sum()
            if (i + 1) % turn == 0:  # the other pipeline's turn: stop the clock, keep our RNG
                seconds += time.perf_counter() - start
                rng = torch.get_rng_state()
                yield
                torch.set_rng_state(rng)
                torch.set_num_threads(threads)  # torch's default, as the book runs
                start = time.perf_counter()
        seconds += time.perf_counter() - start
        model.eval()
        with torch.no_grad():
            correct = sum(float(forward(x, y)[1].sum()) for x, y in valid_dl)
        out.append({"seconds": seconds, "val_accuracy": correct / len(valid)})
        if until is not None and out[-1]["val_accuracy"] >= until:
            return
