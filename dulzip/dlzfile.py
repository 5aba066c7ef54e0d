"""``dulzip.open``: .dlz files as Python file objects, as ``gzip.open`` and ``zstandard.open`` give.

Why this shape: a .dlz container starts with a header that lists every stream's size, and an
image or a WAV is modelled whole, so neither side can emit bytes as they come. The writer
therefore collects what is written in a spooled temporary file (memory up to SPOOL bytes, then
disk) and compresses it on ``close()`` -- an image or WAV whole, anything else of 32 MB or more
as a stream (:func:`dulzip.api.compress_stream`: bounded memory); the reader decodes the file on
open into the same kind of spool (text and bytes files as a stream, so memory stays bounded)
and serves reads, seeks and lines from it. Errors come when they are known: a damaged file on
open (nothing is returned as data before its checksum was checked), a failed compression on
``close()``.

Also here: :func:`compress_file` and :func:`decompress_file`, paths or binary file objects in
and out (the CLI's logic without its messages).
"""
from __future__ import annotations

import builtins
import io
import os
import tempfile
from typing import IO, Any, BinaryIO, Union

from dulzip.options import make_options
from dulzip.outfile import Counted

PathOrFile = Union[str, "os.PathLike[str]", BinaryIO, IO[bytes]]

SPOOL = 32 << 20  # bytes a writer or reader keeps in memory before its spool goes to disk


def compress_file(src: PathOrFile, dst: PathOrFile, **options: Any) -> int:
    """Compress ``src`` (a path or a binary file object read from its position) into ``dst`` (a
    path, written whole or not at all, or a binary file object); returns the bytes written.
    ``options``: :class:`dulzip.api.Options` fields (``model``, ``level``, ``threads``...)."""
    from dulzip import api
    from dulzip.formats import sniff
    opts = make_options(options)
    with _reader(src) as f:
        head = api.read_upto(f, sniff.STREAM_MIN)
        size = _left(f, len(head))
        with _writer(dst) as out:
            # a WAV streams only where its length is known (its header is checked against it)
            if not sniff.streamed(head, len(head), opts.model) or (size is None and sniff.looks_like_wav(head)):
                data = head + f.read() if len(head) == sniff.STREAM_MIN else head
                blob = api.compress(data, opts)
                out.write(blob)
                return len(blob)
            counted = Counted(out)
            api.compress_stream(_Chain(head, f), counted, opts, size)
            return counted.n


def _left(f, done: int) -> int | None:
    """The input's whole length (``done`` bytes read, the rest still in ``f``) where ``f`` can
    tell it (a seekable file), else None."""
    try:
        if not f.seekable():
            return None
        here = f.tell()
        end = f.seek(0, os.SEEK_END)
        f.seek(here)
        return done + end - here
    except (OSError, ValueError):
        return None


def decompress_file(src: PathOrFile, dst: PathOrFile, **options: Any) -> int:
    """Decompress the .dlz ``src`` into ``dst`` (paths or binary file objects; a path is
    written whole or not at all); returns the bytes of the original. Text and bytes files
    stream in bounded memory."""
    from dulzip import api
    opts = make_options(options)
    with _reader(src) as f, _writer(dst) as out:
        return api.decompress_stream(f, out, opts)


def open(file: PathOrFile, mode: str = "rb", *, encoding: str | None = None, errors: str | None = None,
         newline: str | None = None, **options: Any) -> IO:
    """A .dlz file as a file object: mode ``rb`` / ``wb`` / ``xb`` (binary; ``r``, ``w``, ``x`` the
    same) or ``rt`` / ``wt`` / ``xt`` (text, through :class:`io.TextIOWrapper` with ``encoding``,
    ``errors``, ``newline``). ``file``: a path or a binary file object. ``options``: Options
    fields for writing (``model``, ``level``...) and ``max_memory`` etc. for reading."""
    if "a" in mode or "+" in mode:
        raise ValueError(f"mode {mode!r}: a .dlz file is read or written whole (r, w or x)")
    kind = mode.replace("b", "").replace("t", "")
    if kind not in ("r", "w", "x") or ("b" in mode and "t" in mode):
        raise ValueError(f"invalid mode {mode!r}")
    if "t" not in mode and (encoding or errors or newline):
        raise ValueError("encoding, errors and newline are for text mode only")
    raw = DlzReader(file, **options) if kind == "r" else DlzWriter(file, kind, **options)
    if "t" in mode:
        return io.TextIOWrapper(raw, encoding, errors, newline)
    return raw


class DlzReader(io.BufferedIOBase):
    """Reading side of :func:`open`: the whole file decoded (and verified) on open into a spool."""

    def __init__(self, file: PathOrFile, **options: Any):
        from dulzip import api
        self._spool = tempfile.SpooledTemporaryFile(max_size=SPOOL)
        try:
            with _reader(file) as f:
                api.decompress_stream(f, self._spool, make_options(options))
        except BaseException:
            self._spool.close()
            raise
        self._spool.seek(0)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        self._check()
        return self._spool.read(-1 if size is None else size)

    def read1(self, size: int = -1) -> bytes:
        return self.read(size)

    def readinto(self, b) -> int:
        self._check()
        data = self._spool.read(len(memoryview(b)))
        memoryview(b).cast("B")[:len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._check()
        return self._spool.seek(offset, whence)

    def tell(self) -> int:
        self._check()
        return self._spool.tell()

    def close(self) -> None:
        if not self.closed:
            self._spool.close()
        super().close()

    def _check(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")


class DlzWriter(io.BufferedIOBase):
    """Writing side of :func:`open`: what is written is spooled, then compressed on ``close()``
    (see the module's docstring); a path is created only then, whole (mode ``x``: refused if it
    exists, checked on open too). An error inside a ``with`` block writes nothing."""

    def __init__(self, file: PathOrFile, kind: str = "w", **options: Any):
        if kind == "x" and not hasattr(file, "write") and os.path.exists(file):
            raise FileExistsError(f"{file} already exists")
        self._file, self._kind, self._options = file, kind, options
        make_options(dict(options))  # unknown option names fail now, not on close
        self._spool = tempfile.SpooledTemporaryFile(max_size=SPOOL)
        self._failed = False

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        from dulzip.api import as_bytes
        data = as_bytes(data)
        self._spool.write(data)
        return len(data)

    def __exit__(self, kind, value, tb):
        self._failed = kind is not None
        return super().__exit__(kind, value, tb)

    def close(self) -> None:
        if self.closed:
            return
        try:
            if not self._failed:
                self._spool.seek(0)
                target = self._file
                if self._kind == "x" and not hasattr(target, "write"):
                    target = _Exclusive(target)
                compress_file(self._spool, target, **self._options)
        finally:
            self._spool.close()
            super().close()


class _Exclusive:
    """A path to create, refused if it exists when published (mode ``x``)."""

    def __init__(self, path):
        self.path = path


class _reader:
    """A binary file object to read: ``src`` itself (left open), or a path opened (and closed)."""

    def __init__(self, src: PathOrFile):
        self.src, self.f = src, None

    def __enter__(self):
        if hasattr(self.src, "read"):
            return self.src
        self.f = builtins.open(self.src, "rb")
        return self.f

    def __exit__(self, *exc):
        if self.f is not None:
            self.f.close()


class _writer:
    """A binary file object to write: ``dst`` itself (left open), or a path written whole or
    not at all (dulzip.outfile.atomic_output: replaced if it exists, unless mode ``x``)."""

    def __init__(self, dst):
        self.dst, self.cm = dst, None

    def __enter__(self):
        if hasattr(self.dst, "write"):
            return self.dst
        from pathlib import Path

        from dulzip.outfile import atomic_output
        exclusive = isinstance(self.dst, _Exclusive)
        path = Path(self.dst.path if exclusive else self.dst)
        self.cm = atomic_output(path, force=not exclusive)
        return self.cm.__enter__()

    def __exit__(self, *exc):
        if self.cm is not None:
            return self.cm.__exit__(*exc)


class _Chain(io.RawIOBase):
    """``head`` (already read) and then the rest of ``f``, as one readable file."""

    def __init__(self, head: bytes, f):
        self.head, self.f = head, f

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.head:
            out = self.head if n < 0 else self.head[:n]
            self.head = self.head[len(out):]
            return out
        return self.f.read(n)
