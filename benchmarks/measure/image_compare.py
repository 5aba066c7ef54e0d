"""Several ``dulzip bench`` reports of one image corpus, made with different models, merged into
one comparison (markdown + JSON + a plot).

    python benchmarks/measure/image_compare.py --name photos-test-compare --out benchmarks/results \\
        pyramid=benchmarks/results/photos-test-pyramid.json pixelcnn=benchmarks/results/photos-test.json \\
        idf=benchmarks/results/photos-test-idf.json

Why: each bench report has a single dulzip column, so comparing the models meant reading three
tables side by side. Nothing is measured here; every number comes from the reports given, which
is why the markdown lists each report's command and machine: the times of different columns were
measured in different runs. The baselines (WebP, JPEG-XL e7 and e9, PNG) are the same codecs on
the same pixels in every report, so each is taken once, from the first report listed that has it
for every image (one with per-image seconds preferred: older reports lack them); a report whose
baseline sizes differ from the chosen ones is noted, as it would mean another corpus or codec
version. Rows follow the first report's images, and a report lacking one of them is an error.
Totals are over all sub-pixels (total bits / total sub-pixels), times summed.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from dulzip.bench.common import DLZ, bar_plot
from dulzip.bench.images import short_name

BASELINES = ("WebP lossless (m6, q100)", "JPEG-XL lossless (e7)", "JPEG-XL lossless (e9)", "PNG (Pillow -9, optimize)")
NOT_EXACT = "\u2020"  # marks a .dlz whose PNG was re-encoded (same pixels, other bytes)


def merge(reports: dict[str, dict]) -> dict:
    """The comparison of {label: bench report}: per-image rows with each column's bits per
    sub-pixel and [encode s, decode s] (None where unknown), the totals, and what to flag.
    Columns: the labels (their dulzip column), then the baselines' full codec names."""
    labels = list(reports)
    first = reports[labels[0]]["images"]
    shape = lambda r: (r["height"], r["width"], r["channels"])  # noqa: E731
    rows_of = {}
    for label, rep in reports.items():
        rows_of[label] = {r["image"]: r for r in rep["images"]}
        for r in first:
            o = rows_of[label].get(r["image"])
            if o is None:
                raise ValueError(f"{label}: its report has no {r['image']} (which {labels[0]}'s has)")
            if shape(o) != shape(r):
                raise ValueError(f"{label}: {r['image']} is {shape(o)} there, {shape(r)} in {labels[0]}'s report")
    source = {}  # baseline codec -> the label whose report gives it
    for codec in BASELINES:
        having = [lb for lb in labels if all(codec in rows_of[lb][r["image"]]["bpsp"] for r in first)]
        timed = [lb for lb in having if all(codec in rows_of[lb][r["image"]].get("seconds", {}) for r in first)]
        if having:
            source[codec] = (timed or having)[0]
    columns = labels + list(source)
    rows, flags = [], {"not_exact": [], "other_model": [], "baseline_mismatch": []}
    for r in first:
        name, bpsp, seconds = r["image"], {}, {}
        for lb in labels:
            o = rows_of[lb][name]
            bpsp[lb], seconds[lb] = o["bpsp"][DLZ], [o["encode_s"], o["decode_s"]]
            if o.get("dlz_exact") is False:
                flags["not_exact"].append({"label": lb, "image": name})
            used = o.get("dlz_model") or "zstd"
            if used != reports[lb]["meta"].get("model"):
                flags["other_model"].append({"label": lb, "image": name, "model": used})
        for codec, lb in source.items():
            bpsp[codec] = rows_of[lb][name]["bpsp"][codec]
            seconds[codec] = rows_of[lb][name].get("seconds", {}).get(codec)
            for other in labels:
                v = rows_of[other][name]["bpsp"].get(codec)
                if v is not None and abs(v - bpsp[codec]) > 1e-9:
                    flags["baseline_mismatch"].append({"codec": codec, "image": name, "label": other, "bpsp": v,
                                                       "from": lb, "from_bpsp": bpsp[codec]})
        rows.append({"image": name, "height": r["height"], "width": r["width"], "channels": r["channels"],
                     "subpixels": r["height"] * r["width"] * r["channels"], "bpsp": bpsp, "seconds": seconds,
                     "best": _best(bpsp)})
    n = sum(r["subpixels"] for r in rows)
    tb = {c: sum(r["bpsp"][c] * r["subpixels"] for r in rows) / n for c in columns}
    ts = {c: [round(sum(r["seconds"][c][i] for r in rows), 4) for i in (0, 1)]
          if all(r["seconds"][c] for r in rows) else None for c in columns}
    return {"columns": columns, "labels": labels, "baseline_source": source, "images": rows,
            "total": {"subpixels": n, "bpsp": tb, "seconds": ts, "best": _best(tb)}, "flags": flags}


def _best(bpsp: dict[str, float]) -> list[str]:
    """Every column at the row's minimum (ties are all bold, as in the bench reports)."""
    low = min(bpsp.values())
    return [c for c, v in bpsp.items() if v == low]


def markdown(name: str, cmd: str, sources: list[dict], m: dict) -> list[str]:
    labels, codecs = m["labels"], list(m["baseline_source"])
    exact = {(f["label"], f["image"]) for f in m["flags"]["not_exact"]}

    def cells(row: dict) -> list[str]:
        out = []
        for c in m["columns"]:
            v = f"{row['bpsp'][c]:.3f}" + (NOT_EXACT if (c, row.get("image")) in exact else "")
            out.append(f"**{v}**" if c in row["best"] else v)
            s = row["seconds"][c]
            if c in labels:
                out += [f"{s[0]:.1f}", f"{s[1]:.1f}"]
            else:
                out.append(f"{s[0]:.2f} / {s[1]:.2f}" if s else "-")
        return out

    head = ["image", "size"] + [x for lb in labels for x in (lb, "encode s", "decode s")] + \
           [x for c in codecs for x in (short_name(c), "enc / dec s")]
    lines = [f"# Comparison: {name}", "", f"Command: `{cmd}`", "",
             "Bits per sub-pixel (lower is better; the best of each row in bold). Each model's column is the "
             "real .dlz file of the image's PNG file, verified by decoding, from that model's `dulzip bench` "
             "report (listed below); its encode and decode seconds are the whole compress and decompress "
             "calls, a baseline's seconds its encode and decode. Nothing was measured by this script, and the "
             "times of different columns were measured in different runs, not side by side: they compare "
             "only as far as the machine and its load were the same (each report's markdown says more).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in m["images"]:
        lines.append(f"| {r['image']} | {r['width']}x{r['height']} | " + " | ".join(cells(r)) + " |")
    lines.append(f"| **total** | {m['total']['subpixels']} sub-px | " + " | ".join(cells(m["total"])) + " |")
    tb = m["total"]["bpsp"]
    ref = min(codecs, key=tb.get) if codecs else None
    if ref:
        lines += ["", f"In total, against {short_name(ref)} (the smallest baseline): " + ", ".join(
            f"{lb} {100 * (tb[lb] / tb[ref] - 1):+.1f}%" for lb in labels) + " (size change)."]
    lines += ["", "Sources:", ""]
    for s in sources:
        meta = s["meta"]
        lines.append(f"- `{s['label']}`: `{s['path']}`, made by `{meta.get('command')}`; dulzip {meta.get('version')}, "
                     f"model `{meta.get('model')}`, {meta.get('machine')}, torch threads {meta.get('threads')}.")
    for lb in dict.fromkeys(m["baseline_source"].values()):
        got = [short_name(c) for c, v in m["baseline_source"].items() if v == lb]
        lines.append(f"- Baselines {', '.join(got)}: from `{lb}`'s report.")
    f = m["flags"]
    if f["not_exact"]:
        lines += ["", f"{NOT_EXACT} Not exact (dlz_exact false: the PNG was re-encoded, same pixels, other bytes): "
                  + ", ".join(f"{x['label']} {x['image']}" for x in f["not_exact"]) + "."]
    if f["other_model"]:
        lines += ["", "Not coded by the report's model (dulzip chose another coder; the model's column shows "
                  "that coder's size): " + ", ".join(f"{x['label']} {x['image']} ({x['model']})"
                                                     for x in f["other_model"]) + "."]
    if f["baseline_mismatch"]:
        lines += ["", "Baseline sizes that differ between reports (another corpus or codec version?): " + ", ".join(
            f"{short_name(x['codec'])} {x['image']}: {x['label']} {x['bpsp']:.4f}, {x['from']} {x['from_bpsp']:.4f}"
            for x in f["baseline_mismatch"]) + "."]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reports", nargs="+", metavar="LABEL=REPORT.json")
    ap.add_argument("--name", required=True)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    cmd = "python benchmarks/measure/image_compare.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    sources, reports = [], {}
    for arg in args.reports:
        label, sep, path = arg.partition("=")
        if not sep or not label or label in reports:
            sys.exit(f"image_compare.py: {arg!r}: give each report as LABEL=path.json, with distinct labels")
        reports[label] = json.loads(Path(path).read_text())
        sources.append({"label": label, "path": path, "meta": reports[label]["meta"]})
    try:
        m = merge(reports)
    except ValueError as e:
        sys.exit(f"image_compare.py: {e}")
    args.out.mkdir(parents=True, exist_ok=True)
    base = args.out / args.name
    report = {"meta": {"command": cmd, "sources": sources}, **m}
    base.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    lines = markdown(args.name, cmd, sources, m)
    base.with_suffix(".md").write_text("\n".join(lines) + "\n")
    bar_plot(base.with_suffix(".png"), [r["image"].rsplit(".", 1)[0] for r in m["images"]] + ["total"],
             {(c if c in m["labels"] else short_name(c)): [r["bpsp"][c] for r in m["images"]] + [m["total"]["bpsp"][c]]
              for c in m["columns"]}, "bits per sub-pixel", f"{args.name}: lossless, lower is better")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
