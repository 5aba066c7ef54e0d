"""``dulzip bench DIR`` on a folder of text (any files that are not images): real .dlz sizes
in bits per byte beside xz, zstd, brotli, bzip2, PPMd and zpaq, per file and in total, with
compress and decompress speeds. Writes ``<name>.md``, ``<name>.json`` and ``<name>.png``."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from dulzip import __version__, api
from dulzip.bench.baselines import text_baselines
from dulzip.bench.common import DLZ, bar_plot, command, machine, timed_round_trip


def bench_file(path: Path, model: str, threads: int) -> dict:
    data = path.read_bytes()
    row = {"file": path.name, "bytes": len(data), "bpb": {}}
    row["seconds"] = {}  # each baseline's (encode, decode) seconds
    for codec in text_baselines():
        packed, enc, dec = codec.code(data)
        row["bpb"][codec.name] = 8 * len(packed) / max(1, len(data))
        row["seconds"][codec.name] = [round(enc, 4), round(dec, 4)]
    blob, row["encode_s"], row["decode_s"] = timed_round_trip(data, api.Options(model=model, threads=threads),
                                                              path.name)
    h = api.describe(blob)
    row["bpb"][DLZ] = 8 * len(blob) / max(1, len(data))
    row["dlz_kind"] = h["kind"]
    row["coders"] = [s["coder"] for s in h["streams"]]
    return row


def write_reports(rows: list[dict], out: Path, name: str, meta: dict) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    n = sum(r["bytes"] for r in rows)
    names = list(rows[0]["bpb"])
    total = {"bpb": {c: sum(r["bpb"][c] * r["bytes"] for r in rows) / n for c in names}, "bytes": n,
             "encode_s": sum(r["encode_s"] for r in rows), "decode_s": sum(r["decode_s"] for r in rows)}
    total["encode_kb_s"] = n / 1000 / total["encode_s"]
    total["decode_kb_s"] = n / 1000 / total["decode_s"]
    (out / f"{name}.json").write_text(json.dumps({"meta": meta, "files": rows, "total": total}, indent=2) + "\n")
    short = [c.split(" (")[0] if c.startswith(("dulzip", "PPMd")) else c for c in names]
    lines = [f"# Benchmark: {name}", "", f"Command: `{meta['command']}`  ", f"dulzip {meta['version']}, model "
             f"`{meta['model']}`, {meta['machine']}, torch threads {meta['threads']}", "",
             "Bits per byte (lower is better); the dulzip column is the real .dlz file, verified by decoding; "
             "speeds in KB/s (1 KB = 1000 bytes) of the whole `dulzip compress` / `decompress` call.", "",
             "| file | bytes | " + " | ".join(short) + " | compress KB/s | decompress KB/s |",
             "|---|---|" + "---|" * len(names) + "---|---|"]
    for r in rows:
        best = min(r["bpb"].values())
        cells = [f"**{r['bpb'][c]:.3f}**" if r["bpb"][c] == best else f"{r['bpb'][c]:.3f}" for c in names]
        lines.append(f"| {r['file']} | {r['bytes']} | " + " | ".join(cells) +
                     f" | {r['bytes'] / 1000 / r['encode_s']:.1f} | {r['bytes'] / 1000 / r['decode_s']:.1f} |")
    lines.append(f"| **total** | {n} | " + " | ".join(f"{total['bpb'][c]:.3f}" for c in names) +
                 f" | {total['encode_kb_s']:.1f} | {total['decode_kb_s']:.1f} |")
    p = total["bpb"]
    lines += ["", "dulzip in total: " + ", ".join(
        f"{100 * (p[DLZ] / p[c] - 1):+.1f}% vs {c}" for c in names if c != DLZ) + "."]
    md = out / f"{name}.md"
    md.write_text("\n".join(lines) + "\n")
    plot = bar_plot(out / f"{name}.png", [r["file"] for r in rows],
                    {s: [r["bpb"][c] for r in rows] for s, c in zip(short, names)}, "bits per byte",
                    f"{name}: lossless, lower is better")
    return [x for x in (md, out / f"{name}.json", plot) if x]


def run_text_bench(folder: Path, out: Path, name: str, model: str, limit: int = 0, threads: int = 0) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file())
    rows = []
    for p in files[:limit] if limit else files:
        rows.append(bench_file(p, model, threads))
        print(f"{p.name}: " + ", ".join(f"{k.split(' (')[0]} {v:.3f}" for k, v in rows[-1]["bpb"].items()),
              file=sys.stderr)
    meta = {"command": command(), "version": __version__, "model": model, "machine": machine(),
            "threads": threads or torch.get_num_threads()}
    return write_reports(rows, out, name, meta)
