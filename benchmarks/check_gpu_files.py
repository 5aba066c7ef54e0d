"""Decode, here (on the CPU), .dlz files that were encoded on a GPU, and check them against
the originals byte for byte: the proof that a file made on one device decodes on another.

    python benchmarks/check_gpu_files.py runs/gpu/gpu-files.tar --originals data/corpora \\
        --models dulzip/models_data --report benchmarks/results/gpu-to-cpu.json

Members of the tar are ``<corpus>/<image>.png.dlz``; the original is
``<originals>/<corpus>/<image>.png``. Writes a JSON report; exit status 1 if any differs.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tarfile
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tar", type=Path)
    ap.add_argument("--originals", type=Path, default=Path("data/corpora"))
    ap.add_argument("--models", type=Path, default=None, help="models folder the files were made with")
    ap.add_argument("--report", type=Path, default=None)
    ap.add_argument("--only", nargs="*", default=None, help="member names to check (default: all)")
    args = ap.parse_args()
    if args.models:
        os.environ["DULZIP_MODELS"] = str(args.models)
    import torch

    from dulzip import api

    rows, bad = [], 0
    with tarfile.open(args.tar) as tar:
        for m in tar.getmembers():
            if args.only and m.name not in args.only:
                continue
            blob = tar.extractfile(m).read()
            original = (args.originals / m.name.removesuffix(".dlz")).read_bytes()
            t = time.perf_counter()
            out = api.decompress(blob, api.Options(device="cpu"))
            ok = out == original
            bad += not ok
            rows.append({"file": m.name, "dlz_bytes": len(blob), "model": api.describe(blob).get("model"),
                         "decode_cpu_s": round(time.perf_counter() - t, 1), "identical": ok,
                         "sha256": hashlib.sha256(out).hexdigest()})
            print(json.dumps(rows[-1]), flush=True)
    report = {"tar": str(args.tar), "machine": f"{platform.machine()}, torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads, cpu", "files": rows, "all_identical": bad == 0}
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
