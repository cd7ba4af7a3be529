"""``bench``'s report: the goals of the issues against a run's results, and plain-text tables."""

from __future__ import annotations

from typing import Any

from .accuracy import accuracy_lines

GOALS = {"digits": 2.5, "faces": 3.0, "canvas_ms": 20, "time_to_accuracy": 40.0}
FAST_SECONDS, FAST_SEEDS = 5.0, 0.95  # fast: median seconds to the target, seeds reaching it
ACCURATE_SECONDS = 60.0  # accurate: its second target within this much training
STOP_RULE_MARGIN = 0.002  # a target's checkpoint scores at most this far below it on test


def goals(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets against this run: speed at equal accuracy, canvas latency."""
    rows = []
    for name, r in result["families"].items():
        target, core = GOALS["faces" if name == "faces" else "digits"], r["cnn_core"]
        rows.append(
            {
                "goal": f"{name}: ≥ {target}× the book's images/s, accuracy within 0.5 points",
                "measured": f"{core['ratio']:.2f}× at batch {core['batch_size']}, "
                f"{r['accuracy_delta_points']:+.2f} points",
                "met": core["ratio"] >= target and abs(r["accuracy_delta_points"]) <= 0.5,
            }
        )
    if "canvas_latency" in result:
        ms = result["canvas_latency"]["median_ms"]
        rows.append(
            {
                "goal": f"canvas prediction ≤ {GOALS['canvas_ms']} ms",
                "measured": f"{ms:.1f} ms",
                "met": ms <= GOALS["canvas_ms"],
            }
        )
    if tta := result["time_to_accuracy"]:
        rows += accuracy_goals(tta)
    return rows


def format_report(result: dict[str, Any]) -> str:
    """The results as plain-text tables."""
    m = result["machine"]
    lines = [
        f"CNN Lab bench{' --quick' if result['quick'] else ''}: torch {m['torch']}, "
        f"{m['cores']} cores, device {m['device']}, "
        f"native CPU bf16 {'yes' if m['cpu_native_bf16'] else 'no'} "
        f"(precision auto = {m['precision_auto']}), {result['seconds']:.0f} s",
    ]
    lines += speed_lines(result) if "canvas_latency" in result else []
    lines += accuracy_lines(result["time_to_accuracy"]) if result["time_to_accuracy"] else []
    lines += ["", "Goals"]
    lines += [
        f"{'met' if g['met'] else 'NOT met':>7}  {g['goal']}: {g['measured']}"
        for g in result["goals"]
    ]
    return "\n".join(lines)


def speed_lines(result: dict[str, Any]) -> list[str]:
    """The images/s tables and the canvas latency."""
    names = list(result["ladder"])
    lines = [
        "",
        "Training on the same data, model, seed and epochs (images/s of the training loop)",
        f"{'data':<14} {'pipeline':<17} {'batch':>5} {'epochs':>6} {'images/s':>9} {'ratio':>6}"
        "  val accuracy per epoch",
    ]
    for name, r in result["families"].items():
        for key in ("book", "cnn_core", "cnn_core_fp32", "cnn_core_batch256"):
            if s := r.get(key):
                accuracy = " ".join(f"{100 * a:.2f}%" for a in s["val_accuracy_per_epoch"])
                lines.append(
                    f"{name:<14} {key:<17} {s['batch_size']:>5} {r['epochs']:>6} "
                    f"{s['images_per_s']:>9,.0f} {s['ratio']:>5.2f}×  {accuracy}"
                )
        lines.append(
            f"{'':<14} {r['train_images']:,} train / {r['val_images']:,} val images; "
            f"cnn_core − book accuracy {r['accuracy_delta_points']:+.2f} points"
        )
    lines += ["", "Techniques switched on one after another (training steps, median of rounds)"]
    lines.append(f"{'technique':<50}" + "".join(f"{n:>14} {'×book':>6}" for n in names))
    for i, row in enumerate(result["ladder"][names[0]] if names else []):
        cells = "".join(
            f"{r[i]['images_per_s']:>14,.0f} {r[i]['ratio']:>5.2f}×"
            for r in map(result["ladder"].get, names)
        )
        lines.append(f"{row['technique']:<50}{cells}")
    lines += ["", "images/s per batch size (cnn_core's default pipeline, training steps)"]
    lines.append(f"{'batch':>5}" + "".join(f"{n:>14}" for n in names))
    for i, row in enumerate(result["batch_sizes"][names[0]] if names else []):
        cells = "".join(f"{result['batch_sizes'][n][i]['images_per_s']:>14,.0f}" for n in names)
        lines.append(f"{row['batch_size']:>5}{cells}")
    lat = result["canvas_latency"]
    lines += [
        "",
        "Canvas prediction (280×280 RGBA PNG → prepare_digit → v1): "
        f"median {lat['median_ms']:.1f} ms, p90 {lat['p90_ms']:.1f} ms over {lat['runs']} runs",
    ]
    return lines


def accuracy_goals(tta: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 31's goals against the time-to-accuracy part."""
    key, second = f"{tta['target']:g}", f"{tta['accurate_target']:g}"
    fast, accurate, rule = tta["runs"]["fast"], tta["runs"]["accurate"], tta["stop_rule"]
    speedup, goal = fast["speedup"] or 0.0, GOALS["time_to_accuracy"]
    bound = "" if tta["book_reached"] else "≥ "  # the book never got there: a lower bound
    seconds = fast["to"][key]["seconds"]
    final = accurate["final_accuracy"]
    floor = tta["target"] - STOP_RULE_MARGIN
    return [
        {
            "goal": f"fast reaches {tta['target']:.1%} test accuracy ≥ {goal:g}× sooner than the "
            "book's pipeline and recipe",
            "measured": f"{bound}{speedup:.1f}×" if speedup else "fast did not reach it",
            "met": speedup >= goal,
        },
        {
            "goal": f"fast: median ≤ {FAST_SECONDS:g} s of training to {tta['target']:.1%}, "
            f"≥ {FAST_SEEDS:.0%} of seeds reaching it",
            "measured": f"{seconds:.1f} s, {fast['to'][key]['reached']:.0%} of seeds"
            if seconds is not None
            else "not reached",
            "met": seconds is not None
            and seconds <= FAST_SECONDS
            and fast["to"][key]["reached"] >= FAST_SEEDS,
        },
        {
            "goal": f"accurate: median final test accuracy ≥ {tta['accurate_target']:.1%} within "
            f"{ACCURATE_SECONDS:g} s of training",
            "measured": f"{final:.2%} after {accurate['train_seconds']:.1f} s "
            f"({accurate['to'][second]['reached']:.0%} of seeds reached it)",
            "met": final >= tta["accurate_target"]
            and accurate["train_seconds"] <= ACCURATE_SECONDS,
        },
        {
            "goal": f"a run stopped by target {tta['target']:g} leaves a checkpoint scoring "
            f"≥ {floor:.1%} on the test images (median over seeds)",
            "measured": f"{rule['test_accuracy']:.2%}",
            "met": rule["test_accuracy"] >= floor,
        },
    ]
