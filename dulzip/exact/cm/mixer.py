"""The mixing network: first-layer logistic mixers with selectable weight sets, a second layer
mixing their outputs, and the one learning step that updates every table of a mixer.

Each of the n_mix first-layer mixers takes the dot product of all inputs with the weight set
(a row of ``S.weights``) the mixer chose for element k (``sc.sets[k, mi]``): so a mixer is
specialised by a context of its own (the node, the previous byte, ...) without another input.
The second layer weighs their logits by the set ``sc.fsel[k]`` of ``S.weights_f``. Dot products
carry 16 fractional bits and are clamped to +-ST_MAX; weights learn by gradient steps on coding
cost, err = bit - p (1/65536), in integers, in a fixed order: encoder and decoder compute the
same weights bit for bit.

The sizes (n_mix mixers, n_in inputs, n_ctx contexts, n_rows APM rows per element) are the
arrays' (``Scratch``), passed again as arguments: every function here is inlined into its
caller (``inline="always"``), where the mixer's module constants make them compile-time
constants, so the loops are unrolled and vectorised as if written out in the mixer.
"""
from __future__ import annotations

from numba import njit

from dulzip.exact.cm.apm import APM_LIMIT
from dulzip.exact.cm.counts import learn_slot
from dulzip.exact.cm.luts import ST_MAX
from dulzip.exact.cm.maps import learn_row


@njit(cache=True, inline="always")
def layer1(S, sc, k, n_mix, n_in):
    """The first layer's logits of element k into ``sc.dots[k, :n_mix]``."""
    x, weights, sets, dots = sc.x, S.weights, sc.sets, sc.dots
    for mi in range(n_mix):
        ws = sets[k, mi]
        dot = 0
        for i in range(n_in):
            dot += x[k, i] * weights[ws, i]
        dots[k, mi] = min(max(dot >> 16, -ST_MAX), ST_MAX)


@njit(cache=True, inline="always")
def layer2(S, sc, k, n_mix):
    """The second layer's logit of element k (from the first layer's, weight set ``sc.fsel[k]``)."""
    fs = sc.fsel[k]
    dots, weights_f = sc.dots, S.weights_f
    dot = 0
    for mi in range(n_mix):
        dot += dots[k, mi] * weights_f[fs, mi]
    return min(max(dot >> 16, -ST_MAX), ST_MAX)


@njit(cache=True, inline="always")
def mix(S, sc, k, second, n_mix, n_in):
    """Both layers for element k (``second`` 0: the first mixer's logit stands for the second
    layer's, which then still learns); the final logit, also kept in ``sc.dots[k, n_mix]``."""
    layer1(S, sc, k, n_mix, n_in)
    dot = layer2(S, sc, k, n_mix) if second else sc.dots[k, 0]
    sc.dots[k, n_mix] = dot
    return dot


@njit(cache=True, inline="always")
def learn(S, sc, k, b, n_mix, n_in, n_ctx, n_rows):
    """Element k's coded bit b teaches everything that predicted it: the first layer's weight
    sets, the second layer's, every context's slot and map, and the APM rows in ``sc.rows[k]``;
    then b is appended to the element's node."""
    lr, lr_f = S.lr, S.lr_f
    x, weights, weights_f, squash, sets, dots = sc.x, S.weights, S.weights_f, S.squash, sc.sets, sc.dots
    counts, maps, slots, apm, rows = S.counts, S.maps, sc.slots, S.apm, sc.rows
    for mi in range(n_mix):
        ws = sets[k, mi]
        err = (b << 16) - squash[dots[k, mi] + ST_MAX]
        for i in range(n_in):
            weights[ws, i] += (x[k, i] * err * lr) >> 18
    err = (b << 16) - squash[dots[k, n_mix] + ST_MAX]
    fs = sc.fsel[k]
    for mi in range(n_mix):
        weights_f[fs, mi] += (dots[k, mi] * err * lr_f) >> 18
    for c in range(n_ctx):
        learn_slot(counts, maps, c, slots[k, c], b)
    for r in range(n_rows):
        learn_row(apm, rows[k, r], b, APM_LIMIT)
    sc.node[k] = 2 * sc.node[k] + b
