"""dulzip: lossless compression with exact-integer neural models and a range coder.

The library in four calls (a file made by one is read by any other, and by the ``dulzip``
command)::

    blob = dulzip.compress(data)                 # any bytes-like object -> .dlz bytes
    data = dulzip.decompress(blob)
    dulzip.compress_file("photo.png", "photo.png.dlz")      # paths or binary file objects
    with dulzip.open("notes.txt.dlz", "wt") as f: ...       # as gzip.open

Options are :class:`dulzip.Options` fields as keywords (``model``, ``level``, ``threads``,
``max_memory``...). Errors are :class:`DulzipError` subclasses (:class:`FormatError`,
:class:`CorruptDataError`, :class:`ModelMismatchError`, :class:`UsageError`); a model that is not
installed or gave way to zstd is a :class:`DulzipWarning`. Importing dulzip is cheap: torch and
the models load when an input needs them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dulzip.errors import (CorruptDataError, DulzipError, DulzipWarning, FormatError, ModelMismatchError,
                           UsageError)

__version__ = "0.1.0"

if TYPE_CHECKING:
    from dulzip.api import Options


def compress(data, **options: Any) -> bytes:
    """Compress a bytes-like object to a .dlz container (options: :class:`Options` fields)."""
    from dulzip.api import compress as _compress
    return _compress(data, _opts(options))


def decompress(blob, **options: Any) -> bytes:
    """Restore the original bytes from a .dlz container (any bytes-like object); raises a
    :class:`DulzipError` for anything but the original, byte for byte."""
    from dulzip.api import decompress as _decompress
    return _decompress(blob, _opts(options))


def _opts(options: dict) -> Options:
    from dulzip.api import make_options
    return make_options(options)


def __getattr__(name: str):  # the heavier parts on first use (start-up)
    if name == "Options":
        from dulzip.api import Options
        return Options
    if name in ("open", "compress_file", "decompress_file"):
        from dulzip import dlzfile
        return getattr(dlzfile, name)
    raise AttributeError(f"module 'dulzip' has no attribute {name!r}")


__all__ = ["compress", "decompress", "open", "compress_file", "decompress_file", "Options", "DulzipError",
           "FormatError", "CorruptDataError", "ModelMismatchError", "UsageError", "DulzipWarning", "__version__"]
