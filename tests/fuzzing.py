"""A fuzzer for .dlz decoding: seeds, mutators, an oracle, and a harness that survives its cases.

Why: a .dlz file is input from anywhere (a download, a damaged disk, an attacker). Decoding one
must end, within bounded time and memory, in one of two ways: the original bytes, or a
:class:`dulzip.errors.DulzipError` (which the CLI turns into one line and exit code 1). Anything
else -- another exception type (a traceback for the user), a hang, a huge allocation, a segfault in
numba or constriction, or, worst, different bytes returned as if all were well -- is a bug. Unit
tests check the cases somebody thought of; this module generates the ones nobody did, from real
files of every kind and every shipped model, so that the model decoders themselves (not only the
container parser) see hostile headers and corrupt coded data.

Parts:

* **Seeds** (:func:`make_seeds`): tiny real .dlz files made by the real compressor with the shipped
  models (``Options(fallback=False)`` keeps the model path even where zstd would be smaller), one
  per kind of content and model, plus streamed, empty, stored and format-version-1 files. Tiny so
  that decoding a mutant takes milliseconds, not seconds: the fuzzer's reach is cases per second.
  They are shipped in ``tests/data/fuzz/seeds`` with ``manifest.json`` (what each decodes to) and
  double as format-compatibility files: old files must keep decoding.
* **Mutators** (:data:`MUTATORS`): byte-level (bit flips, byte sets, truncation, insertion,
  deletion) and structure-aware (a header field replaced, a key deleted or added, stream entries
  duplicated, dropped, reordered, a payload corrupted) with the header CRC, the header length and
  each touched stream's size and CRC32 fixed up -- without the fix-up almost every mutant stops at
  a checksum and the decoders behind it are never reached. Every mutant is a pure function of
  (base seed, case number): a failure is reproducible from its case number alone (and its bytes
  are saved too).
* **Oracle** (:func:`run_case`): ``api.decompress``, sometimes ``api.decompress_stream`` (the CLI's
  path for files), and ``api.describe`` plus ``cli.describe_lines`` (``dulzip list``) on every
  mutant. Outcomes: ``ok`` (the seed's output, byte for byte), ``error:<Class>`` (a DulzipError),
  or a failure: ``wrong-output``, ``foreign-exception``, ``hang``, ``memory``, ``crash``.
* **Harness** (:func:`fuzz`): worker processes (spawned, models loaded once) run one case at a
  time; the parent knows which case each runs, kills one past the time limit (a hang) or the
  memory limit (a watchdog thread reads ``/proc/PID/status``), records a crash when one dies by a
  signal, and starts a fresh worker. Nothing a mutant does can stop the run.

Command line (from the repository root)::

    python -m tests.fuzzing --cases 2000 --workers 2 --seed 0 --report benchmarks/results/fuzz
    python -m tests.fuzzing --time-budget 600            # as many cases as fit in 10 minutes
    python -m tests.fuzzing --make-seeds                 # re-make tests/data/fuzz/seeds
    python -m tests.fuzzing --show 1234 --seed 0         # describe (and write) case 1234's mutant
    python -m tests.fuzzing --replay FILE.dlz            # decode one file here, with its traceback
"""
from __future__ import annotations

import argparse
import copy
import functools
import hashlib
import io
import json
import math
import os
import random
import struct
import sys
import threading
import time
import traceback
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from dulzip.schema import DEFAULT_MAX_MEMORY

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
FUZZ = DATA / "fuzz"
SEEDS_DIR = FUZZ / "seeds"
FOUND_DIR = FUZZ / "found"
REGRESSIONS_DIR = FUZZ / "regressions"

TIME_LIMIT = 30.0  # seconds a case may take before it counts as a hang
MEMORY_LIMIT = 2 << 30  # bytes of resident memory a worker may reach while decoding a case
# What the decoder is told it may use (Options.max_memory): its default, so that the fuzzer
# measures dulzip as users run it. Files whose decode it estimates above that are refused with a
# UsageError; a mutant it admits that still passes MEMORY_LIMIT counts as "memory" (a hostile
# file must not make the decoder take 2 GB, whatever its header claims).
DECODE_MEMORY = DEFAULT_MAX_MEMORY
FAILURES = ("wrong-output", "foreign-exception", "hang", "memory", "crash")


def blake(data: bytes) -> str:
    """The container's own checksum of a file (blake2b, 128 bits), so the manifest reads alike."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


# =============================================================================================
# Seeds
# =============================================================================================
def _png(arr, mode: str | None = None, **save) -> bytes:
    from PIL import Image
    img = Image.fromarray(arr, mode) if mode else Image.fromarray(arr)
    buf = io.BytesIO()
    img.save(buf, "PNG", **save)
    return buf.getvalue()


def _rgb(h: int, w: int, y: int = 9, x: int = 17):
    import numpy as np
    from PIL import Image
    return np.ascontiguousarray(np.asarray(Image.open(DATA / "dune-47x37.png").convert("RGB"))[y:y + h, x:x + w])


def _odd_zlib_png(arr) -> bytes:
    """A PNG whose IDAT zlib stream no zlib setting reproduces (a full flush in the middle), so
    the file comes back re-encoded: a header with exact=false and output_length/output_blake2b."""
    import numpy as np
    raw = b"".join(b"\0" + row.tobytes() for row in np.asarray(arr))
    co = zlib.compressobj(6)
    idat = co.compress(raw[:len(raw) // 2]) + co.flush(zlib.Z_FULL_FLUSH) + co.compress(raw[len(raw) // 2:]) + co.flush()
    h, w = arr.shape[:2]

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def _pnm(magic: bytes, arr) -> bytes:
    h, w = arr.shape[:2]
    return magic + b"\n%d %d\n255\n" % (w, h) + arr.tobytes()


def _png16(arr, filters: bytes | None = None, params=(9, 9, 0), chunks=None) -> bytes:
    """A 16-bit PNG of (H, W, C) uint16 samples (Pillow writes 16-bit gray only): Pillow's
    filter choice, or ``filters``; a zlib setting; the standard chunks, or ``chunks``."""
    from dulzip.formats import png
    H, W, C = arr.shape
    if filters is None:
        filters = png.pillow_filters(png.scanlines(arr, 16), 2 * C, True)
    return png.build(arr, chunks or png.standard_chunks(W, H, C, 16), None, filters, params, 16)


def _pnm16(arr, maxval: int = 65535) -> bytes:
    """A 16-bit PGM (C = 1) or PPM (C = 3): two bytes a sample, big-endian."""
    h, w, c = arr.shape
    return (b"P5" if c == 1 else b"P6") + b"\n%d %d\n%d\n" % (w, h, maxval) + arr.astype(">u2").tobytes()


def _rgb16(h: int, w: int, y: int = 9, x: int = 17):
    """A 16-bit crop of the Dune sample: 8-bit levels times 257, plus a little smooth detail
    (so that every level is used and the image is not 8-bit data in disguise)."""
    import numpy as np
    a = _rgb(h, w, y, x).astype(np.int64) * 257
    ramp = (np.arange(h)[:, None, None] * 37 + np.arange(w)[None, :, None] * 11 + np.arange(3)) % 200
    return np.clip(a + ramp - 100, 0, 65535).astype(np.uint16)


def _wav_slice(path: Path, start: int, frames: int):
    from dulzip.formats import wav
    return wav.parse_wav((DATA / path).read_bytes()).samples[start:start + frames]


def _wav(samples, rate: int, bits: int = 16, extra: bytes = b"") -> bytes:
    """A WAV of int16 samples (frames, channels); ``extra``: a LIST chunk before ``data``, so the
    header is not the canonical one and travels as side data."""
    from dulzip.formats import wav
    channels = samples.shape[1]
    body = wav.sample_bytes(samples, bits)
    head = wav.canonical_prefix(rate, bits, channels, len(samples))
    if extra:
        lst = b"LIST" + struct.pack("<I", len(extra)) + extra
        head = (b"RIFF" + struct.pack("<I", 4 + 24 + len(lst) + 8 + len(body)) + head[8:36] + lst
                + b"data" + struct.pack("<I", len(body)))
    return head + body


def _compress(data: bytes, model: str = "auto", **kw) -> bytes:
    from dulzip import api
    return api.compress(data, api.Options(model=model, fallback=False, device="cpu", threads=1, **kw))


def _compress_with_version(data: bytes, model: str, sha_prefix: str) -> bytes:
    """Compress with a retired version of ``model`` (the files made before it was replaced):
    ``zoo.load`` is asked for that version's weights while compressing."""
    from dulzip import zoo
    real = zoo.load
    sha = next(c["sha256"] for c in zoo.versions(model) if c["sha256"].startswith(sha_prefix))

    def load(name, device="cpu", expect_sha256=None):
        return real(name, device, expect_sha256 or (sha if name == model else None))
    zoo.load = load
    try:
        return _compress(data, model)
    finally:
        zoo.load = real


def _streamed(data: bytes, module: str, name: str, size: int, **opts) -> bytes:
    """The streamed path (what `dulzip compress` does for files of 32 MB or more) with
    ``module.name`` (its piece or block size) set to ``size`` for the call, so that several
    pieces or blocks follow each other in one small file."""
    import importlib

    from dulzip import api
    mod = importlib.import_module(module)
    real = getattr(mod, name)
    setattr(mod, name, size)
    try:
        out = io.BytesIO()
        api.compress_stream(io.BytesIO(data), out, api.Options(**opts), len(data))
        return out.getvalue()
    finally:
        setattr(mod, name, real)


def as_version1(blob: bytes) -> bytes:
    """The same file in format version 1 (zlib-compressed JSON header, 4-byte length): how files
    were written before the compact header; still read."""
    from dulzip.container import read_header
    header, pos = read_header(blob)
    return pack_header(header, blob[pos:], version=1)


def _text() -> bytes:
    text = (ROOT / "README.md").read_text()
    start = text.index("## How it works")
    return text[start:start + 700].encode()


def seed_specs() -> dict[str, tuple[str, object]]:
    """name -> (what it covers, a function returning (original file, .dlz file)). Inputs are
    crops of tests/data samples (real content, so the models' paths are typical)."""
    import numpy as np

    def image(make_input, model="auto", **kw):  # (any input: not only images)
        def make():
            data = make_input()
            return data, _compress(data, model, **kw)
        return make

    def rgba():
        from PIL import Image
        a = np.asarray(Image.open(DATA / "dune-47x37-rgba.png"))[5:13, 3:12]
        return _png(np.ascontiguousarray(a), "RGBA")

    def palette():
        from PIL import Image
        img = Image.fromarray(_rgb(10, 12)).quantize(12)
        buf = io.BytesIO()
        img.save(buf, "PNG")
        return buf.getvalue()

    def gray_png():
        return _png(np.ascontiguousarray(_rgb(10, 12, 20, 5)[:, :, 1]), "L")

    def gray_alpha():
        g = _rgb(7, 9, 12, 12)
        return _png(np.ascontiguousarray(np.dstack([g[:, :, 0], 255 - g[:, :, 2]])), "LA")

    def speech():
        return _wav(_wav_slice("asterisk-confbridge-participants.wav", 6000, 600), 8000)

    def speech_side():  # a non-canonical header (a LIST chunk): the WAV header as side data
        return _wav(_wav_slice("asterisk-confbridge-participants.wav", 9000, 500), 8000,
                    extra=b"INFOISFT\x06\x00\x00\x00dulzip")

    def music():
        return _wav(_wav_slice("fluidr3-0507-Clarinet_E4_L.wav", 4000, 1200), 44100)

    def stereo():
        left = _wav_slice("fluidr3-0507-Clarinet_E4_L.wav", 8000, 700)[:, 0].astype(np.int32)
        right = (left * 3) // 4 + np.arange(len(left)) % 7 - 3
        return _wav(np.stack([left, right], 1).astype(np.int16), 22050)

    def eight_bit():
        s = _wav_slice("asterisk-confbridge-participants.wav", 3000, 600)
        return _wav((s // 256).astype(np.int16), 8000, bits=8)

    def bytes_file():
        return bytes(range(256)) * 2 + (DATA / "digit-7.png").read_bytes()

    def with_data(data):
        return lambda: data

    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, 48, dtype=np.uint8).tobytes()
    specs = {
        "png-rgb": ("PNG RGB 12x10, pixelcnn (its usual tiles of 64)", image(lambda: _png(_rgb(10, 12)))),
        "png-gray": ("PNG gray 12x10, pixelcnn, tiles of 4", image(gray_png, tile=4)),
        "png-rgba": ("PNG RGBA 9x8 with a coded alpha plane, pixelcnn, tiles of 4", image(rgba, tile=4)),
        "png-palette": ("palette PNG 12x10 (12 colors), pixelcnn, tiles of 4", image(palette, tile=4)),
        "png-inexact": ("PNG whose zlib stream is not reproduced (exact=false), pixelcnn, tiles of 4",
                        image(lambda: _odd_zlib_png(_rgb(8, 9)), tile=4, exact=False)),
        "png-described": ("PNG whose zlib stream zlib does not reproduce, re-created from its blocks and tokens, "
                          "pixelcnn, tiles of 4", image(lambda: _odd_zlib_png(_rgb(8, 9)), tile=4)),
        "png-described2": ("PNG described by deflate tokens version 2 (match trees, tied parses, rank by cost), "
                           "pixelcnn, tiles of 4", image(lambda: _odd_zlib_png(_rgb(9, 10, 5, 2)), tile=4)),
        "ppm": ("PPM (P6) 11x9, pixelcnn, tiles of 8", image(lambda: _pnm(b"P6", _rgb(9, 11, 3, 3)), tile=8)),
        # (-m pixelcnn: this PGM's levels are printable bytes, so 'auto' would take it for text)
        "pgm": ("PGM (P5) 13x8, pixelcnn, tiles of 4",
                image(lambda: _pnm(b"P5", np.ascontiguousarray(_rgb(8, 13, 1, 1)[:, :, 0])), "pixelcnn", tile=4)),
        "png-la": ("PNG gray+alpha 9x7, pixelcnn, tiles of 4", image(gray_alpha, tile=4)),
        "png16-rgba": ("PNG 16-bit RGBA 9x7 (coded alpha), the 16-bit coder",
                       image(lambda: _png16(np.dstack([_rgb16(7, 9), _rgb16(7, 9, 20, 3)[:, :, 1:2]])))),
        "pgm16": ("PGM (P5) 16-bit 10x6, maxval 4095, the 16-bit coder",
                  image(lambda: _pnm16(_rgb16(6, 10)[:, :, :1] >> 4, 4095))),
        "digit": ("28x28 gray digit, made", image(lambda: (DATA / "digit-7.png").read_bytes())),
        "digit-1bit": ("28x28 1-bit digit, made-binary", image(lambda: (DATA / "digit-7-1bit.png").read_bytes())),
        "idf": ("PNG RGB 16x16 through the flow, idf", image(lambda: _png(_rgb(16, 16)), "idf")),
        "idf-gray": ("PGM 16x16 through the gray flow, idf-gray",
                     image(lambda: _pnm(b"P5", np.ascontiguousarray(_rgb(16, 16, 2, 30)[:, :, 0])), "idf-gray")),
        "idf-v18d19429": ("PNG RGB 16x16, the first idf (retired, still decoded)",
                          lambda: ((d := _png(_rgb(16, 16, 4, 4))), _compress_with_version(d, "idf", "18d19429"))),
        "idf-vd1cc6cb9": ("PNG RGB 16x16, the second idf (retired, still decoded)",
                          lambda: ((d := _png(_rgb(16, 16, 6, 6))), _compress_with_version(d, "idf", "d1cc6cb9"))),
        "text": ("700 bytes of English (the README), charrnn a6c3f264 (retired, still decoded; its committed seed "
                 "coded by text mixer 2)", lambda: ((d := _text()), _compress_with_version(d, "charrnn", "a6c3f264"))),
        "text-mixer3": ("700 bytes of English (the README), charrnn, text mixer 3", image(_text)),
        "text-binary": ("binary bytes forced through the text model (-m charrnn)",
                        image(lambda: bytes_file()[:300], "charrnn")),
        "wav-speech": ("WAV 8 kHz 16-bit mono, 600 frames, canonical header, wavenet", image(speech, "wavenet")),
        "wav-speech-list": ("WAV 8 kHz with a LIST chunk (header as side data), wavenet",
                            image(speech_side, "wavenet")),
        "wav-music": ("WAV 44.1 kHz 16-bit mono, 1200 frames, wavenet-music", image(music, "wavenet-music")),
        "wav-stereo": ("WAV 22.05 kHz 16-bit stereo (coded as left and side), wavenet-music",
                       image(stereo, "wavenet-music")),
        "wav-8bit": ("WAV 8 kHz 8-bit mono, wavenet", image(eight_bit, "wavenet")),
        "wav-cascade": ("WAV 8 kHz with a LIST chunk, the adaptive-filter coder (speech settings)", image(speech_side)),
        "wav-cascade-stereo": ("WAV 44.1 kHz 16-bit stereo, the adaptive-filter coder (music settings)",
                               image(lambda: _wav(np.concatenate([_wav_slice("fluidr3-0507-Clarinet_E4_L.wav", 4000, 900)]
                                                                 * 2, 1), 44100))),
        "wav-cascade-24bit": ("WAV 48 kHz 24-bit, 3 channels, the adaptive-filter coder",
                              image(lambda: _wav(np.stack([(_wav_slice("fluidr3-0507-Clarinet_E4_L.wav", 5000, 400)[:, 0]
                                                            .astype(np.int32) << 8) // d for d in (1, 2, 3)], 1), 48000,
                                                 bits=24))),
        "wav-cascade-grid": ("WAV 44.1 kHz mono on a grid of step 40.6 (coded as grid indices), the adaptive-filter coder",
                             image(lambda: _wav(np.round((_wav_slice("fluidr3-0507-Clarinet_E4_L.wav", 4000, 900)
                                                          .astype(np.int64) // 256) * 40.6).astype(np.int16), 44100))),
        "wav-cascade-streamed": ("WAV streamed in 4 blocks of 300 frames, the adaptive-filter coder",
                                 lambda: ((d := stereo()), _streamed(d, "dulzip.codecs.cascade", "BLOCK", 300, threads=1))),
        "bytes-zstd": ("binary bytes, zstd", image(bytes_file)),
        "bytes-stored": ("48 random bytes, stored", image(with_data(noise))),
        "empty": ("the empty file", image(with_data(b""))),
        "bytes-streamed": ("bytes in 4 streamed pieces (bytes.0..3), zstd",
                           lambda: ((d := noise + bytes(range(50)) * 13), _streamed(d, "dulzip.kinds.bytes", "BYTES_CHUNK", 200, model="zstd"))),
        "v1-bytes": ("format version 1 (JSON header), zstd bytes",
                     lambda: ((d := bytes_file()), as_version1(_compress(d)))),
        "v1-png": ("format version 1 (JSON header), PNG RGB 8x8 through pixelcnn, tiles of 4",
                   lambda: ((d := _png(_rgb(8, 8, 20, 20))), as_version1(_compress(d, tile=4)))),
        "v1-text": ("format version 1 (JSON header), text through charrnn",
                    lambda: ((d := _text()[:400]), as_version1(_compress(d)))),
    }
    return specs


def make_seeds(folder: Path = SEEDS_DIR, names: list[str] | None = None) -> dict:
    """Write every seed (``NAME.dlz``, its original ``NAME.orig``) and ``manifest.json`` (kind,
    model, format version, length and blake2b of the original and of what decoding returns: they
    differ only for a re-encoded PNG) into ``folder``; check that each decodes to what it should."""
    from dulzip import api
    from dulzip.container import read_header
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() and names else {}
    for name, (what, make) in seed_specs().items():
        if names and name not in names:
            continue
        orig, blob = make()
        header, _ = read_header(blob)
        out = api.decompress(blob, api.Options(device="cpu", threads=1))
        exact = header.get("exact", True)
        if exact and out != orig:
            raise AssertionError(f"seed {name} does not decode to its original")
        if not exact and blake(out) != header.get("output_blake2b"):
            raise AssertionError(f"seed {name} does not decode to its recorded output")
        (folder / f"{name}.dlz").write_bytes(blob)
        (folder / f"{name}.orig").write_bytes(orig)
        model = header.get("model") or {}
        manifest[name] = {"what": what, "kind": header.get("kind"), "model": model.get("name"),
                          "sha256": model.get("sha256"), "version": blob[4], "size": len(blob),
                          "length": len(orig), "blake2b": blake(orig), "output_blake2b": blake(out),
                          "streams": [s["coder"] + ":" + str(s["name"]) for s in header["streams"]]}
    manifest_path.write_text(json.dumps(dict(sorted(manifest.items())), indent=1) + "\n")
    return manifest


@dataclass
class Seed:
    name: str
    blob: bytes
    expect: str  # blake2b of what decoding must return
    kind: str
    model: str | None
    version: int


def load_seeds(folder: Path = SEEDS_DIR, names: list[str] | None = None) -> list[Seed]:
    """The shipped seeds, in name order (a stable order: case numbers pick seeds by it)."""
    manifest = json.loads((Path(folder) / "manifest.json").read_text())
    return [Seed(n, (Path(folder) / f"{n}.dlz").read_bytes(), m["output_blake2b"], m["kind"], m["model"],
                 m["version"]) for n, m in sorted(manifest.items()) if not names or n in names]


# =============================================================================================
# Container surgery (encoding helpers that let mutants pass the checksums)
# =============================================================================================
from dulzip.container import _varint as varint  # noqa: E402 (LEB128, as the container writes it)


def encode_header(header, version: int = 2) -> bytes:
    """Header bytes as format ``version`` stores them (2: the compact encoding; 1: zlib JSON).
    Values the compact encoding cannot hold (ints of 2**64 and beyond, which a LEB128 varint longer
    than 63 bits would need) still go through: ``_encode`` writes them as the format would."""
    if version == 1:
        return zlib.compress(json.dumps(header).encode(), 9)
    return _encode(header)


def _encode(v) -> bytes:
    """``container.encode_value``, extended to raw pre-encoded pieces (:class:`Raw`: deep nesting
    built without recursion) and to integers of any size."""
    from dulzip import container as ct
    if isinstance(v, Raw):
        return v.data
    if isinstance(v, (list, tuple)):
        return bytes([ct.T_LIST]) + varint(len(v)) + b"".join(_encode(x) for x in v)
    if isinstance(v, dict):
        parts = [bytes([ct.T_DICT]), varint(len(v))]
        for k, x in v.items():
            if k in ct.KEYS:
                parts.append(varint(ct.KEYS.index(k) + 1))
            else:
                raw = str(k).encode()
                parts.append(b"\0" + varint(len(raw)) + raw)
            parts.append(_encode(x))
        return b"".join(parts)
    if isinstance(v, int) and not isinstance(v, bool):  # any size: the varint as written
        return bytes([ct.T_UINT]) + varint(v) if v >= 0 else bytes([ct.T_NEG]) + varint(-1 - v)
    return ct.encode_value(v)


@dataclass(frozen=True)
class Raw:
    """Pre-encoded header bytes standing for one value (version 2 only)."""
    data: bytes


def pack_header(header, payload: bytes, version: int = 2, crc: int | None = None) -> bytes:
    """A whole file: magic, version, header length, header, its CRC32 (``crc``: a wrong one on
    purpose), the payload bytes. Version 1 headers are JSON: :class:`Raw` pieces cannot be used."""
    hdr = header if isinstance(header, bytes) else encode_header(header, version)
    length = struct.pack("<I", len(hdr)) if version == 1 else varint(len(hdr))
    return b"DULZ" + bytes([version]) + length + hdr + struct.pack("<I", zlib.crc32(hdr) if crc is None else crc) \
        + payload


def split(blob: bytes):
    """(header, [payload of each stream], version) of a valid file, or None (a mutant of a mutant
    is never made: every mutant starts from a seed, which parses)."""
    from dulzip.container import read_header
    header, pos = read_header(blob)
    payloads = []
    for s in header["streams"]:
        payloads.append(blob[pos:pos + s["size"]])
        pos += s["size"]
    return header, payloads, blob[4]


def join(header, payloads: list[bytes], version: int, fix_streams: bool = True) -> bytes:
    """A file from a (mutated) header and payloads; ``fix_streams``: each stream entry's size and
    crc32 set to its payload's (so the mutation is what the decoder sees, not a checksum error)."""
    if fix_streams and isinstance(header, dict) and isinstance(header.get("streams"), list):
        for s, p in zip(header["streams"], payloads):
            if isinstance(s, dict):
                s["size"], s["crc32"] = len(p), zlib.crc32(p)
    return pack_header(header, b"".join(payloads), version)


# =============================================================================================
# Mutators
# =============================================================================================
# Values a header field is replaced by: every type the compact encoding has, edge integers (the
# varint's 63-bit limit, 32-bit overflow, sizes that allocate terabytes), non-finite floats.
BIG = (2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 32 + 1, 2 ** 50, 2 ** 53 + 1, 2 ** 62, 2 ** 63 - 1, 2 ** 63, 2 ** 64, 2 ** 70)
EDGE_INTS = (0, 1, -1, 2, 3, 4, 7, 8, 15, 16, 17, 28, 63, 64, 65, 255, 256, 4096, 65535, 65536, 1 << 20, 1 << 24,
             -2 ** 31, -2 ** 63) + BIG
OTHER_VALUES = (None, True, False, 0.5, -0.0, 1e308, math.inf, -math.inf, math.nan, "", "x", "\u00e9\u00e8",
                "png", "pnm", "text", "wav", "bytes", "model", "zstd", "stored", "coded", "standard", "pixelcnn",
                "0123456789abcdef" * 2, "00" * 8, "ff" * 16, "1e400", "-1", [], [0], [None], [[]], [1, 2, 3],
                {}, {"name": "x"}, {"kind": "png", "length": 1}, {"name": "color.0", "coder": "model"})
STREAM_NAMES = ("color.0", "color.1", "color.9", "alpha.0", "alpha.1", "color.", "color", "audio.0", "audio.1",
                "audio.7", "text.0", "text.1", "bytes", "bytes.0", "bytes.5", "png.chunks", "png.filters",
                "png.filters4", "png.ranks", "pnm.head", "pnm.tail", "wav.prefix", "wav.suffix", "x", "", ".")
# Fields whose values size an allocation or a loop: the known crashers (a segfault, hangs, huge
# allocations) came from these, so they get a mutator of their own.
SIZE_KEYS = ("length", "output_length", "height", "width", "channels", "tile", "frames", "rate", "bits",
             "block", "max_streams", "seg_min", "slot_bits", "mixer", "size", "alpha", "depth", "idat_sizes",
             "version", "zlib", "filter")
SIZE_VALUES = (0, 1, 2, 3, 4096, 65536, 1 << 20, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 40, 2 ** 50, 2 ** 62,
               2 ** 63 - 1, -1, -2 ** 31)


def _nodes(tree, path=()):
    """Every (path, value) below ``tree`` (dict keys and list indices), the tree itself excluded."""
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    for k, v in items:
        yield path + (k,), v
        yield from _nodes(v, path + (k,))


def _get(tree, path):
    for k in path:
        tree = tree[k]
    return tree


def _set(tree, path, value):
    _get(tree, path[:-1])[path[-1]] = value


def _show(path) -> str:
    return "/".join(str(k) for k in path) or "<root>"


def _short(v) -> str:
    s = repr(v)
    return s if len(s) <= 40 else s[:37] + "..."


def mutate_value(v, rng: random.Random, key=None):
    """A changed value for ``v`` (of its own type or another): (new value, what was done)."""
    r = rng.random()
    if r < 0.3:  # another type, or an edge value of any type
        new = copy.deepcopy(rng.choice(OTHER_VALUES + EDGE_INTS))  # a copy: set into itself, no cycle
        return new, f"-> {_short(new)}"
    if isinstance(v, bool):
        return (not v), "-> negated"
    if isinstance(v, int):
        ops = [("0", 0), ("-1", -1), ("+1", v + 1), ("-1", v - 1), ("x2", 2 * v), ("x1000", 1000 * v),
               ("//2", v // 2), ("negated", -v), ("as float", float(v)), ("as str", str(v)),
               ("2**k", 2 ** rng.randrange(0, 71)), ("big", rng.choice(BIG))]
        what, new = rng.choice(ops)
        return new, f"{v} -> {_short(new)} ({what})"
    if isinstance(v, float):
        new = rng.choice((0.0, -1.0, v * 2, math.nan, math.inf, int(v) if math.isfinite(v) else 0))
        return new, f"{v} -> {new}"
    if isinstance(v, str):
        ops = [("empty", ""), ("+x", v + "x"), ("cut", v[:-1]), ("upper", v.upper()), ("doubled", v * 2),
               ("long", v + "a" * 5000), ("stream name", rng.choice(STREAM_NAMES)),
               ("hex flipped", v[:-1] + ("0" if v[-1:] != "0" else "1"))]
        what, new = rng.choice(ops)
        return new, f"{_short(v)} -> {_short(new)} ({what})"
    if isinstance(v, list):
        new = list(v)
        if new and rng.random() < 0.3:
            i = rng.randrange(len(new))
            what = f"item {i} dropped"
            del new[i]
        elif new and rng.random() < 0.5:
            i = rng.randrange(len(new))
            new.insert(i, new[i])
            what = f"item {i} duplicated"
        else:
            what, new = rng.choice([("emptied", []), ("reversed", new[::-1]), ("+None", new + [None]),
                                    ("+0", new + [0]), ("x1000", new * 1000)])
        return new, f"list {what}"
    if isinstance(v, dict):
        new = dict(v)
        if new and rng.random() < 0.5:
            k = rng.choice(list(new))
            del new[k]
            return new, f"key {k} removed"
        return {}, "dict emptied"
    return copy.deepcopy(rng.choice(OTHER_VALUES)), "replaced"


class Mutant:
    """A parsed seed being mutated: header (a copy), payloads, format version, and the log of
    what was done (the case's description in reports)."""

    def __init__(self, seed: Seed):
        self.seed = seed
        self.header, self.payloads, self.version = split(seed.blob)
        self.header = json.loads(json.dumps(self.header))  # a deep copy (the header is JSON-like)
        self.notes: list[str] = []

    def note(self, s: str) -> None:
        self.notes.append(s)

    def fix_stream(self, i: int) -> None:
        """Stream ``i``'s size and crc32 set to its (changed) payload's."""
        s = self.header["streams"][i]
        s["size"], s["crc32"] = len(self.payloads[i]), zlib.crc32(self.payloads[i])

    def bytes(self) -> bytes:
        return join(self.header, self.payloads, self.version, fix_streams=False)


def _flip_bits(data: bytearray, rng: random.Random, n: int) -> list[int]:
    at = [rng.randrange(len(data) * 8) for _ in range(n)]
    for bit in at:
        data[bit // 8] ^= 1 << (bit % 8)
    return at


# Byte-level mutators: the file as bytes. Most of their mutants stop at a checksum (as they should);
# they test the framing (magic, version, varint, CRC and stream sizes).
def m_bitflip(seed: Seed, rng: random.Random):
    data = bytearray(seed.blob)
    at = _flip_bits(data, rng, rng.randint(1, 8))
    return bytes(data), f"bits flipped at {sorted(at)}"


def m_byteset(seed: Seed, rng: random.Random):
    data = bytearray(seed.blob)
    done = []
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(data))
        data[i] = rng.choice((0, 0xFF, rng.randrange(256)))
        done.append(f"{i}={data[i]}")
    return bytes(data), "bytes set: " + ", ".join(done)


def m_truncate(seed: Seed, rng: random.Random):
    n = rng.randrange(len(seed.blob))
    return seed.blob[:n], f"cut to {n} of {len(seed.blob)} bytes"


def m_insert(seed: Seed, rng: random.Random):
    i = rng.randrange(len(seed.blob) + 1)
    if rng.random() < 0.5:
        piece = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    else:
        j = rng.randrange(len(seed.blob))
        piece = seed.blob[j:j + rng.randint(1, 64)]
    return seed.blob[:i] + piece + seed.blob[i:], f"{len(piece)} bytes inserted at {i}"


def m_delete(seed: Seed, rng: random.Random):
    i = rng.randrange(len(seed.blob))
    n = rng.randint(1, 16)
    return seed.blob[:i] + seed.blob[i + n:], f"{n} bytes deleted at {i}"


# Structure-aware mutators: the header parsed, changed, re-encoded, its CRC32 and length fixed.
def m_field(seed: Seed, rng: random.Random):
    m = Mutant(seed)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        nodes = list(_nodes(m.header))
        if not nodes:
            break
        path, v = rng.choice(nodes)
        new, what = mutate_value(v, rng, path[-1])
        _set(m.header, path, new)
        m.note(f"{_show(path)}: {what}")
    return m.bytes(), "; ".join(m.notes)


def m_key_delete(seed: Seed, rng: random.Random):
    m = Mutant(seed)
    dicts = [p for p, v in _nodes(m.header) if isinstance(v, dict) and v] + ([()] if m.header else [])
    path = rng.choice(dicts)
    d = _get(m.header, path)
    k = rng.choice(list(d))
    del d[k]
    return m.bytes(), f"key {_show(path + (k,))} deleted"


def m_key_add(seed: Seed, rng: random.Random):
    from dulzip.container import KEYS
    m = Mutant(seed)
    dicts = [p for p, v in _nodes(m.header) if isinstance(v, dict)] + [()]
    path = rng.choice(dicts)
    d = _get(m.header, path)
    k = rng.choice(("zz-unknown", "", "\u00e9", "streams", "inline") + KEYS)
    v = copy.deepcopy(rng.choice(OTHER_VALUES + EDGE_INTS))
    what = "replaced" if k in d else "added"
    d[k] = v
    return m.bytes(), f"key {_show(path + (k,))} {what}: {_short(v)}"


def m_streams(seed: Seed, rng: random.Random):
    """Stream entries duplicated, dropped, reordered, swapped -- with their payloads (so every
    checksum holds and the decoder meets the odd order) or without (the framing is off)."""
    m = Mutant(seed)
    st, pl = m.header["streams"], m.payloads
    n = len(st)
    along = rng.random() < 0.7
    op = rng.choice(("duplicate", "drop", "reverse", "shuffle", "append copy", "empty list", "rename twin"))
    order = list(range(n))
    if op == "duplicate" and n:
        i = rng.randrange(n)
        order.insert(i, i)
    elif op == "drop" and n:
        del order[rng.randrange(n)]
    elif op == "reverse":
        order.reverse()
    elif op == "shuffle":
        rng.shuffle(order)
    elif op == "append copy" and n:
        order.append(rng.randrange(n))
    elif op == "empty list":
        order = []
    elif op == "rename twin" and n:  # a copy of a stream under the name of another part
        i = rng.randrange(n)
        order.append(i)
    m.header["streams"] = [json.loads(json.dumps(st[i])) for i in order]
    if op == "rename twin" and n:
        m.header["streams"][-1]["name"] = rng.choice(STREAM_NAMES)
    if along:
        m.payloads = [pl[i] for i in order]
    return m.bytes(), f"streams {op}: order {order}" + ("" if along else " (payloads left as they were)")


def m_stream_field(seed: Seed, rng: random.Random):
    m = Mutant(seed)
    st = m.header["streams"]
    if not st:
        return m_streams(seed, rng)
    i = rng.randrange(len(st))
    field_ = rng.choice(("coder", "coder", "name", "name", "size", "crc32", "extra"))
    if field_ == "coder":
        new = rng.choice(("model", "zstd", "stored", "magic", "", None, 0))
        st[i]["coder"] = new
    elif field_ == "name":
        new = rng.choice(STREAM_NAMES + (None, 0, ["color.0"]))
        st[i]["name"] = new
    elif field_ == "size":
        new = rng.choice((0, st[i]["size"] - 1, st[i]["size"] + 1, -1, 2 ** 31, 2 ** 63 - 1, 2 ** 64, "7", 1.5))
        st[i]["size"] = new
    elif field_ == "crc32":
        new = rng.choice((st[i]["crc32"] ^ 1, -1, 2 ** 32, None))
        st[i]["crc32"] = new
    else:
        new = copy.deepcopy(rng.choice(OTHER_VALUES))
        st[i]["zz-unknown"] = new
    return m.bytes(), f"streams/{i}/{field_} -> {_short(new)}"


def m_payload(seed: Seed, rng: random.Random):
    """A stream's coded bytes damaged, its size and crc32 fixed: what the model decoders (range
    decoders, zstd, the side-data parsers) see when a file was made wrong, not damaged in transit."""
    m = Mutant(seed)
    if not m.payloads:
        return m_field(seed, rng)
    i = rng.randrange(len(m.payloads))
    data = bytearray(m.payloads[i])
    op = rng.choice(("flip", "flip", "flip", "set", "cut", "extend", "zeros", "ones", "random", "empty", "swap"))
    if op == "flip" and data:
        at = _flip_bits(data, rng, rng.randint(1, 8))
        what = f"bits {sorted(at)} flipped"
    elif op == "set" and data:
        j = rng.randrange(len(data))
        data[j] = rng.choice((0, 0xFF, rng.randrange(256)))
        what = f"byte {j} set to {data[j]}"
    elif op == "cut" and data:
        n = rng.randrange(len(data))
        data = data[:n]
        what = f"cut to {n} bytes"
    elif op == "extend":
        extra = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        data += extra
        what = f"{len(extra)} random bytes appended"
    elif op == "zeros":
        data = bytearray(len(data) or 16)
        what = "all zeros"
    elif op == "ones":
        data = bytearray(b"\xff" * (len(data) or 16))
        what = "all 0xFF"
    elif op == "swap" and len(m.payloads) > 1:
        j = rng.choice([j for j in range(len(m.payloads)) if j != i])
        data = bytearray(m.payloads[j])
        what = f"replaced by stream {j}'s payload"
    elif op == "empty":
        data = bytearray()
        what = "emptied"
    else:
        data = bytearray(rng.randrange(256) for _ in range(max(1, len(data))))
        what = "random bytes"
    m.payloads[i] = bytes(data)
    m.fix_stream(i)
    return m.bytes(), f"payload of stream {i} ({m.header['streams'][i].get('name')}): {what}; size/crc32 fixed"


def m_big(seed: Seed, rng: random.Random):
    """A field that sizes an allocation or a loop set to an edge value: the original's length
    (2**31, 2**50), an image's width, height, tile (4096), an audio's frames, a text's block."""
    m = Mutant(seed)
    cands = [(p, v) for p, v in _nodes(m.header) if p and p[-1] in SIZE_KEYS]
    if not cands:
        return m_field(seed, rng)
    for _ in range(rng.choice((1, 1, 2))):
        path, v = rng.choice(cands)
        if path[-1] == "tile" and rng.random() < 0.5:
            new = rng.choice((4096, 1, 2, 3, 5, 28, 64, 128, 512))
        else:
            new = rng.choice(SIZE_VALUES)
        _set(m.header, path, new)
        m.note(f"{_show(path)}: {_short(v)} -> {new}")
    return m.bytes(), "; ".join(m.notes)


def m_model(seed: Seed, rng: random.Random):
    """The model a file names swapped for another installed model or version (the right sha256 of
    the wrong weights: the file's streams then meet a decoder they were not made for), or its name
    or sha256 damaged."""
    m = Mutant(seed)
    c = rng.choice(model_cards())
    op = rng.choice(("swap", "swap", "swap", "name only", "sha cut", "sha wrong", "none", "string"))
    if op == "swap":
        m.header["model"] = {"name": c["name"], "sha256": c["sha256"][:32]}
        what = f"model -> {c['name']} {c['sha256'][:8]}"
    elif op == "name only":
        if not isinstance(m.header.get("model"), dict):
            m.header["model"] = {"sha256": "00" * 16}
        m.header["model"]["name"] = c["name"]
        what = f"model name -> {c['name']} (sha256 kept)"
    elif op == "sha cut":
        m.header["model"] = {"name": c["name"], "sha256": c["sha256"][:rng.choice((0, 2, 16, 31))]}
        what = "model sha256 cut short"
    elif op == "sha wrong":
        m.header["model"] = {"name": c["name"], "sha256": "ab" * 16}
        what = "model sha256 of no installed weights"
    elif op == "none":
        m.header["model"] = None
        what = "model -> None"
    else:
        m.header["model"] = c["name"]
        what = "model -> a bare string"
    if rng.random() < 0.3:  # and the content kind too
        k = rng.choice(("png", "pnm", "wav", "text", "bytes"))
        m.header["kind"] = k
        what += f"; kind -> {k}"
    return m.bytes(), what


def model_cards() -> list[dict]:
    """Every installed model card (retired versions too), read as ``dulzip.zoo`` reads them but
    without importing it: the fuzzer's parent process stays free of torch."""
    folder = Path(os.environ.get("DULZIP_MODELS") or ROOT / "dulzip" / "models_data")
    cards = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    return [c for c in cards if isinstance(c, dict) and "weights" in c and "name" in c and "sha256" in c]


def _nested(depth: int) -> Raw:
    from dulzip.container import T_LIST, T_NONE
    return Raw(bytes([T_LIST, 1]) * depth + bytes([T_NONE]))


def m_nesting(seed: Seed, rng: random.Random):
    """Deep nesting: a recursive parser's stack (version 2's compact values, version 1's JSON)."""
    m = Mutant(seed)
    depth = rng.choice((15, 16, 17, 100, 1000, 100_000))
    nodes = [p for p, _ in _nodes(m.header)]
    path = rng.choice(nodes)
    if m.version == 1:
        marker = "\u0001nested\u0001"
        _set(m.header, path, marker)
        text = json.dumps(m.header).replace(json.dumps(marker), "[" * depth + "]" * depth)
        data = pack_header(zlib.compress(text.encode(), 9), b"".join(m.payloads), 1)
    else:
        _set(m.header, path, _nested(depth))
        data = m.bytes()
    return data, f"{_show(path)} -> lists nested {depth} deep"


def m_version(seed: Seed, rng: random.Random):
    """Format-version games: a file re-wrapped in the other version (a header that decodes, in
    JSON or compactly), a version 1 header that is not a dict, or JSON with NaN, duplicate keys,
    huge numbers; the version byte changed with the header left as it is."""
    m = Mutant(seed)
    op = rng.choice(("rewrap", "rewrap+field", "json list", "json oddities", "version byte", "zlib bomb"))
    payload = b"".join(m.payloads)
    if op == "rewrap":
        return pack_header(m.header, payload, 3 - m.version), f"re-wrapped as format {3 - m.version}"
    if op == "rewrap+field":
        data, what = m_field(Seed(seed.name, pack_header(m.header, payload, 1), seed.expect, seed.kind, seed.model,
                                  1), rng)
        return data, f"re-wrapped as format 1; {what}"
    if op == "json list":
        text = rng.choice(("[]", "null", "1", '"streams"', '{"streams": {}}', '{"streams": null}', "{}"))
        return pack_header(zlib.compress(text.encode()), payload, 1), f"format 1 header {text}"
    if op == "json oddities":
        text = json.dumps(m.header)
        text = rng.choice((text.replace('"length": ', '"length": NaN, "length": '),
                           text.replace('"length": ', '"length": 1e400, "length2": '),
                           text.replace('"length": ', '"length": 123456789012345678901234567890, "x": '),
                           text.replace('"streams": [', '"streams": [' + '{"name": "bytes"}, ' * 3),
                           text[:-1] + ', "streams": []}',
                           text.replace("}", ", \"\\ud800\": 1}", 1)))
        return pack_header(zlib.compress(text.encode()), payload, 1), "format 1 JSON oddity"
    if op == "version byte":
        data = bytearray(seed.blob)
        data[4] = rng.choice((0, 1, 2, 3, 255))
        return bytes(data), f"version byte -> {data[4]} (header left as it was)"
    mb = rng.choice((1, 80))
    z = _spaces(mb).copy()
    bomb = z.compress(json.dumps(m.header).encode()) + z.flush()
    return pack_header(bomb, payload, 1), f"format 1 header inflating to {mb} MB (spaces, then the header)"


@functools.lru_cache(maxsize=4)
def _spaces(mb: int):
    """A zlib compressor that has taken ``mb`` MB of spaces (copied for each bomb: compressing 80 MB
    takes the parent half a second, a copy nothing)."""
    z = zlib.compressobj(9)
    z.compress(b" " * (mb << 20))
    return z


def m_splice(seed: Seed, rng: random.Random, pool: list[Seed] | None = None):
    """A stream's payload taken from another seed (its size and crc32 fixed): valid coded data of
    another kind, so a decoder runs long on data that is plausible and wrong."""
    m = Mutant(seed)
    other = rng.choice(pool or load_seeds())
    _, payloads, _ = split(other.blob)
    if not m.payloads or not payloads:
        return m_payload(seed, rng)
    i, j = rng.randrange(len(m.payloads)), rng.randrange(len(payloads))
    m.payloads[i] = payloads[j]
    m.fix_stream(i)
    return m.bytes(), f"payload of stream {i} <- stream {j} of seed {other.name}; size/crc32 fixed"


MUTATORS = {  # name -> (weight, function): structure-aware ones, which reach the decoders, weigh most
    "bitflip": (1.0, m_bitflip),
    "byteset": (0.5, m_byteset),
    "truncate": (0.7, m_truncate),
    "insert": (0.4, m_insert),
    "delete": (0.4, m_delete),
    "field": (4.0, m_field),
    "key-delete": (1.0, m_key_delete),
    "key-add": (0.6, m_key_add),
    "streams": (1.2, m_streams),
    "stream-field": (1.2, m_stream_field),
    "payload": (4.0, m_payload),
    "big": (2.5, m_big),
    "model": (1.0, m_model),
    "nesting": (0.4, m_nesting),
    "version": (0.6, m_version),
    "splice": (1.0, m_splice),
}


@dataclass
class Case:
    number: int
    seed: str
    mutator: str
    what: str
    blob: bytes
    expect: str
    stream: bool  # also through decompress_stream


def make_case(seeds: list[Seed], number: int, base_seed: int = 0, mutators: list[str] | None = None,
              stream_fraction: float = 0.25) -> Case:
    """Case ``number``: its seed (round robin: every seed as often), its mutator (by weight) and the
    mutant -- all from ``Random(f"{base_seed}/{number}")``, so the same number always gives the
    same bytes whatever ran before or in which worker."""
    rng = random.Random(f"dulzip-fuzz/{base_seed}/{number}")
    seed = seeds[number % len(seeds)]
    names = mutators or list(MUTATORS)
    name = rng.choices(names, [MUTATORS[n][0] for n in names])[0]
    fn = MUTATORS[name][1]
    blob, what = fn(seed, rng, seeds) if fn is m_splice else fn(seed, rng)
    return Case(number, seed.name, name, what, blob, seed.expect, rng.random() < stream_fraction)


# =============================================================================================
# Oracle (runs in a worker)
# =============================================================================================
def _where(tb) -> tuple[str, str]:
    """(innermost frame, innermost frame in dulzip's own code) of a traceback, as file:line func."""
    frames = traceback.extract_tb(tb)

    def fmt(fr) -> str:
        try:
            f = str(Path(fr.filename).resolve().relative_to(ROOT))
        except ValueError:
            f = fr.filename.split("site-packages/")[-1]
        return f"{f}:{fr.lineno} {fr.name}"
    last = fmt(frames[-1]) if frames else "?"
    own = [fr for fr in frames if "/dulzip/" in fr.filename.replace("\\", "/") and "site-packages" not in fr.filename]
    return last, fmt(own[-1]) if own else last


def _is_memory(e: BaseException) -> bool:
    """An allocation that failed: numpy's MemoryError, torch's 'can't allocate memory', and the
    like (with the worker's address-space backstop these are how a huge allocation shows)."""
    if isinstance(e, MemoryError):
        return True
    msg = str(e).lower()
    return isinstance(e, RuntimeError) and ("can't allocate memory" in msg or "not enough memory" in msg
                                            or "out of memory" in msg)


def outcome(fn, expect: str | None) -> dict:
    """Run ``fn`` (returning bytes, or None when there is nothing to compare); classify."""
    from dulzip.errors import DulzipError
    try:
        out = fn()
    except DulzipError as e:
        return {"outcome": "error:" + type(e).__name__, "message": str(e)[:300]}
    except RecursionError as e:
        last, own = _where(e.__traceback__)
        return {"outcome": "foreign-exception", "type": "RecursionError", "message": str(e)[:300],
                "last": last, "where": own}
    except Exception as e:  # noqa: BLE001 -- every other exception is what the fuzzer looks for
        last, own = _where(e.__traceback__)
        kind = "memory" if _is_memory(e) else "foreign-exception"
        t = type(e)
        name = t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__name__}"
        return {"outcome": kind, "type": name, "message": str(e)[:300], "last": last, "where": own}
    if expect is None or out is None or blake(out) == expect:
        return {"outcome": "ok"}
    return {"outcome": "wrong-output", "message": f"{len(out)} bytes, blake2b {blake(out)} (expected {expect})"}


def run_case(blob: bytes, expect: str, stream: bool, opts=None) -> dict:
    """Every decoding path on one mutant: ``api.decompress`` always; ``api.decompress_stream``
    (the CLI's path for files) when ``stream``; ``dulzip list`` (``api.describe`` and
    ``cli.describe_lines``, and the JSON of ``--json``) always. -> {path: outcome dict}."""
    from dulzip import api
    opts = opts or decode_options()
    paths = {"decompress": outcome(lambda: api.decompress(blob, opts), expect)}
    if stream:
        def via_stream():
            sink = io.BytesIO()
            api.decompress_stream(io.BytesIO(blob), sink, opts)
            return sink.getvalue()
        paths["stream"] = outcome(via_stream, expect)

    def listing():
        from dulzip.cli import describe_lines
        json.dumps(api.describe(blob))
        describe_lines("fuzz.dlz", blob)
    paths["list"] = outcome(listing, None)
    return paths


def worst(paths: dict) -> tuple[str, str]:
    """(outcome, path) that decides a case: a failure on any path, else decompress's outcome."""
    for path, o in paths.items():
        if o["outcome"] in FAILURES:
            return o["outcome"], path
    return paths["decompress"]["outcome"], "decompress"


def _proc_status(pid: int | str = "self") -> dict[str, int]:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    k, v = line.split(":", 1)
                    out[k] = int(v.split()[0]) * 1024
    except OSError:
        pass
    return out


def _reset_peak() -> None:
    """Reset this process's VmHWM (Linux: ``5`` to clear_refs), so that the peak read after a case
    is that case's own."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def decode_options(max_memory: int = DECODE_MEMORY):
    """The options every mutant is decoded with: CPU, one thread, and (where this dulzip has the
    option) the decoder's own memory limit."""
    import dataclasses

    from dulzip import api
    opts = api.Options(device="cpu", threads=1)
    if "max_memory" in {f.name for f in dataclasses.fields(api.Options)}:
        opts.max_memory = max_memory
    return opts


def _test_hook(blob: bytes) -> None:
    """What the harness's own test sends instead of a mutant (only with ``worker_hooks``): a case
    that hangs, one that dies by SIGSEGV, one whose memory grows past any limit."""
    import signal
    if blob == b"FUZZ-HANG":
        time.sleep(3600)
    elif blob == b"FUZZ-CRASH":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif blob == b"FUZZ-MEMORY":
        hold = []
        for _ in range(64):  # up to 4 GB, 64 MB at a time: the watchdog stops it on the way
            hold.append(b"\x01" * (64 << 20))
            time.sleep(0.02)


def _worker_main(conn, log_path: str, backstop: int, preload: list, max_memory: int = DECODE_MEMORY,
                 hooks: bool = False) -> None:
    """A worker: loads the seeds' models once, then runs the cases it is sent, one at a time,
    answering each before it reads the next (so the parent always knows which case is running).
    Its stdout and stderr go to ``log_path``; faulthandler writes there on a fatal signal and, on
    SIGUSR1 (sent by the parent before it kills a hang), the stack of the hang."""
    import faulthandler
    import resource
    import signal
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    log = open(log_path, "a", buffering=1)  # noqa: SIM115 -- stays open for the worker's life
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    faulthandler.enable(log, all_threads=True)
    faulthandler.register(signal.SIGUSR1, log, all_threads=True)
    if backstop:  # a hard brake for the shared machine; the parent's watchdog does the measuring
        try:
            resource.setrlimit(resource.RLIMIT_AS, (backstop, backstop))
        except (ValueError, OSError):
            pass
    import torch
    torch.set_num_threads(1)
    from dulzip import zoo
    from dulzip.errors import DulzipError
    for name, sha in preload:
        try:
            zoo.load(name, "cpu", expect_sha256=sha)
        except DulzipError:
            pass
    opts = decode_options(max_memory)
    conn.send(("ready", _proc_status()))
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        number, blob, expect, stream = msg
        print(f"case {number}", flush=True)
        _reset_peak()
        t0 = time.perf_counter()
        if hooks and blob.startswith(b"FUZZ-"):
            _test_hook(blob)
        paths = run_case(blob, expect, stream, opts)
        dt = time.perf_counter() - t0
        st = _proc_status()
        conn.send(("done", number, paths, dt, st.get("VmHWM", 0), st.get("VmRSS", 0)))


def _stack_from_log(text: str) -> dict:
    """Where the last stack faulthandler wrote (a crash, or a hang's SIGUSR1 dump) was, from the
    thread whose stack runs through dulzip (the one that crashed or hung): {"where": its innermost
    frame in dulzip's code, "stack": its innermost frames, most recent first, as 'file:line func'
    joined by ' <- '}; {} when it wrote none."""
    blocks, cur = [], None
    for ln in text.splitlines():
        s = ln.strip()
        if s.startswith(("Current thread 0x", "Thread 0x")):
            cur = []
            blocks.append(cur)
        elif cur is not None and s.startswith("File "):
            cur.append(s)
    if not blocks:
        return {}
    block = next((b for b in blocks if any("/dulzip/" in f for f in b)), blocks[0])
    out = []
    for fr in block[:8]:  # 'File "/path", line N in func'
        try:
            path, rest = fr[6:].split('", line ', 1)
            line, func = rest.split(" in ", 1)
            try:
                path = str(Path(path).resolve().relative_to(ROOT))
            except ValueError:
                path = path.split("site-packages/")[-1]
            out.append(f"{path}:{line} {func}")
        except ValueError:
            out.append(fr)
    own = [f for f in out if f.startswith("dulzip/")]
    return {"where": own[0] if own else out[0] if out else "?", "stack": " <- ".join(out)}


# =============================================================================================
# Harness (the parent: dispatches cases, watches time and memory, survives crashes)
# =============================================================================================
@dataclass
class Result:
    number: int
    seed: str
    mutator: str
    what: str
    outcome: str  # ok | error:<Class> | one of FAILURES
    path: str  # the decoding path that decided the outcome
    seconds: float
    peak_rss: int  # the worker's peak resident memory during the case (bytes; 0 when unknown)
    paths: dict = field(default_factory=dict)
    detail: dict = field(default_factory=dict)  # type, message, where (failures)

    @property
    def failed(self) -> bool:
        return self.outcome in FAILURES

    def signature(self) -> str:
        """What tells one bug from another: outcome, path, exception type and where it was raised
        (the innermost frame in dulzip's code)."""
        d = self.detail
        return " ".join(x for x in (self.outcome, self.path, d.get("type", ""), "at " + d.get("where", "?")) if x)


class _Worker:
    def __init__(self, ctx, slot: int, log_dir: Path, backstop: int, preload: list, max_memory: int,
                 hooks: bool = False):
        self.slot = slot
        self.log = log_dir / f"worker-{slot}-{time.monotonic_ns()}.log"
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, str(self.log), backstop, preload, max_memory, hooks),
                                daemon=True)
        self.proc.start()
        child.close()
        self.ready = False
        self.spawned = time.monotonic()
        self.case: Case | None = None
        self.started = 0.0
        self.log_at = 0
        self.killed: tuple | None = None  # (reason, case number, rss) set by the watchdog
        self.baseline = 0

    def send(self, case: Case) -> None:
        self.case, self.started = case, time.monotonic()
        self.log_at = self.log.stat().st_size if self.log.exists() else 0
        self.conn.send((case.number, case.blob, case.expect, case.stream))

    def log_text(self) -> str:
        try:
            with open(self.log, "rb") as f:
                f.seek(self.log_at)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self, dump: bool = False) -> None:
        import signal
        if dump and self.proc.is_alive():  # the stack of what it is doing, into its log
            try:
                os.kill(self.proc.pid, signal.SIGUSR1)
                time.sleep(0.3)
            except OSError:
                pass
        self.proc.kill()
        self.proc.join(5)
        self.conn.close()


@dataclass
class Report:
    results: list[Result]
    seconds: float
    workers: int
    base_seed: int
    time_limit: float
    memory_limit: int
    baseline_rss: int
    restarts: int
    saved: list[str]
    seeds: list[str]

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.results if r.failed]

    def summary(self) -> dict:
        """Counts by outcome, seed and mutator; time, throughput, the slowest and largest case;
        failures grouped by signature (one example each)."""
        from collections import Counter, defaultdict
        by_seed: dict[str, Counter] = defaultdict(Counter)
        by_mut: dict[str, Counter] = defaultdict(Counter)
        seed_time: Counter = Counter()
        by_model: dict[str, Counter] = defaultdict(Counter)
        path = SEEDS_DIR / "manifest.json"
        manifest = json.loads(path.read_text()) if path.exists() else {}
        for r in self.results:
            m = manifest.get(r.seed, {})
            by_model[f"{m.get('kind', '?')} / {m.get('model') or 'none'} (format {m.get('version', '?')})"][
                r.outcome] += 1
            by_seed[r.seed][r.outcome] += 1
            by_mut[r.mutator][r.outcome] += 1
            seed_time[r.seed] += r.seconds
        groups: dict[str, list[Result]] = defaultdict(list)
        for r in self.failures:
            groups[r.signature()].append(r)
        slow = max(self.results, key=lambda r: r.seconds, default=None)
        big = max(self.results, key=lambda r: r.peak_rss, default=None)
        n = len(self.results)
        return {
            "cases": n, "seconds": round(self.seconds, 1),
            "cases_per_second": round(n / self.seconds, 2) if self.seconds else 0.0,
            "workers": self.workers, "base_seed": self.base_seed, "time_limit": self.time_limit,
            "memory_limit": self.memory_limit, "worker_baseline_rss": self.baseline_rss,
            "worker_restarts": self.restarts,
            "outcomes": dict(Counter(r.outcome for r in self.results).most_common()),
            "failures": len(self.failures),
            "max_case_seconds": round(slow.seconds, 3) if slow else 0.0,
            "slowest_case": {"number": slow.number, "seed": slow.seed, "mutator": slow.mutator,
                             "what": slow.what, "outcome": slow.outcome} if slow else None,
            "max_peak_rss": big.peak_rss if big else 0,
            "largest_case": {"number": big.number, "seed": big.seed, "mutator": big.mutator,
                             "what": big.what, "outcome": big.outcome} if big else None,
            "by_seed": {k: dict(v) for k, v in sorted(by_seed.items())},
            "by_mutator": {k: dict(v) for k, v in sorted(by_mut.items())},
            "by_kind_model": {k: dict(v) for k, v in sorted(by_model.items())},
            "seed_mean_seconds": {k: round(seed_time[k] / sum(by_seed[k].values()), 4) for k in sorted(by_seed)},
            "failure_groups": [{"signature": sig, "count": len(rs), "outcome": rs[0].outcome, "path": rs[0].path,
                                "seeds": sorted({r.seed for r in rs}),
                                "mutators": sorted({r.mutator for r in rs}),
                                "example": {"case": rs[0].number, "seed": rs[0].seed, "mutator": rs[0].mutator,
                                            "what": rs[0].what, **rs[0].detail}}
                               for sig, rs in sorted(groups.items(), key=lambda kv: -len(kv[1]))],
            "saved": self.saved,
        }


def _save(found_dir: Path, r: Result, case: Case, base_seed: int) -> str:
    """The mutant as ``<class>-<seed>-<case>.dlz`` and what is known of it as ``.json`` beside it."""
    found_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{r.outcome}-{r.seed}-{r.number}"
    (found_dir / f"{stem}.dlz").write_bytes(case.blob)
    info = {"seed": r.seed, "case": r.number, "base_seed": base_seed, "mutator": r.mutator, "what": r.what,
            "expect": case.expect, "outcome": r.outcome, "path": r.path, "signature": r.signature(), **r.detail}
    (found_dir / f"{stem}.json").write_text(json.dumps(info, indent=1) + "\n")
    path = (found_dir / f"{stem}.dlz").resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def run_cases(cases, workers: int = 2, time_limit: float = TIME_LIMIT, memory_limit: int = MEMORY_LIMIT,
              time_budget: float | None = None, found_dir: Path | None = FOUND_DIR, save_per_signature: int = 5,
              base_seed: int = 0, preload: list | None = None, progress=None, backstop: int | None = None,
              seed_names: list[str] | None = None, max_memory: int = DECODE_MEMORY,
              worker_hooks: bool = False, checkpoint=None, checkpoint_every: float = 300.0) -> Report:
    """Run ``cases`` (an iterable of :class:`Case`) in ``workers`` worker processes.

    A worker runs one case at a time; the parent notes which and when. A case past
    ``time_limit`` seconds is a hang (the worker's stack is dumped to its log, then it is killed);
    a worker whose resident memory passes ``memory_limit`` during a case is killed by the watchdog
    thread (a memory failure), as is a case after which the worker's peak was above it; a worker
    that dies by a signal is a crash of its case. Each time, a fresh worker takes its place and the
    run goes on. ``time_budget``: no case is started after that many seconds. Failures are saved
    into ``found_dir`` (at most ``save_per_signature`` mutants per signature; 0: all; none whose
    bytes are already there or in regressions/).
    ``max_memory``: the decoder's own limit (see DECODE_MEMORY); ``worker_hooks``: the harness's
    own test cases (:func:`_test_hook`). ``backstop``: the workers' address-space limit (default:
    the memory limit + 6 GB), a hard brake for the shared machine that turns a runaway allocation
    into a MemoryError (recorded as "memory") before the watchdog's next look. (RLIMIT_AS is not
    the measure itself: a worker's address space is larger than its resident memory.)
    ``checkpoint``: called every ``checkpoint_every`` seconds with a :class:`Report` of the cases
    finished so far, so that a long run stopped from outside (a session's end) still leaves its
    counts behind."""
    import multiprocessing as mp
    import tempfile
    from collections import Counter
    from multiprocessing.connection import wait
    ctx = mp.get_context("spawn")
    backstop = memory_limit + (6 << 30) if backstop is None else backstop
    preload = preload or []
    log_dir = Path(tempfile.mkdtemp(prefix="dulzip-fuzz-"))
    pool: list[_Worker] = [_Worker(ctx, i, log_dir, backstop, preload, max_memory, worker_hooks)
                           for i in range(workers)]
    stop = threading.Event()
    lock = threading.Lock()

    def watchdog():
        import signal
        while not stop.is_set():
            with lock:
                current = [(w, w.case) for w in pool if w.case is not None and w.killed is None]
            for w, case in current:
                rss = _proc_status(w.proc.pid).get("VmRSS", 0)
                if rss > memory_limit:
                    w.killed = ("memory", case.number, rss)
                    try:
                        os.kill(w.proc.pid, signal.SIGUSR1)
                        time.sleep(0.05)
                        os.kill(w.proc.pid, signal.SIGKILL)
                    except OSError:
                        pass
            stop.wait(0.1)

    dog = threading.Thread(target=watchdog, daemon=True)
    dog.start()
    results: list[Result] = []
    saved: list[str] = []
    per_sig: Counter = Counter()
    restarts = 0
    baseline = 0
    it = iter(cases)
    more = True
    t0 = time.monotonic()

    # a mutant already saved (the same bytes: two case numbers can make the same mutant) is not again
    known = {blake(f.read_bytes()) for d in (Path(found_dir), REGRESSIONS_DIR) for f in d.glob("*.dlz")} \
        if found_dir is not None else set()

    last_checkpoint = [t0]

    def snapshot() -> Report:
        return Report(list(results), time.monotonic() - t0, workers, base_seed, time_limit, memory_limit,
                      baseline, restarts, list(saved), seed_names or [])

    def record(w: _Worker, r: Result) -> None:
        results.append(r)
        if checkpoint is not None and time.monotonic() - last_checkpoint[0] >= checkpoint_every:
            last_checkpoint[0] = time.monotonic()
            checkpoint(snapshot())
        if r.failed and found_dir is not None and blake(w.case.blob) not in known:
            sig = r.signature()
            per_sig[sig] += 1
            if not save_per_signature or per_sig[sig] <= save_per_signature:
                saved.append(_save(Path(found_dir), r, w.case, base_seed))
                known.add(blake(w.case.blob))
        if progress:
            progress(r, len(results), time.monotonic() - t0)

    def replace(w: _Worker) -> None:
        nonlocal restarts
        restarts += 1
        w.stop()
        with lock:
            pool[pool.index(w)] = _Worker(ctx, w.slot, log_dir, backstop, preload, max_memory, worker_hooks)

    try:
        while True:
            for w in pool:  # hand out cases
                if w.ready and w.case is None and more:
                    if time_budget is not None and time.monotonic() - t0 > time_budget:
                        more = False
                        break
                    case = next(it, None)
                    if case is None:
                        more = False
                        break
                    with lock:
                        w.send(case)
            busy = [w for w in pool if w.case is not None or not w.ready]
            if not more and all(w.case is None for w in pool):
                break
            wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout=0.1)
            for w in list(pool):
                msg = None
                try:
                    if w.conn.poll():
                        msg = w.conn.recv()
                except (EOFError, OSError):
                    msg = None
                if msg is not None and msg[0] == "ready":
                    w.ready = True
                    baseline = max(baseline, msg[1].get("VmRSS", 0))
                    continue
                if msg is not None and msg[0] == "done":
                    _, number, paths, dt, peak, _rss = msg
                    case = w.case
                    out, path = worst(paths)
                    detail = {k: v for k, v in paths[path].items() if k != "outcome"}
                    if out not in FAILURES and peak > memory_limit:
                        out, path, detail = "memory", "decompress", {"message": f"peak RSS {peak >> 20} MB"}
                    r = Result(number, case.seed, case.mutator, case.what, out, path, dt, peak, paths, detail)
                    record(w, r)
                    with lock:
                        w.case = None
                    if out == "memory":  # a worker that once held that much is not trusted to measure
                        replace(w)
                    continue
                if w.case is not None and not w.proc.is_alive():
                    w.proc.join(1)
                    case = w.case
                    stack = _stack_from_log(w.log_text())
                    code = w.proc.exitcode
                    if w.killed and w.killed[0] == "memory":
                        r = Result(case.number, case.seed, case.mutator, case.what, "memory", "decompress",
                                   time.monotonic() - w.started, w.killed[2], {},
                                   {"message": f"killed at {w.killed[2] >> 20} MB resident", "where": "?", **stack})
                    else:
                        r = Result(case.number, case.seed, case.mutator, case.what, "crash", "decompress",
                                   time.monotonic() - w.started, 0, {},
                                   {"type": f"signal {-code}" if code is not None and code < 0 else f"exit {code}",
                                    "where": "?", **stack})
                    record(w, r)
                    replace(w)
                    continue
                if w.case is not None and time.monotonic() - w.started > time_limit:
                    case = w.case
                    w.stop(dump=True)
                    stack = _stack_from_log(w.log_text())
                    r = Result(case.number, case.seed, case.mutator, case.what, "hang", "decompress",
                               time.monotonic() - w.started, 0, {},
                               {"message": f"still running after {time_limit:g} s", "where": "?", **stack})
                    record(w, r)
                    replace(w)
                    continue
                if w.ready and w.case is None and not w.proc.is_alive():  # died between cases
                    replace(w)
                    continue
                if not w.ready and (not w.proc.is_alive() or time.monotonic() - w.spawned > 300):
                    raise RuntimeError(f"a fuzz worker did not start; its log: {w.log_text()[-2000:]}")
    finally:
        stop.set()
        for w in pool:
            try:
                w.conn.send(None)
            except OSError:
                pass
        for w in pool:
            w.proc.join(2)
            if w.proc.is_alive():
                w.proc.kill()
        import shutil
        shutil.rmtree(log_dir, ignore_errors=True)
    return snapshot()


def preload_models(seeds: list[Seed]) -> list[tuple[str, str]]:
    """(name, sha256) of every model the seeds use (loaded by each worker before its first case)."""
    manifest = json.loads((SEEDS_DIR / "manifest.json").read_text()) if (SEEDS_DIR / "manifest.json").exists() \
        else {}
    out = []
    for s in seeds:
        m = manifest.get(s.name, {})
        if m.get("model") and (m["model"], m.get("sha256")) not in out:
            out.append((m["model"], m.get("sha256")))
    return out


def fuzz(cases: int | None = None, time_budget: float | None = None, workers: int = 2, base_seed: int = 0,
         start: int = 0, seeds: list[Seed] | None = None, mutators: list[str] | None = None,
         stream_fraction: float = 0.25, **kw) -> Report:
    """Fuzz ``cases`` cases (numbered from ``start``), or as many as ``time_budget`` seconds allow."""
    import itertools
    seeds = seeds or load_seeds()
    numbers = range(start, start + cases) if cases is not None else itertools.count(start)
    gen = (make_case(seeds, n, base_seed, mutators, stream_fraction) for n in numbers)
    return run_cases(gen, workers=workers, time_budget=time_budget, base_seed=base_seed,
                     preload=preload_models(seeds), seed_names=[s.name for s in seeds], **kw)


def file_cases(files: list[Path]) -> list[Case]:
    """Saved mutants (found/, regressions/) as cases: what each must decode to comes from its
    ``.json`` (its seed's output), else only a DulzipError or an output that passes the file's
    own checksum counts as right."""
    manifest = json.loads((SEEDS_DIR / "manifest.json").read_text())
    out = []
    for i, f in enumerate(sorted(files)):
        info = json.loads(f.with_suffix(".json").read_text()) if f.with_suffix(".json").exists() else {}
        seed = info.get("seed", "")
        expect = info.get("expect") or manifest.get(seed, {}).get("output_blake2b")
        out.append(Case(i, seed or f.stem, info.get("mutator", "file"), f.name, f.read_bytes(), expect, True))
    return out


# =============================================================================================
# Reports and the command line
# =============================================================================================
def _mb(n: int) -> str:
    return f"{n / (1 << 20):,.0f} MB"


def write_report(report: Report, prefix: Path, command: str = "") -> tuple[Path, Path]:
    """``prefix``.md (tables for people) and ``prefix``.json (the same numbers, all failures)."""
    s = report.summary()
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    data = {**s, "command": command,
            "failures_all": [{"case": r.number, "seed": r.seed, "mutator": r.mutator, "what": r.what,
                              "outcome": r.outcome, "path": r.path, **r.detail} for r in report.failures]}
    jpath, mpath = prefix.with_suffix(".json"), prefix.with_suffix(".md")
    jpath.write_text(json.dumps(data, indent=1, default=str) + "\n")
    outcomes = sorted({o for c in s["by_seed"].values() for o in c}, key=lambda o: (o in FAILURES, o))
    lines = ["# Fuzzing .dlz decoding", "",
             f"`{command}`" if command else "", "",
             (f"{s['cases']:,} cases in {s['seconds']:,} s with {s['workers']} workers: "
              f"**{s['cases_per_second']} cases/s**; base seed {s['base_seed']}; time limit {s['time_limit']:g} s, "
              f"memory limit {_mb(s['memory_limit'])} (a worker idles at {_mb(s['worker_baseline_rss'])}); "
              f"{s['worker_restarts']} worker restarts."), "",
             f"Slowest case: {s['max_case_seconds']} s"
             + (f" (case {s['slowest_case']['number']}, {s['slowest_case']['seed']}, {s['slowest_case']['mutator']}: "
                f"{s['slowest_case']['what']} -> {s['slowest_case']['outcome']})" if s["slowest_case"] else "")
             + f". Largest peak resident memory: {_mb(s['max_peak_rss'])}"
             + (f" (case {s['largest_case']['number']}, {s['largest_case']['seed']}, {s['largest_case']['mutator']})"
                if s["largest_case"] else "") + ".", "",
             "## Outcomes", "", "| outcome | cases |", "|---|---:|"]
    lines += [f"| {o} | {n:,} |" for o, n in s["outcomes"].items()]
    lines += ["", f"**Failures: {s['failures']}** ({len(s['failure_groups'])} distinct signatures)", ""]
    if s["failure_groups"]:
        lines += ["| outcome | path | count | seeds | mutators | example (case, seed: mutation) | exception and where |",
                  "|---|---|---:|---|---|---|---|"]
        for g in s["failure_groups"]:
            e = g["example"]
            exc = f"{e.get('type', '')}: {e.get('message', '')}".strip(": ")[:160].replace("|", "\\|")
            where = e.get("where", "")
            lines.append(f"| {g['outcome']} | {g['path']} | {g['count']} | {', '.join(g['seeds'][:6])}"
                         f"{' …' if len(g['seeds']) > 6 else ''} | {', '.join(g['mutators'])} | "
                         f"{e['case']}, {e['seed']}: {str(e['what'])[:120].replace('|', '/')} | "
                         f"{exc} — `{where}` |")
    for title, table in (("By seed", s["by_seed"]), ("By kind and model", s["by_kind_model"]),
                         ("By mutator", s["by_mutator"])):
        lines += ["", f"## {title}", "", "| | " + " | ".join(outcomes) + " |", "|---|" + "---:|" * len(outcomes)]
        mean = s["seed_mean_seconds"] if title == "By seed" else None
        if mean:
            lines[-2:] = [lines[-2] + " mean s |", lines[-1] + "---:|"]
        for k, c in table.items():
            lines.append(f"| {k} | " + " | ".join(f"{c.get(o, 0):,}" if c.get(o) else "" for o in outcomes) + " |"
                         + (f" {mean[k]:.3f} |" if mean else ""))
    if s["saved"]:
        lines += ["", (f"Saved mutants ({len(s['saved'])}), each with a .json (seed, case, mutation, "
                       "exception): " + ", ".join(f"`{Path(p).name}`" for p in s["saved"][:40])
                       + (" …" if len(s["saved"]) > 40 else ""))]
    mpath.write_text("\n".join(lines) + "\n")
    return mpath, jpath


def _print_progress(every: float = 10.0):
    last = [0.0]

    def show(r: Result, n: int, dt: float) -> None:
        if r.failed:
            print(f"  FAIL case {r.number} {r.seed} {r.mutator}: {r.what[:100]} -> {r.signature()}", flush=True)
        if dt - last[0] >= every:
            last[0] = dt
            print(f"  {n} cases, {dt:.0f} s, {n / dt:.1f} cases/s", flush=True)
    return show


def replay(path: Path) -> int:
    """Decode one file in this process (no worker), printing each path's outcome and, for a
    foreign exception, its full traceback: the first step of fixing a saved mutant."""
    from dulzip import api
    from dulzip.errors import DulzipError
    blob = Path(path).read_bytes()
    info = json.loads(Path(path).with_suffix(".json").read_text()) if Path(path).with_suffix(".json").exists() \
        else {}
    if info:
        print(f"seed {info.get('seed')} case {info.get('case')} ({info.get('mutator')}): {info.get('what')}")
    opts = decode_options()
    for name, fn in (("decompress", lambda: api.decompress(blob, opts)),
                     ("stream", lambda: api.decompress_stream(io.BytesIO(blob), io.BytesIO(), opts)),
                     ("list", lambda: __import__("dulzip.cli", fromlist=["x"]).describe_lines("x", blob))):
        t0 = time.perf_counter()
        try:
            out = fn()
            print(f"{name}: returned {type(out).__name__} ({time.perf_counter() - t0:.2f} s)")
        except DulzipError as e:
            print(f"{name}: {type(e).__name__}: {e} ({time.perf_counter() - t0:.2f} s)")
        except Exception:  # noqa: BLE001
            print(f"{name}: FOREIGN EXCEPTION")
            traceback.print_exc()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.fuzzing", description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, help="number of cases (default: 1000 unless --time-budget)")
    ap.add_argument("--time-budget", type=float, help="seconds: start no case after this")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0, help="base seed (with the case number, decides each mutant)")
    ap.add_argument("--start", type=int, default=0, help="first case number")
    ap.add_argument("--time-limit", type=float, default=TIME_LIMIT, help="seconds before a case is a hang")
    ap.add_argument("--memory-limit", type=float, default=MEMORY_LIMIT / (1 << 30), help="GB of resident memory")
    ap.add_argument("--max-memory", type=float, default=DECODE_MEMORY / (1 << 30),
                    help="GB the decoder itself is allowed (Options.max_memory)")
    ap.add_argument("--seeds", nargs="*", help="only these seeds (names in tests/data/fuzz/seeds)")
    ap.add_argument("--mutators", nargs="*", choices=list(MUTATORS), help="only these mutators")
    ap.add_argument("--stream-fraction", type=float, default=0.25, help="share of cases also run through "
                    "decompress_stream")
    ap.add_argument("--report", type=Path, help="write PREFIX.md and PREFIX.json")
    ap.add_argument("--found", type=Path, default=FOUND_DIR, help="where failing mutants are saved")
    ap.add_argument("--save-per-signature", type=int, default=5, help="mutants saved per failure signature (0: all)")
    ap.add_argument("--make-seeds", action="store_true", help="(re)make the seeds, then exit")
    ap.add_argument("--show", type=int, metavar="CASE", help="describe case CASE's mutant and write it to ./")
    ap.add_argument("--replay", type=Path, metavar="FILE", help="decode FILE here, with tracebacks")
    ap.add_argument("--files", nargs="*", type=Path, help="run these saved mutants instead of new cases")
    a = ap.parse_args(argv)
    if a.make_seeds:
        for name, m in make_seeds(SEEDS_DIR, a.seeds).items():
            print(f"{name:18s} {m['kind']:5s} {m['model']!s:14s} v{m['version']} {m['size']:6d} bytes "
                  f"(original {m['length']})")
        return 0
    if a.replay:
        return replay(a.replay)
    seeds = load_seeds(SEEDS_DIR, a.seeds)
    if a.show is not None:
        c = make_case(seeds, a.show, a.seed, a.mutators, a.stream_fraction)
        out = Path(f"case-{a.seed}-{c.number}-{c.seed}.dlz")
        out.write_bytes(c.blob)
        print(f"case {c.number}: seed {c.seed}, {c.mutator}: {c.what} ({len(c.blob)} bytes) -> {out}")
        return 0
    kw = {"workers": a.workers, "time_limit": a.time_limit, "memory_limit": int(a.memory_limit * (1 << 30)),
          "found_dir": a.found, "save_per_signature": a.save_per_signature, "progress": _print_progress(),
          "max_memory": int(a.max_memory * (1 << 30))}
    command = "python -m tests.fuzzing " + " ".join(argv if argv is not None else sys.argv[1:])
    if a.report:  # a partial report every 5 minutes: a run stopped from outside keeps what it did
        kw["checkpoint"] = lambda rep: write_report(rep, a.report, command + "  (stopped early: a partial "
                                                    "report, written while the run was going)")
    if a.files is not None:
        report = run_cases(file_cases(a.files), preload=preload_models(seeds), base_seed=a.seed,
                           seed_names=[s.name for s in seeds], **{**kw, "found_dir": None})
    else:
        cases = a.cases if a.cases is not None or a.time_budget else 1000
        report = fuzz(cases, a.time_budget, base_seed=a.seed, start=a.start, seeds=seeds, mutators=a.mutators,
                      stream_fraction=a.stream_fraction, **kw)
    s = report.summary()
    print(f"{s['cases']} cases in {s['seconds']} s ({s['cases_per_second']} cases/s, {a.workers} workers); "
          f"slowest {s['max_case_seconds']} s, peak RSS {_mb(s['max_peak_rss'])}")
    for o, n in s["outcomes"].items():
        print(f"  {o:28s} {n}")
    print(f"failures: {s['failures']} ({len(s['failure_groups'])} signatures)")
    for g in s["failure_groups"]:
        e = g["example"]
        print(f"  {g['count']:5d}  {g['signature']}\n         e.g. case {e['case']} {e['seed']} {e['mutator']}: "
              f"{str(e['what'])[:110]}\n         {e.get('message', '')[:150]}")
    if a.report:
        for p in write_report(report, a.report, command):
            print(f"wrote {p}")
    return 1 if s["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
