"""Raster against wavefront decoding order (image mixer versions 1 and 2): the same benchmarks
at two commits, side by side, per image and per corpus (markdown + JSON + a plot).

    python benchmarks/experiments/order_report.py d8343f1 HEAD photos-test photos-512 photos-test2 \
        graphics-test photos-test-gray --out benchmarks/results/decode-order

Numbers come only from the ``dulzip bench`` JSON files under benchmarks/results at each commit
(read with ``git show``): bits per sub-pixel of the real .dlz files and their encode and decode
times on 2 CPU cores.
"""
from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

from dulzip.bench.common import bar_plot

DLZ = "dulzip (.dlz file)"


def _bench(commit: str, corpus: str) -> dict:
    text = subprocess.run(["git", "show", f"{commit}:benchmarks/results/{corpus}.json"], check=True,
                          capture_output=True, text=True).stdout
    return json.loads(text)


def _commit(ref: str) -> str:
    return subprocess.run(["git", "rev-parse", "--short", ref], check=True, capture_output=True, text=True).stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", help="commit of the raster-order reports")
    ap.add_argument("after", help="commit of the wavefront-order reports")
    ap.add_argument("corpora", nargs="+")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/decode-order"))
    args = ap.parse_args()
    before, after = _commit(args.before), _commit(args.after)
    report = {"command": "python benchmarks/experiments/order_report.py " + " ".join([args.before, args.after, *args.corpora])
              + f" --out {args.out}", "before": before, "after": after, "corpora": []}
    lines = [f"# Decoding order: raster (image mixer version 1, commit {before}) against wavefront (version 2, "
             f"commit {after})", "",
             f"Command: `{report['command']}`", "",
             "The same `dulzip bench` runs of the PixelCNN at the two commits (their commands are in each "
             "corpus's report), on the same 2-core machine: bits per sub-pixel of the real .dlz files, "
             "verified by decoding, and the seconds to encode and to decode each image.", "",
             "| corpus | images | bits/sub-pixel raster | wavefront | change | encode s raster | wavefront "
             "| decode s raster | wavefront | decode speed-up |", "|---|---|---|---|---|---|---|---|---|---|"]
    per_image = []
    for corpus in args.corpora:
        a, b = _bench(before, corpus), _bench(after, corpus)
        ta, tb = a["total"], b["total"]
        row = {"corpus": corpus, "images": len(b["images"]), "bpsp_raster": ta["bpsp"][DLZ],
               "bpsp_wavefront": tb["bpsp"][DLZ], "encode_s_raster": ta["encode_s"], "encode_s_wavefront": tb["encode_s"],
               "decode_s_raster": ta["decode_s"], "decode_s_wavefront": tb["decode_s"]}
        report["corpora"].append(row)
        lines.append(f"| {corpus} | {row['images']} | {row['bpsp_raster']:.3f} | {row['bpsp_wavefront']:.3f} | "
                     f"{100 * (row['bpsp_wavefront'] / row['bpsp_raster'] - 1):+.2f}% | {row['encode_s_raster']:.0f} | "
                     f"{row['encode_s_wavefront']:.0f} | {row['decode_s_raster']:.0f} | {row['decode_s_wavefront']:.0f} | "
                     f"{row['decode_s_raster'] / row['decode_s_wavefront']:.2f}x |")
        old = {r["image"]: r for r in a["images"]}
        for r in b["images"]:
            o = old[r["image"]]
            per_image.append({"corpus": corpus, "image": r["image"], "size": f"{r['width']}x{r['height']}",
                              "channels": r["channels"], "bpsp_raster": o["bpsp"][DLZ], "bpsp_wavefront": r["bpsp"][DLZ],
                              "decode_s_raster": o["decode_s"], "decode_s_wavefront": r["decode_s"]})
    report["images"] = per_image
    lines += ["", "Per image:", "", "| corpus | image | size | channels | bits/sub-pixel raster | wavefront | "
              "decode s raster | wavefront |", "|---|---|---|---|---|---|---|---|"]
    for r in per_image:
        lines.append(f"| {r['corpus']} | {r['image']} | {r['size']} | {r['channels']} | {r['bpsp_raster']:.3f} | "
                     f"{r['bpsp_wavefront']:.3f} | {r['decode_s_raster']:.1f} | {r['decode_s_wavefront']:.1f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    bar_plot(args.out.with_suffix(".png"), [r["corpus"] for r in report["corpora"]],
             {"raster (v1)": [r["decode_s_raster"] for r in report["corpora"]],
              "wavefront (v2)": [r["decode_s_wavefront"] for r in report["corpora"]]},
             "decode seconds in all (2 CPU cores)", "PixelCNN decoding: raster against wavefront order")
    print("\n".join(lines[:len(args.corpora) + 9]))


if __name__ == "__main__":
    main()
