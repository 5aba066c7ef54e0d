"""What every kind's pipeline shares: loading the model (for a new file, or the one a file
names), the model part of a header, format side data (PNG chunks, WAV headers) in the header or
as zstd streams, side and bytes streams read back within bounds, and the messages for a model
that cannot apply or is not installed."""
from __future__ import annotations

import hashlib
import warnings
from typing import TYPE_CHECKING

from dulzip import __version__
from dulzip.coding import zstdio
from dulzip.container import Container, add_stream
from dulzip.errors import CorruptDataError, DulzipWarning, FormatError, UsageError
from dulzip.formats import sniff
from dulzip.options import default_threads

if TYPE_CHECKING:
    from dulzip.options import Options

INLINE_MAX = 64  # side data up to this many bytes goes in the header
SHA_PREFIX = 32  # hex digits of the weights' sha256 recorded in a file (128 bits)
zstd_stream = zstdio.pack


def checksum(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def resolve_device(device: str) -> str:
    import torch
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda asked for, but no CUDA device is available")
    if device not in ("cpu", "cuda"):
        raise UsageError(f"unknown device '{device}' (auto, cpu or cuda)")
    return device


def set_threads(opts: Options) -> None:
    import torch
    torch.set_num_threads(opts.threads or default_threads())


def prepare(name: str, opts: Options):
    from dulzip import zoo
    device = resolve_device(opts.device)
    set_threads(opts)
    return zoo.load(name, device)


def load_for(h: dict, opts: Options):
    """The model a file names, checked against its recorded sha256."""
    from dulzip import zoo
    name, sha = h["model"]["name"], h["model"]["sha256"]  # present and well-formed: dulzip.schema
    device = resolve_device(opts.device)
    set_threads(opts)
    return name, zoo.load(name, device, expect_sha256=sha)[0]


def content_header(kind: str, data: bytes, model: dict | None = None) -> dict:
    """The header fields every kind but bytes has: what the original is, the model that coded it
    (none for the coders that need no network), and which dulzip wrote it."""
    h = {"kind": kind, "length": len(data), "blake2b": checksum(data)}
    if model is not None:
        h["model"] = model
    h["tool"] = __version__
    return h


def model_header(kind: str, data: bytes, name: str, digest: str) -> dict:
    return content_header(kind, data, {"name": name, "sha256": digest[:SHA_PREFIX]})


def add_side(header: dict, payloads: list[bytes], side: dict[str, bytes]) -> None:
    """Format side data (PNG chunks, WAV headers): small pieces in the header, others as zstd streams."""
    for sname, blob in side.items():
        if len(blob) <= INLINE_MAX:  # small side data sits in the header (no stream entry)
            header.setdefault("inline", {})[sname] = blob.hex()
        else:
            add_stream(header, payloads, sname, *zstd_stream(blob))


def read_side(c: Container, formats: tuple[str, ...]) -> dict[str, bytes]:
    h = c.header
    side = {k: bytes.fromhex(v) for k, v in h.get("inline", {}).items()}  # hex: dulzip.schema
    for meta, data in zip(h["streams"], c.payloads):
        if "." in meta["name"] and meta["name"].split(".")[0] in formats:
            side[meta["name"]] = unstream(meta, data, int(h["length"]) + (1 << 20))
    return side


def unstream(meta: dict, data: bytes, limit: int) -> bytes:
    """A side or bytes stream's content, of at most ``limit`` bytes."""
    if meta["coder"] == "stored":
        if len(data) > limit:
            raise CorruptDataError(f"stream '{meta['name']}' is longer than the file it belongs to")
        return data
    if meta["coder"] == "zstd":
        return zstdio.decompress(data, limit, f"stream '{meta['name']}'", exact=False)
    raise FormatError(f"stream '{meta['name']}' cannot use coder '{meta['coder']}'")


def modality(name: str) -> str:
    from dulzip import zoo
    from dulzip.models import registry
    return registry.modality(zoo.card(name)["architecture"])


def cannot_code(model: str, data: bytes) -> str:
    """Why the model named cannot code this input, in words."""
    kind = modality(model)
    what = ("a WAV" if sniff.looks_like_wav(data[:12]) else "a PNG" if sniff.looks_like_png(data)
            else "a PNM image" if sniff.looks_like_pnm(data) else "text" if sniff.looks_like_text(data)
            else "not an image, WAV or text")
    takes = {"image": "8-bit PNG and PNM images it can model", "audio": "8/16-bit PCM WAV files"}.get(kind, kind)
    return (f"model '{model}' codes {takes}; this input is {what} that it cannot code "
            "(use -m auto, or -m zstd)")


def missing(kind: str, name: str) -> None:
    warnings.warn(f"the {kind} model '{name}' is not installed: stored with zstd (dulzip models lists "
                  "what is installed)", DulzipWarning, stacklevel=3)


def add_coded(header: dict, payloads: list[bytes], prefix: str, streams, est: float = 0.0) -> float:
    """Add a codec's streams as ``PREFIX.0``, ``PREFIX.1``...; returns ``est`` plus their size
    in bits by the model's own estimate where the model coded them, else their real size (the
    header's ``model_bits``: what ``dulzip list`` compares the file with; added one stream at a
    time, in order, so that the float sum is the same whatever the caller's planes)."""
    for i, s in enumerate(streams):
        add_stream(header, payloads, f"{prefix}.{i}", s.coder, s.payload)
        est += s.est_bits if s.coder == "model" else 8 * len(s.payload)
    return est


def coded_streams(c: Container, prefix: str) -> list:
    """The streams ``PREFIX.N`` of a file, in order, as the codecs take them."""
    from dulzip.codecs.stream import Stream
    return [Stream(m["coder"], d) for m, d in zip(c.header["streams"], c.payloads) if m["name"].startswith(prefix + ".")]
