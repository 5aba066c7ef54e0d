"""The compiled bit decoder reads what constriction's range encoder writes, symbol for symbol,
and ends damaged streams as constriction's decoder does (dulzip.coding.bitdecoder)."""
import numpy as np
import pytest

from dulzip.coding.bitdecoder import BitDecoder, _decode_many
from dulzip.coding.rangecoder import RangeDecoder, RangeEncoder
from dulzip.errors import CorruptDataError


def _encode(bits, p):
    enc = RangeEncoder()
    enc.encode(bits, np.stack([65536 - p, p], axis=1))
    return enc.finish()


@pytest.mark.parametrize("kind", ["any", "extremes", "likely", "unlikely", "empty"])
def test_decodes_what_the_range_encoder_wrote(kind):
    rng = np.random.default_rng(["any", "extremes", "likely", "unlikely", "empty"].index(kind))
    for _ in range(40):
        n = 0 if kind == "empty" else int(rng.integers(1, 4000))
        p = {"any": lambda: rng.integers(1, 65536, n), "extremes": lambda: np.where(rng.random(n) < .5, 1, 65535),
             "likely": lambda: rng.integers(60000, 65536, n), "unlikely": lambda: rng.integers(1, 50, n),
             "empty": lambda: np.zeros(0, dtype=np.int64)}[kind]()
        bits = (rng.integers(0, 65536, n) < p).astype(np.int64)
        if kind == "unlikely":  # the improbable decisions too
            bits = rng.integers(0, 2, n)
        data = _encode(bits, p)
        assert np.array_equal(BitDecoder(data).decode(p), bits)
        assert np.array_equal(RangeDecoder(data).decode(np.stack([65536 - p, p], axis=1)), bits)


def test_garbage_decodes_as_constriction_decodes_it_and_ends_in_an_error():
    """Random words: the same decisions as constriction's decoder, one at a time, until either
    stops; a long run of decisions from a short stream ends in CorruptDataError."""
    rng = np.random.default_rng(7)
    for trial in range(150):
        data = rng.integers(0, 256, 4 * int(rng.integers(0, 30)), dtype=np.uint8).tobytes()
        p = rng.integers(1, 65536, int(rng.integers(1, 3000)))
        ref = RangeDecoder(data)
        mine = BitDecoder(data)
        out = _decode_many(mine.state, mine.tail, mine.words, p)
        for i, b in enumerate(out):
            try:
                want = int(ref.decode(np.array([[65536 - p[i], p[i]]]))[0])
            except CorruptDataError:
                break
            if b < 0:
                break
            assert b == want, (trial, i)
    with pytest.raises(CorruptDataError):
        BitDecoder(b"\x12\x34\x56\x78").decode(np.full(100_000, 32768))


def test_refuses_a_stream_of_partial_words():
    with pytest.raises(CorruptDataError):
        BitDecoder(b"abc")
