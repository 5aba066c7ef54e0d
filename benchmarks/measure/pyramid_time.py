"""Size and encode/decode time of the pyramid coder on images, with the network's share.

    python benchmarks/measure/pyramid_time.py tests/data/ladybird-256.png [more.png ...] [--model NAME]
        [--crop 512] [--hidden 48 --layers 4] [--threads 2] [--ablate]

``--model``: an installed pyramid model; without it, an untrained network of the family
(random hidden layers, the output layer at its initial state: the means start as the mean of
the four nearest known pixels) of ``--hidden`` x ``--layers``, which times the real network's
cost and measures what the mixer does on its own. Prints, per image, bits per sub-pixel,
seconds each way (and in the network), and that the decode is the image. ``--ablate`` adds the
size with the network alone (the mixer's parts all off but its PMF), with each part of the
mixer (exact.pyramidmix.PARTS: "future" off keeps only the contexts a raster order has) and
each context switched off; "mixer only" is the run without ``--model``.
Times are printed, never asserted (they depend on the machine and its load).
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict

import numpy as np
import torch
from PIL import Image

from dulzip.codecs import pyramid as cp
from dulzip.exact import pyramidmix as pm


def random_net(hidden: int, layers: int, seed: int = 0):
    from dulzip.exact.pyramid import ExactPyramid
    from dulzip.models.pyramid import Pyramid, PyramidConfig, export
    torch.manual_seed(seed)
    cfg = PyramidConfig(hidden=hidden, layers=layers)
    return ExactPyramid(export(Pyramid(cfg).eval()), asdict(cfg))


class Timed:
    """The runtime, with the time its predict calls take."""

    def __init__(self, net):
        self.net, self.seconds = net, 0.0

    def __getattr__(self, name):
        return getattr(self.net, name)

    def predict(self, x, phase):
        t = time.perf_counter()
        out = self.net.predict(x, phase)
        self.seconds += time.perf_counter() - t
        return out


def size_bits(img: np.ndarray, net, **kw) -> int:
    return 8 * sum(len(s.payload) for s in cp.encode_pyramid(img, net, allow_zstd=False, **kw))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("images", nargs="+")
    ap.add_argument("--model")
    ap.add_argument("--crop", type=int, default=0, help="the centre crop of this side (0: whole)")
    ap.add_argument("--hidden", type=int, default=48)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ablate", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.model:
        from dulzip import zoo
        net = Timed(zoo.load(a.model)[0])
    else:
        net = Timed(random_net(a.hidden, a.layers))
    cp.encode_pyramid(np.zeros((16, 16, 3), dtype=np.uint8), net, 8)  # compile (or load) the mixer first
    for path in a.images:
        img = np.asarray(Image.open(path).convert("RGB"))
        if a.crop:
            H, W, _ = img.shape
            y, x = max(0, (H - a.crop) // 2), max(0, (W - a.crop) // 2)
            img = img[y:y + a.crop, x:x + a.crop]
        n = img.size
        net.seconds = 0.0
        t = time.perf_counter()
        streams = cp.encode_pyramid(img, net, allow_zstd=False)
        te, ne = time.perf_counter() - t, net.seconds
        net.seconds = 0.0
        t = time.perf_counter()
        out = cp.decode_pyramid(streams, *img.shape, net)
        td, nd = time.perf_counter() - t, net.seconds
        size = sum(len(s.payload) for s in streams)
        print(f"{path} {img.shape[1]}x{img.shape[0]}: {size} bytes, {8 * size / n:.4f} bits/sub-pixel; "
              f"encode {te:.2f} s (network {ne:.2f}), decode {td:.2f} s (network {nd:.2f}); "
              f"decoded {'the image' if (out == img).all() else 'ANOTHER IMAGE'}", flush=True)
        if a.ablate:
            bits = size_bits(img, net, parts=("net",))
            print(f"  network only (its PMF through the decisions, no contexts): {bits / n:.4f} bits/sub-pixel "
                  f"({bits / (8 * size) - 1:+.2%})", flush=True)
            for i, part in enumerate(pm.PARTS):
                bits = size_bits(img, net, parts=pm.PARTS[:i] + pm.PARTS[i + 1:])
                print(f"  without {part}: {bits / n:.4f} bits/sub-pixel ({bits / (8 * size) - 1:+.2%})", flush=True)
            for c in range(pm.N_CTX):
                on = np.ones(pm.N_CTX, dtype=np.int64)
                on[c] = 0
                bits = size_bits(img, net, ctx_on=on)
                print(f"  without context {c}: {bits / n:.4f} bits/sub-pixel ({bits / (8 * size) - 1:+.2%})", flush=True)


if __name__ == "__main__":
    main()
