"""Peak memory of ``dulzip compress`` / ``decompress`` against input size: streamed inputs
must not grow it. Each run is a fresh process; its peak resident set size (ru_maxrss of the
child) is read after it exits.

    python benchmarks/measure/stream_memory.py --text data/text/prose-test/bible.txt --text-sizes 1 2 4 \\
        --binary-sizes 64 256 1024 --out benchmarks/results/stream-memory

Text inputs are the first N MB of --text (repeated if shorter); binary inputs are N MB of a
repeated random 1 MB pattern (not text-like, so they take the bytes path, zstd in 16 MB pieces).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MB = 1 << 20


def _run(args: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one dulzip command in a child process (its own rusage)."""
    t = time.time()
    proc = subprocess.Popen([sys.executable, "-c", "from dulzip.cli import entry; entry()", *args])
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"dulzip {' '.join(args)} failed ({proc.returncode})")
    return time.time() - t, usage.ru_maxrss / 1024


def _measure(path: Path, kind: str, size_mb: int) -> dict:
    c_s, c_mb = _run(["compress", "-q", "-f", "--no-progress", "-T", "2", str(path)])
    dlz = Path(str(path) + ".dlz")
    out = path.with_suffix(".out")
    d_s, d_mb = _run(["decompress", "-q", "-f", "--no-progress", "-T", "2", str(dlz), "-o", str(out)])
    same = out.read_bytes() == path.read_bytes() if size_mb <= 64 else os.path.getsize(out) == path.stat().st_size
    row = {"kind": kind, "input_mb": size_mb, "dlz_bytes": dlz.stat().st_size, "compress_s": round(c_s, 1),
           "compress_peak_rss_mb": round(c_mb), "decompress_s": round(d_s, 1), "decompress_peak_rss_mb": round(d_mb),
           "round_trip": same}
    for p in (dlz, out, path):
        p.unlink()
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--text", type=Path, required=True)
    ap.add_argument("--text-sizes", type=int, nargs="*", default=[1, 2, 4])
    ap.add_argument("--binary-sizes", type=int, nargs="*", default=[64, 256, 1024])
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = args.text.read_bytes()
        for n in sorted(args.text_sizes):
            p = Path(tmp) / f"text-{n}mb.txt"
            p.write_bytes((base * (n * MB // len(base) + 1))[:n * MB])
            rows.append(_measure(p, "text", n))
        pattern = np.random.default_rng(0).integers(0, 256, MB, dtype=np.uint8).tobytes()
        for n in sorted(args.binary_sizes):
            p = Path(tmp) / f"binary-{n}mb.bin"
            with open(p, "wb") as f:
                for _ in range(n):
                    f.write(pattern)
            rows.append(_measure(p, "binary", n))
    cmd = "python benchmarks/measure/stream_memory.py " + " ".join(sys.argv[1:])
    args.out.with_suffix(".json").write_text(json.dumps({"command": cmd, "runs": rows}, indent=2) + "\n")
    lines = ["# Peak memory against input size", "", f"Command: `{cmd}`", "",
             "Fresh process per command, 2 threads; peak resident set size of that process (ru_maxrss from wait4).", "",
             "| input | MB | .dlz bytes | compress s | compress peak MB | decompress s | decompress peak MB | identical |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['kind']} | {r['input_mb']} | {r['dlz_bytes']} | {r['compress_s']} | "
                     f"{r['compress_peak_rss_mb']} | {r['decompress_s']} | {r['decompress_peak_rss_mb']} | "
                     f"{r['round_trip']} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
