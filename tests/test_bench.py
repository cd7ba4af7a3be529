"""The bench in ``benchmarks/`` (one real ``--quick`` run at smoke scale: a batch or two per
measurement) and the speed defaults it justifies: channels_last, bf16 autocast on CPUs with
native bf16, fused Adam. No timed assertions: timings are noisy here."""

from __future__ import annotations

import json
import math
import tempfile

import pytest
import torch

from benchmarks import accuracy, bench, book, pipelines, turns
from cnn_core import optimizers, speed, trainer
from cnn_core.cli import main
from cnn_core.config import TrainConfig
from cnn_core.models import create_model
from tests.conftest import SHARED_DATA, require_fashion, small_fashion_config
from tests.test_trainer import stable

# The quick scales cut to a batch or two per measurement (64 digits, 20 faces, one epoch, one
# timed round, one seed, 0.05 training seconds per accuracy-ladder row): every part still runs.
SMOKE = pipelines.Scale((64, 64), 20, (1, 1), 1, 64, 1, (32, 64), 1, False)
ACCURACY_SMOKE = accuracy.AccuracyScale(
    64, 64, 64, 0.5, 0.6, 1, {"fast": 1, "accurate": 1}, 1, 1, 0.05
)  # fmt: skip


@pytest.fixture(scope="module")
def quick_result(tmp_path_factory):
    """One ``run_bench(quick=True)`` at smoke scale with its caches and generated faces in temp
    folders."""
    require_fashion()
    tmp = tmp_path_factory.mktemp("bench")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNN_LAB_CACHE_DIR", str(tmp / "cache"))
        mp.setenv("CNN_LAB_DATA_ROOTS", str(SHARED_DATA))
        mp.setattr(tempfile, "tempdir", str(tmp))
        mp.setattr(bench, "QUICK", SMOKE)
        mp.setattr(pipelines, "QUICK", SMOKE)
        mp.setattr(accuracy, "ACCURACY_QUICK", ACCURACY_SMOKE)
        yield bench.run_bench(quick=True)


def positive(x) -> bool:
    return isinstance(x, int | float) and math.isfinite(x) and x > 0


@pytest.mark.slow  # the bench's every pipeline, warmed up: half a minute
def test_quick_bench_reports_every_measurement(quick_result):
    r = quick_result
    expected = ["fashion-mnist", "faces"]
    assert list(r["families"]) == expected
    assert set(r["machine"]) >= {"torch", "cores", "device", "cpu_native_bf16", "precision_auto"}
    for name, fam in r["families"].items():
        assert fam["batch_size"] == (32 if name == "faces" else 64)  # the book's batch sizes
        for key in ("book", "cnn_core"):
            assert positive(fam[key]["images_per_s"]) and positive(fam[key]["ratio"])
            assert 0 <= fam[key]["val_accuracy"] <= 1
            assert len(fam[key]["val_accuracy_per_epoch"]) == fam["epochs"]
        assert fam["book"]["ratio"] == 1.0
        assert math.isfinite(fam["accuracy_delta_points"])
    for name in (expected[0], "faces"):
        rows = r["ladder"][name]
        extras = [t for t, extra in pipelines.EXTRA if "compile" not in extra]  # not in --quick
        assert [row["technique"] for row in rows] == [t for t, _ in pipelines.LADDER] + extras
        assert all(positive(row["images_per_s"]) and positive(row["ratio"]) for row in rows)
        curve = r["batch_sizes"][name]
        assert [row["batch_size"] for row in curve] == list(pipelines.QUICK.batch_sizes)
        assert all(positive(row["images_per_s"]) for row in curve)
    assert positive(r["canvas_latency"]["median_ms"]) and r["canvas_latency"]["runs"] > 0
    assert len(r["goals"]) == len(expected) + 1 + 4 * bool(r["time_to_accuracy"])
    assert all(isinstance(g["met"], bool) and g["measured"] for g in r["goals"])


@pytest.mark.slow  # the bench's every pipeline, warmed up: half a minute
def test_quick_bench_measures_time_to_accuracy_and_the_ladder(quick_result):
    r = quick_result["time_to_accuracy"]
    assert list(r["runs"]) == ["book", "fast", "accurate"]
    assert r["test_images"] == accuracy.ACCURACY_QUICK.test
    for name, row in r["runs"].items():
        assert len(row["seeds"]) == (1 if name == "book" else accuracy.ACCURACY_QUICK.seeds)
        assert 0 <= row["final_accuracy"] <= 1 and positive(row["train_seconds"])
        to = row["to"]["0.5"]
        assert (to["seconds"] is not None) == (to["reached"] > 0) == (row["speedup"] is not None)
    assert set(r["runs"]["accurate"]["to"]) == {"0.5", "0.6"}
    book = r["runs"]["book"]
    if r["book_reached"]:
        assert book["speedup"] == 1.0 and book["to"]["0.5"]["seconds"] <= book["train_seconds"]
    rule = r["stop_rule"]
    assert len(rule["rows"]) == accuracy.ACCURACY_QUICK.seeds
    assert all(0 <= row["test_accuracy"] <= 1 for row in rule["rows"])
    assert [row["technique"] for row in r["ladder"]] == [s for s, _ in accuracy.LADDER_STEPS]
    assert all(0 <= row["test_accuracy"] <= 1 for row in r["ladder"])
    assert r["ladder"][-1]["train_seconds"] == r["ladder"][-2]["train_seconds"]  # TTA: no training
    assert any("sooner than the book" in g["goal"] for g in quick_result["goals"])


@pytest.mark.slow  # the bench's every pipeline, warmed up: half a minute
def test_cli_prints_the_tables_or_one_json_line(quick_result, monkeypatch, capsys):
    monkeypatch.setattr(bench, "run_bench", lambda quick, log, parts, seeds: quick_result)
    assert bench.main(["--quick", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["families"].keys() == quick_result["families"].keys()
    assert bench.main(["--quick"]) == 0
    text = capsys.readouterr().out
    headings = ("Training on the same data", "one after another", "per batch size", "Goals")
    if quick_result["time_to_accuracy"]:
        headings += ("Time to", "Accuracy ladder")
    for heading in headings:
        assert heading in text
    assert "fused Adam" in text and "Canvas prediction" in text


def test_synthetic_faces_are_deterministic_celeba_layout(tmp_path):
    image, label = book.face_image(3)
    again, label_again = book.face_image(3)
    assert image.size == (178, 218) and label in (0, 1)
    assert image.tobytes() == again.tobytes() and label == label_again
    folder = book.make_faces(tmp_path / "celeba", 10)
    assert len(list((folder / "img_align_celeba").glob("*.jpg"))) == 10
    assert (folder / "list_eval_partition.txt").read_text().split().count("1") == 2  # 20 % val


def test_auto_precision_is_bf16_on_cpus_with_native_bf16_and_amp_on_cuda(monkeypatch):
    assert TrainConfig().precision == "auto"
    for native in (True, False):
        monkeypatch.setattr(speed, "cpu_has_fast_bf16", lambda native=native: native)
        assert speed.resolve_precision("auto", "cpu") == ("bf16" if native else "fp32")
        assert speed.resolve_precision("fp32", "cpu") == "fp32"
        assert speed.resolve_precision("bf16", "cpu") == "bf16"
        assert speed.resolve_precision("auto", "mps") == "fp32"
    for bf16_gpu in (True, False):  # the CUDA policy, without a GPU: bf16 where supported
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda b=bf16_gpu: b)
        assert speed.resolve_precision("auto", "cuda") == ("bf16" if bf16_gpu else "fp16")


def test_cuda_path_pieces_leave_cpu_training_alone():
    """fp16 gets a GradScaler only on CUDA; data stays on the host for CPU training; CPU
    batches are not pinned. (The CUDA side is code-reviewed only: no GPU here.)"""
    cpu = torch.device("cpu")
    assert speed.grad_scaler("fp16", cpu) is None and speed.grad_scaler("auto", cpu) is None
    images, labels = torch.zeros(4, 1, 28, 28, dtype=torch.uint8), torch.zeros(4)
    kept = speed.resident_split(images, labels, cpu, augment=False)
    assert kept[0] is images and kept[1] is labels
    assert speed.memory_format("cuda") == torch.channels_last
    assert speed.memory_format("mps") == torch.contiguous_format
    x = speed.to_device(torch.zeros(2, 1, 8, 8), cpu)
    assert not x.is_pinned() and x.is_contiguous(memory_format=torch.channels_last)
    with speed.autocast("fp16", cpu):
        out = torch.nn.Linear(4, 2)(torch.ones(1, 4))
    assert out.dtype == torch.float16  # an explicit fp16 choice is honoured


def test_channels_last_and_bf16_give_the_same_numbers_as_fp32():
    torch.manual_seed(0)
    x = torch.rand(8, 3, 64, 64)
    plain = create_model("v1", 3, 64, 2, dropout=0.0)
    last = create_model("v1", 3, 64, 2, dropout=0.0).to(memory_format=torch.channels_last)
    last.load_state_dict(plain.state_dict())
    ref = plain(x)
    out = last(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(ref, out, atol=1e-5)
    ref.sum().backward()
    out.sum().backward()
    for p, q in zip(plain.parameters(), last.parameters(), strict=True):
        assert torch.allclose(p.grad, q.grad, atol=1e-4, rtol=1e-3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = last(x.contiguous(memory_format=torch.channels_last))
    assert low.dtype == torch.bfloat16
    assert torch.allclose(low.float(), ref, atol=0.02 + 0.02 * ref.abs().max().item())


def test_bf16_training_is_finite_and_close_to_fp32(fashion_small):
    fp32 = fit_history(fashion_small, precision="fp32")
    bf16 = fit_history(fashion_small, precision="bf16")
    for m in (fp32, bf16):
        assert all(math.isfinite(m[k]) for k in ("train_loss", "val_loss", "val_accuracy"))
    assert bf16["train_loss"] == pytest.approx(fp32["train_loss"], rel=0.05)
    assert abs(bf16["val_accuracy"] - fp32["val_accuracy"]) < 0.05  # 400 images: ±2.5 pt each


def fit_history(data, **overrides):
    return trainer.fit(small_fashion_config(**overrides), data=data).history[-1]


def test_adam_and_adamw_use_the_fused_kernel_on_cpu():
    params = list(create_model("v1").parameters())
    for name in ("adam", "adamw"):
        opt = optimizers.make_optimizer(TrainConfig(optimizer=name), params)
        assert opt.param_groups[0]["fused"] is True


def test_taking_turns_gives_the_numbers_of_a_straight_fit(fashion_small):
    family = book.Family("fashion-mnist", fashion_small, None, None, small_fashion_config())
    out: list = []
    for _ in turns.core_run(family, 2, 7, out):  # pause and resume every 7 batches
        pass
    straight = trainer.fit(small_fashion_config(epochs=2), data=fashion_small).history
    assert len(out) == 2 and stable(out) == stable(straight)


def test_rand_dropout_is_dropout_with_a_faster_mask():
    drop = speed.RandDropout(0.3)
    x = torch.ones(200, 500)
    torch.manual_seed(4)
    y = drop(x)
    torch.manual_seed(4)
    assert torch.equal(y, drop(x))  # the seeded global generator decides the mask
    assert y.unique().tolist() == [0.0, pytest.approx(1 / 0.7)]
    assert abs((y > 0).float().mean().item() - 0.7) < 0.01
    assert torch.equal(drop.eval()(x), x)


def test_rand_dropout_replaces_dropout_layers_and_keeps_the_state_dict():
    model = create_model("v1", 3, 64, 2)
    keys = list(model.state_dict())
    speed.use_rand_dropout(model)
    drops = [type(m) for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert drops == [speed.RandDropout] * 2 and list(model.state_dict()) == keys


def test_cpu_models_train_channels_last(fashion_small):
    model = trainer.fit(small_fashion_config(), data=fashion_small).state.model
    assert model.conv2.weight.is_contiguous(memory_format=torch.channels_last)


def test_cnn_core_bench_says_where_the_bench_is(quick_result, monkeypatch, capsys):
    """cnn_core never imports the benchmarks (they measure it from outside): ``bench`` names
    ``python -m benchmarks`` in one line (exit 2), in the checkout or not, and runs nothing."""
    monkeypatch.setattr(bench, "run_bench", lambda quick, log, parts, seeds: quick_result)
    assert main(["bench", "--quick"]) == 2
    err = capsys.readouterr().err
    assert "python -m benchmarks --quick" in err and "make bench" in err
    assert len(err.strip().splitlines()) == 1
