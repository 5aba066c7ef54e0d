"""Peak memory of `dulzip train` against the size of its data folder: it must not grow.

Why: training reads its data from disk as it goes (dulzip/train/data.py), so a folder of 8 GB
must train in the memory a folder of 1 GB does. Each folder here is made of hard links to the
files of a real corpus, under distinct names, until it holds the size asked for: every file is
listed, has its headers read and is drawn from as a file of its own, which is what the memory
of training depends on (a process that loaded its data would hold each copy). The memory is the
proportional set size (PSS) of the whole process tree, training process and data workers
together, sampled every 20 ms (shared pages counted once), and each process's peak resident size.

    python benchmarks/measure/train_memory.py --source data/corpora/photos-train --arch pixelcnn \\
        --sizes 1 8 --out benchmarks/results/train-memory-images
    python benchmarks/measure/train_memory.py --source data/text/train --arch charrnn \\
        --sizes 1 8 --out benchmarks/results/train-memory-text --before /tmp/before

``--before CHECKOUT``: also the given checkout (an older dulzip) on the smallest folder, which
loaded its data into memory. ``--repeat N``: each folder N times (what differs between runs of
the same folder is the noise). Writes OUT.md, OUT.json and OUT.png.
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
import threading
import time
from pathlib import Path

# per family: the model and the run (small: what is measured is the data path, not the model)
RUNS = {
    "pixelcnn": ["--channels", "16", "--layers", "2", "--head", "32", "--crop", "32", "--batch", "16"],
    "charrnn": ["--hidden", "64", "--seq", "128", "--batch", "32"],
    "wavenet": ["--channels", "8", "--layers", "4", "--head", "16", "--seq", "2048", "--batch", "8"],
}
NEW = ["--workers", "2", "--eval-every", "50", "--log-every", "10"]


def make_folder(source: Path, dest: Path, size: int) -> tuple[int, int]:
    """``dest`` filled with hard links to ``source``'s files (copy_000/..., copy_001/...) until
    it holds ``size`` bytes; returns (files, bytes)."""
    files = sorted(p for p in source.rglob("*") if p.is_file())
    total = sum(p.stat().st_size for p in files)
    copies = -(-size // total)
    n = 0
    for k in range(copies):
        for p in files:
            q = dest / f"copy_{k:03d}" / p.relative_to(source)
            if not q.exists():
                q.parent.mkdir(parents=True, exist_ok=True)
                os.link(p, q)
            n += 1
    return n, copies * total


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                todo += [int(c) for c in Path(f"/proc/{p}/task/{t}/children").read_text().split()]
        except OSError:
            pass
    return out


def _pss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def measure(cmd: list[str], cwd: Path, env: dict) -> dict:
    """Run ``cmd``; its wall time, the peak PSS of its process tree and its largest process's
    peak resident size (GNU time), its output's last lines."""
    peak = {"pss": 0, "procs": 0}
    p = subprocess.Popen(["/usr/bin/time", "-f", "MAXRSS %M", *cmd], cwd=cwd, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            tree = _tree(p.pid)
            peak["pss"] = max(peak["pss"], sum(_pss(q) for q in tree))
            peak["procs"] = max(peak["procs"], len(tree) - 2)  # less GNU time and the shell-less exec
            time.sleep(0.02)
    t = threading.Thread(target=sample, daemon=True)
    t0 = time.perf_counter()
    t.start()
    out, err = p.communicate()
    stop.set()
    t.join()
    dt = time.perf_counter() - t0
    if p.returncode:
        raise RuntimeError(f"{shlex.join(cmd)} failed: {err[-1500:]}")
    maxrss = int(next(x for x in err.splitlines()[::-1] if x.startswith("MAXRSS")).split()[1]) * 1024
    return {"seconds": round(dt, 1), "peak_pss_mib": round(peak["pss"] / 2 ** 20, 1),
            "peak_rss_largest_process_mib": round(maxrss / 2 ** 20, 1), "processes": peak["procs"],
            "output": (out + err).strip().splitlines()[-4:]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", type=Path, required=True, help="a real corpus, linked until each size")
    ap.add_argument("--arch", default="pixelcnn", choices=sorted(RUNS))
    ap.add_argument("--sizes", type=float, nargs="+", default=[1, 8], help="folder sizes in GB (1e9 bytes)")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--work", type=Path, default=Path("data/train-memory"))
    ap.add_argument("--before", type=Path, default=None, help="an older checkout, run on the smallest folder")
    ap.add_argument("--repeat", type=int, default=1, help="runs of the current checkout per folder (the noise)")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    root = Path(__file__).resolve().parents[2]
    rows = []
    for gb in a.sizes:
        folder = a.work / f"{a.source.name}-{gb:g}GB"
        files, size = make_folder(a.source, folder, int(gb * 1e9))
        runs = [("now", root, NEW)] * a.repeat + ([("before", a.before, [])] if a.before and gb == min(a.sizes) else [])
        for label, checkout, extra in runs:
            with tempfile.TemporaryDirectory() as tmp:
                cmd = [sys.executable, "-m", "dulzip", "train", "--arch", a.arch, "--data", str(folder.resolve()),
                       "--out", str(Path(tmp) / "run"), "--steps", str(a.steps), "--no-progress", "-T", "1",
                       *RUNS[a.arch], *extra]
                env = {**os.environ, "PYTHONPATH": str(checkout.resolve())}
                print(f"{folder.name} ({label}): {shlex.join(cmd[1:])}", file=sys.stderr)
                r = measure(cmd, checkout, env)
                rev = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True,
                                     text=True).stdout.strip()
                rows.append({"folder": folder.name, "gb": round(size / 1e9, 2), "files": files, "checkout": rev,
                             "label": label, "command": "dulzip " + shlex.join(cmd[3:]), **r})
                print(json.dumps(rows[-1]), file=sys.stderr)
    meta = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "source": str(a.source), "arch": a.arch,
            "steps": a.steps, "command": "python benchmarks/measure/train_memory.py " + shlex.join(sys.argv[1:])}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    lines = [f"# Training memory against the data folder's size ({a.arch})", "", f"Command: `{meta['command']}`  ",
             f"Machine: {meta['machine']}. Folders: hard links to {a.source} under distinct names, each file listed "
             f"and drawn from as its own. {a.steps} steps each; the model is small on purpose (the data path is "
             "measured). Peak PSS: the training process and its data workers together, shared pages once.", "",
             "| folder | GB | files | dulzip | seconds | peak PSS, all processes (MiB) | largest process's peak RSS (MiB) | processes |",
             "|---|---:|---:|---|---:|---:|---:|---:|"]
    lines += [f"| {r['folder']} | {r['gb']} | {r['files']:,} | {r['checkout']} ({r['label']}) | {r['seconds']} | "
              f"{r['peak_pss_mib']} | {r['peak_rss_largest_process_mib']} | {r['processes']} |" for r in rows]
    a.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for label in dict.fromkeys(r["label"] for r in rows):
            pts = [r for r in rows if r["label"] == label]
            ax.plot([r["gb"] for r in pts], [r["peak_pss_mib"] for r in pts], "o", label=f"dulzip {pts[0]['checkout']}")
        ax.set_xlabel("data folder, GB")
        ax.set_ylabel("peak memory (PSS), MiB")
        ax.set_ylim(bottom=0)
        ax.set_title(f"dulzip train --arch {a.arch}: memory against data size")
        ax.legend()
        fig.tight_layout()
        fig.savefig(a.out.with_suffix(".png"), dpi=100)
    except ImportError:
        pass
    print(a.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
