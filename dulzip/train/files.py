"""The files of a training folder: listed once, split into training and held-out files.

A folder may hold millions of files (ImageNet, LibriSpeech), so it is listed without reading
them: each file's size, and what a sample needs to know of it without decoding (an image's
height and width from its header, a WAV's sample layout from its chunk headers). The listing is
cached in the run folder (``files.npz``, keyed by each file's size and modification time), so a
resumed run and the other ranks of a distributed run do not read every header again.

A listing is a few numpy arrays (:class:`Files`), not a Python object per file: a million files
cost tens of megabytes, and the worker processes that read the data share them with the
training process (forked, and never written, so never copied).

The held-out split is by a hash of each file's path in the folder: a file stays on its side as
the folder grows, whatever the order of listing.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".bmp", ".webp", ".tif", ".tiff"}
MIN_FOR_SPLIT = 20  # a folder of fewer files is held out only where the hash picks some
META = {"image": 2, "audio": 5}  # numbers per file: (height, width); a WAV's Layout; text: none
CACHE_VERSION = 2


@dataclass(frozen=True)
class Files:
    """Usable files of a folder: ``path(i)`` under the folder, ``size[i]`` bytes, ``meta[i]``: an
    image's (height, width), a WAV's (rate, bits, channels, offset, frames)
    (:class:`dulzip.formats.wav.Layout`), nothing for text. The paths are one UTF-8 buffer and
    their offsets."""
    blob: np.ndarray  # uint8: every path, one after another
    ends: np.ndarray  # int64: where each path ends in blob
    size: np.ndarray  # int64
    meta: np.ndarray  # int64 (n, META[modality])

    @classmethod
    def of(cls, paths: list[str], size, meta, width: int) -> Files:
        raw = [p.encode() for p in paths]
        ends = np.cumsum([len(r) for r in raw], dtype=np.int64) if raw else np.zeros(0, np.int64)
        return cls(np.frombuffer(b"".join(raw), np.uint8).copy(), ends, np.asarray(size, np.int64).reshape(-1),
                   np.asarray(meta, np.int64).reshape(len(paths), width))

    def __len__(self) -> int:
        return len(self.ends)

    def path(self, i: int) -> str:
        start = int(self.ends[i - 1]) if i else 0
        return self.blob[start:int(self.ends[i])].tobytes().decode()

    def paths(self) -> list[str]:
        return [self.path(i) for i in range(len(self))]

    def take(self, index) -> Files:
        """The files at ``index`` (an index array or a boolean mask), in that order."""
        idx = np.arange(len(self))[index]
        return Files.of([self.path(i) for i in idx], self.size[idx], self.meta[idx], self.meta.shape[1])


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

        from dulzip.formats.wav import NETWORK_BITS, NETWORK_CHANNELS, locate_samples
        with open(path, "rb") as f:
            lay = locate_samples(f)
        if lay is None or lay.bits not in NETWORK_BITS or lay.channels > NETWORK_CHANNELS:
            return None  # the networks train on 8/16-bit mono or stereo
        return astuple(lay)
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


def _cached(cache: Path | None, root: Path, modality: str):
    """The previous listing: (paths, size, mtime, meta, usable), or None."""
    if cache is None or not cache.is_file():
        return None
    try:
        with np.load(cache, allow_pickle=False) as z:
            if int(z["version"]) != CACHE_VERSION or str(z["root"]) != str(root.resolve()) \
                    or str(z["modality"]) != modality:
                return None
            listed = Files(z["blob"], z["ends"], z["size"], z["meta"])
            return listed.paths(), z["size"], z["mtime"], z["meta"], z["usable"]
    except (OSError, ValueError, KeyError):
        return None


def list_files(root: str | Path, modality: str, cache: Path | None = None) -> tuple[Files, int]:
    """The usable files under ``root`` for a modality, and how many were skipped (images or WAVs
    whose headers could not be read). ``cache``: a listing to reuse and rewrite."""
    root = Path(root)
    width = META.get(modality, 0)
    old = _cached(cache, root, modality)
    at = {} if old is None else None  # the old listing by path, made only when it differs
    paths, sizes, mtimes, metas, usable = [], [], [], [], []
    read = 0
    for i, (rel, st) in enumerate(_walk(root, modality)):
        j = None
        if old is not None:
            if i < len(old[0]) and old[0][i] == rel:
                j = i
            else:
                at = {p: k for k, p in enumerate(old[0])} if at is None else at
                j = at.get(rel)
        if j is not None and old[1][j] == st.st_size and old[2][j] == st.st_mtime_ns:
            meta, ok = tuple(old[3][j]), bool(old[4][j])
        else:
            found, read = _meta(root / rel, modality), read + 1
            meta, ok = (found, True) if found is not None else ((0,) * width, False)
        paths.append(rel)
        sizes.append(st.st_size)
        mtimes.append(st.st_mtime_ns)
        metas.append(meta)
        usable.append(ok)
    listed = Files.of(paths, sizes, metas, width)
    if cache is not None and (read or old is None or len(paths) != len(old[0])):
        tmp = cache.with_name(cache.name + ".tmp.npz")
        np.savez(tmp, version=CACHE_VERSION, root=str(root.resolve()), modality=modality, blob=listed.blob,
                 ends=listed.ends, size=listed.size, mtime=np.asarray(mtimes, np.int64), meta=listed.meta,
                 usable=np.asarray(usable, bool))
        os.replace(tmp, cache)
    ok = np.asarray(usable, bool)
    return (listed if ok.all() else listed.take(ok)), int((~ok).sum())


def _rank(path: str) -> float:
    """A file's place in [0, 1) by the hash of its path: the held-out split."""
    return int.from_bytes(hashlib.sha256(path.encode()).digest()[:8], "big") / 2.0 ** 64


def split(files: Files, fraction: float) -> tuple[Files, Files]:
    """(training, held-out) files: those whose path hashes below ``fraction`` are held out; in a
    folder of at least MIN_FOR_SPLIT files where none does, the lowest one (some held-out data
    to measure on, as long as the folder is not a handful of files)."""
    if fraction <= 0 or not len(files):
        return files, files.take(np.zeros(len(files), bool))
    rank = np.array([_rank(files.path(i)) for i in range(len(files))])
    held = rank < fraction
    if not held.any() and len(files) >= MIN_FOR_SPLIT:
        held[np.argmin(rank)] = True
    return files.take(~held), files.take(held)
