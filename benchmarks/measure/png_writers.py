"""Byte-identical PNGs from optimizers and other writers: what the default costs over --reencode.

    python benchmarks/measure/png_writers.py data/corpora/png-writers --level 1 --out benchmarks/results

For every PNG under the folder (``benchmarks/corpora/png_writers.py`` makes it: one sub-folder
per writer), compresses it twice through the library, as ``dulzip compress`` does: byte for byte
(the default) and with ``--reencode``; decodes both and checks the first gives the file back and
the second its pixels (where zlib settings reproduce the stream, both make the same file: it
is made once). Reports per file how its IDAT stream is restored (zlib settings found,
or described: the two side streams' bytes), both sizes, the default's excess over the
re-encoded file, and the times. Writes NAME.md, NAME.json and NAME.png (the excess per writer).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from dulzip import api
from dulzip.bench.common import _same_image, bar_plot, machine


def one(path: Path, level: int | None, model: str) -> dict:
    data = path.read_bytes()
    row = {"writer": path.parent.name, "file": path.name, "bytes": len(data)}
    for mode, exact in (("exact", True), ("reencode", False)):
        if mode == "reencode" and row.get("zlib"):  # zlib reproduces it: --reencode makes the same file
            row[mode] = dict(row["exact"])
            continue
        opts = api.Options(model=model, level=level, exact=exact)
        t = time.perf_counter()
        blob = api.compress(data, opts)
        te = time.perf_counter() - t
        t = time.perf_counter()
        out = api.decompress(blob)
        td = time.perf_counter() - t
        h = api.describe(blob)
        ok = out == data if h.get("exact", True) else _same_image(out, data, blob)
        if not ok:
            raise SystemExit(f"{path}: the {mode} file does not decode to what it should")
        row[mode] = {"bytes": len(blob), "kind": h["kind"], "exact": h.get("exact", True), "encode_s": round(te, 2),
                     "decode_s": round(td, 2)}
        if mode == "exact" and h["kind"] == "png":
            names = {s["name"]: s["size"] for s in h["streams"]}
            names.update({k: len(v) // 2 for k, v in h.get("inline", {}).items()})
            row["zlib"] = h["extras"].get("zlib")
            row["described_bytes"] = names.get("png.deflate", 0) + names.get("png.tokens", 0) if row["zlib"] is None \
                else 0
    row["excess_pct"] = round(100 * (row["exact"]["bytes"] / row["reencode"]["bytes"] - 1), 2)
    return row


def report(rows: list[dict], name: str, out: Path, cmd: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps({"command": cmd, "machine": machine(), "files": rows}, indent=1))
    writers = sorted({r["writer"] for r in rows})
    lines = [f"# Byte-identical PNGs from optimizers and other writers ({name})", "",
             f"`{cmd}` on {machine()}. Every file decoded and compared: the default gives the file back byte for "
             "byte, `--reencode` its pixels and chunks. *excess*: the default's file over the re-encoded one. "
             "*restored by*: the zlib settings that reproduce the IDAT stream, or its description "
             "(the bytes of its two side streams), or `bytes` where the file went the bytes way.", "",
             "| writer | files | zlib settings found | described | bytes way | default bytes | --reencode bytes | excess | "
             "worst file | encode s | decode s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for w in writers + ["all"]:
        rs = [r for r in rows if w in ("all", r["writer"])]
        ex = sum(r["exact"]["bytes"] for r in rs)
        re = sum(r["reencode"]["bytes"] for r in rs)
        worst = max(rs, key=lambda r: r["excess_pct"])
        lines.append(f"| {w} | {len(rs)} | {sum(1 for r in rs if r.get('zlib'))} | "
                     f"{sum(1 for r in rs if r.get('described_bytes'))} | "
                     f"{sum(1 for r in rs if r['exact']['kind'] != 'png')} | {ex:,} | {re:,} | "
                     f"{100 * (ex / re - 1):+.2f}% | {worst['file']} {worst['excess_pct']:+.2f}% | "
                     f"{sum(r['exact']['encode_s'] for r in rs):.1f} | {sum(r['exact']['decode_s'] for r in rs):.1f} |")
    lines += ["", "## Per file", "", "| writer | file | input | restored by | default | --reencode | excess | "
              "encode s (default / reencode) | decode s |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        how = ("zlib " + ",".join(map(str, r["zlib"]))) if r.get("zlib") else (
            f"described, {r['described_bytes']:,} B" if r.get("described_bytes") else r["exact"]["kind"])
        lines.append(f"| {r['writer']} | {r['file']} | {r['bytes']:,} | {how} | {r['exact']['bytes']:,} | "
                     f"{r['reencode']['bytes']:,} | {r['excess_pct']:+.2f}% | {r['exact']['encode_s']} / "
                     f"{r['reencode']['encode_s']} | {r['exact']['decode_s']} / {r['reencode']['decode_s']} |")
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
    bar_plot(out / f"{name}.png", writers,
             {"excess %": [100 * (sum(r["exact"]["bytes"] for r in rows if r["writer"] == w)
                                  / sum(r["reencode"]["bytes"] for r in rows if r["writer"] == w) - 1)
                           for w in writers]},
             "% over --reencode", "byte-identical PNGs: cost over re-encoding, per writer")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--level", type=int, default=None)
    ap.add_argument("-m", "--model", default="auto")
    ap.add_argument("--name", default="png-writers")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--only", nargs="*", metavar="WRITER/FILE",
                    help="measure these files again and keep the other rows of the report's JSON (those of files "
                         "that still exist)")
    a = ap.parse_args()
    rows = []
    files = sorted(a.folder.glob("*/*.png"))
    cmd = "python " + " ".join(sys.argv)
    if a.only is not None:
        old = json.loads((a.out / f"{a.name}.json").read_text())
        files = [a.folder / o for o in a.only]
        rows = [r for r in old["files"] if f"{r['writer']}/{r['file']}" not in a.only
                and (a.folder / r["writer"] / r["file"]).exists()]
        cmd = old["command"] + "; then " + cmd
    for f in files:
        rows.append(one(f, a.level, a.model))
        r = rows[-1]
        print(r["writer"], r["file"], r["exact"]["bytes"], r["reencode"]["bytes"], f"{r['excess_pct']:+.2f}%",
              r.get("zlib"), r.get("described_bytes"), r["exact"]["encode_s"], r["exact"]["decode_s"], flush=True)
    rows.sort(key=lambda r: (r["writer"], r["file"]))
    report(rows, a.name, a.out, cmd)


if __name__ == "__main__":
    main()
