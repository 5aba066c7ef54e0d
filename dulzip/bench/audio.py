"""``dulzip bench DIR`` on a folder of WAV files: real .dlz sizes in bits per sample (one
channel of one frame) beside FLAC, WavPack, zstd and xz on the raw PCM, per file and in total,
with compress and decompress speeds in samples/s and as a multiple of real time. Writes
``<name>.md``, ``<name>.json`` and ``<name>.png``."""
from __future__ import annotations

import io
import json
import sys
import wave
from pathlib import Path

import torch

from dulzip import __version__, api
from dulzip.bench.baselines import Baseline, audio_baselines
from dulzip.bench.common import DLZ, bar_plot, command, machine, timed_round_trip
from dulzip.formats.wav import Wav, parse_wav, sample_bytes

SUFFIX = ".wav"
WARM_FRAMES = 2000  # frames of the untimed warm-up round trip
CASCADE = "cascade"  # what 'coded by' says of the default coder's files (no model: codecs.cascade)


def wav_files(folder: Path) -> list[Path]:
    """The folder's ``*.wav`` files (any case), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == SUFFIX)


def is_wav_folder(folder: Path) -> bool:
    """True when more than half of the folder's files are WAVs (``dulzip bench`` then reports audio)."""
    files = [p for p in folder.iterdir() if p.is_file()]
    return 2 * len(wav_files(folder)) > len(files)


def device_name() -> str:
    """The device ``api.Options(device='auto')`` codes on, with the GPU's name."""
    device = api.resolve_device("auto")
    return f"cuda ({torch.cuda.get_device_name()})" if device == "cuda" else device


def warm_up(w: Wav, opts: api.Options) -> None:
    """An untimed round trip of the first WARM_FRAMES frames of ``w``, so that the timings leave
    out the one-off costs of its model (loading it, numba compiling or loading its cached code)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as clip:
        clip.setnchannels(w.channels)
        clip.setsampwidth(w.bits // 8)
        clip.setframerate(w.rate)
        clip.writeframes(sample_bytes(w.samples[:WARM_FRAMES], w.bits))
    api.decompress(api.compress(buf.getvalue(), opts), opts)


def bench_file(path: Path, codecs: list[Baseline], model: str, threads: int, warm: set[str]) -> dict | None:
    """Sizes, bits per sample and speeds of one WAV; None when it is not a WAV dulzip models
    (the baselines are given the parsed samples, so there is nothing to compare). ``warm``: the
    models warmed up so far (this file's is added)."""
    data = path.read_bytes()
    w = parse_wav(data)
    if w is None:
        return None
    opts = api.Options(model=model, threads=threads)
    chosen = CASCADE if model == "auto" else model
    if chosen not in warm:
        warm_up(w, opts)
        warm.add(chosen)
    samples = int(w.samples.size)
    row = {"file": path.name, "samples": samples, "frames": len(w.samples), "channels": w.channels,
           "rate": w.rate, "bits": w.bits, "seconds": len(w.samples) / w.rate, "wav_bytes": len(data),
           "bytes": {c.name: c.compressed_size(w) for c in codecs}}
    blob, row["encode_s"], row["decode_s"] = timed_round_trip(data, opts, path.name)
    h = api.describe(blob)
    row["bytes"][DLZ] = len(blob)
    row["bps"] = {c: 8 * n / max(1, samples) for c, n in row["bytes"].items()}
    row["dlz_kind"] = h["kind"]
    row["coded_by"] = (h["model"]["name"] if "model" in h else CASCADE) if h["kind"] == "wav" else "zstd"
    row["model_estimate_bps"] = h["model_bits"] / max(1, samples) if h["kind"] == "wav" else None
    row.update(speeds(samples, row["seconds"], row["encode_s"], row["decode_s"]))
    return row


def speeds(samples: int, seconds: float, encode_s: float, decode_s: float) -> dict:
    """Samples per second and multiples of real time (audio seconds / wall seconds)."""
    return {"encode_samples_s": samples / encode_s, "decode_samples_s": samples / decode_s,
            "encode_x_realtime": seconds / encode_s, "decode_x_realtime": seconds / decode_s}


def summarize(rows: list[dict]) -> dict:
    """Totals: bits per sample as total coded bits / total samples, speeds over all files."""
    n = sum(r["samples"] for r in rows)
    size = {c: sum(r["bytes"][c] for r in rows) for c in rows[0]["bytes"]}
    total = {"samples": n, "seconds": sum(r["seconds"] for r in rows), "bytes": size,
             "bps": {c: 8 * b / max(1, n) for c, b in size.items()},
             "encode_s": sum(r["encode_s"] for r in rows), "decode_s": sum(r["decode_s"] for r in rows)}
    total.update(speeds(n, total["seconds"], total["encode_s"], total["decode_s"]))
    return total


def versus(total: dict, names: list[str]) -> list[str]:
    """'+x.x% vs codec' for dulzip's total against every baseline measured."""
    p = total["bps"]
    return [f"{100 * (p[DLZ] / p[c] - 1):+.1f}% vs {c}" for c in names if c != DLZ]


def markdown(rows: list[dict], total: dict, name: str, meta: dict) -> str:
    names = list(total["bps"])
    short = [c.split(" (")[0] for c in names]
    lines = [f"# Benchmark: {name}", "", f"Command: `{meta['command']}`  ",
             f"dulzip {meta['version']}, model `{meta['model']}`, device {meta['device']}, {meta['machine']}, "
             f"torch threads {meta['threads']}", "",
             "Bits per sample (lower is better; a sample is one channel of one frame, raw PCM is 8 or 16). "
             "The dulzip column is the whole .dlz file (WAV header and container included), verified by "
             "decoding; the baselines code the raw PCM samples only (zstd and xz: raw PCM bytes). "
             "Speeds are of the whole compress / decompress call, after one untimed warm-up round trip "
             "per model: samples/s and x real time (audio seconds / wall seconds).", "",
             "| file | samples | format | " + " | ".join(short) + " | model est. | coded by | "
             "compress samples/s | compress x RT | decompress samples/s | decompress x RT |",
             "|---|---|---|" + "---|" * len(names) + "---|---|---|---|---|---|"]
    for r in rows:
        best = min(r["bps"].values())
        cells = [f"**{r['bps'][c]:.3f}**" if r["bps"][c] == best else f"{r['bps'][c]:.3f}" for c in names]
        est = "-" if r["model_estimate_bps"] is None else f"{r['model_estimate_bps']:.3f}"
        lines.append(f"| {r['file']} | {r['samples']} | {r['rate']} Hz {r['bits']}-bit x{r['channels']} | "
                     + " | ".join(cells) + f" | {est} | {r['coded_by']} | {r['encode_samples_s']:.0f} | "
                     f"{r['encode_x_realtime']:.2f} | {r['decode_samples_s']:.0f} | {r['decode_x_realtime']:.2f} |")
    lines.append(f"| **TOTAL** | {total['samples']} | {total['seconds']:.1f} s | "
                 + " | ".join(f"{total['bps'][c]:.3f}" for c in names) + " | | | "
                 f"{total['encode_samples_s']:.0f} | {total['encode_x_realtime']:.2f} | "
                 f"{total['decode_samples_s']:.0f} | {total['decode_x_realtime']:.2f} |")
    lines += ["", f"dulzip in total: {', '.join(versus(total, names)) or 'no baseline measured'}."]
    coded = sorted({r["coded_by"] for r in rows})
    lines += ["", "Files coded by each: " + ", ".join(f"{m} {sum(r['coded_by'] == m for r in rows)}" for m in coded)
              + " ('zstd': the model's file was larger, so the zstd fallback was kept)."]
    if meta["unavailable"]:
        lines += ["", "Unavailable baselines: " + "; ".join(f"{c} ({why})" for c, why in meta["unavailable"].items())
                  + "."]
    if meta["skipped"]:
        lines += ["", f"Not a WAV dulzip models (left out): {', '.join(meta['skipped'])}."]
    return "\n".join(lines) + "\n"


def write_reports(rows: list[dict], out: Path, name: str, meta: dict) -> list[Path]:
    if not rows:
        raise RuntimeError("no WAV file dulzip models in the folder: nothing to report")
    out.mkdir(parents=True, exist_ok=True)
    total = summarize(rows)
    js = out / f"{name}.json"
    js.write_text(json.dumps({"meta": meta, "files": rows, "total": total}, indent=2) + "\n")
    md = out / f"{name}.md"
    md.write_text(markdown(rows, total, name, meta))
    plot = bar_plot(out / f"{name}.png", [c.split(" (")[0] for c in total["bps"]],
                    {"total": list(total["bps"].values())}, "bits per sample",
                    f"{name}: {len(rows)} files, lossless, lower is better")
    return [p for p in (md, js, plot) if p]


def run_audio_bench(folder: Path, out: Path, name: str, model: str, limit: int = 0, threads: int = 0) -> list[Path]:
    """Benchmark the first ``limit`` (0: all) WAV files of ``folder``; the report paths written."""
    codecs = audio_baselines()
    available = [c for c in codecs if c.available]
    files = wav_files(folder)
    rows, skipped, warm = [], [], set()
    for p in files[:limit] if limit else files:
        row = bench_file(p, available, model, threads, warm)
        if row is None:
            skipped.append(p.name)
            print(f"{p.name}: not a WAV dulzip models, left out", file=sys.stderr)
            continue
        rows.append(row)
        print(f"{p.name}: " + ", ".join(f"{k.split(' (')[0]} {v:.3f}" for k, v in row["bps"].items())
              + f" bits/sample ({row['coded_by']})", file=sys.stderr)
    meta = {"command": command(), "version": __version__, "model": model, "device": device_name(),
            "machine": machine(), "threads": threads or torch.get_num_threads(),
            "unavailable": {c.name: c.missing for c in codecs if not c.available}, "skipped": skipped}
    return write_reports(rows, out, name, meta)
