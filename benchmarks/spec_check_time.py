"""How fast an edit on the Builder is checked: prints milliseconds, no assertion.

    python -m benchmarks.spec_check_time [--repeats 20]

For the forks of v1–v4 (on a 28 px and a 64 px input) and a 60-layer spec, the median of
``--repeats`` runs of: ``analyze`` (the validation: shapes, params, FLOPs, budgets; the
Builder's table and diagram come from it), then building the model and its diagram blocks
read back from it (what Train and Explain do), then one whole Builder page rerun after an
edit (AppTest, the real page script).
The goal is ≤ 200 ms per edit.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable

from .common import APP, parser


def median_ms(repeats: int, fn: Callable[..., object], *args: object) -> float:
    """Median milliseconds of ``fn(*args)`` over ``repeats`` calls, after one warm-up call."""
    fn(*args)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def edit_cost(spec: dict, channels: int, size: int, classes: int) -> object:
    """What Train and Explain compute for a spec model: validation, the model, its blocks."""
    from cnn_core.models.spec import build
    from cnn_core.models.summary import diagram_blocks

    return diagram_blocks(build(spec, channels, size, classes), channels, size)


def long_spec() -> dict:
    block = [
        {"type": "conv", "out": 32, "padding": "same"},
        {"type": "batchnorm"},
        {"type": "relu"},
    ]
    return {
        "name": "long",
        "layers": [
            *block * 19,
            {"type": "adaptive_avgpool"},
            {"type": "flatten"},
            {"type": "linear"},
        ],
    }


def page_edit_ms(repeats: int) -> tuple[float, float]:
    """One Builder rerun after a JSON edit (AppTest: the whole page script, diagram included),
    and one rerun of the Home page as the baseline every page pays."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.switch_page("pages/architect.py")
    at.run()
    times = []
    for k in range(repeats + 1):
        spec = json.loads(at.text_area[0].value)
        spec["layers"][0]["out"] = 8 + k % 2
        start = time.perf_counter()
        at.text_area[0].input(json.dumps(spec)).run()
        times.append(time.perf_counter() - start)
    assert not at.exception
    at.switch_page("pages/home.py")
    at.run()
    home = median_ms(repeats, at.run)
    return statistics.median(times[1:]) * 1000, home


def main() -> None:
    p = parser("benchmarks.spec_check_time", __doc__, json=False)
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args()
    os.environ.setdefault("CNN_LAB_RUNS_DIR", tempfile.mkdtemp(prefix="spec-time-"))
    import torch

    from cnn_core.models import architecture
    from cnn_core.models.spec import analyze

    torch.set_num_threads(1)
    cases = [
        (f"{n} {c}x{s}x{s}", architecture(n, c, s, k), (c, s, k))
        for n in ("v1", "v2", "v3", "v4")
        for c, s, k in ((1, 28, 10), (3, 64, 2))
    ]
    cases.append(("60 layers 3x64x64", long_spec(), (3, 64, 2)))
    print(f"{'spec':<20} {'validate':>10} {'+ build + blocks':>18}")
    for label, spec, (c, s, k) in cases:
        check = median_ms(args.repeats, analyze, spec, c, s, k)
        full = median_ms(args.repeats, edit_cost, spec, c, s, k)
        print(f"{label:<20} {check:>8.2f} ms {full:>15.1f} ms")
    builder, home = page_edit_ms(5)
    print(f"Builder page rerun after an edit (AppTest, median of 5): {builder:.0f} ms")
    print(f"Home page rerun, the same way (app.py, sidebar, AppTest itself): {home:.0f} ms")


if __name__ == "__main__":
    main()
