"""What each part of the image coder brings: held-out photographs coded with parts of the
adaptive mixer switched off (real range-coded sizes, model path forced), in bits per sub-pixel.

    python benchmarks/experiments/image_ablation.py data/corpora/photos-test --crop 256 \\
        --out benchmarks/results/image-ablation

Parts: the network's probabilities as a mixer input ("net", with its two refinements), the
context models ("contexts") and the refinements of the network's probability ("refine").
"network tables alone" is the coding without the mixer (files of
image format 1); "contexts alone" is a plain context-mixing coder that never sees the network.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dulzip import zoo
from dulzip.codecs.image import encode_planes
from dulzip.exact.imagemix import IMAGE_MIXER_VERSION, PARTS, slot_bits_for

CONFIGS = {
    "all parts (shipped)": PARTS,
    "network tables alone (no mixer)": None,
    "without the context models": tuple(p for p in PARTS if p != "contexts"),
    "without the network's refinements": tuple(p for p in PARTS if p != "refine"),
    "contexts alone (no network)": ("contexts",),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--crop", type=int, default=256, help="the top-left crop of each image, this many pixels a side")
    ap.add_argument("--model", default="pixelcnn")
    ap.add_argument("--tile", type=int, default=64)
    ap.add_argument("--out", type=Path, required=True, help="report path without suffix")
    args = ap.parse_args()
    torch.set_num_threads(2)
    net, digest = zoo.load(args.model)
    files = [p for d in args.folders for p in sorted(d.iterdir()) if p.suffix == ".png"]
    images = {}
    for p in files:
        im = Image.open(p)
        a = np.asarray(im.convert("L" if im.mode in ("L", "LA") else "RGB"))
        a = a[:args.crop, :args.crop]
        images[p.name] = a[:, :, None] if a.ndim == 2 else a
    n = sum(a.size for a in images.values())
    rows = {}
    for name, parts in CONFIGS.items():
        t0 = time.time()
        size = 0
        for a in images.values():
            mixer = None if parts is None else {"version": IMAGE_MIXER_VERSION, "slot_bits": slot_bits_for(a.size)}
            streams = encode_planes(a, net, args.tile, allow_zstd=False, mixer=mixer, parts=parts or PARTS)
            size += sum(len(s.payload) for s in streams)
        rows[name] = {"bpsp": 8 * size / n, "seconds": round(time.time() - t0, 1)}
        print(name, rows[name], flush=True)
    command = ("python benchmarks/experiments/image_ablation.py " + " ".join(str(f) for f in args.folders)
               + f" --crop {args.crop} --out {args.out}")
    report = {"command": command, "model": args.model, "weights_sha256": digest, "image_mixer": IMAGE_MIXER_VERSION,
              "images": {k: list(a.shape) for k, a in images.items()}, "sub_pixels": n, "results": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    full = rows["all parts (shipped)"]["bpsp"]
    lines = ["# What each part of the image coder brings", "", f"Command: `{command}`  ",
             f"Model `{args.model}` (sha256 {digest[:12]}…), image mixer version {IMAGE_MIXER_VERSION}; the top-left "
             f"{args.crop}x{args.crop} of each of {len(images)} held-out images ({n} sub-pixels), tiles of "
             f"{args.tile}; real range-coded sizes of the model streams (no container).", "",
             "| coder | bits/sub-pixel | vs all parts |", "|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['bpsp']:.3f} | {100 * (r['bpsp'] / full - 1):+.1f}% |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
