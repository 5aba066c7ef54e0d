"""What each part of the adaptive-filter audio coder (dulzip.codecs.cascade) brings: folders of
WAVs coded with parts of its settings switched off, one step added at a time (real coded sizes:
the block payloads, one block per file), against ``flac -8 --no-padding`` of the same files.

    python benchmarks/experiments/cascade_ablation.py data/audio/speech-test DIR... \\
        --out benchmarks/results/cascade-ablation

Steps: the pre-filter alone (no stage); one normalized LMS stage (the first of the rate's
stages); all NLMS stages; the long sign-sign stages (music rates); the mix of the cumulative
predictions; channel 1 as its difference from channel 0 where it varies less; the
cross-channel stage (all parts: the default). Files of more than two channels are left out.
"""
from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np

from dulzip.codecs import cascade as K
from dulzip.formats import wav

STEPS = [
    ("the pre-filter alone (u = x - 31/32 x[t-1])", {"stages": "none", "mix": 0, "cross": 0, "stereo": 0}),
    ("+ one NLMS stage", {"stages": "first", "mix": 0, "cross": 0, "stereo": 0}),
    ("+ the other NLMS stages", {"stages": "nlms", "mix": 0, "cross": 0, "stereo": 0}),
    ("+ the long sign-sign stages (music rates)", {"mix": 0, "cross": 0, "stereo": 0}),
    ("+ the mix of the cumulative predictions", {"cross": 0, "stereo": 0}),
    ("+ channel 1 as a difference where it varies less", {"cross": 0}),
    ("+ the cross-channel stage (all parts: the default)", {}),
]


def settings(w: wav.Wav, x: np.ndarray, off: dict) -> np.ndarray:
    """The default settings of this block with the parts ``off`` switched off."""
    cfg = [int(v) for v in K.settings(w.bits, w.rate, w.channels, x)]
    head = cfg[:K.HEAD]
    stages = [tuple(cfg[K.HEAD + 2 * i:K.HEAD + 2 * i + 2]) for i in range(cfg[K.N_STAGES])]
    for key, slot in (("mix", K.MIX), ("cross", K.CROSS), ("stereo", K.STEREO)):
        if key in off:
            head[slot] = off[key]
    which = off.get("stages")
    if which == "none":
        stages = [(0, 12)]
    elif which == "first":
        stages = stages[:1]
    elif which == "nlms":
        stages = [s for s in stages if s[1] < K.SIGN]
    head[K.N_STAGES] = len(stages)
    return np.array(head + [v for s in stages for v in s], dtype=np.int64)


def flac_bytes(path: Path) -> int:
    return len(subprocess.run(["flac", "-8", "--no-padding", "-s", "-c", str(path)], check=True,
                              capture_output=True).stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", type=Path, nargs="+")
    ap.add_argument("--out", type=Path, required=True, help="report path without suffix (.md and .json written)")
    args = ap.parse_args()
    files = {d.name: [(p, wav.parse_wav(p.read_bytes())) for p in sorted(d.glob("*.wav"))] for d in args.folders}
    files = {k: [(p, w) for p, w in v if w is not None and w.channels <= 2] for k, v in files.items()}
    flac = {k: sum(flac_bytes(p) for p, _ in v) for k, v in files.items()}
    rows = []
    for name, off in STEPS:
        row = {"step": name}
        for k, v in files.items():
            size = sum(len(K.encode_block(w.samples.astype(np.int64), settings(w, w.samples.astype(np.int64), off)))
                       for _, w in v)
            row[k] = {"bytes": size, "vs_flac": size / flac[k]}
        rows.append(row)
        print(row, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"flac_bytes": flac, "files": {k: len(v) for k, v in files.items()},
                                                         "rows": rows}, indent=1) + "\n")
    cols = list(files)
    lines = ["# What each part of the adaptive-filter audio coder brings", "",
             "Command: `python benchmarks/experiments/cascade_ablation.py "
             + " ".join(str(d) for d in args.folders) + f" --out {args.out}`", "",
             "Coded size (the blocks' payloads, one block per file) against `flac -8 --no-padding` of the same "
             "files; lower is better. Each row adds one part to the row above. The settings are those of a file "
             "of several blocks (1024 long taps at music rates); grids (`find_grid`) are left out: no file of "
             "these sets lies on one.", "",
             "| step | " + " | ".join(f"{k} ({len(files[k])} files)" for k in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for r in rows:
        lines.append(f"| {r['step']} | " + " | ".join(f"{r[k]['vs_flac']:.4f}" for k in cols) + " |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
