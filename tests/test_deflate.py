"""Deflate streams as blocks and tokens (formats/deflate.py) and their tokens coded from the
data (formats/deflate_tokens.py): any valid stream comes back bit for bit, a damaged
description is refused, and PNGs whose stream zlib does not reproduce are byte-identical by
default."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest

from dulzip import api
from dulzip.errors import CorruptDataError, DulzipError
from dulzip.formats import deflate, deflate_tokens, png
from dulzip.options import Options


def _data(seed: int, n: int = 20000) -> bytes:
    """Filtered-scanline-like bytes: small values, repeats near and far, some noise."""
    rng = np.random.default_rng(seed)
    parts, total = [], 0
    while total < n:
        kind = rng.integers(0, 3)
        if kind == 0:
            part = bytes(rng.integers(0, 6, int(rng.integers(1, 300)), dtype=np.uint8))
        elif kind == 1 and parts:
            part = parts[int(rng.integers(0, len(parts)))][:int(rng.integers(3, 400))]
        else:
            part = bytes(rng.integers(0, 256, int(rng.integers(1, 50)), dtype=np.uint8))
        parts.append(part)
        total += len(part)
    return b"".join(parts)[:n]


def _zlib(data: bytes, level=6, wbits=15, mem=8, strategy=zlib.Z_DEFAULT_STRATEGY, flush_at=None) -> bytes:
    c = zlib.compressobj(level, zlib.DEFLATED, wbits, mem, strategy)
    if flush_at is None:
        return c.compress(data) + c.flush()
    return c.compress(data[:flush_at]) + c.flush(zlib.Z_FULL_FLUSH) + c.compress(data[flush_at:]) + c.flush()


def _random_tokens(d: bytes, seed: int, far: bool = False):
    """A valid tokenization no zlib setting makes: matches of random lengths at random matching
    distances (the farthest in the window where ``far``), literals between."""
    rng = np.random.default_rng(seed)
    a = np.frombuffer(d, dtype=np.uint8)
    length, dist, i = [], [], 0
    while i < len(d):
        ln = 1
        if i >= 1 and i + 3 <= len(d) and rng.random() < 0.6:
            cands = [p for p in range(max(0, i - (32768 if far else 2000)), i)
                     if a[p] == a[i] and a[p + 1] == a[i + 1] and a[p + 2] == a[i + 2]]
            if cands:
                p = cands[0] if far else cands[int(rng.integers(0, len(cands)))]
                m = 3
                while m < 258 and i + m < len(d) and a[p + m] == a[i + m]:
                    m += 1
                ln = int(rng.integers(3, m + 1))
                length.append(ln)
                dist.append(i - p)
        if ln == 1:
            length.append(1)
            dist.append(0)
        i += ln
    return np.array(length, dtype=np.int32), np.array(dist, dtype=np.int32)


def _blocks_of(length: np.ndarray, types: list[int], seed: int) -> deflate.Blocks:
    rng = np.random.default_rng(seed)
    n_tok = len(length)
    cuts = sorted(int(x) for x in rng.integers(0, n_tok + 1, len(types) - 1))
    bounds = list(zip([0] + cuts, cuts + [n_tok]))
    return deflate.Blocks(b"\x78\xda", types, [b - a for a, b in bounds], [int(length[a:b].sum()) for a, b in bounds],
                          [], [int(rng.integers(0, 128)) for t in types if t == 0], int(rng.integers(0, 128)))


@pytest.mark.parametrize("params", [dict(level=6), dict(level=9, mem=9), dict(level=1), dict(level=0),
                                    dict(level=9, strategy=zlib.Z_FIXED), dict(level=9, strategy=zlib.Z_RLE),
                                    dict(level=5, strategy=zlib.Z_HUFFMAN_ONLY), dict(level=9, wbits=9),
                                    dict(level=6, flush_at=7000)])
def test_zlib_streams_come_back_bit_for_bit(params):
    data = _data(1)
    stream = _zlib(data, **params)
    info, length, dist = deflate.parse(stream, len(data))
    assert int(length.sum()) == len(data)
    assert deflate.write(data, info, length, dist, len(stream)) == stream
    assert deflate.Blocks.unpack(info.pack()) == info
    side = deflate_tokens.describe(stream, data)
    assert side is not None and deflate_tokens.recreate(*side, data, 2 * len(data)) == stream


@pytest.mark.parametrize("seed,far", [(0, False), (1, False), (2, True)])
def test_any_valid_tokens_come_back(seed, far):
    """Tokens no zlib chooses (random lengths and distances, far ones the chains miss), in fixed
    and stored blocks with arbitrary padding bits: described and re-created exactly."""
    data = _data(seed, 6000)
    length, dist = _random_tokens(data, seed, far)
    stored = np.flatnonzero(length == 1)[:3]  # stored blocks must hold literals only: cut around some
    info = _blocks_of(length, [deflate.FIXED, deflate.FIXED, deflate.FIXED], seed)
    stream = deflate.write(data, info, length, dist, 3 * len(data))
    assert zlib.decompress(stream) == data
    assert png.zlib_search(data, stream) is None
    side = deflate_tokens.describe(stream, data)
    assert side is not None and deflate_tokens.recreate(*side, data, 3 * len(data)) == stream
    # a stored block between two fixed ones, with nonzero padding bits
    a, b = int(stored[0]), int(stored[0]) + 1
    info = deflate.Blocks(b"\x78\x01", [deflate.FIXED, deflate.STORED, deflate.FIXED], [a, b - a, len(length) - b],
                          [int(length[:a].sum()), b - a, int(length[b:].sum())], [], [5], 3)
    stream = deflate.write(data, info, length, dist, 3 * len(data))
    assert zlib.decompress(stream) == data
    parsed = deflate.parse(stream, len(data))
    assert (parsed[0].types, parsed[0].ntokens) == (info.types, info.ntokens)
    side = deflate_tokens.describe(stream, data)
    assert deflate_tokens.recreate(*side, data, 3 * len(data)) == stream


def _nearest_by_scan(d: np.ndarray, i: int) -> dict[int, int]:
    """Every match length at i (3 .. 258, not past the end) and its nearest distance in the
    window, by comparing i with every earlier position."""
    lim = min(258, len(d) - i)
    ps = np.arange(max(0, i - deflate_tokens.WINDOW), i)
    lcp = np.zeros(len(ps), dtype=np.int64)
    alive = np.ones(len(ps), dtype=bool)
    for k in range(lim):
        alive &= d[ps + k] == d[i + k]
        lcp += alive
        if not alive.any():
            break
    return {ln: int(i - ps[lcp >= ln].max()) for ln in range(3, int(lcp.max(initial=0)) + 1)}


@pytest.mark.parametrize("seed", range(4))
def test_match_trees_give_every_lengths_nearest_match(seed):
    """Version 2's parse takes each position's matches from binary match trees: exactly the
    nearest distance for every length, as a scan of the whole window gives (runs, repeated
    rows, few symbols, block by block)."""
    rng = np.random.default_rng(seed)
    n = 700
    d = rng.integers(0, 1 + seed, n, dtype=np.uint8)
    if seed % 2:
        d = np.ascontiguousarray(np.repeat(d[:n // 6], 6)[:n])
    d[300:420] = 7  # a run
    d[500:560] = d[100:160]  # a far repeat
    left, right = np.full(n, -1, np.int32), np.full(n, -1, np.int32)
    head = np.full(1 << deflate_tokens.HASH_BITS, -1, np.int32)
    moff = np.zeros(n + 1, np.int32)
    mlen, mdist = np.zeros(4, np.int32), np.zeros(4, np.int32)
    for s, e in ((0, 250), (250, 251), (251, n)):
        _, nm, mlen, mdist = deflate_tokens._tree_matches(d, left, right, head, s, e, 1 << 20, mlen, mdist, moff, 0)
        moff[e - s] = nm
        for i in range(s, e):
            got, last = {}, 2
            for k in range(moff[i - s], moff[i - s + 1]):
                assert mlen[k] > last
                got.update({ln: int(mdist[k]) for ln in range(last + 1, int(mlen[k]) + 1)})
                last = int(mlen[k])
            assert got == _nearest_by_scan(d, i), i


def test_match_pairs_are_bounded_and_valid_where_a_block_has_too_many():
    """Runs of one byte of every length before a long one: the long run's first positions have
    a nearest match for nearly every length (hundreds of pairs). A block keeps at most
    PAIRS_PER_BYTE a byte (and one more a position), every pair a real match, and such data
    still comes back bit for bit."""
    d = np.frombuffer(b"".join(bytes([0]) * k + bytes([1 + k % 7]) for k in range(1, 260)) + bytes(600), np.uint8)
    n = len(d)
    s, e = n - 600, n - 590  # a block of 10 bytes at the long run's start
    left, right = np.full(n, -1, np.int32), np.full(n, -1, np.int32)
    head = np.full(1 << deflate_tokens.HASH_BITS, -1, np.int32)
    moff = np.zeros(n + 1, np.int32)
    mlen, mdist = np.zeros(4, np.int32), np.zeros(4, np.int32)
    _, nm, mlen, mdist = deflate_tokens._tree_matches(d, left, right, head, 0, s, 256, mlen, mdist, moff, 0)
    assert max(np.diff(moff[:s + 1])) > 100  # positions with more pairs than the budget allows a byte
    _, nm, mlen, mdist = deflate_tokens._tree_matches(d, left, right, head, s, e, 256, mlen, mdist, moff, 0)
    assert nm <= (deflate_tokens.PAIRS_PER_BYTE + 1) * (e - s)
    moff[e - s] = nm
    for i in range(s, e):
        for k in range(moff[i - s], moff[i - s + 1]):
            ln, dd = int(mlen[k]), int(mdist[k])
            assert 0 < dd <= i and np.array_equal(d[i - dd:i - dd + ln], d[i:i + ln])
    data = d.tobytes()
    length, dist = _random_tokens(data, 8)
    info = _blocks_of(length, [deflate.FIXED] * 6, 8)
    stream = deflate.write(data, info, length, dist, 3 * len(data))
    side = deflate_tokens.describe(stream, data)
    assert side is not None and deflate_tokens.recreate(*side, data, 3 * len(data)) == stream


def test_version_1_tokens_still_decode():
    """Streams of the first token coding (no ties, chain walks) decode as they did."""
    data = _data(5, 6000)
    length, dist = _random_tokens(data, 5)
    info = _blocks_of(length, [deflate.FIXED, deflate.FIXED], 5)
    stream = deflate.write(data, info, length, dist, 3 * len(data))
    d = np.frombuffer(data, dtype=np.uint8)
    v1 = bytes([1]) + deflate_tokens.encode(d, info, length, dist, version=1)
    assert deflate_tokens.recreate(info.pack(), v1, data, 3 * len(data)) == stream
    assert deflate_tokens.describe(stream, data)[1][0] == deflate_tokens.VERSION == 2
    with pytest.raises(ValueError):
        deflate_tokens.recreate(info.pack(), bytes([3]) + v1[1:], data, 3 * len(data))


def test_damaged_descriptions_are_refused():
    data = _data(3, 8000)
    length, dist = _random_tokens(data, 3)
    info = _blocks_of(length, [deflate.FIXED, deflate.FIXED], 3)
    stream = deflate.write(data, info, length, dist, 3 * len(data))
    blocks, tokens = deflate_tokens.describe(stream, data)
    rng = np.random.default_rng(0)
    refused = 0
    for trial in range(60):
        b, t = bytearray(blocks), bytearray(tokens)
        target = t if trial % 3 else b
        k = int(rng.integers(0, len(target)))
        if trial % 5 == 4:
            del target[k:]
        else:
            target[k] ^= 1 << int(rng.integers(0, 8))
        try:  # never anything else (an IndexError, a crash in njit code)
            out = deflate_tokens.recreate(bytes(b), bytes(t), data, 3 * len(data))
        except (ValueError, CorruptDataError):
            refused += 1
            continue
        assert isinstance(out, bytes)  # a stream the container's checksum then refuses (or a masked bit)
    assert refused >= 40


def test_blocks_unpack_refuses_garbage():
    for blob in (b"", b"\x78", b"\x78\x01\x00\x00", b"\x78\x01\x01\x03\x05\x05", b"\x78\x01\x01\x01\x05\x04\x00",
                 b"\x78\x01\x01\x02\x05\x05\x90"):
        with pytest.raises(ValueError):
            deflate.Blocks.unpack(blob)


def test_zlib_search_reads_the_window_and_level_from_the_header():
    data = _data(4)
    for params in ((9, 8, zlib.Z_RLE, 10), (6, 9, zlib.Z_HUFFMAN_ONLY), (3, 4, zlib.Z_FILTERED)):
        level, mem, strategy = params[:3]
        stream = _zlib(data, level, params[3] if len(params) > 3 else 15, mem, strategy)
        found = png.zlib_search(data, stream)
        assert found is not None and png._deflate(data, found) == stream


def _png_with_stream(img: np.ndarray, make_stream) -> bytes:
    h, w, c = img.shape
    raw = png.filter_rows(img.reshape(h, w * c), bytes([1, 2, 4, 0] * h)[:h], c)
    stream = make_stream(raw)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, {1: 0, 3: 2, 4: 6}[c], 0, 0, 0)
    half = len(stream) // 2
    return b"".join([png.SIGNATURE, png._chunk(b"IHDR", ihdr), png._chunk(b"IDAT", stream[:half]),
                     png._chunk(b"IDAT", stream[half:]), png._chunk(b"IEND", b"")])


def _non_zlib_stream(raw: bytes) -> bytes:
    length, dist = _random_tokens(raw, 7)
    info = _blocks_of(length, [deflate.FIXED, deflate.FIXED], 7)
    return deflate.write(raw, info, length, dist, 3 * len(raw))


@pytest.mark.parametrize("maker", [_non_zlib_stream, lambda raw: _zlib(raw, flush_at=len(raw) // 3)])
def test_png_whose_stream_zlib_does_not_make_is_byte_identical_by_default(tiny_models, maker):
    from tests.conftest import photo
    data = _png_with_stream(photo(14, 11), maker)
    opts = Options(fallback=False, tile=16)
    blob = api.compress(data, opts)
    h = api.describe(blob)
    assert h["kind"] == "png" and h["exact"] is True and h["extras"]["zlib"] is None
    assert {"png.deflate", "png.tokens"} <= set(h.get("inline", {})) | {s["name"] for s in h["streams"]}
    assert api.decompress(blob) == data
    from dulzip.cli import describe_lines
    assert "re-created from its description" in "\n".join(describe_lines("x.png.dlz", blob))
    # --reencode: the same pixels, a fresh zlib stream
    blob = api.compress(data, Options(fallback=False, tile=16, exact=False))
    assert api.describe(blob)["exact"] is False
    out = api.decompress(blob)
    from PIL import Image
    assert out != data and np.array_equal(np.asarray(Image.open(io.BytesIO(out))),
                                          np.asarray(Image.open(io.BytesIO(data))))


def test_header_needs_both_side_streams_and_no_zlib_settings(tiny_models):
    from dulzip import container, schema
    from tests.conftest import photo
    data = _png_with_stream(photo(9, 8), _non_zlib_stream)
    c = container.unpack(api.compress(data, Options(fallback=False, tile=16)))
    h = c.header
    schema.validate(h)
    bad = {**h, "extras": {**h["extras"], "zlib": [6, 8, 0]}}
    with pytest.raises(DulzipError):
        schema.validate(bad)
    inline = {k: v for k, v in h.get("inline", {}).items() if k != "png.tokens"}
    streams = [s for s in h["streams"] if s["name"] != "png.tokens"]
    with pytest.raises(DulzipError):
        schema.validate({**h, "inline": inline, "streams": streams})
    # a decode's memory bound counts the re-creation's tables, per byte of the scanlines
    lay = h["layout"]
    extra = schema.decode_memory(h) - schema.decode_memory({**h, "inline": inline, "streams": streams})
    assert extra == schema.DESCRIBED * lay["height"] * (lay["width"] * lay["channels"] + 1) > 0
