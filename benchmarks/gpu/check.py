"""Decode here, on the CPU, every file a GPU session coded (``benchmarks/gpu/session.py``), with
the models trained there, and compare each with the sha256 of the input the device coded: the
proof that a file made on one device decodes on another, bit for bit.

    python benchmarks/gpu/check.py $OUT/session.tar --report benchmarks/results/gpu-audio-to-cpu.json

Takes the session.tar or the folder it was unpacked into. Writes a JSON report; exit status 1
if any file does not come back (or none was coded).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tarfile
import tempfile
import time
from pathlib import Path


def check(session: Path) -> dict:
    """The per-file results of decoding a session folder's files on this CPU."""
    report = json.loads((session / "session.json").read_text())
    import torch

    from dulzip import api
    rows = []
    for c in report["coded"]:
        if "dlz" not in c:
            continue
        os.environ["DULZIP_MODELS"] = str(session / f"models-{c['run']}")
        blob = (session / c["dlz"]).read_bytes()
        t = time.perf_counter()
        try:
            out = api.decompress(blob, api.Options(device="cpu"))
            ok = hashlib.sha256(out).hexdigest() == c["sha256"]
            err = None
        except Exception as e:  # a failure is a result to report, not the end of the check
            ok, err = False, f"{type(e).__name__}: {e}"
        rows.append({"run": c["run"], "file": c["file"], "dlz_bytes": len(blob), "identical": ok,
                     "decode_cpu_s": round(time.perf_counter() - t, 2), **({"error": err} if err else {})})
        print(json.dumps(rows[-1]), flush=True)
    return {"encoded_on": report.get("env", {}).get("device"), "torch_there": report.get("env", {}).get("torch"),
            "decoded_on": f"{platform.machine()} cpu, torch {torch.__version__}, {torch.get_num_threads()} threads",
            "files": rows, "all_identical": bool(rows) and all(r["identical"] for r in rows)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("session", type=Path, help="session.tar, or the folder it was unpacked into")
    ap.add_argument("--report", type=Path, default=None)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.session
        if args.session.is_file():
            with tarfile.open(args.session) as tar:
                tar.extractall(tmp, filter="data")
            folder = Path(tmp)
        result = check(folder)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(result, indent=1) + "\n")
    print("all identical:", result["all_identical"])
    return 0 if result["all_identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
