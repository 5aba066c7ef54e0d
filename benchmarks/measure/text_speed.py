"""Speed of the text coder on a 1 MiB text of mixed genres: whole `dulzip compress` and
`dulzip decompress` calls of one checkout or several, side by side with the text baselines.

Why: the text issue asks for at least 40 KB/s both ways on 2 CPU cores for a 1 MB file. A whole
call is what a user waits for (start-up, model load, the coder); each checkout runs as its own
process with its own code (PYTHONPATH), after one untimed call that fills its numba cache.

    python benchmarks/measure/text_speed.py data/text/genres --checkouts BEFORE_DIR . --out benchmarks/results/text-speed

The input: the first 1/7 MiB of each genre of the genre corpus (``benchmarks/corpora/text_genres.py``;
a genre's files in name order), concatenated, 1 MiB in all. Every .dlz is decoded and compared.
Writes OUT.md, OUT.json and OUT.png (KB/s both ways against bits per byte).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dulzip.bench.baselines import text_baselines

SIZE = 1 << 20


def mixed_text(corpus: Path) -> bytes:
    """1 MiB: an equal share from the start of each genre."""
    genres = sorted(p for p in corpus.iterdir() if p.is_dir())
    share = -(-SIZE // len(genres))
    parts = [b"".join(f.read_bytes() for f in sorted(g.iterdir()) if f.is_file())[:share] for g in genres]
    return b"".join(parts)[:SIZE]


def _call(checkout: Path, args: list[str]) -> tuple[float, int]:
    """(seconds, peak resident MiB) of one `python -m dulzip ...` call run from ``checkout``."""
    env = {**os.environ, "PYTHONPATH": str(checkout.resolve())}
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "dulzip", *args], env=env,
                       cwd=checkout, capture_output=True, text=True)  # `-m` puts the working folder first
    dt = time.perf_counter() - t0
    if p.returncode:
        raise RuntimeError(f"{checkout}: dulzip {' '.join(args)} failed: {p.stderr[-500:]}")
    return dt, int(p.stderr.strip().splitlines()[-1]) // 1024


def dulzip_row(checkout: Path, data: bytes, tmp: Path, runs: int) -> dict:
    src, dlz, back = tmp / "mixed.txt", tmp / "mixed.txt.dlz", tmp / "back.txt"
    src.write_bytes(data)
    label = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True,
                           text=True).stdout.strip() or checkout.name
    _call(checkout, ["compress", str(src), "-o", str(dlz), "-f"])  # fills the checkout's numba cache
    _call(checkout, ["decompress", str(dlz), "-o", str(back), "-f"])
    enc, dec = [], []
    for _ in range(runs):
        enc.append(_call(checkout, ["compress", str(src), "-o", str(dlz), "-f"]))
        dec.append(_call(checkout, ["decompress", str(dlz), "-o", str(back), "-f"]))
        if back.read_bytes() != data:
            raise RuntimeError(f"{checkout}: the round trip changed the text")
    return {"name": f"dulzip {label}", "coded": dlz.stat().st_size,
            "seconds": [statistics.median(t for t, _ in enc), statistics.median(t for t, _ in dec)],
            "peak_mib": [max(m for _, m in enc), max(m for _, m in dec)]}


def markdown(report: dict) -> str:
    lines = ["# Text speed: a 1 MiB text of mixed genres", "", f"`{report['command']}`  ", f"{report['machine']}", "",
             f"Input: {report['input']}, sha256 {report['sha256'][:16]}…. dulzip: whole CLI calls (start-up and "
             f"model load included), median of {report['runs']}, 2 threads; its peak resident memory from "
             "/usr/bin/time. Baselines: in-process or their own tool (zpaq), one run each, same machine, same run.",
             "", "| coder | bytes | bits/byte | compress s | decompress s | compress KB/s | decompress KB/s | "
             "peak MiB (c / d) |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["rows"]:
        enc, dec = r["seconds"]
        mem = " / ".join(str(m) for m in r["peak_mib"]) if "peak_mib" in r else ""
        lines.append(f"| {r['name']} | {r['coded']:,} | {8 * r['coded'] / report['bytes']:.3f} | {enc:.2f} | "
                     f"{dec:.2f} | {report['bytes'] / 1000 / enc:.1f} | {report['bytes'] / 1000 / dec:.1f} | {mem} |")
    return "\n".join(lines) + "\n"


def plot(path: Path, report: dict) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for n, r in enumerate(report["rows"]):
        bpb = 8 * r["coded"] / report["bytes"]
        ours = r["name"].startswith("dulzip")
        for i, (mark, side) in enumerate((("o", "compress"), ("s", "decompress"))):
            kbs = report["bytes"] / 1000 / r["seconds"][i]
            ax.scatter(kbs, bpb, marker=mark, color=f"C{n}" if ours else "grey")
            if ours:  # one label a point, stacked (the checkouts' points lie close together)
                ax.annotate(f"{r['name']} ({side})", (kbs, bpb), fontsize=7, color=f"C{n}",
                            xytext=(10, 12 + 11 * (2 * n + i)), textcoords="offset points")
            elif i == 0:
                ax.annotate(r["name"], (kbs, bpb), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.axvline(40, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("KB/s (log; dashed: 40 KB/s)")
    ax.set_ylabel("bits per byte")
    ax.set_title("1 MiB of mixed text: size against speed (o compress, s decompress)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", type=Path, help="the genre corpus (a folder of genre folders)")
    ap.add_argument("--checkouts", type=Path, nargs="+", default=[Path(".")], help="dulzip checkouts to time")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", type=Path, required=True, help="report path without suffix")
    args = ap.parse_args()
    data = mixed_text(args.corpus)
    with tempfile.TemporaryDirectory(prefix="dulzip-text-speed-") as tmp:
        rows = [dulzip_row(c, data, Path(tmp), args.runs) for c in args.checkouts]
    for c in text_baselines():
        coded, enc, dec = c.code(data)
        rows.append({"name": c.name, "coded": len(coded), "seconds": [enc, dec]})
    report = {"command": "python benchmarks/measure/text_speed.py " + " ".join(sys.argv[1:]),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}",
              "input": f"{len(data):,} bytes from {args.corpus}", "bytes": len(data),
              "sha256": hashlib.sha256(data).hexdigest(), "runs": args.runs, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report))
    plot(args.out.with_suffix(".png"), report)
    print(markdown(report))


if __name__ == "__main__":
    main()
