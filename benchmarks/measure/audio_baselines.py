"""Bits per sample of the baseline audio codecs (FLAC, WavPack, zstd, xz) on folders of WAV files.

    python benchmarks/measure/audio_baselines.py data/audio/speech-test data/audio/music-test [--files 5] [--json OUT]

Prints a Markdown table per folder: the total over all its files (coded bytes * 8 / samples,
a sample being one channel of one frame) and the first ``--files`` files by name. Every
encode is decoded and compared (``dulzip.bench.baselines``). Files that are not WAVs dulzip
models are listed and left out.
"""
from __future__ import annotations

import argparse
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dulzip.bench.baselines import Baseline, audio_baselines
from dulzip.formats.wav import parse_wav


def measure(path: Path, codecs: list[Baseline]) -> dict | None:
    """Samples and coded bytes per codec of one WAV; None when it is not a WAV we model."""
    w = parse_wav(path.read_bytes())
    if w is None:
        return None
    return {"file": path.name, "samples": int(w.samples.size), "rate": w.rate, "bits": w.bits,
            "channels": w.channels, "bytes": {c.name: c.compressed_size(w) for c in codecs}}


def bench_folder(folder: Path, codecs: list[Baseline]) -> dict:
    files = sorted(folder.glob("*.wav"))
    with ThreadPoolExecutor() as pool:
        rows = list(pool.map(lambda f: measure(f, codecs), files))
    kept = [r for r in rows if r is not None]
    samples = sum(r["samples"] for r in kept)
    total = {c.name: sum(r["bytes"][c.name] for r in kept) for c in codecs}
    return {"folder": folder.name, "files": kept, "samples": samples, "bytes": total,
            "skipped": [f.name for f, r in zip(files, rows) if r is None]}


def markdown(result: dict, codecs: list[Baseline], n_files: int) -> str:
    names = [c.name for c in codecs]
    lines = [f"### {result['folder']}: {len(result['files'])} files, {result['samples']:,} samples", "",
             "| file | samples | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    rows = [(r["file"], r["samples"], r["bytes"]) for r in result["files"][:n_files]]
    rows.append(("**total**", result["samples"], result["bytes"]))
    for name, samples, sizes in rows:
        lines.append(f"| {name} | {samples:,} | " + " | ".join(f"{8 * sizes[c] / samples:.3f}" for c in names) + " |")
    if result["skipped"]:
        lines.append(f"\nNot a WAV dulzip models (left out): {', '.join(result['skipped'])}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", type=Path, nargs="+")
    ap.add_argument("--files", type=int, default=5, help="files shown one by one per folder")
    ap.add_argument("--json", type=Path, default=None, help="also write every number here")
    args = ap.parse_args()
    all_codecs = audio_baselines()
    for c in all_codecs:
        if not c.available:
            print(f"{c.name}: unavailable ({c.missing})")
    codecs = [c for c in all_codecs if c.available]
    results = [bench_folder(folder, codecs) for folder in args.folders]
    print("Bits per sample (lower is better; raw PCM: 8 or 16).\n")
    print("\n\n".join(markdown(r, codecs, args.files) for r in results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
