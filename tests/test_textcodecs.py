"""Every baseline text codec round-trips."""
import random

import pytest

from dulzip.bench.textcodecs import text_codecs

TEXT = b"It was the best of times, it was the worst of times.\n" * 40 + "caf\u00e9 \u2014 na\u00efve\n".encode()
INPUTS = [b"", b"x", TEXT, random.Random(0).randbytes(5000)]


@pytest.mark.parametrize("codec", text_codecs(), ids=lambda c: c.name)
def test_roundtrip(codec):
    for data in INPUTS:
        assert codec.decode(codec.encode(data)) == data


def test_names():
    names = [c.name for c in text_codecs()]
    assert names[:2] == ["xz -9e", "zstd --ultra -22 --long"] and names[-1] == "zstd -19"
    assert "bzip2 -9" in names
