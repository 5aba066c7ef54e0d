"""Decode on this CPU the .dlz files that benchmarks/gpu_audio_session.py coded on a GPU, and
check them against the original WAVs (byte for byte): the proof that a file encoded on a GPU
decodes elsewhere.

    python benchmarks/check_gpu_audio.py runs/audio-gpu1 data/audio/speech-test --out benchmarks/results/gpu-audio-to-cpu.json
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("session", type=Path, help="an unpacked session.tar (dlz/, models-<run>/, gpu-audio.json)")
    ap.add_argument("originals", type=Path, help="the folder of the original WAVs")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    from dulzip import api
    report = json.loads((args.session / "gpu-audio.json").read_text())
    rows = []
    for blob_path in sorted((args.session / "dlz").glob("*.dlz")):
        run, name = blob_path.name.split("-", 1)
        os.environ["DULZIP_MODELS"] = str(args.session / f"models-{run}")
        t = time.time()
        out = api.decompress(blob_path.read_bytes(), api.Options(device="cpu"))
        rows.append({"run": run, "file": name[:-4], "dlz_bytes": blob_path.stat().st_size,
                     "decode_s_cpu": round(time.time() - t, 2),
                     "identical": out == (args.originals / name[:-4]).read_bytes()})
        print(json.dumps(rows[-1]))
    result = {"encoded_on": report["device"], "torch_there": report["torch"], "decoded_on": "cpu (this machine)",
              "files": rows, "all_identical": all(r["identical"] for r in rows)}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print("all identical:", result["all_identical"])


if __name__ == "__main__":
    main()
