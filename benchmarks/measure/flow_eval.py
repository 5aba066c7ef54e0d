"""Float (fake-quantized) bits per sub-pixel of an IDF training checkpoint on a folder of images,
each cropped to a multiple of 2**levels: how far training has come, and what the exact coder's
real files (`dulzip bench -m idf`) are compared against.

    python benchmarks/measure/flow_eval.py runs/idf/checkpoint.pt data/corpora/photos-test
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dulzip.models.idf import IDF, IDFConfig
from dulzip.train.files import IMAGE_SUFFIXES
from dulzip.train.loop import load_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("folder")
    ap.add_argument("-T", "--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ck = load_checkpoint(args.checkpoint)
    cfg = IDFConfig(**ck["model_config"])
    m = IDF(cfg)
    m.load_state_dict(ck.get("ema", ck["model"]))
    m.eval()
    f = 2 ** cfg.levels
    rows, bits, dims = {}, 0.0, 0
    for p in sorted(q for q in Path(args.folder).iterdir() if q.suffix.lower() in IMAGE_SUFFIXES):
        a = np.asarray(Image.open(p).convert("RGB"))
        a = a[:a.shape[0] // f * f, :a.shape[1] // f * f]
        x = torch.from_numpy(np.array(a)).permute(2, 0, 1)[None].long()
        with torch.no_grad():
            b = float(m.loss(x)) * x.numel()
        rows[p.name] = round(b / x.numel(), 4)
        bits, dims = bits + b, dims + x.numel()
    print(json.dumps({"checkpoint": args.checkpoint, "step": ck["step"], "images": rows,
                      "total_bpsp": round(bits / dims, 4)}, indent=1))


if __name__ == "__main__":
    main()
