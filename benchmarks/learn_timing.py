"""Server-side time per interaction of the Learn pages on 28×28 inputs.

    python -m benchmarks.learn_timing [--repeats 5]

Opens each Learn page in AppTest (the real page scripts, in this process, with the shipped
demo model and a Fashion-MNIST image), warms it once, then repeats each interaction —
change a control, rerun — and prints the median and max time of the whole script run (app.py's
sidebar included; the Home row is that fixed cost), plus the page's own "computed in N ms"
caption (the part after the controls are read).
No assertions: numbers to read, on whatever machine this runs.
"""

from __future__ import annotations

import os
import re
import statistics
import tempfile
import time

from streamlit.testing.v1 import AppTest

from .common import APP, parser

# (page, link, [(label, widget kind, key, values cycled through)])
CASES = [
    ("pages/home.py", {}, [("baseline: rerun Home (no Learn work)", None, None, [None])]),
    (
        "pages/learn_convolution.py",
        {"source": "dataset image", "kernel": "Sobel x", "padding": "same"},
        [
            ("convolution: step the slider", "slider", "cv_step", [100, 101, 400, 783]),
            ("convolution: change stride", "number_input", "cv_stride", [2, 1]),
            ("convolution: change padding", "radio", "cv_padding", ["full", "valid", "same"]),
            (
                "convolution: flip the kernel",
                "radio",
                "cv_op",
                ["true convolution", "cross-correlation"],
            ),
        ],
    ),
    (
        "pages/learn_layer.py",
        {"run": "demo", "layer": "conv1"},
        [("layer: change output channel", "number_input", "ly_channel", [1, 2, 3])],
    ),
    (
        "pages/learn_layer.py",
        {"run": "demo", "layer": "conv1", "view": "Pooling"},
        [("layer: step the pooling slider", "slider", "ly_step", [10, 20, 30])],
    ),
    (
        "pages/learn_layer.py",
        {"run": "demo", "layer": "conv1", "view": "Dropout"},
        [("layer: dropout p", "slider", "ly_p", [0.2, 0.5])],
    ),
    (
        "pages/learn_training.py",
        {"view": "Losses"},
        [("training: edit a logit", "text_input", "tr_logits", ["2.5 -1 0.3 -4", "1 2 3 4"])],
    ),
    (
        "pages/learn_training.py",
        {"view": "Optimizers"},
        [
            (
                "training: change surface",
                "selectbox",
                "tr_surface",
                ["Himmelblau", "Booth", "Rosenbrock"],
            ),
            ("training: more Adam rows", "number_input", "tr_rows", [10, 5]),
        ],
    ),
]


def caption_ms(at: AppTest) -> float | None:
    for caption in at.caption:
        found = re.search(r"computed in (\d+) ms", caption.value)
        if found:
            return float(found.group(1))
    return None


def measure(repeats: int) -> None:
    print(f"{'interaction':36} {'median ms':>10} {'max ms':>8} {'page ms':>8}")
    for page, link, interactions in CASES:
        at = AppTest.from_file(str(APP), default_timeout=300)
        at.query_params.update(link)
        at.run()
        at.switch_page(page)
        at.run()  # warm: datasets, checkpoints and caches load once
        if at.exception:
            raise SystemExit(f"{page}: {at.exception[0].value}")
        for label, kind, key, values in interactions:
            walls, pages = [], []
            for n in range(repeats * len(values)):
                if kind is not None:
                    getattr(at, kind)(key=key).set_value(values[n % len(values)])
                start = time.perf_counter()
                at.run()
                walls.append((time.perf_counter() - start) * 1000)
                pages.append(caption_ms(at) or 0.0)
            print(
                f"{label:36} {statistics.median(walls):10.0f} {max(walls):8.0f} "
                f"{statistics.median(pages):8.0f}"
            )


def main() -> None:
    p = parser("benchmarks.learn_timing", __doc__, json=False)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as runs:
        os.environ.setdefault("CNN_LAB_RUNS_DIR", runs)
        measure(args.repeats)


if __name__ == "__main__":
    main()
