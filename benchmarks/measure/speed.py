"""Encode and decode time of one file per coder, for one checkout or several side by side.

Why: a change meant to be neutral (a refactoring, a module moved) must not cost time, and a
change meant to be faster must show it, on the same machine in the same run. Each checkout runs
in its own process (its own code, imported from its folder; the models of the checkout that runs
this script, so the bitstreams compare). Times are the median of ``--runs`` runs, single thread.

    python benchmarks/measure/speed.py --checkouts BEFORE_DIR . --out benchmarks/results/speed-refactor
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"

# (name, how to make the input, options): one per coder, sizes that take about a second or more
CASES = {
    "image pixelcnn (ladybird 128x128 crop)": ("ladybird128", {"model": "pixelcnn"}),
    "image idf (ladybird 256x256)": ("ladybird", {"model": "idf"}),
    "text charrnn (8 KB of README)": ("text", {}),
    "text charrnn (64 KB of the project's docs)": ("text64", {}),
    "audio wavenet (speech, 1 s at 8 kHz)": ("speech", {}),
}

_RUN = r"""
import io, json, statistics, sys, time
sys.path.insert(0, sys.argv[1])
import torch
torch.set_num_threads(1)
from dulzip import api
cases = json.loads(sys.argv[2]); runs = int(sys.argv[3])
out = {}
for name, (path, opts) in cases.items():
    data = open(path, "rb").read()
    o = api.Options(device="cpu", threads=1, fallback=False, **opts)
    enc, dec = [], []
    for _ in range(runs):
        t = time.perf_counter(); blob = api.compress(data, o); enc.append(time.perf_counter() - t)
        t = time.perf_counter(); back = api.decompress(blob, api.Options(device="cpu", threads=1)); dec.append(time.perf_counter() - t)
    out[name] = {"encode_s": statistics.median(enc), "decode_s": statistics.median(dec), "size": len(blob),
                 "input": len(data), "ok": back == data or api.describe(blob).get("exact") is False}
out["_module"] = api.__file__
print(json.dumps(out))
"""


def inputs(folder: Path) -> dict[str, str]:
    """The inputs, written once into ``folder``."""
    from PIL import Image
    folder.mkdir(parents=True, exist_ok=True)
    img = Image.open(DATA / "ladybird-256.png").convert("RGB")
    img.crop((64, 64, 192, 192)).save(folder / "ladybird128.png")
    img.save(folder / "ladybird.png")
    (folder / "text.txt").write_bytes((ROOT / "README.md").read_bytes()[:8192])
    docs = b"".join((ROOT / p).read_bytes() for p in ("README.md", "ARCHITECTURE.md", "benchmarks/README.md",
                                                      "models/README.md", "CHANGELOG.md"))
    (folder / "text64.txt").write_bytes((docs * 4)[:65536])
    from dulzip.formats import wav
    w = wav.parse_wav((DATA / "asterisk-confbridge-participants.wav").read_bytes())
    n = min(len(w.samples), 8000)
    (folder / "speech.wav").write_bytes(wav.canonical_prefix(w.rate, w.bits, w.channels, n)
                                        + wav.sample_bytes(w.samples[:n], w.bits))
    return {"ladybird128": str(folder / "ladybird128.png"), "ladybird": str(folder / "ladybird.png"),
            "text": str(folder / "text.txt"), "text64": str(folder / "text64.txt"), "speech": str(folder / "speech.wav")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkouts", nargs="+", type=Path, default=[ROOT])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", type=Path, required=True, help="PREFIX: writes PREFIX.md and PREFIX.json")
    a = ap.parse_args()
    a.out = a.out.resolve()
    paths = inputs(Path(tempfile.mkdtemp(prefix="dulzip-speed-")))
    cases = {name: (paths[key], opts) for name, (key, opts) in CASES.items()}
    env = {**os.environ, "DULZIP_MODELS": str(ROOT / "dulzip" / "models_data")}
    results = {}
    for co in a.checkouts:
        r = subprocess.run([sys.executable, "-c", _RUN, str(co.resolve()), json.dumps(cases), str(a.runs)],
                           capture_output=True, text=True, env=env, cwd=a.out.parent)
        if r.returncode:
            sys.exit(f"{co}: {r.stderr[-3000:]}")
        res = json.loads(r.stdout.strip().splitlines()[-1])
        where = Path(res.pop("_module"))
        if not where.is_relative_to(co.resolve()):
            sys.exit(f"{co}: imported dulzip from {where}, not from the checkout")
        results[str(co)] = res
    commits = {str(co): subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=co, capture_output=True,
                                       text=True).stdout.strip() for co in a.checkouts}
    a.out.with_suffix(".json").write_text(json.dumps({"commits": commits, "runs": a.runs, "results": results},
                                                     indent=1) + "\n")
    cols = list(results)
    lines = ["# Encode and decode time by coder", "",
             f"Median of {a.runs} runs, one thread, on {os.cpu_count()} CPU cores; "
             "each checkout in its own process, the same models and inputs. "
             f"Made by `python benchmarks/measure/speed.py --checkouts {' '.join(map(str, a.checkouts))} --out {a.out}`.", "",
             "| coder | " + " | ".join(f"{commits[c]} encode s | {commits[c]} decode s | {commits[c]} bytes" for c in cols)
             + " |", "|---|" + "---:|---:|---:|" * len(cols)]
    for name in CASES:
        cells = []
        for c in cols:
            r = results[c][name]
            cells += [f"{r['encode_s']:.2f}", f"{r['decode_s']:.2f}", f"{r['size']:,}" + ("" if r["ok"] else " (wrong)")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    a.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
