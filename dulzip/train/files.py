"""The files of a training folder: listed once, split into training and held-out files.

A folder may hold millions of files (ImageNet, LibriSpeech), so it is listed without reading
them: each file's size, and what a sample needs to know of it without decoding (an image's
height and width from its header, a WAV's sample layout from its chunk headers). The listing is
cached in the run folder (``files.json``, keyed by each file's size and modification time), so a
resumed run and the other ranks of a distributed run do not read every header again.

The held-out split is by a hash of each file's path in the folder: a file stays on its side as
the folder grows, whatever the order of listing.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".bmp", ".webp", ".tif", ".tiff"}
MIN_FOR_SPLIT = 20  # a folder of fewer files is held out only where the hash picks some
CACHE_VERSION = 1


@dataclass(frozen=True)
class Item:
    """One training file: its path under the folder, its size, and ``meta``: an image's
    (height, width), a WAV's (rate, bits, channels, offset, frames) (:class:`dulzip.formats.wav.Layout`),
    nothing for text."""
    path: str
    size: int
    meta: tuple = ()


def _wanted(name: str, modality: str) -> bool:
    if name.startswith("."):
        return False
    suffix = os.path.splitext(name)[1].lower()
    return {"image": suffix in IMAGE_SUFFIXES, "audio": suffix == ".wav"}.get(modality, True)


def _meta(path: Path, modality: str) -> tuple | None:
    """What a sample needs of a file, from its headers; None: a file that cannot be used."""
    if modality == "image":
        from PIL import Image
        try:
            with Image.open(path) as img:
                return (img.height, img.width)
        except (OSError, ValueError, Image.DecompressionBombError):
            return None
    if modality == "audio":
        from dataclasses import astuple

        from dulzip.formats.wav import locate_samples
        with open(path, "rb") as f:
            lay = locate_samples(f)
        return None if lay is None else astuple(lay)
    return ()


def _walk(root: Path, modality: str):
    """(path under root, stat) of every wanted file, in sorted order, symbolic links followed."""
    for top, dirs, names in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if _wanted(name, modality):
                full = os.path.join(top, name)
                try:
                    st = os.stat(full)
                except OSError:
                    continue
                if st.st_size:
                    yield os.path.relpath(full, root), st


def list_files(root: str | Path, modality: str, cache: Path | None = None) -> tuple[list[Item], int]:
    """The usable files under ``root`` for a modality, and how many were skipped (images or WAVs
    whose headers could not be read). ``cache``: a listing to reuse and rewrite."""
    root = Path(root)
    old = {}
    if cache is not None and cache.is_file():
        try:
            c = json.loads(cache.read_text())
            if c.get("version") == CACHE_VERSION and c.get("root") == str(root.resolve()) and c.get("modality") == modality:
                old = {e[0]: e for e in c["files"]}
        except (ValueError, KeyError, TypeError):
            old = {}
    items, rows, skipped, read = [], [], 0, 0
    for rel, st in _walk(root, modality):
        hit = old.get(rel)
        if hit and hit[1] == st.st_size and hit[2] == st.st_mtime_ns:
            meta = None if hit[3] is None else tuple(hit[3])
        else:
            meta, read = _meta(root / rel, modality), read + 1
        rows.append([rel, st.st_size, st.st_mtime_ns, meta])
        if meta is None:
            skipped += 1
        else:
            items.append(Item(rel, st.st_size, meta))
    if cache is not None and (read or len(rows) != len(old)):
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(json.dumps({"version": CACHE_VERSION, "root": str(root.resolve()), "modality": modality,
                                   "files": rows}))
        os.replace(tmp, cache)
    return items, skipped


def _rank(path: str) -> float:
    """A file's place in [0, 1) by the hash of its path: the held-out split."""
    return int.from_bytes(hashlib.sha256(path.encode()).digest()[:8], "big") / 2.0 ** 64


def split(items: list[Item], fraction: float) -> tuple[list[Item], list[Item]]:
    """(training, held-out) files: those whose path hashes below ``fraction`` are held out; in a
    folder of at least MIN_FOR_SPLIT files where none does, the lowest one (some held-out data
    to measure on, as long as the folder is not a handful of files)."""
    if fraction <= 0:
        return items, []
    out = [p for p in items if _rank(p.path) < fraction]
    if not out and len(items) >= MIN_FOR_SPLIT:
        out = [min(items, key=lambda p: _rank(p.path))]
    held = {p.path for p in out}
    return [p for p in items if p.path not in held], out
