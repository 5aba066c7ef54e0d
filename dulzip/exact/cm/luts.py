"""The stretch and squash tables every context mixer works in: one builder, one checksum.

stretch maps a probability p in 1/65536 to its logit ln(p / (1 - p)) in 1/256 units, clamped
to +-ST_MAX; squash is its inverse on the clamped range, clamped to 1..65535 (a coded bit is
never certain). Mixers add and compare logits in these integer units, so both tables must be
the same integers on every machine: the float64 build (fast) is used only when it gives
exactly the integers of the correctly rounded decimal build, recorded as LUT_SHA256.

The text mixer's model weights ship their own copy of these tables ("lut.stretch",
"lut.squash", made at export by :func:`dulzip.exact.textmix.mixer_luts`, now from this
builder). The char-RNN's shipped copy is identical to :func:`tables` (compared array by array
in tests/test_cm.py); the text mixer still reads the copy a model ships, which is what its
files were coded with.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np

ST_MAX = 4095  # stretched probabilities: 1/256 logit units, |st| <= 16 logits
# sha256 of the stretch table then the squash table (int64, little-endian), as built by
# build_decimal: the fast float64 build is used only when it gives exactly these
LUT_SHA256 = "2cd1afa69f6f333c221a37038be499aa28bb85a9bd58d47ddbf4187ebd78fbce"


def build_float() -> tuple[np.ndarray, np.ndarray]:
    """(stretch, squash) from float64 arithmetic (fast; checked by :func:`tables`)."""
    p = (np.arange(1 << 16, dtype=np.float64) + 0.5) / (1 << 16)
    st = np.arange(-ST_MAX, ST_MAX + 1, dtype=np.float64) / 256
    # exact-ok: checked against LUT_SHA256 (else rebuilt with correctly rounded decimals)
    stretch = np.clip(np.round(256 * np.log(p / (1 - p))), -ST_MAX, ST_MAX).astype(np.int64)  # exact-ok
    squash = np.clip(np.round(65536 / (1 + np.exp(-st))), 1, 65535).astype(np.int64)  # exact-ok
    return stretch, squash


def build_decimal() -> tuple[np.ndarray, np.ndarray]:
    """The same tables from correctly rounded decimal arithmetic (slow: about 2 s)."""
    from decimal import ROUND_HALF_EVEN, Context, Decimal
    ctx = Context(prec=34)
    one, half = Decimal(1), Decimal("0.5")

    def rnd(d):
        return int(d.to_integral_value(rounding=ROUND_HALF_EVEN))
    stretch = []
    for i in range(1 << 16):
        p = ctx.divide(Decimal(i) + half, 65536)
        stretch.append(min(max(rnd(256 * ctx.ln(ctx.divide(p, one - p))), -ST_MAX), ST_MAX))
    squash = [min(max(rnd(ctx.divide(65536, one + ctx.exp(ctx.divide(Decimal(-s), 256)))), 1), 65535)
              for s in range(-ST_MAX, ST_MAX + 1)]
    return np.array(stretch, dtype=np.int64), np.array(squash, dtype=np.int64)


def digest(stretch: np.ndarray, squash: np.ndarray) -> str:
    """The tables' sha256 as LUT_SHA256 records it."""
    return hashlib.sha256(stretch.astype("<i8").tobytes() + squash.astype("<i8").tobytes()).hexdigest()


@lru_cache(maxsize=1)
def tables() -> tuple[np.ndarray, np.ndarray]:
    """(stretch, squash) as int64 arrays: the same integers everywhere (shared: do not write)."""
    out = build_float()
    if digest(*out) != LUT_SHA256:
        out = build_decimal()
        if digest(*out) != LUT_SHA256:
            raise RuntimeError("the context mixer's lookup tables do not match their checksum")
    return out
