"""Report of GPU sessions (``benchmarks/gpu/session.py``) and their CPU checks
(``benchmarks/gpu/check.py``): markdown + JSON + a plot of each run's training curve.

    python benchmarks/gpu/report.py $OUT/session.tar --checks benchmarks/results/gpu-audio-to-cpu.json \\
        --name gpu-audio

Numbers come only from the files given. (The reports of sessions run before this script, with
the per-modality scripts of commit e167519, keep their own format in results/.)
"""
from __future__ import annotations

import argparse
import json
import tarfile
import tempfile
from pathlib import Path


def load(session: Path, tmp: str) -> tuple[dict, dict[str, list[dict]]]:
    """(session.json, run -> metrics rows) of a session.tar or its unpacked folder."""
    folder = session
    if session.is_file():
        folder = Path(tmp) / session.stem
        with tarfile.open(session) as tar:
            tar.extractall(folder, filter="data")
    report = json.loads((folder / "session.json").read_text())
    metrics = {}
    for run in report["train"]:
        p = folder / f"metrics-{run}.jsonl"
        metrics[run] = [json.loads(x) for x in p.read_text().splitlines() if x.strip()] if p.exists() else []
    return report, metrics


def markdown(sessions: list[tuple[str, dict, dict]], checks: list[dict]) -> list[str]:
    lines = ["# GPU sessions: training, coding on the device, decoding its files on the CPU", ""]
    for name, s, metrics in sessions:
        env = s.get("env", {})
        lines += [f"## {name}: {s['modality']}, {env.get('device')}, torch {env.get('torch')}, "
                  f"{env.get('cpus')} CPU cores, {s.get('total_s')} s in all", ""]
        if s.get("error"):
            lines += [f"Stopped early: `{s['error']}`", ""]
        lines += ["| run | command | exit | steps | last loss (moving average) |", "|---|---|---|---|---|"]
        for run, t in s["train"].items():
            last = t.get("last") or {}
            lines.append(f"| {run} | `{t['command']}` | {t['rc']} | {last.get('step', '-')} | "
                         f"{last.get('ema', '-')} {last.get('unit', '')} |")
        rows = [c for c in s["coded"] if "dlz_bytes" in c]
        if rows:
            lines += ["", "| run | file | bytes | .dlz bytes | bits/byte of input | encode s | decode s (device) |",
                      "|---|---|---|---|---|---|---|"]
            for c in rows:
                dec = f"{c['decode_s']} ({'ok' if c.get('decode_on_device_ok') else 'WRONG'})" if "decode_s" in c else "-"
                lines.append(f"| {c['run']} | {c['file']} | {c['bytes']} | {c['dlz_bytes']} | "
                             f"{8 * c['dlz_bytes'] / max(1, c['bytes']):.4f} | {c['encode_s']} | {dec} |")
        lines += [f"- {c['run']} {c['file']}: {c.get('skipped') or c.get('error')}" for c in s["coded"]
                  if "dlz_bytes" not in c]
        lines.append("")
    for c in checks:
        lines += [f"## Decoded on {c['decoded_on']} (coded on {c['encoded_on']})", "",
                  "| run | file | decode s (CPU) | identical |", "|---|---|---|---|"]
        lines += [f"| {f['run']} | {f['file']} | {f['decode_cpu_s']} | {'yes' if f['identical'] else 'NO'} |"
                  for f in c["files"]]
        lines += ["", f"All identical: {'yes' if c['all_identical'] else 'NO'}", ""]
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sessions", nargs="+", type=Path, help="session.tar files or their unpacked folders")
    ap.add_argument("--checks", nargs="*", type=Path, default=[])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--name", default="gpu-session")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        sessions = [(p.stem if p.is_file() else p.name, *load(p, tmp)) for p in args.sessions]
    checks = [json.loads(c.read_text()) for c in args.checks]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.md").write_text("\n".join(markdown(sessions, checks)) + "\n")
    (args.out / f"{args.name}.json").write_text(json.dumps({"sessions": [s for _, s, _ in sessions],
                                                            "cpu_checks": checks}, indent=1) + "\n")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, _, metrics in sessions:
        for run, rows in metrics.items():
            ax.plot([r["step"] for r in rows], [r.get("ema", r.get("bits")) for r in rows], label=f"{name} {run}")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss, bits per dimension (moving average)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / f"{args.name}.png", dpi=100)
    print(f"wrote {args.out / args.name}.md")


if __name__ == "__main__":
    main()
