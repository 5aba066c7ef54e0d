"""The codecs dulzip is measured against, for every modality, behind one interface.

A :class:`Baseline` codes what a modality's benchmark gives it (an image's pixels as an (H, W,
C) uint8 array, a file's bytes, a WAV's samples), and :meth:`Baseline.code` times the encode
and the decode and checks that the decode gives back exactly what was coded (a baseline that
does not round-trip raises :class:`RoundTripError`: a size is reported only for a lossless
result). A baseline whose library or tool is missing is unavailable, with the reason, not an
error.

- images: PNG and WebP lossless (Pillow), zstd on the raw pixels, and where imagecodecs is
  installed JPEG-XL lossless at efforts 7 and 9, JPEG-LS;
- text and other bytes: xz, zstd (ultra and -19), bzip2, brotli and PPMd where installed, and
  zpaq -m5 where the ``zpaq`` tool is found (as the audio tools are);
- audio: FLAC and WavPack (the reference tools, looked up in the folder named by
  ``DULZIP_TOOLS``, default ``/work/tools/usr/bin``, where ``benchmarks/corpora/audio_tools.sh``
  unpacks them, then on PATH; they check their own round trip), zstd and xz on the raw PCM.
"""
from __future__ import annotations

import bz2
import io
import lzma
import os
import shutil
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import zstandard

from dulzip.coding import zstdio


class RoundTripError(RuntimeError):
    """A baseline codec did not give back what it was given."""


def _same(a, b) -> bool:
    return np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b


@dataclass(frozen=True)
class Baseline:
    name: str
    encode: Callable[[Any], bytes] | None  # the coded form of what ``prepare`` made; None: unavailable
    decode: Callable[[bytes], Any] | None = None  # None: ``encode`` checks its own round trip (tools)
    missing: str = ""  # why it is unavailable
    prepare: Callable[[Any], Any] = lambda x: x  # what this codec is given of the input (e.g. gray as RGB)

    @property
    def available(self) -> bool:
        return self.encode is not None

    def code(self, x) -> tuple[bytes, float, float | None]:
        """(coded bytes, encode seconds, decode seconds or None) of ``x``, the decode checked."""
        if self.encode is None:
            raise RuntimeError(f"{self.name} is unavailable: {self.missing}")
        y = self.prepare(x)
        t0 = time.perf_counter()
        coded = self.encode(y)
        t1 = time.perf_counter()
        if self.decode is None:
            return coded, t1 - t0, None
        back = self.decode(coded)
        t2 = time.perf_counter()
        if not _same(back, y):
            raise RoundTripError(f"{self.name}: the decode differs from what was coded")
        return coded, t1 - t0, t2 - t1

    def compressed_size(self, x) -> int:
        """Bytes of ``x`` coded by this codec (checked by decoding them)."""
        return len(self.code(x)[0])


def check_same(name: str, decoded: bytes, coded: bytes) -> None:
    if decoded != coded:
        raise RoundTripError(f"{name}: decoded {len(decoded)} bytes differ from the {len(coded)} bytes coded")


# -- images ---------------------------------------------------------------------------------

def _pil(img: np.ndarray):
    from PIL import Image
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[img.shape[2]]
    return Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img, mode)


def png(img: np.ndarray) -> bytes:
    """PNG, Pillow level 9 with optimize; a gray image whose levels are all 0 or 255 as 1-bit."""
    from PIL import Image
    buf = io.BytesIO()
    if img.shape[2] == 1 and np.isin(img, (0, 255)).all():
        Image.fromarray(img[:, :, 0] > 127).save(buf, format="PNG", compress_level=9, optimize=True)
    else:
        _pil(img).save(buf, format="PNG", compress_level=9, optimize=True)
    return buf.getvalue()


def unpng(data: bytes) -> np.ndarray:
    from PIL import Image
    img = Image.open(io.BytesIO(data))
    a = np.asarray(img.convert("L") if img.mode == "1" else img)
    return a[:, :, None] if a.ndim == 2 else a


def _raw(img: np.ndarray) -> bytes:
    return np.ascontiguousarray(img).tobytes()


def _squeeze(a: np.ndarray) -> np.ndarray:
    return a[:, :, 0] if a.shape[2] == 1 else a


def _no_gray_alpha(a: np.ndarray) -> np.ndarray:
    """Gray + alpha as RGBA (what codecs without a gray-alpha mode are given)."""
    return np.concatenate([a[:, :, :1]] * 3 + [a[:, :, 1:]], axis=2) if a.shape[2] == 2 else a


def _rgb(a: np.ndarray) -> np.ndarray:
    """WebP has no gray mode: gray is given as RGB (alpha kept, but not an alpha that is all
    opaque: libwebp drops that one itself, and it decodes as RGB)."""
    a = _no_gray_alpha(np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a)
    return a[:, :, :3] if a.shape[2] == 4 and (a[:, :, 3] == 255).all() else a


def _webp(a: np.ndarray) -> bytes:
    """WebP lossless through Pillow's libwebp, ``exact``: the colour of fully transparent pixels
    is kept (libwebp otherwise changes it, and imagecodecs' encoder has no such switch)."""
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="WEBP", lossless=True, quality=100, method=6, exact=True)
    return buf.getvalue()


def _unwebp(data: bytes) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(data)))


def image_baselines() -> list[Baseline]:
    """PNG, zstd and WebP (Pillow) always; JPEG-XL (efforts 7 and 9) and JPEG-LS lossless where
    imagecodecs is installed."""
    out = [Baseline("PNG (Pillow -9, optimize)", png, unpng),
           Baseline("zstd -19 (raw pixels)", zstdio.compress, zstandard.ZstdDecompressor().decompress, prepare=_raw),
           Baseline("WebP lossless (m6, q100)", _webp, _unwebp, prepare=_rgb)]
    try:
        import imagecodecs
    except ImportError:
        return out + [Baseline(n, None, missing="imagecodecs is not installed")
                      for n in ("JPEG-XL lossless (e7)", "JPEG-XL lossless (e9)", "JPEG-LS")]
    flat = lambda a: _squeeze(_no_gray_alpha(a))  # noqa: E731
    for effort in (7, 9):
        out.append(Baseline(f"JPEG-XL lossless (e{effort})",
                            lambda a, e=effort: imagecodecs.jpegxl_encode(a, lossless=True, effort=e),
                            imagecodecs.jpegxl_decode, prepare=flat))
    out.append(Baseline("JPEG-LS", lambda a: imagecodecs.jpegls_encode(a, level=0), imagecodecs.jpegls_decode, prepare=flat))
    return out


# -- command-line tools (audio, zpaq) ---------------------------------------------------------

DEFAULT_TOOLS = "/work/tools/usr/bin"


@dataclass(frozen=True)
class Tool:
    """A command-line program and the environment to run it in (None: this process's)."""
    path: Path
    env: dict[str, str] | None = None

    def run(self, *args: str, cwd: Path | None = None) -> None:
        proc = subprocess.run([str(self.path), *args], env=self.env, cwd=cwd, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if proc.returncode:
            message = proc.stderr.decode(errors="replace").strip().splitlines()
            raise RuntimeError(f"{self.path.name} exited with {proc.returncode}: "
                               f"{message[-1] if message else 'no message'}")


def tools_dir() -> Path:
    return Path(os.environ.get("DULZIP_TOOLS", DEFAULT_TOOLS))


def find_tool(name: str) -> Tool | None:
    """``name`` in ``tools_dir()`` (run with the libraries of the tree it was unpacked in), else on PATH."""
    bindir = tools_dir()
    if os.access(bindir / name, os.X_OK):
        lib = bindir.parent / "lib"
        libs = [str(p) for p in sorted(lib.glob("*-linux-gnu"))] + [str(lib)]
        if os.environ.get("LD_LIBRARY_PATH"):
            libs.append(os.environ["LD_LIBRARY_PATH"])
        return Tool(bindir / name, dict(os.environ, LD_LIBRARY_PATH=os.pathsep.join(libs)))
    found = shutil.which(name)
    return Tool(Path(found)) if found else None


# -- text and other bytes ---------------------------------------------------------------------

try:
    import brotli
except ImportError:
    brotli = None
try:
    import pyppmd
except ImportError:
    pyppmd = None

ZSTD_WINDOW_LOG = 27
# 7-Zip's PPMd settings at -mx=9 (CEncProps::Normalize): model order 32, 192 MB of model memory
# (7-Zip 23 raised it to 256 MB, which only matters for inputs that fill 192 MB).
PPMD_ORDER, PPMD_MEM = 32, 192 << 20


def _xz(data: bytes) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_XZ, preset=9 | lzma.PRESET_EXTREME)


def _zstd_ultra(data: bytes) -> bytes:
    params = zstandard.ZstdCompressionParameters.from_level(22, enable_ldm=True, window_log=ZSTD_WINDOW_LOG)
    return zstandard.ZstdCompressor(compression_params=params).compress(data)


def _unzstd(data: bytes) -> bytes:
    return zstandard.ZstdDecompressor(max_window_size=1 << ZSTD_WINDOW_LOG).decompress(data)


# pyppmd's encoder (1.3.1) looks for a full output block only after each symbol, and one symbol
# can write more than one byte: where that happens at the end of the first block (32 KiB) a byte
# is lost or written past it (3% of random 34 kB inputs; a 265 kB log file). So it is given pieces
# whose output fits in one block; the range coder carries on between calls, so the bytes are the
# same as one call's where that one is right.
PPMD_PIECE = 16 << 10


def _ppmd(data: bytes) -> bytes:
    """PPMd var. H (7z's PPMd) after the input's length (8 bytes, little-endian), which the
    decoder needs (7z keeps it in its archive headers)."""
    enc = pyppmd.Ppmd7Encoder(PPMD_ORDER, PPMD_MEM)
    pieces = [enc.encode(data[i:i + PPMD_PIECE]) for i in range(0, len(data), PPMD_PIECE)]
    return struct.pack("<Q", len(data)) + b"".join(pieces) + enc.flush()


def _unppmd(data: bytes) -> bytes:
    (n,) = struct.unpack_from("<Q", data)
    out = pyppmd.Ppmd7Decoder(PPMD_ORDER, PPMD_MEM).decode(data[8:], n)
    if len(out) != n:
        raise ValueError(f"PPMd stream decoded to {len(out)} bytes, expected {n}")
    return out


ZPAQ_ARGS = ("-m5",)


def _zpaq(zpaq: Tool, data: bytes) -> bytes:
    """A zpaq archive of ``data`` as one file named ``f`` (the archive stores the name: a fixed
    one costs the same for every input), written in an empty temporary folder."""
    with tempfile.TemporaryDirectory(prefix="dulzip-zpaq-") as tmp:
        Path(tmp, "f").write_bytes(data)
        zpaq.run("a", "out.zpaq", "f", *ZPAQ_ARGS, cwd=Path(tmp))
        return Path(tmp, "out.zpaq").read_bytes()


def _unzpaq(zpaq: Tool, archive: bytes) -> bytes:
    """The file ``f`` of a zpaq archive that :func:`_zpaq` wrote."""
    with tempfile.TemporaryDirectory(prefix="dulzip-unzpaq-") as tmp:
        Path(tmp, "in.zpaq").write_bytes(archive)
        zpaq.run("x", "in.zpaq", "-to", "out", cwd=Path(tmp))
        return Path(tmp, "out", "f").read_bytes()


def text_baselines() -> list[Baseline]:
    """xz, zstd (ultra and -19) and bzip2 always; brotli and PPMd where their packages are
    installed, zpaq -m5 where its tool is found (``find_tool``)."""
    out = [Baseline("xz -9e", _xz, lzma.decompress), Baseline("zstd --ultra -22 --long", _zstd_ultra, _unzstd)]
    if brotli is not None:
        out.append(Baseline("brotli -q 11", lambda d: brotli.compress(d, quality=11, lgwin=24), brotli.decompress))
    out.append(Baseline("bzip2 -9", lambda d: bz2.compress(d, 9), bz2.decompress))
    if pyppmd is not None:
        out.append(Baseline("PPMd (7z -m0=PPMd -mx=9)", _ppmd, _unppmd))
    zpaq = find_tool("zpaq")
    if zpaq is not None:
        out.append(Baseline(f"zpaq {' '.join(ZPAQ_ARGS)}", lambda d: _zpaq(zpaq, d), lambda a: _unzpaq(zpaq, a)))
    out.append(Baseline("zstd -19", zstdio.compress, zstandard.ZstdDecompressor().decompress))
    return out


# -- audio -------------------------------------------------------------------------------------

FLAC_ARGS = ("-8", "--no-padding")  # without --no-padding flac adds 8 KiB of padding to every file
WAVPACK_ARGS = ("-hhx6",)  # its strongest mode


def _pcm(w) -> bytes:
    from dulzip.formats.wav import sample_bytes
    return sample_bytes(w.samples, w.bits)


def _raw_flac(flac: Tool, w) -> bytes:
    pcm = _pcm(w)
    raw_format = ["--force-raw-format", "--endian=little", f"--sign={'unsigned' if w.bits == 8 else 'signed'}"]
    with tempfile.TemporaryDirectory(prefix="dulzip-flac-") as tmp:
        src, coded, back = Path(tmp, "in.raw"), Path(tmp, "out.flac"), Path(tmp, "back.raw")
        src.write_bytes(pcm)
        flac.run(*FLAC_ARGS, "-s", "-f", *raw_format, f"--channels={w.channels}", f"--bps={w.bits}",
                 f"--sample-rate={w.rate}", "-o", str(coded), str(src))
        flac.run("-d", "-s", "-f", *raw_format, "-o", str(back), str(coded))
        check_same("flac", back.read_bytes(), pcm)
        return coded.read_bytes()


def _raw_wavpack(wavpack: Tool, wvunpack: Tool, w) -> bytes:
    pcm = _pcm(w)
    with tempfile.TemporaryDirectory(prefix="dulzip-wavpack-") as tmp:
        src, coded, back = Path(tmp, "in.raw"), Path(tmp, "out.wv"), Path(tmp, "back.raw")
        src.write_bytes(pcm)
        layout = f"{w.rate},{w.bits}{'u' if w.bits == 8 else 's'},{w.channels},le"
        wavpack.run(*WAVPACK_ARGS, "-q", "-y", f"--raw-pcm={layout}", str(src), "-o", str(coded))
        wvunpack.run("-q", "-y", "--raw", str(coded), "-o", str(back))
        check_same("wavpack", back.read_bytes(), pcm)
        return coded.read_bytes()


def _tool_baseline(name: str, tools: tuple[str, ...], make: Callable[..., Callable]) -> Baseline:
    found = [find_tool(t) for t in tools]
    lost = [t for t, f in zip(tools, found) if f is None]
    if lost:
        return Baseline(name, None, missing=f"{', '.join(lost)} not found in {tools_dir()} or on PATH")
    return Baseline(name, make(*found))


def audio_baselines() -> list[Baseline]:
    """FLAC, WavPack, zstd and xz, in that order, given a parsed WAV (``dulzip.formats.wav.Wav``)
    as the raw PCM a WAV stores (no header); FLAC and WavPack unavailable without their tools."""
    return [
        _tool_baseline(f"flac {' '.join(FLAC_ARGS)}", ("flac",), lambda flac: lambda w: _raw_flac(flac, w)),
        _tool_baseline(f"wavpack {' '.join(WAVPACK_ARGS)}", ("wavpack", "wvunpack"),
                       lambda pack, unpack: lambda w: _raw_wavpack(pack, unpack, w)),
        Baseline("zstd -19 (raw PCM)", zstdio.compress, zstandard.ZstdDecompressor().decompress, prepare=_pcm),
        Baseline("xz -9e (raw PCM)", _xz, lzma.decompress, prepare=_pcm),
    ]
