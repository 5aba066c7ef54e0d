"""The plain linear-prediction coder of audio blocks (dulzip.codecs.lpc): exact round trips of
any samples, damaged blocks refused, and the audio codec keeping it where it is smaller."""
from __future__ import annotations

import numpy as np
import pytest

from dulzip import api
from dulzip.codecs.lpc import FRAME, decode_lpc, encode_lpc
from dulzip.container import unpack
from dulzip.errors import CorruptDataError, FormatError

from tests.test_audio import make_wav


def _signals():
    rng = np.random.default_rng(0)
    t = np.arange(3 * FRAME + 123)
    tone = (12000 * np.sin(t * 0.031) + 3000 * np.sin(t * 0.47)).astype(np.int64)
    return {
        "tone+noise": tone + rng.integers(-40, 41, len(t)),
        "white": rng.integers(-32768, 32768, 5000),
        "extremes": np.resize(np.array([-32768, 32767]), 2 * FRAME + 7),
        "silence": np.zeros(FRAME, dtype=np.int64),
        "short": np.array([5, -3, 32767, -32768, 0]),
        "empty": np.zeros(0, dtype=np.int64),
        "bytes": rng.integers(0, 256, 999),
    }


@pytest.mark.parametrize("name", list(_signals()))
def test_round_trip(name):
    x = _signals()[name]
    payload = encode_lpc(x)
    assert np.array_equal(decode_lpc(payload, len(x)), x)


def test_a_predictable_signal_costs_far_less_than_its_samples():
    x = _signals()["tone+noise"]
    assert len(encode_lpc(x)) < 0.6 * len(x) * 2  # 16-bit samples: noise of +-40 is under 8 bits a sample


def test_damaged_blocks_are_refused():
    x = _signals()["tone+noise"]
    p = encode_lpc(x)
    for bad in (p[:3], p[:len(p) // 2], p + b"\0", p[:4] + bytes([200]) + p[5:]):
        with pytest.raises(CorruptDataError):
            decode_lpc(bad, len(x))


def test_the_audio_codec_keeps_lpc_where_it_is_smaller():
    """A synthetic tone (as synthetic speech, which the models lose to FLAC on) goes to the lpc
    coder under a WaveNet, and comes back byte for byte."""
    t = np.arange(40000)
    x = (9000 * np.sin(t * 0.05) + 2000 * np.sin(t * 0.0071)).astype(np.int16)[:, None]
    data = make_wav(x, 16, 16000)
    blob = api.compress(data, api.Options(model="wavenet"))
    assert api.decompress(blob) == data
    coders = {s["coder"] for s in unpack(blob).header["streams"] if s["name"].startswith("audio")}
    assert coders == {"lpc"}


def test_lpc_streams_only_in_wav_files():
    from dulzip.schema import validate
    blob = api.compress(b"hello " * 100, api.Options(model="zstd"))
    h = unpack(blob).header
    h["streams"][0]["coder"] = "lpc"
    with pytest.raises(FormatError, match="lpc"):
        validate(h)


def test_random_bytes_never_crash_the_decoder():
    """A hostile block decodes to some samples (the file's checksum then refuses them) or is
    refused as damaged: never another error (a wild predictor, residuals past every bound)."""
    rng = np.random.default_rng(1)
    n = FRAME + 100
    for i in range(40):
        order = [0, 1, 2, 4, 8, 12, 16, 24, 32][i % 9]
        side = b"".join(bytes([order, int(rng.integers(0, 31))]) + rng.integers(-32768, 32768, order).astype("<i2").tobytes()
                        for _ in range(2))
        payload = len(side).to_bytes(4, "little") + side + rng.integers(0, 256, int(rng.integers(0, 3000))).astype(np.uint8).tobytes()
        try:
            decode_lpc(payload, n)
        except CorruptDataError:
            pass


def test_a_wav_of_plain_blocks_decodes_without_its_model(monkeypatch):
    """Every block lpc- or zstd-coded: the decoder loads no network (the model may even be
    missing), and cuts the blocks as the encoder's layout does."""
    from dulzip import zoo
    from dulzip.codecs.audio import AudioLayout
    t = np.arange(30000)
    x = (9000 * np.sin(t * 0.05)).astype(np.int16)
    data = make_wav(np.stack([x, x // 3], axis=1), 16, 16000)
    blob = api.compress(data, api.Options(model="wavenet-music"))
    assert {s["coder"] for s in unpack(blob).header["streams"] if s["name"].startswith("audio")} <= {"lpc", "zstd"}

    def no_model(*a, **k):
        raise AssertionError("a model was loaded")
    monkeypatch.setattr(zoo, "load", no_model)
    assert api.decompress(blob) == data
    assert AudioLayout(block=1000).blocks(2500) == [(0, 1000), (1000, 1000), (2000, 500)]
