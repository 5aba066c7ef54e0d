"""dulzip against zpaq -m5, PPMd and the rest on the text dev corpus, genre by genre.

    python benchmarks/measure/text_genres.py data/text/genres [--out benchmarks/results] [--summary-only]

runs ``dulzip bench`` on each genre's folder (``text-genres-<genre>.{md,json,png}``: every
file's real .dlz decoded and compared, the baselines beside it) and writes
``text-genres.{md,json,png}``: per genre and in total, bits per byte of dulzip, zpaq -m5 (as its
archives are, and less the bytes its archive of an empty file takes, about 1 KB a file, which
favours dulzip on small files), PPMd and xz, and dulzip's speed. ``--summary-only``: from the
per-genre reports already in ``--out``. The corpus: ``benchmarks/corpora/text_genres.py``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

DULZIP = "dulzip (.dlz file)"
COLUMNS = ("zpaq -m5", "PPMd (7z -m0=PPMd -mx=9)", "xz -9e")


def run_genre(folder: Path, out: Path) -> None:
    subprocess.run([sys.executable, "-m", "dulzip", "bench", str(folder), "--name", f"text-genres-{folder.name}",
                    "-T", "2", "--out", str(out)], check=True)


def summary(out: Path, genres: list[str], empty: dict[str, int]) -> dict:
    rows, coded, n_bytes = {}, {}, 0
    for g in genres:
        rep = json.loads((out / f"text-genres-{g}.json").read_text())
        total, files = rep["total"], rep["files"]
        row = {"files": len(files), "bytes": total["bytes"], "encode_kb_s": total["encode_kb_s"],
               "decode_kb_s": total["decode_kb_s"], "bpb": dict(total["bpb"])}
        zb = sum(f["bpb"]["zpaq -m5"] * f["bytes"] / 8 for f in files) - empty.get("zpaq -m5", 0) * len(files)
        row["bpb"]["zpaq -m5 less its empty archive"] = 8 * zb / total["bytes"]
        rows[g] = row
        n_bytes += total["bytes"]
        for k, v in row["bpb"].items():
            coded[k] = coded.get(k, 0.0) + v * total["bytes"] / 8
    total = {"files": sum(r["files"] for r in rows.values()), "bytes": n_bytes,
             "bpb": {k: 8 * v / n_bytes for k, v in coded.items()}}
    return {"genres": rows, "total": total}


def write(out: Path, s: dict, command: str) -> None:
    cols = (DULZIP, "zpaq -m5", "zpaq -m5 less its empty archive") + COLUMNS[1:]
    names = ("dulzip", "zpaq -m5", "zpaq -m5 less 1 KB a file", "PPMd", "xz -9e")
    lines = ["# Text by genre: dulzip against zpaq -m5", "", f"`{command}`", "",
             "Bits per byte (lower is better) of each genre of the text dev corpus "
             "(`benchmarks/corpora/text_genres.py`, none of it in the training data), every dulzip file its real "
             ".dlz decoded and compared; per-file tables in `text-genres-<genre>.md`. *vs zpaq*: dulzip's size "
             "against zpaq's archives, and against them less what zpaq's archive of an empty file takes "
             "(its fixed cost, about 1 KB a file). Speeds: whole `dulzip compress`/`decompress` calls, "
             "2 threads, KB/s.", "",
             "| genre | files | bytes | " + " | ".join(names)
             + " | vs zpaq | vs zpaq less 1 KB | compress KB/s | decompress KB/s |",
             "|---|---|---|" + "---|" * (len(names) + 4)]

    def row(name, r, speeds):
        b = r["bpb"]
        vs = 100 * (b[DULZIP] / b["zpaq -m5"] - 1)
        vs2 = 100 * (b[DULZIP] / b["zpaq -m5 less its empty archive"] - 1)
        sp = f"{r['encode_kb_s']:.1f} | {r['decode_kb_s']:.1f}" if speeds else " | "
        return (f"| {name} | {r['files']} | {r['bytes']:,} | " + " | ".join(f"{b[c]:.3f}" for c in cols)
                + f" | {vs:+.1f}% | {vs2:+.1f}% | {sp} |")
    for g, r in s["genres"].items():
        lines.append(row(g, r, True))
    lines.append(row("**total**", s["total"], False))
    (out / "text-genres.md").write_text("\n".join(lines) + "\n")
    from dulzip.bench.common import bar_plot
    genres = list(s["genres"]) + ["total"]
    rows = [*s["genres"].values(), s["total"]]
    bar_plot(out / "text-genres.png", genres, {n: [r["bpb"][c] for r in rows] for n, c in zip(names, cols)},
             "bits per byte", "text by genre: lossless, lower is better")
    (out / "text-genres.json").write_text(json.dumps({"command": command, **s}, indent=1) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--summary-only", action="store_true")
    a = ap.parse_args()
    genres = sorted(p.name for p in a.corpus.iterdir() if p.is_dir())
    if not a.summary_only:
        for g in genres:
            run_genre(a.corpus / g, a.out)
    from dulzip.bench.baselines import text_baselines
    empty = {c.name: len(c.code(b"")[0]) for c in text_baselines() if c.name == "zpaq -m5"}  # its fixed cost
    write(a.out, summary(a.out, genres, empty),
          "python benchmarks/measure/text_genres.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
