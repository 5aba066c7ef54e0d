"""A training checkpoint's own estimate (float model, -log2 p) in bits per sample on a folder of
WAVs, cut into segments as the codec cuts them: to compare runs before exporting one. The
shipped numbers come from real files (`dulzip bench`), not from this.

    python benchmarks/measure/audio_eval.py runs/audio-gpu2/float-s64.pt data/audio/speech-test
"""
from __future__ import annotations

import argparse
import collections
from pathlib import Path

import torch

from dulzip.codecs.audio import AudioLayout
from dulzip.formats.wav import parse_wav
from dulzip.models.wavenet import WaveNet, WaveNetConfig
from dulzip.train.data import to_levels
import dulzip.train.loop as _loop


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--by-name", action="store_true", help="also per instrument (music-test file names)")
    ap.add_argument("--seg-min", type=int, default=0, help="segments of at least this many samples (0: the codec's)")
    args = ap.parse_args()
    ck = _loop.load_checkpoint(args.checkpoint)
    cfg = WaveNetConfig(**ck["model_config"])
    m = WaveNet(cfg)
    m.load_state_dict(ck.get("ema", ck["model"]))
    m.eval()
    layout = AudioLayout(seg_min=args.seg_min or (4096 if cfg.seg_order else AudioLayout.seg_min))
    groups: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0])
    with torch.no_grad():
        for p in sorted(args.folder.glob("*.wav")):
            w = parse_wav(p.read_bytes())
            if w is None or not len(w.samples):
                continue
            levels = to_levels(w.samples, w.bits)
            bits = 0.0
            for c in range(levels.shape[1]):
                x, start = levels[:, c], 0
                for n in layout.segments(len(x)):
                    bits += m.bits(torch.from_numpy(x[start:start + n])[None]).sum().item()
                    start += n
            keys = ["total"] + ([p.stem.split("-", 1)[1].split("_")[0]] if args.by_name else [])
            for k in keys:
                groups[k][0] += bits
                groups[k][1] += levels.size
    print(f"{args.checkpoint} (step {ck.get('step', '?')}):")
    for k, (b, n) in groups.items():
        print(f"  {k}: {b / n:.4f} bits/sample over {n} samples")


if __name__ == "__main__":
    main()
