"""Start-up: whole `dulzip` calls that need no model, beside zstd -19 and xz -9 on the same files.

Each command runs ``--runs`` times (after one warm-up call) in a fresh process; the table gives
the median wall time, and the JSON also the median CPU time (user + system, of the child). dulzip
is run as its console script runs (``dulzip.cli:entry``), from a checkout: this one, and with
``--before`` another (the version before imports were made lazy), each with its own models folder.

    git worktree add /tmp/wt-before e1a564e
    python benchmarks/measure/startup.py --before /tmp/wt-before --out benchmarks/results/startup
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENTRY = "from dulzip.cli import entry; entry()"  # what the `dulzip` console script does


def timed(argv: list[str], cwd: Path, env: dict, stdout=subprocess.DEVNULL) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one call; it must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run(argv, cwd=cwd, env=env, stdout=stdout, stderr=subprocess.PIPE, check=False)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {r.stderr.decode()[-500:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(argv: list[str], runs: int, cwd: Path, env: dict, to_file: Path | None = None) -> dict:
    times = []
    for i in range(runs + 1):  # the first call warms the page cache (and numba's cache, before)
        if to_file is not None:
            with open(to_file, "wb") as f:
                w = timed(argv, cwd, env, f)
        else:
            w = timed(argv, cwd, env)
        if i:
            times.append(w)
    return {"wall_s": statistics.median(w for w, _ in times), "cpu_s": statistics.median(c for _, c in times),
            "wall_all_s": [round(w, 4) for w, _ in times]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", type=Path, default=None, help="a checkout of the earlier version")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--size", type=int, default=1 << 20, help="bytes of the random file")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/startup")
    ap.add_argument("--note", default="", help="a line about the machine (e.g. that it was busy)")
    args = ap.parse_args()
    py = sys.executable
    load_start = os.getloadavg()
    env = {k: v for k, v in os.environ.items() if k not in ("DULZIP_MODELS", "PYTHONPATH")}
    versions = {"after": ROOT} | ({"before": args.before.resolve()} if args.before else {})
    work = Path(tempfile.mkdtemp(prefix="dulzip-startup-"))
    try:
        empty, rnd = work / "empty", work / "random.bin"
        empty.write_bytes(b"")
        rnd.write_bytes(random.Random(0).randbytes(args.size))
        sink = work / "out"
        dlz, zst, xzf = work / "random.bin.dlz", work / "random.bin.zst", work / "random.bin.xz"
        subprocess.run([py, "-c", ENTRY, "compress", "-q", "-f", str(rnd)], cwd=ROOT, env=env, check=True)
        subprocess.run(["zstd", "-19", "-q", "-f", str(rnd), "-o", str(zst)], check=True)
        subprocess.run(["xz", "-9", "-k", "-f", str(rnd)], check=True)
        mb = (f"{args.size / 2**20:g} MiB" if args.size >= 1 << 20 else f"{args.size} bytes") + " random"
        rows = [  # (name, dulzip args, zstd argv, xz argv)
            ("compress, empty file", ["compress", "-q", "-f", "-o", str(sink), str(empty)],
             ["zstd", "-19", "-q", "-f", str(empty), "-o", str(sink)], ["xz", "-9", "-c", str(empty)]),
            (f"compress, {mb}", ["compress", "-q", "-f", "-o", str(sink), str(rnd)],
             ["zstd", "-19", "-q", "-f", str(rnd), "-o", str(sink)], ["xz", "-9", "-c", str(rnd)]),
            (f"decompress, {mb}", ["decompress", "-q", "-f", "-o", str(sink), str(dlz)],
             ["zstd", "-d", "-q", "-f", str(zst), "-o", str(sink)], ["xz", "-d", "-c", str(xzf)]),
            ("--help", ["--help"], ["zstd", "--help"], ["xz", "--help"]),
            (f"list ({mb})", ["list", str(dlz)], ["zstd", "-l", str(zst)], ["xz", "-l", str(xzf)]),
            ("models", ["models"], None, None),
        ]
        results = []
        for name, dargs, zargv, xargv in rows:
            row = {"command": name, "dulzip_args": dargs}
            for label, checkout in versions.items():
                row[f"dulzip {label}"] = measure([py, "-c", ENTRY, *dargs], args.runs, checkout, env)
            if zargv:
                row["zstd"] = measure(zargv, args.runs, work, env)
            if xargv:
                row["xz"] = measure(xargv, args.runs, work, env, to_file=sink if "-c" in xargv else None)
            results.append(row)
            print(name, {k: round(v["wall_s"], 3) for k, v in row.items() if isinstance(v, dict)}, flush=True)
        floor = {"python -c pass": measure([py, "-c", "pass"], args.runs, ROOT, env),
                 "python -c 'import click'": measure([py, "-c", "import click"], args.runs, ROOT, env)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    meta = {"runs": args.runs, "statistic": "median", "machine": f"{os.cpu_count()} CPU cores, {platform.platform()}",
            "python": platform.python_version(), "note": args.note,
            "load_average_start": load_start, "load_average_end": os.getloadavg(),
            "zstd": subprocess.run(["zstd", "--version"], capture_output=True, text=True, check=True).stdout.strip(" *\n"),
            "xz": subprocess.run(["xz", "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0],
            "versions": {k: str(v) for k, v in versions.items()}, "floor": floor}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": results}, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(meta, results, list(versions)))
    print(f"wrote {args.out.with_suffix('.md')} and .json")


def markdown(meta: dict, rows: list[dict], labels: list[str]) -> str:
    cols = [f"dulzip {v}" for v in reversed(labels)] + ["zstd -19", "xz -9"]
    keys = [f"dulzip {v}" for v in reversed(labels)] + ["zstd", "xz"]

    def cell(row: dict, key: str, what: str) -> str:
        return f"{1000 * row[key][what]:.0f} ms" if key in row else "—"

    out = ["# Start-up", "",
           (f"Whole calls that need no model, median of {meta['runs']} (after one warm-up call), "
            f"{meta['machine']}, Python {meta['python']}; {meta['zstd']}; {meta['xz']}."),
           meta["note"], "", "The interpreter alone: " + ", ".join(
               f"`{k}` {1000 * v['wall_s']:.0f} ms ({1000 * v['cpu_s']:.0f} ms CPU)" for k, v in meta["floor"].items())
           + ".", "", "Wall time:", "",
           "| command | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    out += ["| " + r["command"] + " | " + " | ".join(cell(r, k, "wall_s") for k in keys) + " |" for r in rows]
    out += ["", "CPU time (user + system):", "",
            "| command | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    out += ["| " + r["command"] + " | " + " | ".join(cell(r, k, "cpu_s") for k in keys) + " |" for r in rows]
    out += ["", ("zstd and xz rows: `zstd -19`/`xz -9` on the same file, `-d` to decompress, `-l` to list "
                 "(`dulzip models` has none). Made by `python benchmarks/measure/startup.py --before CHECKOUT`."), ""]
    return "\n".join(out)


if __name__ == "__main__":
    main()
