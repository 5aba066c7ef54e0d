"""Decode on this machine's CPU the text streams that ``gpu_text_session.py`` coded on a GPU,
with the same exported weights, and check that every byte comes back.

    python benchmarks/check_gpu_text.py runs/text-gpu1 --out benchmarks/results/gpu-text-to-cpu.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import load_file

from dulzip.codecs.stream import Stream
from dulzip.codecs.text import Layout, decode_text
from dulzip.exact.charrnn import ExactCharRNN


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("session", type=Path, help="folder with gpu-text.json and models-h<H>/")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    report = json.loads((args.session / "gpu-text.json").read_text())
    rows = []
    for c in report["coded"]:
        weights = args.session / f"models-h{c['hidden']}" / c["weights"]
        with safe_open(str(weights), "pt") as f:
            config = json.loads(f.metadata()["config"])
        net = ExactCharRNN(load_file(str(weights)), config, "cpu")
        original = Path(c["file"]).read_bytes()[:c["bytes"]]
        t = time.time()
        back = decode_text([Stream(coder, bytes.fromhex(h)) for coder, h in c["streams"]], c["bytes"], net, Layout())
        rows.append({"file": c["file"], "hidden": c["hidden"], "weights": c["weights"], "bytes": c["bytes"],
                     "encoded_on": report["device"], "decoded_on": "cpu", "identical": back == original,
                     "cpu_decode_s": round(time.time() - t, 2)})
        print(json.dumps(rows[-1]), flush=True)
    args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
