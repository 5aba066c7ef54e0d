"""Report of the GPU sessions (``benchmarks/gpu_session.py`` outputs): markdown + JSON + a plot
of the training curve, with the CPU check of the files made there (``check_gpu_files.py``).

    python benchmarks/gpu_report.py runs/gpu1 runs/gpu2 --checks benchmarks/results/gpu-to-cpu-*.json

Numbers come only from the JSON files given.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sessions", nargs="+", type=Path, help="folders holding gpu-session.json and metrics.jsonl")
    ap.add_argument("--checks", nargs="*", type=Path, default=[])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    sessions = [json.loads((s / "gpu-session.json").read_text()) for s in args.sessions]
    checks = [json.loads(c.read_text()) for c in args.checks]
    lines = ["# GPU sessions: training, encode and decode on the device, decode of its files on the CPU", "",
             "Each section is one run of `benchmarks/gpu_session.py` (its command is in the model card); a run "
             "that names the run folder of an earlier one resumes its checkpoint, so steps and training time "
             "count from the first run. Encode and decode times on the device include the integer tables, which "
             "are computed on the device's CPU cores.", ""]
    for s, folder in zip(sessions, args.sessions):
        env, tr = s["env"], s["train"]
        lines += [f"## {folder.name}: {env['device']}, torch {env['torch']}, {env['cpus']} CPU cores", "",
                  f"- training: {tr['steps']} steps in all, {tr['config']['time_limit']:.0f} s of training in all "
                  f"(this run: {tr['seconds']} s), batch {tr['config']['batch']} crops of {tr['config']['crop']}x"
                  f"{tr['config']['crop']}, lr {tr['config']['lr']}, torch.compile {tr['config']['compile']}; "
                  f"last training loss (moving average) {tr['final_ema_bpsp']} bits/sub-pixel",
                  f"- exported weights: `{s['weights']}`", ""]
        rows = [f for f in s.get("files", []) if "skipped" not in f]
        if rows:
            lines += ["| file (encoded on the GPU) | bits/sub-pixel | encode s | decode s on the GPU | identical |",
                      "|---|---|---|---|---|"]
            for f in rows:
                dec = f"{f['decode_s']}" if "decode_s" in f else "-"
                ok = {True: "yes", False: "NO"}.get(f.get("decode_ok"), "-")
                lines.append(f"| {f['file']} | {f['bpsp']:.4f} | {f['encode_s']} | {dec} | {ok} |")
            lines.append("")
    for c in checks:
        lines += [f"## Files from {c['tar']} decoded on the CPU ({c['machine']})", "",
                  "Decode times here were taken while other jobs shared the two cores.", "",
                  "| file | model weights | decode s (CPU) | identical to the original |", "|---|---|---|---|"]
        for f in c["files"]:
            m = f.get("model") or {}
            lines.append(f"| {f['file']} | {m.get('name', '-')} {str(m.get('sha256', ''))[:12]} | {f['decode_cpu_s']} | "
                         f"{'yes' if f['identical'] else 'NO'} |")
        lines += ["", f"All identical: {'yes' if c['all_identical'] else 'NO'}", ""]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu.md").write_text("\n".join(lines) + "\n")
    (args.out / "gpu.json").write_text(json.dumps({"sessions": sessions, "cpu_checks": checks}, indent=2) + "\n")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for folder in args.sessions:
        m = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines() if x.strip()]
        ax.plot([r["step"] for r in m], [r["ema"] for r in m], label=folder.name)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss, bits/sub-pixel (moving average)")
    ax.set_ylim(2.0, 3.5)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "gpu.png", dpi=100)
    print(f"wrote {args.out / 'gpu.md'}")


if __name__ == "__main__":
    main()
