"""A deflate stream's tokens, coded as what a match finder over its data does not predict.

Whatever program wrote a deflate stream, its tokens are matches the data allows: the decoder,
which has the data (the PNG's filtered scanlines, decoded first), can list at each position
the earlier positions whose bytes match, as a writer's match finder does. So each token is
coded by the binary arithmetic coder of :mod:`dulzip.coding.binary` as its differences from
that list (as preflate and precomp do for deflate streams, with a simpler model):

- literal or match? in the context of the longest match found here (its length, bucketed)
  and whether the previous token was a literal and the longest match one position on is
  longer (a lazy matcher's reason for a literal);
- a match's length: the longest found? else shorter (by how much) or, where the match finder
  missed the writer's match, longer (its value);
- its distance: the rank of the match among the listed positions that match at least that
  long, nearest first (0 for zlib and most writers: the nearest of the longest), or, where the
  list lacks it, the distance itself.

The list is a hash chain over three-byte prefixes (HASH_BITS), walked nearest first for at
most ``chain`` positions within the 32 KiB window. Decoding walks the same chains, so both
sides agree on every list, and a damaged stream can only make a token the data does not
allow, which is refused (CorruptDataError).

Each decision's probability is the mean of a fast and a slow adaptive estimate, as in
:mod:`dulzip.codecs.lpc`. A stored block's bytes are literals and cost nothing.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from dulzip.coding import binary
from dulzip.errors import CorruptDataError
from dulzip.formats import deflate
from dulzip.formats.deflate import STORED

HASH_BITS = 16
WINDOW = 32768
CHAIN = 4096  # positions listed at most per token
LONG_CHAIN = 16384  # where the lists miss many of the writer's matches (long runs: zopfli's, 7-Zip's)
VERSION = 1  # of this model: the first byte of its streams, then log2 of its chain
ENC, DEC = 0, 1
N_LB = 10  # buckets of the longest match's length
N_GAIN = 8  # buckets of what the longest match saves over literals, in the block's own codes
# context rows: is-match (N_LB x 2 x 4 x N_GAIN), length == longest (N_LB), shorter? (N_LB),
# shortfall tree (256 x N_LB), length tree (256), escape (1), rank length unary (N_LB x 17), rank bits (17 x 17),
# distance bits (15)
P_MATCH = 0
P_EQ = P_MATCH + N_LB * 8 * N_GAIN
P_SHORT = P_EQ + N_LB * 2
P_SHORTFALL = P_SHORT + N_LB
P_LEN = P_SHORTFALL + 256 * N_LB
P_ESC = P_LEN + 256
P_RANKLEN = P_ESC + 1
P_RANKBITS = P_RANKLEN + N_LB * 17
P_DIST = P_RANKBITS + 17 * 17
N_P = P_DIST + 32
MAX_BYTES_PER_TOKEN = 80  # a token's decisions at most (about 60, each at most 10 bits) in bytes


@njit(cache=True, inline="always")
def _bucket(ln):
    if ln < 3:
        return 0
    if ln < 7:
        return ln - 2  # 1..4
    if ln < 9:
        return 5
    if ln < 17:
        return 6
    if ln < 33:
        return 7
    if ln < 258:
        return 8
    return 9


@njit(cache=True, inline="always")
def _hash(d, i):
    v = np.int64(d[i]) | (np.int64(d[i + 1]) << 8) | (np.int64(d[i + 2]) << 16)
    return ((v * 2654435761) >> 16) & ((1 << HASH_BITS) - 1)


@njit(cache=True, inline="always")
def _match_len(d, p, i, cap):
    k = 0
    while k < cap and d[p + k] == d[i + k]:
        k += 1
    return k


@njit(cache=True, inline="always")
def _first(d, head, prev, i):
    """The nearest listed position before i with i's hash (-1: none)."""
    p = head[_hash(d, i)]
    if p >= i:  # i itself, listed for a look-ahead
        p = prev[p]
    return p


@njit(cache=True)
def _longest(d, head, prev, i, n, chain):
    """(length, distance) of the longest match at i among the chain's first positions, the
    nearest of them; (0, 0) when none reaches 3."""
    if i + 3 > n:
        return 0, 0
    cap = min(258, n - i)
    best = 0
    bd = 0
    p = _first(d, head, prev, i)
    c = 0
    while p >= 0 and i - p <= WINDOW and c < chain:
        if best >= cap or d[p + best] != d[i + best]:  # cannot be longer (zlib's scan_end test)
            p = prev[p]
            c += 1
            continue
        m = _match_len(d, p, i, cap)
        if m > best:
            best = m
            bd = i - p
            if m == cap:
                break
        p = prev[p]
        c += 1
    return (best, bd) if best >= 3 else (0, 0)


@njit(cache=True, inline="always")
def _code_len(lens, s):
    """Bits of symbol s in the block's code (a symbol it lacks: as good as impossible)."""
    return lens[s] if lens[s] > 0 else 24


@njit(cache=True)
def _gain(d, i, ln, dd, lens, lsym):
    """The bits a match of ln at distance dd saves over ln literals, in the block's codes: an
    optimal parser (zopfli, 7-Zip) chooses by such costs."""
    lit = 0
    for k in range(ln):
        lit += _code_len(lens, d[i + k])
    s = lsym[ln]
    ds = 0
    while ds < 29 and deflate.DBASE[ds + 1] <= dd:
        ds += 1
    return lit - (_code_len(lens, 257 + s) + deflate.LEXT[s] + _code_len(lens, 288 + ds) + deflate.DEXT[ds])


@njit(cache=True, inline="always")
def _gain_bucket(g):
    if g < 0:
        return 0 if g < -3 else 1
    if g < 2:
        return 2
    if g < 4:
        return 3
    if g < 6:
        return 4
    if g < 9:
        return 5
    return 6 if g < 15 else 7


@njit(cache=True, inline="always")
def _bit(probs, i, bit, st, out, data, end, mode):
    j = i + N_P
    p = min(max((probs[i] + probs[j]) >> 1, 64), 65472)
    if mode == ENC:
        binary.encode_bit(st, 0, out, bit, p)
    else:
        bit = binary.decode_bit(st, 0, data, end, p)
    probs[i] += ((bit << 16) - probs[i]) >> 4
    probs[j] += ((bit << 16) - probs[j]) >> 7
    return bit


@njit(cache=True)
def _tree(probs, base, nbits, v, st, out, data, end, mode):
    """v in [0, 2^nbits) by its bits, high first, each in the context of the bits above it."""
    node = 1
    for k in range(nbits - 1, -1, -1):
        b = _bit(probs, base + node, (v >> k) & 1, st, out, data, end, mode)
        node = 2 * node + b
    return node - (1 << nbits)


@njit(cache=True)
def _run(d, types, ntok, blens, length, dist, chain, st, out, data, end, mode):
    """Code (ENC: from length/dist) or decode (DEC: into them) the tokens. Returns how many
    matches the chains missed, or -1 when the decoded tokens do not fit the data or the stream
    ends early (a damaged file)."""
    n = len(d)
    probs = np.full(2 * N_P, 32768, dtype=np.int64)
    head = np.full(1 << HASH_BITS, -1, dtype=np.int32)
    prev = np.full(max(n, 1), -1, dtype=np.int32)
    ins = 0  # positions below are in the chains
    i = 0
    t = 0
    lit_before = 1
    missed = 0
    lsym = np.zeros(259, dtype=np.int64)
    for s in range(29):
        for v in range(deflate.LBASE[s], deflate.LBASE[s + 1] if s < 28 else 259):
            lsym[v] = s
    lsym[258] = 28
    for b in range(len(types)):
        lens = blens[b]
        for _ in range(ntok[b]):
            if i >= n:
                return -1
            if types[b] == STORED:
                if mode == DEC:
                    length[t] = 1
                    dist[t] = 0
                elif length[t] != 1:
                    return -1
                ln = 1
            else:
                while ins < i:
                    if ins + 3 <= n:
                        h = _hash(d, ins)
                        prev[ins] = head[h]
                        head[h] = ins
                    ins += 1
                lmax, ldist = _longest(d, head, prev, i, n, chain)
                lb = _bucket(lmax)
                ln = length[t] if mode == ENC else 1
                if i + 3 > n:
                    is_match = 0  # no room for a match
                    if ln != 1:
                        return -1
                else:
                    # a lazy matcher's reason for a literal: a longer match one position on
                    # and an optimal parser's: a match one position on that saves more
                    lazy = 0
                    g = 0
                    if lmax >= 3:
                        g = _gain(d, i, lmax, ldist, lens, lsym)
                    if lmax >= 3 and i + 4 <= n:
                        # position i joins the chains for the look-ahead (it would next anyway)
                        h = _hash(d, i)
                        prev[i] = head[h]
                        head[h] = i
                        ins = i + 1
                        l1, d1 = _longest(d, head, prev, i + 1, n, chain)
                        lazy = 1
                        if l1 > lmax:
                            lazy = 2
                        elif l1 >= 3 and _gain(d, i + 1, l1, d1, lens, lsym) > g:
                            lazy = 3
                    ctx = P_MATCH + ((lb * 2 + lit_before) * 4 + lazy) * N_GAIN + _gain_bucket(g)
                    is_match = _bit(probs, ctx, 1 if ln >= 3 else 0, st, out, data, end, mode)
                if is_match:
                    # the length
                    if lmax >= 3:
                        ok = 1 if lens[257 + lsym[lmax]] > 0 else 0  # can the block code the longest's length?
                        eq = _bit(probs, P_EQ + lb * 2 + ok, 1 if ln == lmax else 0, st, out, data, end, mode)
                    else:
                        eq = 0
                    if eq:
                        ln = lmax
                    else:
                        short = 0
                        if lmax >= 4:
                            short = _bit(probs, P_SHORT + lb, 1 if ln < lmax else 0, st, out, data, end, mode)
                        if short:  # ln in [3, lmax - 1]
                            ln = lmax - 1 - _tree(probs, P_SHORTFALL + 256 * lb, 8, lmax - 1 - ln, st, out, data, end, mode)
                        else:  # a match the chains missed (or none listed): its length as it is
                            ln = 3 + _tree(probs, P_LEN, 8, ln - 3, st, out, data, end, mode)
                    if mode == DEC and (ln < 3 or ln > 258 or i + ln > n):
                        return -1
                    # the distance: its rank among the positions matching at least ln
                    dd = dist[t] if mode == ENC else 0
                    rank = 0
                    found = 0
                    if mode == ENC:
                        p = _first(d, head, prev, i)
                        c = 0
                        while p >= 0 and i - p <= WINDOW and c < chain:
                            if i - p == dd:
                                found = 1
                                break
                            if d[p + ln - 1] == d[i + ln - 1] and _match_len(d, p, i, ln) == ln:
                                rank += 1
                            p = prev[p]
                            c += 1
                    esc = _bit(probs, P_ESC, 1 - found, st, out, data, end, mode)
                    if esc:
                        missed += 1
                        dd = 1
                        for j in range(14, -1, -1):
                            dd += _bit(probs, P_DIST + j, ((dd - 1 if mode == DEC else dist[t] - 1) >> j) & 1,
                                       st, out, data, end, mode) << j
                        if mode == DEC and (dd > i or dd > WINDOW):
                            return -1
                        if mode == DEC and _match_len(d, i - dd, i, ln) != ln:
                            return -1
                    else:
                        r1 = rank + 1
                        nb = 0
                        while (r1 >> nb) > 1:
                            nb += 1
                        k = 0  # the bit length of rank + 1, unary (at most 16)
                        while k < 16 and _bit(probs, P_RANKLEN + lb * 17 + k, 1 if k < nb else 0,
                                              st, out, data, end, mode):
                            k += 1
                        v = 1
                        for j in range(k - 1, -1, -1):
                            v = 2 * v + _bit(probs, P_RANKBITS + k * 17 + j, (r1 >> j) & 1, st, out, data, end, mode)
                        if mode == DEC:
                            rank = v - 1
                            p = _first(d, head, prev, i)
                            c = 0
                            seen = 0
                            dd = 0
                            while p >= 0 and i - p <= WINDOW and c < chain:
                                if d[p + ln - 1] == d[i + ln - 1] and _match_len(d, p, i, ln) == ln:
                                    if seen == rank:
                                        dd = i - p
                                        break
                                    seen += 1
                                p = prev[p]
                                c += 1
                            if dd == 0:
                                return -1
                    if mode == DEC:
                        length[t] = ln
                        dist[t] = dd
                    lit_before = 0
                else:
                    ln = 1
                    lit_before = 1
                    if mode == DEC:
                        length[t] = 1
                        dist[t] = 0
                if mode == DEC and st[0, 4] > 0:
                    return -1
            i += ln
            t += 1
    if i != n:
        return -1
    return missed


def block_lengths(info: deflate.Blocks) -> np.ndarray:
    """Each block's code lengths (literal/length codes, then distance codes from 288; zeros for
    stored blocks): the costs an optimal parser weighed."""
    out = np.zeros((len(info.types), 320), dtype=np.int64)
    hd = iter(info.headers)
    for b, t in enumerate(info.types):
        if t == deflate.FIXED:
            deflate._fixed_lengths(out[b])
        elif t == deflate.DYNAMIC:
            nbits, bits = next(hd)
            e, _, _ = deflate._read_lengths(np.frombuffer(bits + b"\0\0\0\0", dtype=np.uint8), 0, out[b])
            if e != nbits:
                raise ValueError("a deflate block's header is damaged")
    return out


def encode(data: np.ndarray, info: deflate.Blocks, length: np.ndarray, dist: np.ndarray, chain: int = CHAIN) -> bytes:
    """The tokens of these blocks over ``data`` (uint8) as a coded stream: the chain's log2, then
    the coded decisions. Where chains of ``chain`` miss more than 1% of the matches, chains of
    LONG_CHAIN are tried too (slower both ways) and the smaller kept."""
    n_tok = int(sum(info.ntokens))
    args = (data, np.array(info.types, dtype=np.int64), np.array(info.ntokens, dtype=np.int64), block_lengths(info),
            np.ascontiguousarray(length, dtype=np.int32), np.ascontiguousarray(dist, dtype=np.int32))
    best = None
    for c in (chain, LONG_CHAIN):
        st = binary.new_state(1)
        out = np.zeros((1, MAX_BYTES_PER_TOKEN * n_tok + 16), dtype=np.uint8)
        missed = _run(*args, c, st, out, np.zeros(1, dtype=np.uint8), np.zeros(1, dtype=np.int64), ENC)
        if missed < 0:
            raise ValueError("the tokens do not fit the data")
        coded = bytes([c.bit_length() - 1]) + out[0, :st[0, 2]].tobytes() + binary.finish(st, 0)
        if best is None or len(coded) < len(best):
            best = coded
        if c >= LONG_CHAIN or missed <= (length >= 3).sum() // 100:
            break
    return best


def decode(coded: bytes, data: np.ndarray, info: deflate.Blocks):
    """Inverse of :func:`encode`: (length, dist)."""
    n_tok = int(sum(info.ntokens))
    if n_tok > len(data):
        raise CorruptDataError("the PNG's deflate blocks hold more tokens than bytes (damaged file)")
    if not coded or coded[0] > LONG_CHAIN.bit_length() - 1:
        raise CorruptDataError("the PNG's deflate tokens are damaged")
    chain = 1 << coded[0]
    coded = coded[1:]
    length = np.zeros(n_tok, dtype=np.int32)
    dist = np.zeros(n_tok, dtype=np.int32)
    buf = np.frombuffer(coded or b"\0", dtype=np.uint8).copy()
    end = np.array([len(coded)], dtype=np.int64)
    st = binary.new_state(1)
    binary.start_decoding(st, 0, buf, end)
    r = _run(data, np.array(info.types, dtype=np.int64), np.array(info.ntokens, dtype=np.int64), block_lengths(info),
             length, dist, chain, st, np.zeros((1, 1), dtype=np.uint8), buf, end, DEC)
    if r < 0 or st[0, 2] != len(coded) or st[0, 4]:
        raise CorruptDataError("the PNG's deflate tokens are damaged")
    return length, dist


def describe(stream: bytes, data: bytes) -> tuple[bytes, bytes] | None:
    """(blocks, coded tokens) that re-create the zlib ``stream`` from the ``data`` it holds, or
    None when this module cannot (checked here: :func:`recreate` gives the stream back)."""
    parsed = deflate.parse(stream, len(data))
    if parsed is None:
        return None
    info, length, dist = parsed
    d = np.frombuffer(data, dtype=np.uint8)
    side = (info.pack(), bytes([VERSION]) + encode(d, info, length, dist))
    try:
        if recreate(*side, d, len(stream)) != stream:
            return None
    except (ValueError, CorruptDataError):
        return None
    return side


def recreate(blocks: bytes, tokens: bytes, data: bytes | np.ndarray, limit: int) -> bytes:
    """Inverse of :func:`describe`: the zlib stream, of at most ``limit`` bytes; ValueError or
    CorruptDataError when the side data is damaged."""
    info = deflate.Blocks.unpack(blocks)
    if not tokens or tokens[0] != VERSION:
        raise ValueError(f"the deflate tokens are of a version this dulzip does not know ({tokens[:1].hex()})")
    d = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray)) else data
    length, dist = decode(tokens[1:], d, info)
    return deflate.write(d, info, length, dist, limit)
