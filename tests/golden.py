"""Golden bitstreams: for every kind of content and every coder, a small input and the exact .dlz
bytes dulzip makes from it, so that a change meant to be bit-neutral (a refactoring, a faster
kernel) is proven so, and a change that is not is seen before it ships.

Two sets, in ``tests/data/golden`` with ``manifest.json``:

* **current** files: made by today's code with the shipped models (:func:`specs`). The test
  compresses each input again with the options recorded and expects the same bytes, then
  decodes the file and expects the input (or, for a re-encoded PNG, the recorded output).
* **legacy** files: made once by an older dulzip (a commit of this repository, run as it was,
  not today's code dressed up as old), for the format and mixer versions that are no longer
  written: container format 1 (JSON header), image mixer version 1 (raster order), and the
  retired flow weights. The test decodes them; they are never re-made.

Regenerate the current set only on purpose (a change of format, mixer or shipped weights), with
a line in CHANGELOG.md::

    python -m tests.golden --make            # all current files
    python -m tests.golden --make png-rgb    # some
    python -m tests.golden --legacy COMMIT NAME...   # add legacy files made by an old commit
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.fuzzing import DATA, ROOT, _odd_zlib_png, _png, _png16, _pnm, _pnm16, _rgb, _rgb16, _wav, _wav_slice, blake

GOLDEN = DATA / "golden"


def specs() -> dict[str, tuple[str, dict, object]]:
    """name -> (what it covers, compress options, a function returning the input). Options keep
    the model path (``fallback: False``) where zstd would win on so small an input: the coder is
    what is under test. Inputs span several tiles, blocks and streams where the coder has them."""
    import numpy as np

    def rgba():
        from PIL import Image
        a = np.asarray(Image.open(DATA / "dune-47x37-rgba.png"))[2:18, 3:23]
        return _png(np.ascontiguousarray(a), "RGBA")

    def palette():
        from PIL import Image
        img = Image.fromarray(_rgb(16, 20)).quantize(16)
        buf = __import__("io").BytesIO()
        img.save(buf, "PNG")
        return buf.getvalue()

    def stereo_samples():
        left = _wav_slice("fluidr3-0507-Clarinet_E4_L.wav", 8000, 1500)[:, 0].astype(np.int32)
        right = (left * 3) // 4 + np.arange(len(left)) % 7 - 3
        return np.stack([left, right], 1).astype(np.int16)

    def stereo():
        return _wav(stereo_samples(), 22050)

    def cascade24():
        base = _wav_slice("fluidr3-0507-Clarinet_E4_L.wav", 8000, 1500)[:, 0].astype(np.int32) << 8
        x = np.stack([base, base // 2 + np.arange(len(base)) % 97 - 48, base // 3], 1)
        return _wav(x, 48000, bits=24)

    def text():
        doc = (ROOT / "tests" / "data" / "fuzz" / "seeds" / "text.orig").read_bytes()
        src = (ROOT / "dulzip" / "argv.py").read_bytes()[:1500]
        return doc + b"\n" + src

    keep = {"fallback": False}
    return {
        "png-rgb": ("PNG RGB 24x20, pixelcnn, 4 tiles of 12 (wavefront, image mixer)",
                    {**keep, "model": "pixelcnn", "tile": 12}, lambda: _png(_rgb(20, 24))),
        "png-gray": ("PNG gray 20x16, pixelcnn, tiles of 8",
                     {**keep, "model": "pixelcnn", "tile": 8},
                     lambda: _png(np.ascontiguousarray(_rgb(16, 20, 20, 5)[:, :, 1]), "L")),
        "png-rgba": ("PNG RGBA 20x16 with a coded alpha plane, pixelcnn, tiles of 8",
                     {**keep, "model": "pixelcnn", "tile": 8}, rgba),
        "png-palette": ("palette PNG 20x16, 16 colors, pixelcnn, tiles of 8",
                        {**keep, "model": "pixelcnn", "tile": 8}, palette),
        "png-inexact": ("PNG whose zlib stream is not reproduced (re-encoded, exact=false), pixelcnn",
                        {**keep, "model": "pixelcnn", "tile": 8, "exact": False}, lambda: _odd_zlib_png(_rgb(12, 14))),
        "png-described": ("PNG whose zlib stream zlib does not reproduce, re-created from its blocks and tokens, pixelcnn",
                          {**keep, "model": "pixelcnn", "tile": 8}, lambda: _odd_zlib_png(_rgb(12, 14))),
        "ppm": ("PPM (P6) 22x18, pixelcnn, tiles of 16", {**keep, "model": "pixelcnn", "tile": 16},
                lambda: _pnm(b"P6", _rgb(18, 22, 3, 3))),
        "png16-rgb": ("PNG 16-bit RGB 24x20, the 16-bit coder (image16 version 1, levels as ranks)", {**keep},
                      lambda: _png16(_rgb16(20, 24))),
        "pgm16": ("PGM 16-bit 22x18, maxval 511, the 16-bit coder (levels as offsets)", {**keep},
                  lambda: _pnm16(_rgb16(18, 22)[:, :, 1:2] >> 7, 511)),
        "digit": ("28x28 gray digit, made", {**keep}, lambda: (DATA / "digit-7.png").read_bytes()),
        "digit-1bit": ("28x28 1-bit digit, made-binary", {**keep}, lambda: (DATA / "digit-7-1bit.png").read_bytes()),
        "flow-rgb": ("PNG RGB 32x24 through the flow (level 1), idf", {**keep, "level": 1},
                     lambda: _png(_rgb(24, 32))),
        "flow-gray": ("PGM 32x24 through the gray flow (level 1), idf-gray", {**keep, "level": 1},
                      lambda: _pnm(b"P5", np.ascontiguousarray(_rgb(24, 32, 2, 10)[:, :, 0]))),
        "text": ("2.2 KB of English and Python, charrnn with the text mixer", {**keep}, text),
        "wav-speech": ("WAV 8 kHz 16-bit mono, 3000 frames, wavenet", {**keep, "model": "wavenet"},
                       lambda: _wav(_wav_slice("asterisk-confbridge-participants.wav", 6000, 3000), 8000)),
        "wav-8bit": ("WAV 8 kHz 8-bit mono, wavenet", {**keep, "model": "wavenet"},
                     lambda: _wav((_wav_slice("asterisk-confbridge-participants.wav", 3000, 1500) // 256)
                                  .astype(np.int16), 8000, bits=8)),
        "wav-music": ("WAV 44.1 kHz 16-bit mono, 3000 frames, wavenet-music", {**keep, "model": "wavenet-music"},
                      lambda: _wav(_wav_slice("fluidr3-0507-Clarinet_E4_L.wav", 4000, 3000), 44100)),
        "wav-stereo": ("WAV 22.05 kHz stereo (left and side), wavenet-music", {**keep, "model": "wavenet-music"}, stereo),
        "wav-cascade-speech": ("WAV 8 kHz 16-bit mono, 3000 frames, the adaptive-filter coder (cascade version 1)",
                               {**keep}, lambda: _wav(_wav_slice("asterisk-confbridge-participants.wav", 6000, 3000), 8000)),
        "wav-cascade-stereo": ("WAV 44.1 kHz 16-bit stereo, the adaptive-filter coder (long sign-sign stages, "
                               "cross-channel stage)", {**keep}, lambda: _wav(stereo_samples(), 44100)),
        "wav-cascade-24bit": ("WAV 48 kHz 24-bit, 3 channels (a pair and one alone), the adaptive-filter coder",
                              {**keep}, cascade24),
        "bytes": ("binary bytes, zstd", {}, lambda: bytes(range(256)) * 8 + (DATA / "digit-7.png").read_bytes()),
        "empty": ("the empty file", {}, lambda: b""),
    }


def options(opts: dict):
    from dulzip import api
    return api.Options(device="cpu", threads=1, **opts)


def load_manifest() -> dict:
    path = GOLDEN / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {}


def save_manifest(manifest: dict) -> None:
    (GOLDEN / "manifest.json").write_text(json.dumps(dict(sorted(manifest.items())), indent=1) + "\n")


def make(names: list[str] | None = None) -> dict:
    """(Re)make the current golden files (all, or ``names``) with today's code."""
    from dulzip import api
    GOLDEN.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest()
    for name, (what, opts, make_input) in specs().items():
        if names and name not in names:
            continue
        data = make_input()
        blob = api.compress(data, options(opts))
        out = api.decompress(blob, options({}))
        h = api.describe(blob)
        (GOLDEN / f"{name}.in").write_bytes(data)
        (GOLDEN / f"{name}.dlz").write_bytes(blob)
        manifest[name] = {"set": "current", "what": what, "options": opts, "kind": h["kind"],
                          "model": (h.get("model") or {}).get("name"), "format": blob[4],
                          "mixer": (h.get("layout") or {}).get("mixer"), "size": len(blob),
                          "output_blake2b": blake(out)}
        print(f"{name:12s} {h['kind']:5s} {manifest[name]['model']!s:14s} {len(data):6d} -> {len(blob):6d}")
    save_manifest(manifest)
    return manifest


# What an old commit runs to compress: its own api, its own models folder, nothing of today's.
_OLD = """
import sys, json
sys.path.insert(0, sys.argv[1])
from dulzip import api
opts = json.loads(sys.argv[2])
data = sys.stdin.buffer.read()
fields = {k: v for k, v in opts.items() if k in api.Options.__dataclass_fields__}
sys.stdout.buffer.write(api.compress(data, api.Options(**fields)))
"""


def make_legacy(commit: str, names: list[str], what: str) -> None:
    """Compress the inputs of current entries ``names`` with the dulzip of ``commit`` (a git
    worktree of it, with its own models folder) and add them as legacy entries
    ``NAME@SHORTCOMMIT``; each must decode with today's code to its input."""
    from dulzip import api
    manifest = load_manifest()
    short = subprocess.run(["git", "rev-parse", "--short=7", commit], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "old"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), commit], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            models = next(p for p in (tree / "dulzip" / "models_data", tree / "models") if p.is_dir())
            env = {**os.environ, "DULZIP_MODELS": str(models), "PYTHONPATH": str(tree)}
            for name in names:
                entry = manifest[name]
                data = (GOLDEN / f"{name}.in").read_bytes()
                # the model named, as the current file has it (an old dulzip may choose otherwise)
                opts = {**entry["options"], **({"model": entry["model"]} if entry["model"] else {})}
                r = subprocess.run([sys.executable, "-c", _OLD, str(tree), json.dumps(opts)],
                                   input=data, capture_output=True, env=env, cwd=tmp, timeout=900)
                if r.returncode:
                    raise RuntimeError(f"{name} at {short}: {r.stderr.decode()[-2000:]}")
                blob = r.stdout
                out = api.decompress(blob, options({}))
                h = api.describe(blob)
                key = f"{name}@{short}"
                (GOLDEN / f"{key}.dlz").write_bytes(blob)
                manifest[key] = {"set": "legacy", "what": f"{entry['what']}: {what}", "input": f"{name}.in",
                                 "commit": short, "kind": h["kind"], "model": (h.get("model") or {}).get("name"),
                                 "format": blob[4], "mixer": (h.get("layout") or {}).get("mixer"),
                                 "size": len(blob), "output_blake2b": blake(out)}
                print(f"{key:22s} format {blob[4]} mixer {manifest[key]['mixer']} {len(blob)} bytes")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
    save_manifest(manifest)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.golden", description=__doc__.split("\n\n")[0])
    ap.add_argument("--make", nargs="*", metavar="NAME", help="(re)make current files (none named: all)")
    ap.add_argument("--legacy", nargs="+", metavar=("COMMIT", "NAME"), help="add legacy files made by COMMIT")
    ap.add_argument("--what", default="", help="what the legacy commit's files stand for")
    a = ap.parse_args(argv)
    if a.make is not None:
        make(a.make or None)
    if a.legacy:
        make_legacy(a.legacy[0], a.legacy[1:], a.what)
    return 0


if __name__ == "__main__":
    sys.exit(main())
