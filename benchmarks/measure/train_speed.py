"""Training speed: steps per second of `dulzip train` reading its data from disk, against an older
checkout that held the data in memory, and on one process against two (torchrun, gloo).

Why: streaming the data must not slow training down (worker processes decode images ahead of
the steps), and the same command under torchrun must work on CPUs too. On a 2-core machine two
processes cannot be faster than one process with two threads; what this shows is what they
cost.

    python benchmarks/measure/train_speed.py --before /tmp/before --seconds 120 \\
        --out benchmarks/results/train-speed

Each run trains a model from scratch (pixelcnn: 32 channels, 4 layers, batches of 32 crops of
32x32; charrnn: 128 units, 32 windows of 64 bytes) for ``--seconds`` (the time limit; the
cosine schedule follows it) on the corpus given; the speed is
measured between the first and the last line of metrics.jsonl (start-up, listing and loading
excluded). Writes OUT.md and OUT.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FAMILIES = {"pixelcnn": "data/corpora/photos-train", "charrnn": "data/text/train"}


def run(checkout: Path, arch: str, data: str, seconds: float, procs: int, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        args = ["train", "--arch", arch, "--data", str(Path(data).resolve()), "--out", str(Path(tmp) / "run"),
                "--steps", "1000000", "--time-limit", str(seconds), "--no-progress", *extra]
        env = {**os.environ, "PYTHONPATH": str(checkout.resolve())}
        if procs > 1:
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs),
                   "-m", "dulzip.cli", *args]
            env["OMP_NUM_THREADS"] = "1"
        else:
            cmd = [sys.executable, "-m", "dulzip", *args, "-T", "2"]
        t0 = time.perf_counter()
        p = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if p.returncode:
            raise RuntimeError(f"{shlex.join(cmd)}: {p.stderr[-2000:]}")
        rows = [json.loads(x) for x in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()]
        rows = [r for r in rows if "bits" in r]
        a, b = rows[0], rows[-1]
        sps = (b["step"] - a["step"]) / max(1e-9, b["time"] - a["time"])
        return {"steps": b["step"], "steps_per_s": round(sps, 3), "wall_s": round(wall, 1),
                "last_bits_ema": b["ema"], "command": shlex.join(["dulzip" if procs == 1 else "torchrun ...", *args])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", type=Path, required=True, help="an older checkout (data held in memory)")
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--families", nargs="*", default=list(FAMILIES))
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    root = Path(__file__).resolve().parents[2]
    rev = lambda c: subprocess.run(["git", "-C", str(c), "rev-parse", "--short", "HEAD"], capture_output=True,  # noqa: E731
                                   text=True).stdout.strip()
    rows = []
    for arch in a.families:
        data = FAMILIES[arch]
        # the same options for both checkouts (their defaults differ): a model a CPU trains at a
        # few steps a second, so that reading the data would show if it held the steps back
        batch = {"pixelcnn": ["--batch", "32", "--crop", "32", "--lr", "1e-3", "--channels", "32", "--layers", "4",
                              "--head", "64"],
                 "charrnn": ["--batch", "32", "--seq", "64", "--lr", "2e-3", "--hidden", "128"]}[arch]
        setups = [("before: data in memory, 1 process x 2 threads", a.before, 1, batch),
                  ("now: streamed, 1 worker, 1 process x 2 threads", root, 1, [*batch, "--workers", "1"]),
                  ("now: streamed, in-process reads, 1 process x 2 threads", root, 1, [*batch, "--workers", "0"]),
                  ("now: streamed, torchrun 2 processes x 1 thread, 1 worker each", root, 2, [*batch, "--workers", "1"])]
        if arch == "pixelcnn":  # what the decoded-image cache (256 MiB by default) does
            setups.insert(2, ("now: streamed, 1 worker, no decoded-image cache", root, 1,
                              [*batch, "--workers", "1", "--cache-mb", "0"]))
        for label, checkout, procs, extra in setups:
            print(f"{arch}: {label}", file=sys.stderr)
            r = run(checkout, arch, data, a.seconds, procs, extra)
            rows.append({"family": arch, "setup": label, "checkout": rev(checkout), "processes": procs, **r})
            print(json.dumps(rows[-1]), file=sys.stderr)
    meta = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "seconds": a.seconds,
            "command": "python benchmarks/measure/train_speed.py " + shlex.join(sys.argv[1:])}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    lines = ["# Training speed: data streamed from disk, one process and two", "", f"Command: `{meta['command']}`  ",
             f"Machine: {meta['machine']}, no GPU. Each run: a small model from scratch (see the script), "
             f"{a.seconds:g} s of training; steps/s between the first and the last metrics line.", "",
             "| family | setup | dulzip | steps/s | steps | whole call, s |", "|---|---|---|---:|---:|---:|"]
    lines += [f"| {r['family']} | {r['setup']} | {r['checkout']} | {r['steps_per_s']:.3f} | {r['steps']} | {r['wall_s']} |"
              for r in rows]
    a.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
