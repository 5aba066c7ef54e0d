"""The range coder: the only module that imports constriction.

Tables come in as integer weights (rows of any positive total); constriction gets them as
float64 (exact for integers below 2**53) and normalizes them deterministically, with
``perfect=False`` on both sides.

A damaged or hostile stream must end as a CorruptDataError, not run on: once a decoder has read
every word of its stream, a valid stream can only hold a few more symbols (their information
fits in the coder's 64-bit state: at most 34 bits were measured). The decoder counts the
information of what it decodes from then on and stops above TAIL_BITS, so decoding garbage
costs work in proportion to the payload, not to the size the header claims.
"""
from __future__ import annotations

import constriction
import numpy as np

from dulzip.errors import CorruptDataError

_FAMILY = constriction.stream.model.Categorical(perfect=False)
TAIL_BITS = 256.0  # information a valid stream can carry after its last word is read (measured: <= 34)


def _probs(pmf) -> np.ndarray:
    return np.ascontiguousarray(pmf, dtype=np.float64)


class Table:
    """One fixed integer table for many symbols (built once, then used for any number of them)."""

    def __init__(self, weights) -> None:
        self.size = len(weights)
        p = _probs(weights)
        self.model = constriction.stream.model.Categorical(p, perfect=False)
        self.bits = -np.log2(p / p.sum())  # information of each symbol (the tail budget only)


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
        self._tail = None  # information decoded since the last word was read (None: not yet)

    def decode(self, pmf) -> np.ndarray:
        p = _probs(pmf)
        if p.shape[0] == 0:
            return np.zeros(0, dtype=np.int64)
        out = np.asarray(self._call(_FAMILY, p), dtype=np.int64)
        if self._tail is not None:
            rows = np.arange(len(out))
            self._spend(float(-np.log2(p[rows, out] / p.sum(axis=1)).sum()))
        elif self._dec.maybe_exhausted():
            self._tail = 0.0
        return out

    def decode_iid(self, table: Table, n: int) -> np.ndarray:
        """n symbols that all have the same fixed table."""
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        out = np.asarray(self._call(table.model, n), dtype=np.int64)
        if self._tail is not None:
            self._spend(float(table.bits[out].sum()))
        elif self._dec.maybe_exhausted():
            self._tail = 0.0
        return out

    def _call(self, *args):
        try:
            return self._dec.decode(*args)
        except Exception as e:  # constriction's own checks (an assertion, a value error): damaged data
            raise CorruptDataError(f"a range-coded stream is damaged ({type(e).__name__})") from None

    def _spend(self, bits: float) -> None:
        self._tail += bits
        if self._tail > TAIL_BITS:
            raise CorruptDataError("a range-coded stream ends before its symbols do (damaged file)")
