"""A deflate stream's tokens, coded as what a match finder over its data does not predict.

Whatever program wrote a deflate stream, its tokens are matches the data allows: the decoder,
which has the data (the PNG's filtered scanlines, decoded first), can list at each position
the earlier positions whose bytes match, as a writer's match finder does, and can search, as
an optimal parser (zopfli, 7-Zip) does, for the cheapest parse of each block in the block's own
code lengths (its header is kept as it is, so known before its tokens). Each token is coded by
the binary arithmetic coder of :mod:`dulzip.coding.binary` as its differences from those
(as preflate and precomp do for deflate streams, with a simpler model). Version 2 (written
today) first codes whether the token is the cheapest parse's, and where several first tokens
tie in cost, which of the tie's two extremes it is (shortest or longest: a writer's own order
of search decides ties, and one of the two is its choice at about 98% of the tokens of
zopflipng's and advpng's graphics); a token that is neither is coded by its rank among the
parse's other first tokens, cheapest first (:func:`_by_cost`), and only one whose distance is
not the nearest for its length goes on to version 1's coding, which is:

- literal or match? in the context of whether the cheapest parse has a match here, the
  longest match found here (its length, bucketed), what it saves over literals in the block's
  codes, whether the previous token was a literal, and whether a match one position on is
  longer or saves more (a lazy matcher's and an optimal parser's reasons for a literal);
- a match's length: the cheapest parse's? else the longest found? else shorter (by how
  much) or, where the lists missed the writer's match, its value;
- its distance: the rank of the match among the listed positions that match at least that
  long, nearest first (0 for zlib, zopfli, 7-Zip: the nearest of that length), or, where the
  list lacks it, the distance itself.

The lists: a hash chain over three-byte prefixes (HASH_BITS) walked nearest first for at most
``chain`` positions within the 32 KiB window and, in a run of one byte, for matches longer
than the run, the positions where a run of that byte as long starts (a flat area floods the
first list). Version 1's cheapest parse walks them at every position, for at most
``dp_chain`` positions (chosen by the work it takes); version 2's takes every position's
matches from binary match trees (:func:`_tree_matches`, as 7-Zip's "bt" finder): every
length's nearest distance in the whole window, in a few dozen steps per position, at most
``dp_chain`` (TREE_CUT). Both limits are recorded. Decoding computes the same, so both sides
agree on every prediction, and a damaged stream can only make a token the data does not
allow, which is refused (CorruptDataError).

Each decision's probability is the mean of a fast and a slow adaptive estimate
(:mod:`dulzip.coding.adaptive`). A stored block's bytes are literals and cost nothing.

What each part brought (bytes of coded tokens; zopflipng's and advpng's camera-web, zopflipng's
astronaut): the first model (longest match, rank) 9,989 (astronaut); with the block's codes as
costs (the gain context) 8,366; the lazy context by cost 7,786; the shortfall per length bucket:
advpng's camera-web 8,190 -> 7,854; the cheapest parse: 15,101 -> 12,112, 7,854 -> 3,578, 7,786
-> 4,736; the run lists: 12,112 -> 3,551, 3,578 -> 3,115 (all with the parse's walks at 4096;
the default chooses fewer on large flat images). Version 2 against version 1 (each at its
default limits): zopflipng's camera-web 5,871 -> 1,729 bytes, dh-tree 10,216 -> 2,682,
kcachegrind 4,037 -> 1,332, astronaut 4,529 -> 4,032, coffee 5,247 -> 3,784, Dune 5,810 ->
4,340; advpng's camera-web 3,209 -> 1,897, dh-tree 12,115 -> 3,320, kcachegrind 4,028 -> 1,362;
of that, the rank by cost of the tokens that are neither extreme: zopflipng's camera-web 2,001
-> 1,729, coffee 4,194 -> 3,784. Decoding is as fast or faster (advpng's dh-tree 17.3 -> 12.5 s,
Dune 5.3 -> 2.0 s).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from dulzip.coding import adaptive, binary
from dulzip.errors import CorruptDataError
from dulzip.formats import deflate
from dulzip.formats.deflate import STORED

HASH_BITS = 16
WINDOW = 32768
CHAIN = 4096  # positions listed at most per token
# The predicted parse walks the lists at every position, so its walks are what decoding costs
# on flat graphics: they are kept to DP_CHAIN positions, or as many more (up to DP_CHAIN_MAX)
# as a first run with DP_CHAIN says fit in DP_WORK positions walked in all (so a file decodes
# in a few seconds at most, and the choice is the same on every machine).
DP_CHAIN = 64
DP_CHAIN_MAX = 4096
DP_WORK = 150_000_000
TREE_CUT = 256  # version 2: steps of the match trees' search per position at most (the second chain byte)
PAIRS_PER_BYTE = 16  # of a block: the match pairs kept (_tree_matches), so a decode's memory is bounded
TREE_CUT_MAX_BITS = 12  # a file asking for more is refused (a decoder's work is at most this per position)
MAX_CHAIN_BITS = 16
VERSION = 2  # of this model: the first byte of its streams, then log2 of the two chains
VERSIONS = (1, 2)  # those decoded
ENC, DEC = adaptive.ENC, adaptive.DEC
N_LB = 10  # buckets of the longest match's length
N_GAIN = 8  # buckets of what the longest match saves over literals, in the block's own codes
# context rows: is-match (2 x N_LB x 2 x 4 x N_GAIN), length == longest (N_LB x 2), shorter? (N_LB),
# shortfall tree (256 x N_LB), length tree (256), escape (1), rank length unary (N_LB x 17), rank bits (17 x 17),
# distance bits (15), the cheapest parse's length (N_LB x 2); version 2: the first tied token where it is
# the only one (2 x 2 x N_LB) and where it is not (2 x 3 x N_LB), the longest (2 x 3 x N_LB), the others by
# cost: escape (1), rank length unary (17), rank bits (17 x 17)
P_MATCH = 0
P_EQ = P_MATCH + 2 * N_LB * 8 * N_GAIN
P_SHORT = P_EQ + N_LB * 2
P_SHORTFALL = P_SHORT + N_LB
P_LEN = P_SHORTFALL + 256 * N_LB
P_ESC = P_LEN + 256
P_RANKLEN = P_ESC + 1
P_RANKBITS = P_RANKLEN + N_LB * 17
P_DIST = P_RANKBITS + 17 * 17
P_PRED = P_DIST + 15
P_LO = P_PRED + 2 * N_LB
P_LO2 = P_LO + 4 * N_LB
P_HI = P_LO2 + 6 * N_LB
P_CESC = P_HI + 6 * N_LB
P_CRANK = P_CESC + 1
P_CRANKBITS = P_CRANK + 17
N_P = P_CRANKBITS + 17 * 17
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


@njit(cache=True)
def _chains(d):
    """The lists a match at i is looked for in, nearest first: prev[i], the nearest position
    before i whose three bytes hash as i's (-1: none); same[i], how many bytes from i equal d[i];
    prev2[i], for a position in a run (same[i] >= 3), the nearest one before it with the same byte
    and as many left in its run. In a long run of one byte (a flat area) nearly every position
    hashes alike, so the first list reaches only the last few thousand bytes; a match longer
    than the run must start where a run of the same length does, which the second list walks
    straight to (as zopfli's second hash does)."""
    n = len(d)
    head = np.full(1 << HASH_BITS, -1, dtype=np.int32)
    head2 = np.full(1 << HASH_BITS, -1, dtype=np.int32)
    prev = np.full(max(n, 1), -1, dtype=np.int32)
    prev2 = np.full(max(n, 1), -1, dtype=np.int32)
    same = np.ones(max(n, 1), dtype=np.int32)
    for i in range(n - 2, -1, -1):
        if d[i] == d[i + 1]:
            same[i] = same[i + 1] + 1
    for i in range(n - 2):
        h = _hash(d, i)
        prev[i] = head[h]
        head[h] = i
        if same[i] >= 3:
            h2 = ((np.int64(d[i]) << 9 | min(same[i], 259)) * 2654435761 >> 16) & ((1 << HASH_BITS) - 1)
            prev2[i] = head2[h2]
            head2[h2] = i
    return prev, prev2, same


@njit(cache=True, inline="always")
def _next(prev, prev2, p, two):
    return prev2[p] if two else prev[p]


@njit(cache=True, inline="always")
def _ended(i, p, c, chain):
    return p < 0 or i - p > WINDOW or c >= chain


@njit(cache=True, inline="always")
def _to_run_list(prev2, i, r, reached, p, two, c, chain):
    """A walk at i in a run of r bytes (r 0: none) goes on in the run list once the first list
    gave a match as long as the run (a longer one starts where a run as long does) or ended:
    the walk's (p, two, c)."""
    if r and not two and (reached >= r or _ended(i, p, c, chain)):
        return prev2[i], True, 0
    return p, two, c


@njit(cache=True)
def _walk_start(prev, same, i):
    """A walk of the lists at i: (the run there or 0, the first position, in the run list?, steps)."""
    return (same[i] if same[i] >= 3 else 0), prev[i], False, 0


@njit(cache=True)
def _next_longer(d, prev, prev2, i, r, got, p, two, c, chain, cap):
    """The walk of the lists at i (a run of r bytes there, else 0) from its state (p, two, c)
    on to the next position whose match is longer than got (at most cap): (its length, its
    position, the walk's state after it); length 0 where the walk ended."""
    while True:
        p, two, c = _to_run_list(prev2, i, r, got, p, two, c, chain)
        if _ended(i, p, c, chain) or got >= cap:
            return 0, p, p, two, c
        m = 0
        if d[p + got] == d[i + got]:  # else it cannot be longer (zlib's scan_end test)
            m = _match_len(d, p, i, cap)
        q = p
        p = _next(prev, prev2, p, two)
        c += 1
        if m > got:
            return m, q, p, two, c


@njit(cache=True)
def _longest(d, prev, prev2, same, i, n, chain):
    """(length, distance) of the longest match at i among the lists' first positions, the
    nearest of them; (0, 0) when none reaches 3. In a run, the first list until a match as
    long as the run, then the run list."""
    if i + 3 > n:
        return 0, 0
    cap = min(258, n - i)
    best = 0
    bd = 0
    r, p, two, c = _walk_start(prev, same, i)
    while True:
        m, q, p, two, c = _next_longer(d, prev, prev2, i, r, best, p, two, c, chain, cap)
        if m == 0:
            break
        best = m
        bd = i - q
    return (best, bd) if best >= 3 else (0, 0)


@njit(cache=True)
def _rank(d, prev, prev2, same, i, ln, chain, dd, want):
    """Among the listed positions whose match at i is at least ln long (the run list where ln
    is longer than i's run): encoding (dd > 0), (the rank of distance dd, 1) or (.., 0) when
    it is not listed; decoding (dd 0), (the distance of the want-th, 1) or (0, 0)."""
    two = same[i] >= 3 and ln > same[i]
    p = prev2[i] if two else prev[i]
    c = 0
    k = 0
    while not _ended(i, p, c, chain):
        if dd > 0 and i - p == dd:
            return k, 1
        if d[p + ln - 1] == d[i + ln - 1] and _match_len(d, p, i, ln) == ln:
            if dd == 0 and k == want:
                return i - p, 1
            k += 1
        p = _next(prev, prev2, p, two)
        c += 1
    return k, 0


@njit(cache=True, inline="always")
def _code_len(lens, s):
    """Bits of symbol s in the block's code (a symbol it lacks: as good as impossible)."""
    return lens[s] if lens[s] > 0 else 24


@njit(cache=True, inline="always")
def _dist_cost(lens, dd):
    ds = deflate.dist_symbol(dd)
    return _code_len(lens, 288 + ds) + deflate.DEXT[ds]


@njit(cache=True, inline="always")
def _len_cost(lens, lsym, ln):
    s = lsym[ln]
    return _code_len(lens, 257 + s) + deflate.LEXT[s]


@njit(cache=True)
def _gain(d, i, ln, dd, lens, lsym):
    """The bits a match of ln at distance dd saves over ln literals, in the block's codes: an
    optimal parser (zopfli, 7-Zip) chooses by such costs."""
    lit = 0
    for k in range(ln):
        lit += _code_len(lens, d[i + k])
    return lit - (_len_cost(lens, lsym, ln) + _dist_cost(lens, dd))


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


@njit(cache=True)
def _tree_matches(d, left, right, head, s, e, cut, mlen, mdist, moff, nm):
    """Insert positions [s, e) into binary search trees of the earlier positions (one per
    three-byte hash, each ordered by the bytes from its positions on and with the nearest
    position on top, as 7-Zip's "bt" match finder keeps them), and record each position's
    matches: moff[i - s] is where its (length, distance) pairs start in mlen/mdist, lengths
    increasing, each pair's distance the nearest giving its length (the search passes the
    nearest position of every longer prefix first). The whole window is searched in a few
    dozen steps where a hash chain walks thousands in graphics; ``cut``: the steps allowed per
    position (a hostile file's bound). A block keeps PAIRS_PER_BYTE pairs a byte at most (real
    files: 1.4-3.1 on average; a position of a flat area can have 256), beyond which a position
    keeps only its longest (a valid match for every shorter length too). Returns (steps,
    pairs, mlen, mdist): the arrays grow."""
    n = len(d)
    steps = 0
    for i in range(s, e):
        moff[i - s] = nm
        if i + 3 > n:
            continue
        lim = min(258, n - i)
        h = _hash(d, i)
        cur = head[h]
        head[h] = i
        # the two open links where the next smaller and the next greater position hang:
        # (node, 0 for its left / 1 for its right child), both i's own to begin with
        lo_node, lo_side, hi_node, hi_side = i, 0, i, 1
        len_lo = 0  # bytes the smaller side is known to share with i
        len_hi = 0
        best = 2
        c = 0
        while True:
            if cur < 0 or i - cur > WINDOW or c >= cut:
                _link(left, right, lo_node, lo_side, -1)
                _link(left, right, hi_node, hi_side, -1)
                break
            c += 1
            ln = min(len_lo, len_hi)
            while ln < lim and d[cur + ln] == d[i + ln]:
                ln += 1
            if ln > best:
                best = ln
                if nm > moff[i - s] and nm >= PAIRS_PER_BYTE * (e - s):
                    nm -= 1  # over the block's budget (a hostile or freak file): i keeps its longest pair only
                if nm >= len(mlen):
                    mlen = _grown(mlen, nm)
                    mdist = _grown(mdist, nm)
                mlen[nm] = ln
                mdist[nm] = i - cur
                nm += 1
            if ln == lim:  # as far as i can tell, cur is i: i takes its place and children
                _link(left, right, lo_node, lo_side, left[cur])
                _link(left, right, hi_node, hi_side, right[cur])
                break
            if d[cur + ln] < d[i + ln]:  # cur sorts before i: it hangs on the smaller side
                _link(left, right, lo_node, lo_side, cur)
                lo_node, lo_side, len_lo = cur, 1, ln
                cur = right[cur]
            else:
                _link(left, right, hi_node, hi_side, cur)
                hi_node, hi_side, len_hi = cur, 0, ln
                cur = left[cur]
        steps += c
    return steps, nm, mlen, mdist


@njit(cache=True, inline="always")
def _link(left, right, node, side, v):
    if side == 0:
        left[node] = v
    else:
        right[node] = v


@njit(cache=True)
def _grown(a, used):
    b = np.empty(2 * len(a), dtype=a.dtype)
    b[:used] = a[:used]
    return b


@njit(cache=True, inline="always")
def _consider(cte, s, i, got, m, dd, lens, lsym, best, bl, bd, hl, hd):
    """The lengths got + 1 .. m at distance dd as the first token of a parse of the rest:
    the cheapest so far (best, bl, bd) and the longest as cheap (hl, hd)."""
    dc = _dist_cost(lens, dd)
    for ln in range(got + 1, m + 1):
        cst = cte[i + ln - s] + _len_cost(lens, lsym, ln) + dc
        if cst < best:
            best = cst
            bl = ln
            bd = dd
            hl = ln
            hd = dd
        elif cst == best:
            hl = ln
            hd = dd
    return best, bl, bd, hl, hd


@njit(cache=True)
def _optimal(d, prev, prev2, same, moff, mlen, mdist, s, e, lens, lsym, chain, pl, pd, ph, phd, cte):
    """A cheapest parse of the block's bytes [s, e) in its own code lengths, as an optimal
    parser (zopfli, 7-Zip) searches for one: backwards, for each position the first token of
    a cheapest parse of the rest (pl[i - s]: 1 for a literal, else a length; pd: its distance,
    the nearest giving that length). Where several first tokens cost the same (common in
    graphics: lengths that share a code, runs), pl is the first of them (a literal, else the
    shortest) and ph/phd the longest: which of the tied parses a writer takes depends on its
    own order of search, and one of the two extremes is its choice at about 98% of the tokens
    of zopflipng's and advpng's graphics (against 90% for pl alone). The matches: version 1
    walks the lists for at most ``chain`` positions; version 2 (``moff`` not empty) takes each
    position's from :func:`_tree_matches` (moff[i - s] .. moff[i - s + 1]), every length's
    nearest. Both sides run it before a block's tokens. Returns the positions walked (v1)."""
    cte[e - s] = 0
    steps = 0
    for i in range(e - 1, s - 1, -1):
        best = cte[i + 1 - s] + _code_len(lens, d[i])
        bl = 1
        bd = 0
        hl = 1
        hd = 0
        if i + 3 <= e:
            cap = min(258, e - i)
            got = 2
            if len(moff):
                for k in range(moff[i - s], moff[i - s + 1]):
                    m = min(mlen[k], cap)
                    if m > got:
                        best, bl, bd, hl, hd = _consider(cte, s, i, got, m, mdist[k], lens, lsym, best, bl, bd, hl, hd)
                        got = m
            else:
                r, p, two, c = _walk_start(prev, same, i)
                while True:
                    m, q, p, two, c = _next_longer(d, prev, prev2, i, r, got, p, two, c, chain, cap)
                    if m == 0:
                        break
                    best, bl, bd, hl, hd = _consider(cte, s, i, got, m, i - q, lens, lsym, best, bl, bd, hl, hd)
                    got = m
                steps += c
        cte[i - s] = best
        pl[i - s] = bl
        pd[i - s] = bd
        ph[i - s] = hl
        phd[i - s] = hd
    return steps


@njit(cache=True)
def _bit(probs, i, bit, st, out, data, end, mode):
    return adaptive.bit(probs, i, i + N_P, 4, 7, bit, st, out, data, end, mode)


@njit(cache=True)
def _tree(probs, base, nbits, v, st, out, data, end, mode):
    """v in [0, 2^nbits) by its bits, high first, each in the context of the bits above it."""
    node = 1
    for k in range(nbits - 1, -1, -1):
        b = _bit(probs, base + node, (v >> k) & 1, st, out, data, end, mode)
        node = 2 * node + b
    return node - (1 << nbits)


@njit(cache=True)
def _gamma(probs, len_base, bits_base, v, st, out, data, end, mode):
    """v >= 1 (at most 2^16 - 1; decoding: any) as its bit length, unary in contexts
    len_base + k, then its bits below the top one in contexts bits_base + 17 * length + j.
    Returns v."""
    nb = 0
    while (v >> nb) > 1:
        nb += 1
    k = 0
    while k < 16 and _bit(probs, len_base + k, 1 if k < nb else 0, st, out, data, end, mode):
        k += 1
    r = 1
    for j in range(k - 1, -1, -1):
        r = 2 * r + _bit(probs, bits_base + k * 17 + j, (v >> j) & 1, st, out, data, end, mode)
    return r


@njit(cache=True)
def _by_cost(probs, d, moff, mlen, mdist, k, e_k, cte, lens, lsym, lo, hi, ln, dd, cl, cd, key, st, out, data, end,
             mode):
    """A token that is neither of the tied extremes, as its rank among the others that the
    parse could start with here (the literal; each length with its nearest distance), cheapest
    first and, at one cost, longest first: a writer's other choices are mostly a third tied
    length or the next cheapest. (length, distance, 1), or (0, 0, 0) for an escape (a
    distance not the nearest), which version 1's coding then codes. ``k``: the position in
    the block, ``e_k`` the block's length; encoding: the token is (ln, dd); cl, cd, key: room
    for the candidates (260 each), made once by the caller."""
    cap = min(258, e_k - k)
    nc = 0
    if lo != 1 and hi != 1:
        cl[0] = 1
        cd[0] = 0
        key[0] = (cte[k + 1] + _code_len(lens, d[k])) * 512 + 510
        nc = 1
    got = 2
    if cap >= 3:
        for q in range(moff[k], moff[k + 1]):
            m = min(mlen[q], cap)
            for x in range(got + 1, m + 1):
                if x != lo and x != hi:
                    cl[nc] = x
                    cd[nc] = mdist[q]
                    key[nc] = (cte[k + x] + _len_cost(lens, lsym, x) + _dist_cost(lens, mdist[q])) * 512 + 258 - x
                    nc += 1
            got = max(got, m)
    rank = -1
    if mode == ENC:  # how many candidates cost less (keys are unique: one per length)
        for q in range(nc):
            if cl[q] == ln and (ln == 1 or cd[q] == dd):
                rank = 0
                for q2 in range(nc):
                    rank += key[q2] < key[q]
    if _bit(probs, P_CESC, 1 if rank < 0 else 0, st, out, data, end, mode):
        return 0, 0, 0
    r = _gamma(probs, P_CRANK, P_CRANKBITS, rank + 1, st, out, data, end, mode) - 1
    if r >= nc:
        return -1, 0, 0
    q = -1  # the r-th cheapest: r + 1 passes, each for the cheapest above the last (r is mostly 0-3)
    for _ in range(r + 1):
        best = -1
        for q2 in range(nc):
            if (q < 0 or key[q2] > key[q]) and (best < 0 or key[q2] < key[best]):
                best = q2
        q = best
    return cl[q], cd[q], 1


@njit(cache=True)
def _token(d, prev, prev2, same, i, n, chain, plen, lens, lsym, probs, length, dist, t, lit_before,
           st, out, data, end, mode):
    """One token of a Huffman block as its differences from the match finder's and the
    cheapest parse's (``plen``) predictions (the first version's coding; the second codes
    first whether it is one of the parse's tied extremes). Returns its length, or -1 where it
    does not fit the data."""
    lmax, ldist = _longest(d, prev, prev2, same, i, n, chain)
    pm = 1 if plen >= 3 else 0
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
            l1, d1 = _longest(d, prev, prev2, same, i + 1, n, chain)
            lazy = 1
            if l1 > lmax:
                lazy = 2
            elif l1 >= 3 and _gain(d, i + 1, l1, d1, lens, lsym) > g:
                lazy = 3
        ctx = P_MATCH + (((pm * N_LB + lb) * 2 + lit_before) * 4 + lazy) * N_GAIN + _gain_bucket(g)
        is_match = _bit(probs, ctx, 1 if ln >= 3 else 0, st, out, data, end, mode)
    if is_match:
        # the length: the cheapest parse's? else from the longest
        as_pred = 0
        if pm:
            as_pred = _bit(probs, P_PRED + _bucket(plen) * 2 + (1 if plen == lmax else 0),
                        1 if ln == plen else 0, st, out, data, end, mode)
        if as_pred:
            ln = plen
            eq = 1
            lmax = plen
        elif lmax >= 3 and not (pm and plen == lmax):
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
            rank, found = _rank(d, prev, prev2, same, i, ln, chain, dd, 0)
        esc = _bit(probs, P_ESC, 1 - found, st, out, data, end, mode)
        if esc:  # the distance as it is, 15 bits
            v = dd - 1 if mode == ENC else 0
            dd = 1
            for j in range(14, -1, -1):
                dd += _bit(probs, P_DIST + j, (v >> j) & 1, st, out, data, end, mode) << j
            if mode == DEC and (dd > i or dd > WINDOW):
                return -1
            if mode == DEC and _match_len(d, i - dd, i, ln) != ln:
                return -1
        else:
            v = _gamma(probs, P_RANKLEN + lb * 17, P_RANKBITS, rank + 1, st, out, data, end, mode)
            if mode == DEC:
                dd, found = _rank(d, prev, prev2, same, i, ln, chain, 0, v - 1)
                if not found:
                    return -1
        if mode == DEC:
            length[t] = ln
            dist[t] = dd
    else:
        ln = 1
        if mode == DEC:
            length[t] = 1
            dist[t] = 0
    return ln


@njit(cache=True)
def _tied(probs, lo, lod, hi, hid, ln, dd, lit_before, last, st, out, data, end, mode):
    """Whether the token is the cheapest parse's first tied token here (lo, lod), else, where
    the ties differ, its longest (hi, hid): (length, distance, 1 or 2), or (.., .., 0) for
    neither, which the first version's coding then codes. ``last``: the previous tie's outcome
    (0 none yet, else as returned: a writer breaks ties by a rule of its own, the same way
    each time). Encoding: the token is (ln, dd)."""
    two = 1 if hi != lo or hid != lod else 0
    want = 1 if ln == lo and (lo == 1 or dd == lod) else 0
    if two:
        ctx = P_LO2 + ((1 if lo >= 3 else 0) * 3 + last) * N_LB + _bucket(hi)
    else:
        ctx = P_LO + ((1 if lo >= 3 else 0) * 2 + lit_before) * N_LB + _bucket(lo)
    if _bit(probs, ctx, want, st, out, data, end, mode):
        return lo, lod, 1
    if two:
        want = 1 if ln == hi and (hi == 1 or dd == hid) else 0
        ctx = P_HI + ((1 if hi >= 3 else 0) * 3 + last) * N_LB + _bucket(hi)
        if _bit(probs, ctx, want, st, out, data, end, mode):
            return hi, hid, 2
    return 0, 0, 0


@njit(cache=True)
def _run(d, types, ntok, nbytes, blens, length, dist, chain, dp_chain, version, st, out, data, end, mode):
    """Code (ENC: from length/dist) or decode (DEC: into them) the tokens, in the coding of
    ``version`` (1: :func:`_token` alone; 2: :func:`_tied` first). Returns how many positions
    the predicted parses walked, or -1 when the decoded tokens do not fit the data or the
    stream ends early (a damaged file)."""
    n = len(d)
    probs = np.full(2 * N_P, 32768, dtype=np.int64)
    prev, prev2, same = _chains(d)
    tree = version >= 2
    left = np.full(n if tree else 0, -1, dtype=np.int32)  # version 2's match trees (_tree_matches)
    right = np.full(n if tree else 0, -1, dtype=np.int32)
    head = np.full(1 << HASH_BITS, -1, dtype=np.int32)
    moff = np.zeros(n + 1 if tree else 0, dtype=np.int32)
    mlen = np.zeros(1024, dtype=np.int32)
    mdist = np.zeros(1024, dtype=np.int32)
    cl = np.empty(260, dtype=np.int32)  # _by_cost's candidates
    cd = np.empty(260, dtype=np.int32)
    key = np.empty(260, dtype=np.int64)
    pl = np.zeros(n + 1, dtype=np.int32)
    pd = np.zeros(n + 1, dtype=np.int32)
    ph = np.zeros(n + 1, dtype=np.int32)
    phd = np.zeros(n + 1, dtype=np.int32)
    cte = np.zeros(n + 1, dtype=np.int64)
    i = 0
    t = 0
    lit_before = 1
    last = 0
    steps = 0
    lsym = deflate.length_symbols()
    for b in range(len(types)):
        lens = blens[b]
        s0 = i
        if i + nbytes[b] > n:
            return -1
        if tree:  # every block's positions go into the trees, a stored block's too
            c, nm, mlen, mdist = _tree_matches(d, left, right, head, i, i + nbytes[b], dp_chain, mlen, mdist, moff, 0)
            moff[nbytes[b]] = nm
            steps += c
        if types[b] != STORED:
            steps += _optimal(d, prev, prev2, same, moff, mlen, mdist, i, i + nbytes[b], lens, lsym, dp_chain,
                              pl, pd, ph, phd, cte)
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
                k = i - s0
                inside = i < s0 + nbytes[b]
                plen = pl[k] if inside else 1  # the cheapest parse's token here
                hit = 0
                if version >= 2 and inside:
                    ln, dd, hit = _tied(probs, pl[k], pd[k], ph[k], phd[k], length[t] if mode == ENC else 0,
                                        dist[t] if mode == ENC else 0, lit_before, last, st, out, data, end, mode)
                    if ph[k] != pl[k] or phd[k] != pd[k]:
                        last = hit
                    if not hit:
                        ln, dd, hit = _by_cost(probs, d, moff, mlen, mdist, k, nbytes[b], cte, lens, lsym, pl[k], ph[k],
                                               length[t] if mode == ENC else 0, dist[t] if mode == ENC else 0,
                                               cl, cd, key, st, out, data, end, mode)
                        if ln < 0:
                            return -1
                    if hit and mode == DEC:
                        length[t] = ln
                        dist[t] = dd
                if not hit:
                    ln = _token(d, prev, prev2, same, i, n, chain, plen, lens, lsym, probs, length, dist, t,
                                lit_before, st, out, data, end, mode)
                    if ln < 0:
                        return -1
                lit_before = 1 if ln == 1 else 0
                if mode == DEC and st[0, 4] > 0:
                    return -1
            i += ln
            t += 1
        if i != s0 + nbytes[b]:
            return -1
    if i != n:
        return -1
    return steps


def encode(data: np.ndarray, info: deflate.Blocks, length: np.ndarray, dist: np.ndarray, chain: int = CHAIN,
           dp_chain: int | None = None, version: int = VERSION) -> bytes:
    """The tokens of these blocks over ``data`` (uint8) as a coded stream in the coding of
    ``version`` (without its byte): log2 of the two chains' limits (powers of two), then the
    coded decisions. ``dp_chain`` None: version 2's TREE_CUT; version 1's chosen by the work
    it takes (DP_CHAIN, DP_WORK)."""
    n_tok = int(sum(info.ntokens))
    args = (data, np.array(info.types, dtype=np.int64), np.array(info.ntokens, dtype=np.int64),
            np.array(info.nbytes, dtype=np.int64), info.code_lengths(), np.ascontiguousarray(length, dtype=np.int32),
            np.ascontiguousarray(dist, dtype=np.int32), chain)
    dp = dp_chain or (TREE_CUT if version >= 2 else DP_CHAIN)
    while True:
        st = binary.new_state(1)
        out = np.zeros((1, MAX_BYTES_PER_TOKEN * n_tok + 16), dtype=np.uint8)
        steps = _run(*args, dp, version, st, out, np.zeros(1, dtype=np.uint8), np.zeros(1, dtype=np.int64), ENC)
        if steps < 0:
            raise ValueError("the tokens do not fit the data")
        if dp_chain is not None or dp > DP_CHAIN or version >= 2:
            break
        more = DP_CHAIN_MAX
        while more > DP_CHAIN and steps * (more // DP_CHAIN) > DP_WORK:
            more //= 2
        if more == DP_CHAIN:
            break
        dp = more  # (walks end early where the lists are short: the real work is at most this)
    return bytes([chain.bit_length() - 1, dp.bit_length() - 1]) + out[0, :st[0, 2]].tobytes() + \
        binary.finish(st, 0)


def decode(coded: bytes, data: np.ndarray, info: deflate.Blocks, blens: np.ndarray, version: int = VERSION):
    """Inverse of :func:`encode`: (length, dist); ``blens``: ``info.code_lengths()``."""
    n_tok = int(sum(info.ntokens))
    if n_tok > len(data):
        raise CorruptDataError("the PNG's deflate blocks hold more tokens than bytes (damaged file)")
    if len(coded) < 2 or max(coded[0], coded[1]) > MAX_CHAIN_BITS or (version >= 2 and coded[1] > TREE_CUT_MAX_BITS):
        raise CorruptDataError("the PNG's deflate tokens are damaged")
    chain, dp_chain = 1 << coded[0], 1 << coded[1]
    coded = coded[2:]
    length = np.zeros(n_tok, dtype=np.int32)
    dist = np.zeros(n_tok, dtype=np.int32)
    buf = np.frombuffer(coded or b"\0", dtype=np.uint8).copy()
    end = np.array([len(coded)], dtype=np.int64)
    st = binary.new_state(1)
    binary.start_decoding(st, 0, buf, end)
    r = _run(data, np.array(info.types, dtype=np.int64), np.array(info.ntokens, dtype=np.int64),
             np.array(info.nbytes, dtype=np.int64), blens, length, dist, chain, dp_chain, version, st,
             np.zeros((1, 1), dtype=np.uint8), buf, end, DEC)
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
    if not tokens or tokens[0] not in VERSIONS:
        raise ValueError(f"the deflate tokens are of a version this dulzip does not know ({tokens[:1].hex()})")
    d = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray)) else data
    blens = info.code_lengths()
    length, dist = decode(tokens[1:], d, info, blens, tokens[0])
    return deflate.write(d, info, length, dist, limit, blens)
