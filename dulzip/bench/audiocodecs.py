"""Baseline lossless audio codecs behind one small interface, for the audio benchmarks.

Every codec is given the samples of a parsed WAV (``dulzip.formats.wav.Wav``) as raw PCM, the
bytes a WAV stores, so all of them code the same thing: the audio, without the WAV header.
Each encode is decoded again and compared with the input; a difference raises
``RoundTripError``. FLAC and WavPack are the reference command-line tools, looked up in the
folder named by the environment variable ``DULZIP_TOOLS`` (default ``/work/tools/usr/bin``,
where ``benchmarks/corpora/audio_tools.sh`` unpacks them, run with that tree's libraries) and then on
PATH; a codec whose tool is missing is unavailable, not an error.
"""
from __future__ import annotations

import lzma
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import zstandard

from dulzip.coding import zstdio
from dulzip.formats.wav import Wav, sample_bytes

DEFAULT_TOOLS = "/work/tools/usr/bin"
FLAC_ARGS = ("-8", "--no-padding")  # without --no-padding flac adds 8 KiB of padding to every file
WAVPACK_ARGS = ("-hhx",)


class RoundTripError(RuntimeError):
    """A baseline codec did not give back the samples it was given."""


@dataclass(frozen=True)
class Tool:
    """A command-line program and the environment to run it in (None: this process's)."""
    path: Path
    env: dict[str, str] | None = None

    def run(self, *args: str) -> None:
        proc = subprocess.run([str(self.path), *args], env=self.env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if proc.returncode:
            message = proc.stderr.decode(errors="replace").strip().splitlines()
            raise RuntimeError(f"{self.path.name} exited with {proc.returncode}: "
                               f"{message[-1] if message else 'no message'}")


@dataclass(frozen=True)
class AudioCodec:
    name: str
    encode: Callable[[Wav], bytes] | None  # the coded samples, decode verified; None: unavailable
    missing: str = ""  # why it is unavailable

    @property
    def available(self) -> bool:
        return self.encode is not None

    def compressed_size(self, w: Wav) -> int:
        """Bytes of ``w``'s samples coded by this codec (checked by decoding them)."""
        if self.encode is None:
            raise RuntimeError(f"{self.name} is unavailable: {self.missing}")
        return len(self.encode(w))


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


def check_same(name: str, decoded: bytes, pcm: bytes) -> None:
    if decoded != pcm:
        raise RoundTripError(f"{name}: decoded {len(decoded)} bytes differ from the {len(pcm)} bytes coded")


def _raw_flac(flac: Tool, w: Wav) -> bytes:
    pcm = sample_bytes(w.samples, w.bits)
    raw_format = ["--force-raw-format", "--endian=little", f"--sign={'unsigned' if w.bits == 8 else 'signed'}"]
    with tempfile.TemporaryDirectory(prefix="dulzip-flac-") as tmp:
        src, coded, back = Path(tmp, "in.raw"), Path(tmp, "out.flac"), Path(tmp, "back.raw")
        src.write_bytes(pcm)
        flac.run(*FLAC_ARGS, "-s", "-f", *raw_format, f"--channels={w.channels}", f"--bps={w.bits}",
                 f"--sample-rate={w.rate}", "-o", str(coded), str(src))
        flac.run("-d", "-s", "-f", *raw_format, "-o", str(back), str(coded))
        check_same("flac", back.read_bytes(), pcm)
        return coded.read_bytes()


def _raw_wavpack(wavpack: Tool, wvunpack: Tool, w: Wav) -> bytes:
    pcm = sample_bytes(w.samples, w.bits)
    with tempfile.TemporaryDirectory(prefix="dulzip-wavpack-") as tmp:
        src, coded, back = Path(tmp, "in.raw"), Path(tmp, "out.wv"), Path(tmp, "back.raw")
        src.write_bytes(pcm)
        layout = f"{w.rate},{w.bits}{'u' if w.bits == 8 else 's'},{w.channels},le"
        wavpack.run(*WAVPACK_ARGS, "-q", "-y", f"--raw-pcm={layout}", str(src), "-o", str(coded))
        wvunpack.run("-q", "-y", "--raw", str(coded), "-o", str(back))
        check_same("wavpack", back.read_bytes(), pcm)
        return coded.read_bytes()


def _zstd19(w: Wav) -> bytes:
    pcm = sample_bytes(w.samples, w.bits)
    coded = zstdio.compress(pcm)
    check_same("zstd", zstandard.ZstdDecompressor().decompress(coded), pcm)
    return coded


def _xz9e(w: Wav) -> bytes:
    pcm = sample_bytes(w.samples, w.bits)
    coded = lzma.compress(pcm, format=lzma.FORMAT_XZ, preset=9 | lzma.PRESET_EXTREME)
    check_same("xz", lzma.decompress(coded), pcm)
    return coded


def _tool_codec(name: str, tools: tuple[str, ...], make: Callable[..., Callable[[Wav], bytes]]) -> AudioCodec:
    found = [find_tool(t) for t in tools]
    lost = [t for t, f in zip(tools, found) if f is None]
    if lost:
        return AudioCodec(name, None, f"{', '.join(lost)} not found in {tools_dir()} or on PATH")
    return AudioCodec(name, make(*found))


def audio_codecs() -> list[AudioCodec]:
    """FLAC, WavPack, zstd and xz, in that order; FLAC and WavPack unavailable without their tools."""
    return [
        _tool_codec(f"flac {' '.join(FLAC_ARGS)}", ("flac",), lambda flac: lambda w: _raw_flac(flac, w)),
        _tool_codec(f"wavpack {' '.join(WAVPACK_ARGS)}", ("wavpack", "wvunpack"),
                    lambda pack, unpack: lambda w: _raw_wavpack(pack, unpack, w)),
        AudioCodec("zstd -19 (raw PCM)", _zstd19),
        AudioCodec("xz -9e (raw PCM)", _xz9e),
    ]
