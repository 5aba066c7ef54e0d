"""The range coder: the only module that imports constriction.

Tables come in as integer weights (rows of any positive total); constriction gets them as
float64 (exact for integers below 2**53) and normalizes them deterministically, with
``perfect=False`` on both sides.
"""
from __future__ import annotations

import constriction
import numpy as np

from dulzip.errors import CorruptDataError

_FAMILY = constriction.stream.model.Categorical(perfect=False)


def _probs(pmf) -> np.ndarray:
    return np.ascontiguousarray(pmf, dtype=np.float64)


class Table:
    """One fixed integer table for many symbols (built once, then used for any number of them)."""

    def __init__(self, weights) -> None:
        self.size = len(weights)
        self.model = constriction.stream.model.Categorical(_probs(weights), perfect=False)


class RangeEncoder:
    """Append symbols with their integer tables; ``finish()`` returns the bytes."""

    def __init__(self) -> None:
        self._enc = constriction.stream.queue.RangeEncoder()

    def encode(self, symbols, pmf) -> None:
        sym = np.ascontiguousarray(symbols, dtype=np.int32)
        if sym.size:
            self._enc.encode(sym, _FAMILY, _probs(pmf))

    def encode_iid(self, symbols, table: Table) -> None:
        """Symbols that all have the same fixed table."""
        sym = np.ascontiguousarray(symbols, dtype=np.int32)
        if sym.size:
            self._enc.encode(sym, table.model)

    def finish(self) -> bytes:
        return self._enc.get_compressed().astype("<u4").tobytes()


class RangeDecoder:
    """Decode symbols from bytes written by :class:`RangeEncoder`, table by table."""

    def __init__(self, data: bytes) -> None:
        if len(data) % 4:
            raise CorruptDataError("range-coded stream length is not a multiple of 4 bytes")
        words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
        self._dec = constriction.stream.queue.RangeDecoder(words)

    def decode(self, pmf) -> np.ndarray:
        p = _probs(pmf)
        if p.shape[0] == 0:
            return np.zeros(0, dtype=np.int64)
        return np.asarray(self._dec.decode(_FAMILY, p), dtype=np.int64)

    def decode_iid(self, table: Table, n: int) -> np.ndarray:
        """n symbols that all have the same fixed table."""
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        return np.asarray(self._dec.decode(table.model, n), dtype=np.int64)
