"""Bits per byte of the text baselines (xz, zstd, brotli, bzip2, PPMd, zpaq: every codec of
``text_baselines()`` that is available) on a corpus of genres, with their times.

    python benchmarks/measure/text_baselines.py data/text/genres --out benchmarks/results/text-genres-baselines

``CORPUS/<genre>/<file>`` (``benchmarks/corpora/text_genres.py`` writes one): each file is
coded alone by each codec, decoded and compared (``dulzip.bench.baselines``), one at a time.
Writes ``OUT.md``: bits per byte per genre and in total (coded bytes * 8 / input bytes, summed
over the files), the total less each file's share of a format's fixed cost (the coded size of
an empty input: about 1 kB for zpaq's archive), compress and decompress seconds; and
``OUT.json``, every file's coded bytes and seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

from dulzip.bench.baselines import Baseline, text_baselines


def measure(path: Path, codecs: list[Baseline]) -> dict:
    data = path.read_bytes()
    row = {"file": path.name, "bytes": len(data), "coded": {}, "seconds": {}}
    for c in codecs:
        coded, enc, dec = c.code(data)
        row["coded"][c.name] = len(coded)
        row["seconds"][c.name] = [round(enc, 4), round(dec, 4)]
    return row


def summed(rows: list[dict], names: list[str]) -> dict:
    """Bytes, coded bytes, bits per byte and (compress, decompress) seconds of some files together."""
    n = sum(r["bytes"] for r in rows)
    coded = {c: sum(r["coded"][c] for r in rows) for c in names}
    return {"files": len(rows), "bytes": n, "coded": coded, "bpb": {c: 8 * coded[c] / n for c in names},
            "seconds": {c: [round(sum(r["seconds"][c][i] for r in rows), 3) for i in (0, 1)] for c in names}}


def markdown(report: dict, names: list[str]) -> str:
    genres = report["genres"]
    rows = [(g, v["total"]) for g, v in genres.items()] + [("**total**", report["total"])]
    lines = ["# Text baselines by genre", "", f"Command: `{report['command']}`  ", f"{report['machine']}  ",
             "Corpus: `python benchmarks/corpora/text_genres.py` (its docstring says what each genre holds, from "
             "which Debian package; none of it is in dulzip's training data).", "",
             "Bits per byte (lower is better; the best of each row in bold): each file coded alone, "
             "decoded and compared; coded bytes * 8 / input bytes, summed over a genre's files.", ""]
    empty = report["empty_input_bytes"]

    def table(bpb_of) -> list[str]:
        out = ["| genre | files | bytes | " + " | ".join(names) + " |", "|---|---|---|" + "---|" * len(names)]
        for g, t in rows:
            bpb = bpb_of(t)
            best = min(bpb.values())
            cells = [f"**{bpb[c]:.3f}**" if bpb[c] == best else f"{bpb[c]:.3f}" for c in names]
            out.append(f"| {g} | {t['files']} | {t['bytes']:,} | " + " | ".join(cells) + " |")
        return out

    lines += table(lambda t: t["bpb"])
    lines += ["", "The same less each file's share of a format's fixed cost, the coded size of an empty input, in "
              "bytes: " + ", ".join(f"{c} {empty[c]}" for c in names) + ".", ""]
    lines += table(lambda t: {c: 8 * (t["coded"][c] - t["files"] * empty[c]) / t["bytes"] for c in names})
    lines += ["", "Seconds to compress / decompress (a genre's files one after another, one at a time; "
              "the CPU was shared with other work, so take them as rough):", "",
              "| genre | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for g, t in rows:
        lines.append(f"| {g} | " + " | ".join(f"{t['seconds'][c][0]:.2f} / {t['seconds'][c][1]:.2f}"
                                                for c in names) + " |")
    lines += ["", "Files (bits per byte):", "", "| genre | file | bytes | " + " | ".join(names) + " |",
              "|---|---|---|" + "---|" * len(names)]
    for g, v in genres.items():
        for r in v["files"]:
            lines.append(f"| {g} | {r['file']} | {r['bytes']:,} | "
                         + " | ".join(f"{8 * r['coded'][c] / r['bytes']:.3f}" for c in names) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", type=Path, help="a folder of genre folders")
    ap.add_argument("--out", type=Path, required=True, help="report path without suffix")
    args = ap.parse_args()
    codecs = text_baselines()  # those whose package or tool is found
    names = [c.name for c in codecs]
    genres = {}
    for folder in sorted(p for p in args.corpus.iterdir() if p.is_dir()):
        rows = []
        for f in sorted(p for p in folder.iterdir() if p.is_file()):
            rows.append(measure(f, codecs))
            print(f"{folder.name}/{f.name}: " + ", ".join(
                f"{c} {8 * rows[-1]['coded'][c] / rows[-1]['bytes']:.3f}" for c in names), file=sys.stderr)
        genres[folder.name] = {"files": rows, "total": summed(rows, names)}
    report = {"command": "python benchmarks/measure/text_baselines.py " + " ".join(sys.argv[1:]),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.processor() or 'cpu'}, "
                         f"Python {platform.python_version()}",
              "genres": genres, "total": summed([r for v in genres.values() for r in v["files"]], names)}
    report["empty_input_bytes"] = {c.name: len(c.code(b"")[0]) for c in codecs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report, names))


if __name__ == "__main__":
    main()
