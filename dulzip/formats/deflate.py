"""A zlib stream as its blocks and tokens, and back to the same bits.

Re-creating a PNG byte for byte needs its IDAT stream, and zlib reproduces the streams of only
the writers that used zlib itself with settings we can guess (:data:`dulzip.formats.png.ZLIB_SEARCH`).
Optimizers (optipng's trials, zopflipng, advpng, pngcrush), other zlib builds (zlib-ng,
Chromium's) and other libraries (libdeflate, miniz, Go's, Rust's) choose other matches and
other Huffman codes. Any deflate stream is, though, fully described by what its decoder reads:
per block its type, its header (a dynamic block's code lengths, as coded), a stored block's
padding bits, and its tokens (a literal, or a match of a length and a distance), then the
final padding bits. Given the data the stream decodes to, the tokens are mostly predictable
(:mod:`dulzip.formats.deflate_tokens` codes them as the differences from a match finder's
guess); the rest is kept here as it is (:class:`Blocks`). :func:`write` turns blocks and
tokens back into the stream's exact bits, or reports that it cannot (a damaged file).

Tokens are two int32 arrays over the stream: ``length`` (1 for a literal, 3..258 for a match)
and ``dist`` (0 for a literal). A stored block's bytes are literals there too.

Numba is imported here: only PNGs whose stream zlib cannot reproduce come this way.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
from numba import njit

STORED, FIXED, DYNAMIC = 0, 1, 2
LBASE = np.array([3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115,
                  131, 163, 195, 227, 258], dtype=np.int64)
LEXT = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0],
                dtype=np.int64)
DBASE = np.array([1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
                  2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577], dtype=np.int64)
DEXT = np.array([0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12,
                 13, 13], dtype=np.int64)
CL_ORDER = np.array([16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15], dtype=np.int64)
MAXBITS = 15
# block fields of the parser's table: type, first token, end token, header's first bit, its end bit,
# a stored block's padding bits (their value)
B_TYPE, B_T0, B_T1, B_H0, B_H1, B_PAD, N_BFIELDS = range(7)
ERR_DATA, ERR_UNREPRODUCIBLE, ERR_SPACE = -1, -2, -3


@dataclass
class Blocks:
    """What a deflate stream holds besides its tokens, kept as it is."""
    zhead: bytes  # the zlib header (2 bytes)
    types: list[int]  # per block: STORED, FIXED, DYNAMIC
    ntokens: list[int]  # per block: its tokens (a stored block: its bytes)
    nbytes: list[int]  # per block: the bytes its tokens make (so a parse of each block can be predicted first)
    headers: list[tuple[int, bytes]]  # per dynamic block: (bits, the header's bits packed LSB first)
    pads: list[int]  # per stored block: the value of the bits that align it to a byte
    final_pad: int  # the value of the bits after the last block, to the byte boundary

    def code_lengths(self) -> np.ndarray:
        """Each block's code lengths (literal/length codes, then distance codes from 288; zeros
        for a stored block), from its header (a fixed block's: the fixed codes); ValueError when
        a header is damaged."""
        out = np.zeros((len(self.types), 320), dtype=np.int64)
        hd = iter(self.headers)
        for b, t in enumerate(self.types):
            if t == FIXED:
                _fixed_lengths(out[b])
            elif t == DYNAMIC:
                nbits, bits = next(hd, (-1, b""))
                e, _, _ = _read_lengths(np.frombuffer(bits + b"\0\0\0\0", dtype=np.uint8), 0, out[b])
                if e != nbits:
                    raise ValueError("a deflate block's header is damaged")
        return out

    def pack(self) -> bytes:
        """As bytes: the zlib header, the block count, per block its type and tokens, the
        stored blocks' padding, the dynamic blocks' headers (bit count, bits), the final padding."""
        out = bytearray(self.zhead) + _varint(len(self.types))
        for t, n, m in zip(self.types, self.ntokens, self.nbytes):
            out += bytes([t]) + _varint(n) + _varint(m)
        out += bytes(self.pads)
        for nbits, bits in self.headers:
            out += _varint(nbits) + bits
        return bytes(out + bytes([self.final_pad]))

    @classmethod
    def unpack(cls, blob: bytes) -> Blocks:
        """Inverse of :meth:`pack`; ValueError when ``blob`` is not such a description."""
        pos = 2
        nb, pos = _read_varint(blob, pos)
        if nb < 1 or nb > len(blob):
            raise ValueError("the deflate blocks are damaged")
        types, ntokens, nbytes = [], [], []
        for _ in range(nb):
            if pos >= len(blob) or blob[pos] > DYNAMIC:
                raise ValueError("a deflate block has an invalid type")
            types.append(blob[pos])
            n, pos = _read_varint(blob, pos + 1)
            m, pos = _read_varint(blob, pos)
            if m < n or (types[-1] == STORED and m != n):
                raise ValueError("a deflate block's tokens do not fit its bytes")
            ntokens.append(n)
            nbytes.append(m)
        ns = types.count(STORED)
        pads = list(blob[pos:pos + ns])
        pos += ns
        headers = []
        for _ in range(types.count(DYNAMIC)):
            nbits, pos = _read_varint(blob, pos)
            nb8 = (nbits + 7) // 8
            if pos + nb8 > len(blob):
                raise ValueError("a deflate block's header is cut off")
            headers.append((nbits, bytes(blob[pos:pos + nb8])))
            pos += nb8
        if len(blob) != pos + 1 or len(pads) != ns:
            raise ValueError("the deflate blocks are damaged")
        return cls(bytes(blob[:2]), types, ntokens, nbytes, headers, pads, blob[pos])


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 128:
        out.append(n & 127 | 128)
        n >>= 7
    return bytes(out + bytes([n]))


def _read_varint(blob: bytes, pos: int) -> tuple[int, int]:
    v = shift = 0
    while True:
        if pos >= len(blob) or shift > 35:
            raise ValueError("the deflate blocks are cut off")
        b = blob[pos]
        v |= (b & 127) << shift
        pos += 1
        shift += 7
        if b < 128:
            return v, pos


# ---- bits --------------------------------------------------------------------------------------

@njit(cache=True, inline="always")
def _bits(src, pos, n):
    """n bits (LSB first) of src from bit pos; -1 past its end."""
    if pos + n > 8 * len(src):
        return -1
    v = 0
    for k in range(n):
        b = pos + k
        v |= ((src[b >> 3] >> (b & 7)) & 1) << k
    return v


@njit(cache=True)
def _counts(lens, nsym, count, symbol):
    """puff's canonical decoding tables (count per length, symbols in code order); False when a
    length is out of range or the lengths over-subscribe the code."""
    for k in range(MAXBITS + 1):
        count[k] = 0
    for s in range(nsym):
        if lens[s] < 0 or lens[s] > MAXBITS:
            return False
        count[lens[s]] += 1
    left = 1
    for k in range(1, MAXBITS + 1):
        left = 2 * left - count[k]
        if left < 0:
            return False
    offs = np.zeros(MAXBITS + 2, dtype=np.int64)
    for k in range(1, MAXBITS):
        offs[k + 1] = offs[k] + count[k]
    for s in range(nsym):
        if lens[s] != 0:
            symbol[offs[lens[s]]] = s
            offs[lens[s]] += 1
    return True


@njit(cache=True)
def _decode_sym(src, pos, count, symbol):
    """(symbol, bits read) of the Huffman code at bit pos; symbol -1 when invalid or cut off."""
    code = 0
    first = 0
    index = 0
    for k in range(1, MAXBITS + 1):
        b = _bits(src, pos + k - 1, 1)
        if b < 0:
            return -1, k
        code |= b
        c = count[k]
        if code - c < first:
            return symbol[index + code - first], k
        index += c
        first += c
        first <<= 1
        code <<= 1
    return -1, MAXBITS


@njit(cache=True)
def _read_lengths(src, pos, lens):
    """A dynamic block's header from bit pos: its code lengths into lens (literal/length codes in
    [0, 288), distance codes in [288, 320)); returns (end bit, nlit, ndist), end -1 when invalid."""
    for k in range(320):
        lens[k] = 0
    h = _bits(src, pos, 14)
    if h < 0:
        return -1, 0, 0
    nlit = (h & 31) + 257
    ndist = ((h >> 5) & 31) + 1
    ncl = (h >> 10) + 4
    pos += 14
    if nlit > 286 or ndist > 30:
        return -1, 0, 0
    cl = np.zeros(19, dtype=np.int64)
    for k in range(ncl):
        v = _bits(src, pos, 3)
        if v < 0:
            return -1, 0, 0
        cl[CL_ORDER[k]] = v
        pos += 3
    count = np.zeros(MAXBITS + 1, dtype=np.int64)
    symbol = np.zeros(320, dtype=np.int64)
    if not _counts(cl, 19, count, symbol):
        return -1, 0, 0
    both = np.zeros(nlit + ndist, dtype=np.int64)
    i = 0
    while i < nlit + ndist:
        s, nb = _decode_sym(src, pos, count, symbol)
        if s < 0:
            return -1, 0, 0
        pos += nb
        if s < 16:
            both[i] = s
            i += 1
            continue
        if s == 16:
            if i == 0:
                return -1, 0, 0
            v, rep, eb = both[i - 1], 3, 2
        elif s == 17:
            v, rep, eb = 0, 3, 3
        else:
            v, rep, eb = 0, 11, 7
        x = _bits(src, pos, eb)
        if x < 0:
            return -1, 0, 0
        pos += eb
        rep += x
        if i + rep > nlit + ndist:
            return -1, 0, 0
        for _ in range(rep):
            both[i] = v
            i += 1
    if both[256] == 0:
        return -1, 0, 0
    for k in range(nlit):
        lens[k] = both[k]
    for k in range(ndist):
        lens[288 + k] = both[nlit + k]
    return pos, nlit, ndist


@njit(cache=True)
def _fixed_lengths(lens):
    for k in range(320):
        lens[k] = 0
    for k in range(288):
        lens[k] = 8 if k < 144 else (9 if k < 256 else (7 if k < 280 else 8))
    for k in range(30):
        lens[288 + k] = 5


# ---- parsing ------------------------------------------------------------------------------------

@njit(cache=True)
def _inflate(src, start, n_out, length, dist, blocks):
    """Parse the deflate stream of src from byte start: tokens into length/dist, blocks into
    the block table. Returns (tokens, blocks, end bit, data length) or an error code in the
    first field (ERR_*): a stream this module cannot describe is one that goes the other way."""
    lens = np.zeros(320, dtype=np.int64)
    lc = np.zeros(MAXBITS + 1, dtype=np.int64)
    ls = np.zeros(320, dtype=np.int64)
    dc = np.zeros(MAXBITS + 1, dtype=np.int64)
    ds = np.zeros(320, dtype=np.int64)
    pos = 8 * start
    nt = 0
    nb = 0
    out = 0
    final = 0
    while final == 0:
        h = _bits(src, pos, 3)
        if h < 0:
            return ERR_DATA, 0, 0, 0
        if nb >= len(blocks):  # thousands of tiny blocks: not worth describing
            return ERR_UNREPRODUCIBLE, 0, 0, 0
        final = h & 1
        t = h >> 1
        pos += 3
        blocks[nb, B_TYPE] = t
        blocks[nb, B_T0] = nt
        blocks[nb, B_H0] = pos
        if t == STORED:
            pad = (8 - pos % 8) % 8
            blocks[nb, B_PAD] = _bits(src, pos, pad)
            pos += pad
            ln = _bits(src, pos, 16)
            nln = _bits(src, pos + 16, 16)
            if ln < 0 or nln < 0 or ln != (~nln & 0xFFFF) or out + ln > n_out or nt + ln > len(length):
                return ERR_DATA, 0, 0, 0
            pos += 32 + 8 * ln
            if pos > 8 * len(src):
                return ERR_DATA, 0, 0, 0
            for _ in range(ln):
                length[nt] = 1
                dist[nt] = 0
                nt += 1
            out += ln
            blocks[nb, B_H1] = pos
            blocks[nb, B_T1] = nt
            nb += 1
            continue
        if t == FIXED:
            _fixed_lengths(lens)
        elif t == DYNAMIC:
            pos, _, _ = _read_lengths(src, pos, lens)
            if pos < 0:
                return ERR_DATA, 0, 0, 0
        else:
            return ERR_DATA, 0, 0, 0
        blocks[nb, B_H1] = pos
        if not _counts(lens[:288], 288, lc, ls) or not _counts(lens[288:], 32, dc, ds):
            return ERR_DATA, 0, 0, 0
        while True:
            s, k = _decode_sym(src, pos, lc, ls)
            if s < 0:
                return ERR_DATA, 0, 0, 0
            pos += k
            if s == 256:
                break
            if nt >= len(length):
                return ERR_DATA, 0, 0, 0
            if s < 256:
                length[nt] = 1
                dist[nt] = 0
                nt += 1
                out += 1
                continue
            s -= 257
            if s >= 29:
                return ERR_DATA, 0, 0, 0
            x = _bits(src, pos, LEXT[s])
            if x < 0:
                return ERR_DATA, 0, 0, 0
            pos += LEXT[s]
            ln = LBASE[s] + x
            if ln == 258 and s != 28:  # 258 as code 284 with extra bits 31: valid, not written back
                return ERR_UNREPRODUCIBLE, 0, 0, 0
            d, k = _decode_sym(src, pos, dc, ds)
            if d < 0 or d >= 30:
                return ERR_DATA, 0, 0, 0
            pos += k
            x = _bits(src, pos, DEXT[d])
            if x < 0:
                return ERR_DATA, 0, 0, 0
            pos += DEXT[d]
            dd = DBASE[d] + x
            if dd > out or out + ln > n_out:
                return ERR_DATA, 0, 0, 0
            length[nt] = ln
            dist[nt] = dd
            nt += 1
            out += ln
        blocks[nb, B_T1] = nt
        nb += 1
    return nt, nb, pos, out


def parse(stream: bytes, n_out: int):
    """(Blocks, length, dist) of a zlib stream that decodes to n_out bytes, or None when this
    module cannot describe it (it then cannot be re-created from its data)."""
    if len(stream) < 6 or (stream[0] & 15) != 8 or (stream[0] >> 4) > 7 or \
            ((stream[0] << 8) | stream[1]) % 31 or stream[1] & 32:
        return None
    src = np.frombuffer(stream, dtype=np.uint8)
    length = np.zeros(n_out + 1, dtype=np.int32)
    dist = np.zeros(n_out + 1, dtype=np.int32)
    blocks = np.zeros((n_out // 64 + 1024, N_BFIELDS), dtype=np.int64)
    nt, nb, end, out = _inflate(src, 2, n_out, length, dist, blocks)
    if nt < 0 or out != n_out:
        return None
    if (end + 7) // 8 + 4 != len(stream):
        return None  # bytes between the deflate data and the checksum
    pad_bits = (8 - end % 8) % 8
    final_pad = int(_bits(src, end, pad_bits)) if pad_bits else 0
    blocks = blocks[:nb]
    types = [int(t) for t in blocks[:, B_TYPE]]
    bits = np.unpackbits(src, bitorder="little")
    headers = [(int(b[B_H1] - b[B_H0]), np.packbits(bits[b[B_H0]:b[B_H1]], bitorder="little").tobytes())
               for b in blocks if b[B_TYPE] == DYNAMIC]
    pads = [int(b[B_PAD]) for b in blocks if b[B_TYPE] == STORED]
    cum = np.concatenate([[0], np.cumsum(length[:nt], dtype=np.int64)])
    info = Blocks(bytes(stream[:2]), types, [int(b[B_T1] - b[B_T0]) for b in blocks],
                  [int(cum[b[B_T1]] - cum[b[B_T0]]) for b in blocks], headers, pads, final_pad)
    return info, length[:nt].copy(), dist[:nt].copy()


# ---- writing ------------------------------------------------------------------------------------

@njit(cache=True)
def length_symbols():
    """The length code (0..28, symbol 257 + it) of each match length 3..258 (index: the length)."""
    lsym = np.zeros(259, dtype=np.int64)
    for s in range(29):
        for v in range(LBASE[s], LBASE[s + 1] if s < 28 else 259):
            lsym[v] = s
    lsym[258] = 28
    return lsym


@njit(cache=True, inline="always")
def dist_symbol(d):
    """The distance code (0..29) of distance d (1..32768)."""
    ds = 0
    while ds < 29 and DBASE[ds + 1] <= d:
        ds += 1
    return ds


@njit(cache=True)
def _reverse_codes(lens, nsym, codes):
    """Canonical codes of the lengths, bit-reversed for LSB-first writing."""
    bl = np.zeros(MAXBITS + 1, dtype=np.int64)
    for s in range(nsym):
        bl[lens[s]] += 1
    bl[0] = 0
    nxt = np.zeros(MAXBITS + 2, dtype=np.int64)
    code = 0
    for k in range(1, MAXBITS + 1):
        code = (code + bl[k - 1]) << 1
        nxt[k] = code
    for s in range(nsym):
        ln = lens[s]
        if ln:
            c = nxt[ln]
            nxt[ln] += 1
            r = 0
            for _ in range(ln):
                r = (r << 1) | (c & 1)
                c >>= 1
            codes[s] = r


@njit(cache=True, inline="always")
def _flush(acc, nacc, out, o):
    """The whole bytes of the bit accumulator into out at o: (acc, nacc, o), o -1 when out is full."""
    while nacc >= 8:
        if o >= len(out):
            return acc, nacc, -1
        out[o] = acc & 255
        o += 1
        acc >>= 8
        nacc -= 8
    return acc, nacc, o


@njit(cache=True)
def _write(data, length, dist, types, ntok, nbytes, blens, hbits, hoff, hlen, pads, final_pad, out):
    """The deflate bits of the blocks (their code lengths: blens) and tokens into out; returns
    the bytes written or ERR_*."""
    codes = np.zeros(320, dtype=np.int64)
    lsym = length_symbols()
    acc = np.int64(0)
    nacc = 0
    o = 0
    t = 0
    pos = 0  # in data
    hd = 0
    sd = 0
    n = len(data)
    for b in range(len(types)):
        bt = types[b]
        if t + ntok[b] > len(length):
            return ERR_DATA
        made = 0
        for k in range(t, t + ntok[b]):
            made += length[k]
        if made != nbytes[b]:
            return ERR_DATA
        acc |= np.int64((1 if b == len(types) - 1 else 0) | (bt << 1)) << nacc
        nacc += 3
        if bt == STORED:
            pad = (8 - nacc % 8) % 8
            acc |= np.int64(pads[sd] & ((1 << pad) - 1)) << nacc
            sd += 1
            nacc += pad
            ln = ntok[b]
            if ln > 65535:
                return ERR_DATA
            acc |= np.int64(ln | ((~ln & 0xFFFF) << 16)) << nacc
            nacc += 32
            acc, nacc, o = _flush(acc, nacc, out, o)
            if o < 0:
                return ERR_SPACE
            if pos + ln > n or o + ln > len(out):
                return ERR_DATA
            for k in range(ln):
                if length[t + k] != 1:
                    return ERR_DATA
                out[o] = data[pos + k]
                o += 1
            pos += ln
            t += ntok[b]
            continue
        lens = blens[b]
        if bt == DYNAMIC:
            if hd >= len(hlen):
                return ERR_DATA
            for k in range(hlen[hd]):  # the header as it was
                bit = (hbits[hoff[hd] + (k >> 3)] >> (k & 7)) & 1
                acc |= np.int64(bit) << nacc
                nacc += 1
                if nacc >= 32:
                    acc, nacc, o = _flush(acc, nacc, out, o)
                    if o < 0:
                        return ERR_SPACE
            hd += 1
        _reverse_codes(lens, 288, codes)
        _reverse_codes(lens[288:], 32, codes[288:])
        for k in range(t, t + ntok[b] + 1):
            if k == t + ntok[b]:  # end of block
                sym = 256
                ln = 0
            else:
                ln = length[k]
                sym = data[pos] if ln == 1 else 257 + lsym[min(max(ln, 3), 258)]
                if pos >= n or ln < 1 or ln == 2 or ln > 258:
                    return ERR_DATA
            if lens[sym] == 0:
                return ERR_DATA
            acc |= codes[sym] << nacc
            nacc += lens[sym]
            if ln >= 3:
                s = sym - 257
                acc |= np.int64(ln - LBASE[s]) << nacc
                nacc += LEXT[s]
                d = dist[k]
                if d < 1 or d > pos or d > 32768 or pos + ln > n:
                    return ERR_DATA
                ds = dist_symbol(d)
                if lens[288 + ds] == 0:
                    return ERR_DATA
                acc |= codes[288 + ds] << nacc
                nacc += lens[288 + ds]
                acc |= np.int64(d - DBASE[ds]) << nacc
                nacc += DEXT[ds]
            pos += ln
            acc, nacc, o = _flush(acc, nacc, out, o)
            if o < 0:
                return ERR_SPACE
        t += ntok[b]
    if t != len(length) or pos != n:
        return ERR_DATA
    if nacc:
        acc |= np.int64(final_pad & ((1 << (8 - nacc)) - 1)) << nacc
        if o >= len(out):
            return ERR_SPACE
        out[o] = acc & 255
        o += 1
    return o


def write(data: bytes | np.ndarray, info: Blocks, length: np.ndarray, dist: np.ndarray, limit: int,
          blens: np.ndarray | None = None) -> bytes:
    """The zlib stream (header, deflate data, Adler-32) of the data as these blocks and tokens,
    of at most ``limit`` bytes; ValueError when they do not describe one (a damaged file).
    ``blens``: the blocks' code lengths where the caller has them (:meth:`Blocks.code_lengths`)."""
    d = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray)) else data
    hb = [h for _, h in info.headers]
    hoff = np.cumsum([0] + [len(h) for h in hb])[:-1].astype(np.int64) if hb else np.zeros(0, dtype=np.int64)
    hbits = np.frombuffer(b"".join(hb) + b"\0\0\0\0", dtype=np.uint8)
    hlen = np.array([n for n, _ in info.headers], dtype=np.int64)
    if not len(info.types) == len(info.ntokens) == len(info.nbytes) or sum(t == DYNAMIC for t in info.types) != len(info.headers) or \
            sum(t == STORED for t in info.types) != len(info.pads) or not info.types:
        raise ValueError("the deflate blocks do not add up")
    if any(t not in (STORED, FIXED, DYNAMIC) for t in info.types):
        raise ValueError("a deflate block has an invalid type")
    if blens is None:
        blens = info.code_lengths()
    out = np.zeros(max(limit, 1), dtype=np.uint8)
    o = _write(d, np.ascontiguousarray(length, dtype=np.int32), np.ascontiguousarray(dist, dtype=np.int32),
               np.array(info.types, dtype=np.int64), np.array(info.ntokens, dtype=np.int64),
               np.array(info.nbytes, dtype=np.int64), blens, hbits, hoff, hlen,
               np.array(info.pads, dtype=np.int64), info.final_pad, out)
    if o < 0:
        raise ValueError("the deflate tokens do not fit their data (damaged file)")
    return info.zhead + out[:o].tobytes() + zlib.adler32(bytes(d)).to_bytes(4, "big")
