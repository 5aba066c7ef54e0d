"""The adaptive-filter audio coder (dulzip.codecs.cascade): round trips of every layout it takes,
its settings and streams checked, damaged files refused, and no network (nor torch) needed."""
from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest

from dulzip import api
from dulzip.codecs import cascade
from dulzip.coding import zstdio
from dulzip.container import pack, unpack
from dulzip.errors import CorruptDataError, DulzipError, FormatError, UsageError
from dulzip.formats import wav
from dulzip.schema import validate
from tests.fuzzing import _wav, _wav_slice

RNG = np.random.default_rng(7)


def speech(n: int = 6000) -> np.ndarray:
    return _wav_slice("asterisk-confbridge-participants.wav", 3000, n)


def music(n: int = 6000) -> np.ndarray:
    return _wav_slice("fluidr3-0507-Clarinet_E4_L.wav", 2000, n)


def stereo(n: int = 6000) -> np.ndarray:
    left = music(n)[:, 0].astype(np.int32)
    right = (left * 3) // 4 + RNG.integers(-40, 40, n)
    return np.stack([left, right], 1).astype(np.int16)


def round_trip(data: bytes, **opts) -> bytes:
    blob = api.compress(data, api.Options(**opts))
    assert api.decompress(blob) == data
    return blob


def header(blob: bytes) -> dict:
    return unpack(blob).header


@pytest.mark.parametrize("rate", [8000, 44100])
def test_mono_and_stereo_round_trip_without_a_model(rate):
    for samples in (speech(), stereo()):
        data = _wav(samples, rate)
        blob = round_trip(data, fallback=False)
        h = header(blob)
        assert "model" not in h and h["layout"]["cascade"] == cascade.CASCADE_VERSION
        assert {s["coder"] for s in h["streams"] if s["name"].startswith("audio")} == {"cascade"}
        assert len(blob) < 0.8 * len(data)


def test_24_bit_and_many_channels():
    """24-bit samples over their whole range, 5 channels (two pairs and one alone), 8-bit."""
    n = 3000
    base = music(n)[:, 0].astype(np.int32) << 8
    chans = [base, base // 2 + RNG.integers(-300, 300, n), -base, base // 3, RNG.integers(-1 << 23, 1 << 23, n)]
    x = np.stack(chans, 1).astype(np.int32)
    x[:5, 4] = [-(1 << 23), (1 << 23) - 1, -(1 << 23), (1 << 23) - 1, 0]
    data = _wav(x, 48000, bits=24)
    blob = round_trip(data, fallback=False)
    h = header(blob)
    assert h["layout"]["bits"] == 24 and h["layout"]["channels"] == 5
    assert sum(s["name"].startswith("audio") for s in h["streams"]) == 3  # pairs, then the fifth alone
    eight = (speech(2000) // 256).astype(np.int16)
    round_trip(_wav(eight, 8000, bits=8), fallback=False)


def test_edges_of_the_sample_range_and_silence():
    n = 4000
    square = np.where((np.arange(n) // 37) % 2 == 0, 32767, -32768).astype(np.int16)
    for x in (np.zeros((n, 2), np.int16), np.stack([square, square], 1), np.stack([square, -1 - square], 1),
              RNG.integers(-32768, 32768, (n, 1)).astype(np.int16)):
        round_trip(_wav(x, 44100), fallback=False)
    round_trip(_wav(np.zeros((0, 2), np.int16), 44100))
    round_trip(_wav(np.zeros((1, 1), np.int16), 44100))


def test_identical_channels_cost_about_one():
    """Channel 1 goes as its difference from channel 0 where that varies less: a mono signal
    in both channels costs little more than once."""
    x = speech(8000)
    one = len(api.compress(_wav(x, 8000)))
    two = len(api.compress(_wav(np.concatenate([x, x], 1), 8000)))
    assert two < 1.15 * one


def test_blocks_and_threads_do_not_change_the_output():
    x = stereo(5000).astype(np.int16)
    one = cascade.encode_samples(x, 16, 44100, block=1200, threads=1)
    two = cascade.encode_samples(x, 16, 44100, block=1200, threads=2)
    assert [s.payload for s in one] == [s.payload for s in two] and len(one) == 5
    back = cascade.decode_samples(two, len(x), 2, 16, 1200, threads=2)
    assert np.array_equal(back, x)


def test_a_block_carries_its_settings():
    """A block decodes by the settings in its payload, not by today's defaults."""
    x = speech(3000).astype(np.int64)
    cfg = cascade.settings(16, 8000, 1)
    cfg[cascade.HEAD + 1] += 1  # another step for the first stage
    payload = cascade.encode_block(x, cfg)
    assert np.array_equal(cascade.decode_block(payload, len(x), 1, 16), x)
    assert payload != cascade.encode_block(x, cascade.settings(16, 8000, 1))


@pytest.mark.parametrize("change", ["bits", "stages", "step", "cross-on-mono", "stereo", "truncated"])
def test_settings_it_does_not_run_are_refused(change):
    x = speech(500).astype(np.int64)
    cfg = cascade.settings(16, 44100, 1)
    payload = bytearray(cascade.encode_block(x, cfg))
    k = payload[0]
    fields = np.frombuffer(bytes(payload[1:1 + 2 * k]), dtype="<u2").copy()
    if change == "truncated":
        payload = payload[:5]
    else:
        index, value = {"bits": (cascade.BITS, 24), "stages": (cascade.N_STAGES, 9),
                        "step": (cascade.HEAD + 1, 60), "cross-on-mono": (cascade.CROSS, 2),
                        "stereo": (cascade.STEREO, 1)}[change]
        fields[index] = value
        payload[1:1 + 2 * k] = fields.astype("<u2").tobytes()
    with pytest.raises(CorruptDataError):
        cascade.decode_block(bytes(payload), len(x), 1, 16)


def test_damaged_files_are_refused():
    data = _wav(stereo(6000), 44100)
    blob = api.compress(data, api.Options(fallback=False))
    for pos in range(len(blob) - 400, len(blob), 37):
        bad = bytearray(blob)
        bad[pos] ^= 0x24
        try:
            out = api.decompress(bytes(bad))
        except DulzipError:
            continue
        assert out == data  # a flip the format does not read (never a wrong file)
    with pytest.raises(DulzipError):
        api.decompress(blob[:-9])


def test_the_header_is_checked():
    blob = api.compress(_wav(speech(2000), 8000), api.Options(fallback=False))
    c = unpack(blob)
    for change, match in ((lambda h: h.update(model={"name": "wavenet", "sha256": "ab" * 8}), "model"),
                          (lambda h: h["layout"].update(stereo="side"), "stereo"),
                          (lambda h: h["layout"].update(cascade=2), "cascade"),
                          (lambda h: h["layout"].update(channels=9), "channels"),
                          (lambda h: h["layout"].update(bits=32), "bits"),
                          (lambda h: h["streams"][-1].update(coder="model"), "coder")):
        h = unpack(blob).header
        change(h)
        with pytest.raises(FormatError, match=match):
            validate(h)
    assert api.decompress(pack(c)) == api.decompress(blob)


def test_wavenet_asked_for_by_name_refuses_what_it_cannot_code():
    data = _wav(np.zeros((100, 3), np.int16), 44100)
    with pytest.raises(UsageError, match="mono or stereo"):
        api.compress(data, api.Options(model="wavenet"))


def test_decoding_needs_no_torch(tmp_path):
    path = tmp_path / "a.wav"
    path.write_bytes(_wav(stereo(3000), 44100))
    blob = api.compress(path.read_bytes())
    (tmp_path / "a.dlz").write_bytes(blob)
    code = ("import sys; from dulzip import api; "
            f"d = api.decompress(open({str(tmp_path / 'a.dlz')!r}, 'rb').read()); "
            f"assert d == open({str(path)!r}, 'rb').read(); "
            "api.compress(d); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_wav_24_bit_parses_byte_for_byte():
    x = RNG.integers(-(1 << 23), 1 << 23, (300, 2)).astype(np.int32)
    data = _wav(x, 96000, bits=24)
    w = wav.parse_wav(data)
    assert w.bits == 24 and w.samples.dtype == np.int32 and np.array_equal(w.samples, x)
    assert wav.build_wav(w) == data


def _stream_compress(data: bytes, **opts) -> bytes:
    out = io.BytesIO()
    api.compress_stream(io.BytesIO(data), out, api.Options(**opts), len(data))
    return out.getvalue()


def _stream_decompress(blob: bytes, **opts) -> bytes:
    out = io.BytesIO()
    api.decompress_stream(io.BytesIO(blob), out, api.Options(**opts))
    return out.getvalue()


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_a_streamed_wav_is_the_whole_files_twin(monkeypatch, threads):
    """Block by block (several blocks, a batch per thread count), the streamed file is the
    one a whole compress makes, and it decodes both ways."""
    monkeypatch.setattr(cascade, "BLOCK", 1000)
    x = np.concatenate([stereo(3000), np.zeros((500, 2), np.int16)])
    for data in (_wav(x, 44100), _wav(x, 44100, extra=b"INFOsome words") + b"junk after the samples",
                 _wav(np.concatenate([x, x[:, :1]], 1), 22050)):
        blob = _stream_compress(data, threads=threads)
        assert blob == api.compress(data, api.Options(threads=threads))
        h = header(blob)
        assert h["layout"]["block"] == 1000
        assert _stream_decompress(blob, threads=threads) == data == api.decompress(blob)


def test_streamed_damage_is_refused(monkeypatch):
    monkeypatch.setattr(cascade, "BLOCK", 1000)
    data = _wav(stereo(4000), 44100)
    blob = _stream_compress(data)
    for cut in (blob[:-5], blob + b"x"):
        with pytest.raises(DulzipError):
            _stream_decompress(cut)
    c = unpack(blob)
    c.header["layout"]["frames"] += 1000  # a block more than the streams hold
    c.header["length"] += 4000
    with pytest.raises(DulzipError):
        _stream_decompress(pack(c))


def test_a_wav_that_lies_about_its_size_streams_as_bytes():
    data = _wav(stereo(2000), 44100)
    bad = data[:-100]  # the data chunk claims 100 bytes more than there are
    blob = _stream_compress(bad)
    assert header(blob)["kind"] == "bytes" and _stream_decompress(blob) == bad


def test_samples_on_a_grid_are_coded_as_its_indices():
    """A low-resolution recording scaled by a gain that is not an integer (values on a grid of
    step 40.6): coded as grid indices, far smaller than as samples, and back exactly."""
    n = 6000
    low = (music(n)[:, 0].astype(np.int64) // 256)  # about 8-bit
    x = np.round(low * 40.6).astype(np.int16)[:, None]
    grid = cascade.find_grid(x[:, 0].astype(np.int64))
    assert grid is not None and np.array_equal(grid[1], np.round((grid[0] - grid[0][0]) / 40.6).astype(int))
    data = _wav(np.concatenate([x, np.round(low[:, None] * -40.6).astype(np.int16)], 1), 44100)
    blob = round_trip(data, fallback=False)
    plain = cascade.encode_block(x.astype(np.int64), cascade.settings(16, 44100, 1))
    mapped = cascade.encode_frames(x, 16, 44100)[0].payload
    assert len(mapped) < 0.75 * len(plain) and len(blob) < 0.5 * len(data)
    assert cascade.find_grid(music(n)[:, 0].astype(np.int64)) is None  # an ordinary recording is no grid


@pytest.mark.parametrize("damage", ["mask", "count", "step", "index"])
def test_damaged_grids_are_refused(damage):
    low = (music(3000)[:, 0].astype(np.int64) // 256)
    x = np.round(low * 40.6).astype(np.int16)[:, None]
    payload = bytearray(cascade.encode_frames(x, 16, 44100)[0].payload)
    k = payload[0]
    at = 1 + 2 * k  # the grids' section
    assert payload[at] == 1
    if damage == "mask":
        payload[at] = 3  # a second channel in a mono block
    else:
        n = int.from_bytes(payload[at + 1:at + 5], "little")
        t = np.frombuffer(zstdio.decompress(bytes(payload[at + 5:at + 5 + n]), 1 << 20, "t", exact=False),
                          dtype="<i8").copy()
        if damage == "count":
            t[0] += 1
        elif damage == "step":
            t[5] = 0
        else:
            t[-1] = 1 << 20
        table = zstdio.compress(t.astype("<i8").tobytes())
        payload[at + 1:at + 5 + n] = len(table).to_bytes(4, "little") + table
    with pytest.raises(CorruptDataError):
        cascade.decode_block(bytes(payload), len(x), 1, 16)
