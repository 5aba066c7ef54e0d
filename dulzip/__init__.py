"""dulzip: lossless compression with exact-integer neural models and a range coder."""
__version__ = "0.1.0"


def compress(data: bytes, **options) -> bytes:
    """Compress bytes to a .dlz container (see :class:`dulzip.api.Options`)."""
    from dulzip.api import Options, compress as _compress
    return _compress(data, Options(**options))


def decompress(blob: bytes, **options) -> bytes:
    """Restore the original bytes from a .dlz container."""
    from dulzip.api import Options, decompress as _decompress
    return _decompress(blob, Options(**options))


__all__ = ["compress", "decompress", "__version__"]
