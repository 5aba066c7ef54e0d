"""Stereo: left and right as they are, or left and side (right - left, wrapped)? Measured on
stereo WAVs made from the left/right sample pairs of the held-out music (FluidR3 ships many
instruments as L/R pairs), real .dlz sizes, verified by decoding.

    python benchmarks/experiments/stereo_test.py data/audio/music-test --out benchmarks/results/stereo-test
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

from dulzip import api, transforms
from dulzip.formats.wav import canonical_prefix, parse_wav, sample_bytes


def pairs(folder: Path) -> list[tuple[str, bytes]]:
    """Stereo WAVs from files named <n>-<name>_L.wav / <n+1>-<name>_R.wav (cut to the shorter)."""
    files = {re.sub(r"^\d+-", "", p.stem): p for p in sorted(folder.glob("*.wav"))}
    out = []
    for name, p in files.items():
        if not name.endswith("_L") or name[:-2] + "_R" not in files:
            continue
        left, right = parse_wav(p.read_bytes()), parse_wav(files[name[:-2] + "_R"].read_bytes())
        n = min(len(left.samples), len(right.samples))
        x = np.stack([left.samples[:n, 0], right.samples[:n, 0]], axis=1)
        out.append((name[:-2], canonical_prefix(left.rate, 16, 2, n) + sample_bytes(x, 16)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--out", type=Path, required=True, help="report path without suffix")
    args = ap.parse_args()
    rows = []
    for name, data in pairs(args.folder):
        row = {"file": name, "samples": (len(data) - 44) // 2}
        for mode in ("lr", "side"):
            blob = api.compress(data, api.Options(stereo=mode))
            assert api.decompress(blob) == data, name
            row[mode] = 8 * len(blob) / row["samples"]
        row["auto"] = row[transforms.stereo_mode(parse_wav(data).samples, 16)]  # the default: from the input alone
        rows.append(row)
        print(json.dumps(row))
    n = sum(r["samples"] for r in rows)
    total = {m: sum(r[m] * r["samples"] for r in rows) / n for m in ("lr", "side", "auto")}
    lines = ["# Stereo: left/right or left/side", "",
             f"Command: `python benchmarks/experiments/stereo_test.py {args.folder} --out {args.out}`", "",
             "Stereo WAVs made from the left/right sample pairs of the held-out music (44.1 kHz, 16-bit), "
             "coded by `wavenet-music`; bits per sample of real .dlz files (verified by decoding). "
             "'lr': both channels as they are; 'side': left, then right - left wrapped into 16 bits; "
             "'auto' (the default): side where the side carries less energy than the right channel, "
             "decided from the input alone (its file is the lr or side file, byte for byte).", "",
             "| file | samples | lr | side | auto |", "|---|---|---|---|---|"]
    lines += [f"| {r['file']} | {r['samples']} | {r['lr']:.3f} | {r['side']:.3f} | {r['auto']:.3f} |" for r in rows]
    lines.append(f"| **TOTAL** | {n} | {total['lr']:.3f} | {total['side']:.3f} | {total['auto']:.3f} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    args.out.with_suffix(".json").write_text(json.dumps({"files": rows, "total": total}, indent=1) + "\n")
    print(total)


if __name__ == "__main__":
    main()
