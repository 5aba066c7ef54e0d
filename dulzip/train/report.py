"""A training run's curves: metrics.jsonl as a plot, a markdown summary and JSON.

Written at the end of every ``dulzip train`` (rank 0) and by ``dulzip train --report --out RUN``
at any time, also while the run goes on.
"""
from __future__ import annotations

import json
from pathlib import Path


def read_metrics(run: Path) -> tuple[list[dict], list[dict]]:
    """(training lines, held-out evaluation lines) of a run's metrics.jsonl; a line cut short by
    a stopped run is skipped."""
    train, held = [], []
    path = run / "metrics.jsonl"
    if not path.is_file():
        return train, held
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        (held if "heldout" in row else train if "bits" in row else []).append(row)
    return train, held


def summary(run: Path) -> dict:
    """The run's last figures: steps, time, training bits (smoothed), held-out bits (last, best)."""
    train, held = read_metrics(run)
    out = {"run": str(run), "unit": (train or held or [{}])[-1].get("unit")}
    if train:
        out.update(steps=train[-1]["step"], seconds=train[-1]["time"], train_bits=train[-1]["ema"])
    if held:
        best = min(held, key=lambda r: r["heldout"])
        out.update(heldout_bits=held[-1]["heldout"], heldout_step=held[-1]["step"],
                   best_heldout_bits=best["heldout"], best_heldout_step=best["step"])
    return out


def write_report(run: Path) -> list[Path]:
    """curves.png (where matplotlib is installed), curves.md and curves.json in the run folder;
    nothing before the run's first metrics line."""
    train, held = read_metrics(run)
    if not train and not held:
        return []
    s = summary(run)
    unit = s["unit"] or "bits"
    js = run / "curves.json"
    js.write_text(json.dumps({"summary": s, "train": train, "heldout": held}, indent=1) + "\n")
    lines = [f"# Training run {run.name}", ""]
    if train:
        lines.append(f"{s['steps']} steps in {s['seconds']:.0f} s; training loss (smoothed) {s['train_bits']:.4f} {unit}.")
    if held:
        lines += ["", f"Held-out {unit} (the moving average of the weights, float):", "", "| step | time s | held-out |",
                  "|---:|---:|---:|"]
        lines += [f"| {r['step']} | {r['time']:.0f} | {r['heldout']:.4f} |" for r in held]
    md = run / "curves.md"
    md.write_text("\n".join(lines) + "\n")
    paths = [md, js]
    png = _plot(run / "curves.png", train, held, unit, run.name)
    return [png, *paths] if png else paths


def _plot(path: Path, train: list[dict], held: list[dict], unit: str, title: str) -> Path | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        ax.plot([r["step"] for r in train], [r["bits"] for r in train], color="0.75", lw=0.8, label="training batch")
        ax.plot([r["step"] for r in train], [r["ema"] for r in train], lw=1.5, label="training (smoothed)")
    if held:
        ax.plot([r["step"] for r in held], [r["heldout"] for r in held], "o-", lw=1.5, label="held-out (EMA weights)")
    ax.set_xlabel("step")
    ax.set_ylabel(unit)
    ax.set_title(f"{title}: lower is better")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
