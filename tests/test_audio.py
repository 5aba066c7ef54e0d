"""The audio path: WAV round trips through the model, layout, exactness of the batched encoder
pass against the cached decode step, causality, bad input. A tiny random WaveNet keeps these
fast; the shipped models are used by test_shipped_model.py."""
from __future__ import annotations

import io
import struct
import subprocess
import sys
import wave

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dulzip import api, transforms
from dulzip.codecs.audio import AudioCoder, AudioLayout, decode_audio, encode_audio
from dulzip.errors import DulzipError, UsageError
from dulzip.exact.wavenet import ExactWaveNet
from dulzip.formats.wav import parse_wav
from dulzip.models.wavenet import WaveNet, WaveNetConfig, export
from tests.conftest import DATA, TINY_AUDIO, TINY_AUDIO_RES, TINY_AUDIO_SEG, tiny_wavenet

MODEL_ONLY = api.Options(model="wavenet", fallback=False)
SPEECH = DATA / "asterisk-confbridge-participants.wav"
MUSIC = DATA / "fluidr3-0507-Clarinet_E4_L.wav"


def make_wav(samples: np.ndarray, bits: int = 16, rate: int = 8000) -> bytes:
    """samples (frames, channels): int16 levels (16-bit) or -128..127 (8-bit)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(samples.shape[1])
        w.setsampwidth(bits // 8)
        w.setframerate(rate)
        raw = samples.astype("<i2").tobytes() if bits == 16 else (samples + 128).astype(np.uint8).tobytes()
        w.writeframes(raw)
    return buf.getvalue()


def speech(n: int, channels: int = 1) -> np.ndarray:
    x = parse_wav(SPEECH.read_bytes()).samples[:, 0]
    x = np.tile(x, n // len(x) + 1)[:n]
    if channels == 2:
        return np.stack([x, (x // 2 + 17).astype(np.int16)], axis=1)
    return x[:, None].copy()


def _round_trip(data: bytes, opts: api.Options = MODEL_ONLY) -> bytes:
    blob = api.compress(data, opts)
    assert api.decompress(blob) == data
    return blob


@pytest.mark.parametrize("samples,bits", [
    (speech(3000), 16), (speech(2500, 2), 16), (np.zeros((0, 1), np.int16), 16), (speech(1), 16),
    (speech(2, 2), 16), ((speech(3000) // 256).astype(np.int16), 8), ((speech(700, 2) // 256).astype(np.int16), 8),
    (np.full((900, 1), -32768, np.int16), 16), (np.full((900, 1), 32767, np.int16), 16),
], ids=["mono16", "stereo16", "empty", "one", "two-stereo", "mono8", "stereo8", "min", "max"])
def test_round_trip_through_model(audio_models, samples, bits):
    blob = _round_trip(make_wav(samples, bits))
    assert api.describe(blob)["kind"] == "wav"


def test_odd_chunk_layout_round_trip(audio_models):
    """LIST before and after the data, an odd-sized chunk with its pad byte, a partial frame."""
    base = make_wav(speech(1200))
    data_at = base.index(b"data")
    pcm = base[data_at + 8:] + b"\x01"  # a partial trailing frame
    lst = b"LIST" + struct.pack("<I", 5) + b"INFO!" + b"\x00"
    body = base[12:data_at] + lst + b"data" + struct.pack("<I", len(pcm)) + pcm + b"\x00" + lst
    data = b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body
    blob = _round_trip(data)
    assert api.describe(blob)["kind"] == "wav"


def test_real_files_round_trip(audio_models):
    for p in (SPEECH, MUSIC):
        _round_trip(p.read_bytes()[:60000 if p == MUSIC else None] if p == SPEECH else p.read_bytes())


def test_blocks_and_segments():
    lay = AudioLayout(block=1000, streams=4, seg_min=100)
    assert lay.blocks(2500) == [(0, 1000), (1000, 1000), (2000, 500)]
    lens = lay.segments(1000)
    assert lens.sum() == 1000 and len(lens) == 4
    assert list(lay.segments(150)) == [150]


def test_small_blocks_round_trip_and_zstd_fallback(audio_models):
    from dulzip import zoo
    net, _ = zoo.load("wavenet")
    lay = AudioLayout(block=700, streams=3, seg_min=50)
    # the end: a random cycle of 37 samples, longer than any predictor's reach, which zstd's
    # matches code in a few bytes
    cycle = np.random.default_rng(0).integers(-20000, 20000, (37, 2))
    x = np.concatenate([speech(1500, 2).astype(np.int64), np.tile(cycle, (12, 1))[:300]])
    streams = encode_audio(x, 16, net, lay)
    coders = [s.coder for s in streams]
    assert coders[-1] == coders[-4] == "zstd" and set(coders) <= {"model", "lpc", "zstd"}
    assert np.array_equal(decode_audio(streams, len(x), 2, 16, net, lay), x)


def _exact(seed: int = 0, cfg: dict = TINY_AUDIO) -> tuple[WaveNet, ExactWaveNet]:
    m = tiny_wavenet(seed, cfg)
    return m, ExactWaveNet(export(m), cfg)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("cfg", [TINY_AUDIO, TINY_AUDIO_RES, TINY_AUDIO_SEG],
                         ids=["shared", "residuals", "own-predictor"])
def test_full_pass_equals_cached_step(threads, cfg):
    """The encoder's batched pass and the decoder's cached step give the same integers, for any
    batch size (here 1 and 3, segments of different content) and thread count."""
    from dulzip.models.wavenet import segment_lpc
    torch.set_num_threads(threads)
    _, net = _exact(cfg=cfg)
    x = torch.from_numpy(speech(600, 2).T.astype(np.int64).copy())
    x = torch.cat([x, -x[:1] - 1])  # (3, 600)
    own = segment_lpc(x, cfg.get("seg_order", 0)) if cfg.get("seg_order") else None
    full = net.params_full(x, own)
    for rows in ([0], [0, 1, 2]):
        state = net.start(len(rows), None if own is None else own[rows])
        prev = torch.zeros(len(rows), dtype=torch.int64)
        for t in range(x.shape[1]):
            step = net.step(state, prev)
            for a, b in zip(step, full):
                assert torch.equal(torch.as_tensor(a), b[rows, t]), (rows, t)
            prev = x[rows, t]
    single = net.params_full(x[1:2], None if own is None else own[1:2])
    assert all(torch.equal(a, b[1:2]) for a, b in zip(single, full))


@pytest.mark.parametrize("cfg", [TINY_AUDIO, TINY_AUDIO_RES, TINY_AUDIO_SEG],
                         ids=["shared", "residuals", "own-predictor"])
def test_exact_model_close_to_float(cfg):
    """The integer network and tables code close to the float model's own estimate."""
    m, net = _exact(cfg=cfg)
    x = torch.from_numpy(speech(2000).T.astype(np.int64).copy())
    with torch.no_grad():
        float_bits = m.bits(x).mean().item()
    coder = AudioCoder(net, AudioLayout(seg_min=4096), 16)
    s = coder.encode_block(x[0].numpy(), allow_zstd=False)
    assert abs(s.est_bits / x.shape[1] - float_bits) < 0.05 * float_bits
    assert abs(8 * len(s.payload) - s.est_bits) < 0.01 * s.est_bits + 64


def test_causality_by_gradients():
    """d(output t) / d(input s) is zero for s >= t: sample t is predicted from samples < t only."""
    torch.manual_seed(0)
    m = WaveNet(WaveNetConfig(**TINY_AUDIO))
    L = 64
    c = torch.zeros(1, L, requires_grad=True)
    orig = m.companded
    m.companded = lambda x: c + 0 * orig(x)  # a differentiable stand-in for the companded input
    lin = m.linear
    xf = torch.zeros(1, L, requires_grad=True)
    m.linear = lambda x, seg=None: lin(xf, seg)
    for t in (0, 10, 37, L - 1):
        y = m.params(torch.zeros(1, L, dtype=torch.int64))
        out = sum(v[0, t].sum() for v in y)
        gc, gx = torch.autograd.grad(out, (c, xf), allow_unused=True)
        assert gc is None or gc[0, t:].abs().sum() == 0
        assert gx is None or gx[0, t:].abs().sum() == 0
        assert gc is not None and (t == 0 or gc[0, :t].abs().sum() > 0)


def test_list_describes_audio(audio_models):
    from dulzip.cli import describe_lines
    text = "\n".join(describe_lines("x", api.compress(make_wav(speech(1000), rate=11025), MODEL_ONLY)))
    assert "bits/sample" in text and "11025 Hz" in text and "16-bit" in text


def test_auto_picks_audio_and_falls_back(audio_models):
    data = make_wav(speech(2000))
    blob = api.compress(data)  # auto: the audio model, or zstd where that is smaller
    assert api.decompress(blob) == data
    assert api.describe(api.compress(data, MODEL_ONLY))["model"]["name"] == "wavenet"
    assert api.choose_audio_model(8000) == "wavenet" and api.choose_audio_model(44100) == "wavenet-music"


@pytest.mark.parametrize("channels", [1, 2])
def test_music_model_round_trip(audio_models, channels):
    """The model that sends each segment's own predictor, on real music (44.1 kHz)."""
    w = parse_wav(MUSIC.read_bytes())
    x = np.tile(w.samples, (1, channels))[:9000]
    blob = _round_trip(make_wav(x, rate=44100), api.Options(model="wavenet-music", fallback=False))
    h = api.describe(blob)
    assert h["model"]["name"] == "wavenet-music" and h["layout"]["seg_min"] == 8192


def test_not_modelled_wavs_go_through_bytes(audio_models):
    """Under 'auto' a WAV the model cannot take is stored by zstd; asked for by name, the
    audio model refuses it (an explicit -m is never silently zstd)."""
    for data in (make_wav(speech(100))[:-7] + b"\xff" * 3,  # lying data size -> bytes
                 b"RIFF\x10\x00\x00\x00WAVEjunkjunk"):
        blob = api.compress(data)
        assert api.describe(blob)["kind"] == "bytes" and api.decompress(blob) == data
        with pytest.raises(UsageError, match="codes 8/16-bit mono or stereo PCM WAV files"):
            api.compress(data, api.Options(model="wavenet"))


def test_other_weights_refused(audio_models, tmp_path, monkeypatch):
    from tests.conftest import write_audio_model
    blob = api.compress(make_wav(speech(500)), MODEL_ONLY)
    other = tmp_path / "other"
    write_audio_model(other, seed=1)
    monkeypatch.setenv("DULZIP_MODELS", str(other))
    with pytest.raises(DulzipError, match="other 'wavenet' weights"):
        api.decompress(blob)


def test_damaged_file_is_an_error(audio_models):
    blob = bytearray(api.compress(make_wav(speech(3000)), MODEL_ONLY))
    for pos in (len(blob) - 20, len(blob) // 2):
        bad = bytearray(blob)
        bad[pos] ^= 0x10
        with pytest.raises(DulzipError):
            api.decompress(bytes(bad))


def test_cli_round_trip_and_list(audio_models, tmp_path):
    src = tmp_path / "s.wav"
    src.write_bytes(make_wav(speech(2000)))
    run = lambda *a: subprocess.run([sys.executable, "-m", "dulzip.cli", *a], capture_output=True, text=True)  # noqa: E731
    r = run("compress", "-m", "wavenet", str(src))
    assert r.returncode == 0, r.stderr
    r = run("list", str(src) + ".dlz")
    assert r.returncode == 0 and "content:" in r.stdout
    src.rename(tmp_path / "orig.wav")
    r = run("decompress", str(src) + ".dlz")
    assert r.returncode == 0, r.stderr
    assert src.read_bytes() == (tmp_path / "orig.wav").read_bytes()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 400), st.sampled_from([1, 2]), st.sampled_from([8, 16]), st.integers(0, 2 ** 31))
def test_hypothesis_round_trip(audio_models, n, channels, bits, seed):
    rng = np.random.default_rng(seed)
    lim = 128 if bits == 8 else 32768
    walk = np.cumsum(rng.integers(-lim // 16, lim // 16, (n, channels)), axis=0)
    samples = np.clip(walk, -lim, lim - 1).astype(np.int16)
    _round_trip(make_wav(samples, bits, int(rng.integers(1000, 48000))))


def test_cli_bad_audio_file_is_one_line_error(audio_models, tmp_path):
    """A damaged or cut .dlz of a WAV: one line on stderr, exit 1, no output file left."""
    blob = api.compress(make_wav(speech(3000)), MODEL_ONLY)
    for name, bad in (("cut", blob[:len(blob) - 40]), ("flipped", blob[:-30] + bytes([blob[-30] ^ 4]) + blob[-29:])):
        src = tmp_path / f"{name}.wav.dlz"
        src.write_bytes(bad)
        r = subprocess.run([sys.executable, "-m", "dulzip.cli", "decompress", str(src)], capture_output=True, text=True)
        assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
        assert not (tmp_path / f"{name}.wav").exists()


def test_canonical_header_is_not_stored(audio_models):
    """The usual 44-byte header is re-created from the layout; any other is kept verbatim."""
    data = make_wav(speech(800))
    h = api.describe(_round_trip(data))
    assert h["layout"].get("canonical") and "inline" not in h
    odd = bytearray(data)
    odd[28:32] = (12345).to_bytes(4, "little")  # a byte rate that disagrees with the format
    h = api.describe(_round_trip(bytes(odd)))
    assert not h["layout"].get("canonical") and "wav.prefix" in h["inline"]


def test_predictor_varints_round_trip_and_reject_damage():
    from dulzip.codecs.audio import pack_ints, unpack_ints
    v = np.array([0, 1, -1, 63, -64, 64, 2 ** 18, -(2 ** 18), 12345], dtype=np.int64)
    assert np.array_equal(unpack_ints(pack_ints(v), len(v)), v)
    with pytest.raises(DulzipError):
        unpack_ints(pack_ints(v)[:-1], len(v))
    with pytest.raises(DulzipError):
        unpack_ints(pack_ints(v), len(v) + 1)


@pytest.mark.parametrize("bits", [8, 16])
def test_stereo_side_is_exactly_invertible(bits):
    lim = 128 if bits == 8 else 32768
    rng = np.random.default_rng(0)
    x = rng.integers(-lim, lim, (500, 2)).astype(np.int16)
    x[:4] = [[lim - 1, -lim], [-lim, lim - 1], [lim - 1, lim - 1], [-lim, -lim]]  # the wrap-around edges
    side = transforms.stereo_side(x, bits)
    assert side.min() >= -lim and side.max() < lim
    assert np.array_equal(transforms.stereo_side(side, bits, inverse=True), x)


def test_stereo_mode_follows_the_input(audio_models):
    left = speech(3000)[:, 0]
    correlated = np.stack([left, left // 2 + left // 4], axis=1).astype(np.int16)
    independent = np.stack([left, np.roll(left, 1234)], axis=1)
    for samples, mode in ((correlated, "side"), (independent, "lr")):
        blob = _round_trip(make_wav(samples))
        assert api.describe(blob)["layout"].get("stereo", "lr") == mode


@pytest.mark.parametrize("choice", ["lr", "side"])
def test_a_forced_stereo_choice_is_kept_and_decodes(audio_models, choice):
    left = speech(2000)[:, 0]
    data = make_wav(np.stack([left, np.roll(left, 777)], axis=1))
    blob = api.compress(data, api.Options(model="wavenet-music", stereo=choice, fallback=False))
    assert api.describe(blob)["layout"].get("stereo", "lr") == choice
    assert api.decompress(blob) == data
