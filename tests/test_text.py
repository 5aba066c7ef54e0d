"""The text path: round trips, layout, exactness of encoder and decoder tables, causality,
sniffing, bad input. A tiny random char-RNN keeps these fast; the shipped model is used by
test_shipped_model.py."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dulzip import api
from dulzip.codecs import text as text_codec
from dulzip.codecs.text import Layout, decode_text, encode_text
from dulzip.errors import DulzipError
from dulzip.models.charrnn import START, CharRNN, CharRNNConfig
from tests.conftest import DATA

PROSE = ("It was the best of times, it was the worst of times, it was the age of wisdom, it was the "
         "age of foolishness, it was the epoch of belief, it was the epoch of incredulity.\n").encode() * 6
CODE = (Path(api.__file__).read_bytes())[:5000]
MODEL_ONLY = api.Options(model="charrnn", fallback=False)


def _round_trip(data: bytes, opts: api.Options = MODEL_ONLY) -> bytes:
    blob = api.compress(data, opts)
    assert api.decompress(blob) == data
    return blob


@pytest.mark.parametrize("data", [
    b"", b"a", b"\n", PROSE, CODE, "naïve café — 東京 ✓\n".encode() * 20,
    PROSE.replace(b"\n", b"\r\n"),
    bytes(range(256)) * 3,  # not UTF-8
    PROSE[:700] + bytes(np.random.default_rng(0).integers(0, 256, 900, dtype=np.uint8)) + PROSE[:500],
], ids=["empty", "one", "newline", "prose", "code", "utf8", "crlf", "binary", "mixed"])
def test_round_trips(text_models, data):
    blob = _round_trip(data)
    h = api.describe(blob)
    assert h["kind"] == "text" and h["model"]["name"] == "charrnn"


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=600) | st.text(max_size=300).map(str.encode))
def test_round_trips_hypothesis(text_models, data):
    _round_trip(data)


def test_layout_cuts_blocks_and_segments():
    lay = Layout(block=1000, streams=4, seg_min=100)
    assert lay.blocks(2500) == [(0, 1000), (1000, 1000), (2000, 500)]
    for n in (1, 99, 100, 101, 399, 400, 401, 1000):
        lens = lay.segments(n)
        assert lens.sum() == n and (lens > 0).all() and len(lens) <= 4
        assert len(lens) == 1 or lens.min() >= 1 and lens[:-1].min() >= 100
    assert len(lay.segments(1000)) == 4


def test_blocks_carry_state_and_binary_blocks_go_to_zstd(text_models):
    from dulzip import zoo
    net, _ = zoo.load("charrnn")
    # the middle block repeats a random 500 bytes three times: segments coded in lockstep cannot
    # see each other's same step, so zstd codes it about 3 times smaller than the model
    noise = bytes(np.random.default_rng(1).integers(0, 256, 500, dtype=np.uint8)) * 3
    prose = (PROSE * 2)[:1500]
    data = prose + noise + prose
    lay = Layout(block=1500, streams=3, seg_min=200)
    streams = encode_text(data, net, lay)
    assert [s.coder for s in streams] == ["model", "zstd", "model"]
    assert decode_text(streams, len(data), net, lay) == data
    # the third block (same text as the first) codes smaller: the adaptive state was carried over
    assert len(streams[2].payload) < len(streams[0].payload)


class _Recorder:
    """Wraps a bit source and keeps every table it was given."""

    def __init__(self, inner):
        self.inner, self.tables = inner, []
        if hasattr(inner, "known"):  # the encoder knows the bytes; the decoder reads them
            self.known = inner.known
        else:
            self.reader = inner.reader

    def take(self, bits, probs):
        self.tables.extend(np.array(row, copy=True) for row in probs)
        self.inner.take(bits, probs)

    def start_step(self, t, act):
        self.inner.start_step(t, act)


def _tables(net, data: bytes, lens, payload: bytes | None, version: int = text_codec.MIXER_VERSION):
    """Every bit probability the encoder (payload None) or the decoder used, the block's bytes
    and the mixer (its adaptive state after the block)."""
    from dulzip.exact.textmix import TextMixer
    mix = TextMixer(net.luts, prime=net.prime, version=version, n_features=net.n_features)
    seg = text_codec._segments_of(data, lens)
    src = text_codec._Encoder(seg) if payload is None else text_codec._Decoder(payload)
    rec = _Recorder(src)
    out = text_codec._run_block(net, mix, lens, rec, _NoBar())
    return rec, out, mix


class _NoBar:
    def update(self, n):
        pass


@pytest.mark.parametrize("threads,version", [(1, 3), (2, 3), (1, 2)])
def test_encoder_and_decoder_tables_are_identical(text_models, threads, version):
    """Both sides use the same probability for every bit and end with the same adaptive state
    (the online layer's weights, learnt in integers, among it), with any thread count."""
    from dulzip import zoo
    torch.set_num_threads(threads)
    net, _ = zoo.load("charrnn")
    data = PROSE[:900]
    lens = Layout(seg_min=100, streams=5).segments(len(data))
    enc, _, enc_mix = _tables(net, data, lens, None, version)
    payload = enc.inner.enc.finish()
    dec, out, dec_mix = _tables(net, data, lens, payload, version)
    assert len(enc.tables) == len(dec.tables) == 8 * int(lens.max())
    assert all(np.array_equal(a, b) for a, b in zip(enc.tables, dec.tables))
    assert text_codec._join(out, lens) == data
    for name, a, b in zip(enc_mix.STATE, enc_mix.snapshot(), dec_mix.snapshot()):
        assert np.array_equal(a, b), name
    primed = net.prime["prime.online"].numpy()  # version 3 learnt its online layer; 2 has none
    assert np.array_equal(enc_mix.online, primed) == (version == 2)
    torch.set_num_threads(1)
    enc1, _, _ = _tables(net, data, lens, None, version)
    assert enc1.inner.enc.finish() == payload  # the same bytes with any thread count


def test_char_rnn_steps_do_not_depend_on_the_batch(text_models):
    from dulzip import zoo
    net, _ = zoo.load("charrnn")
    rng = np.random.default_rng(2)
    seqs = rng.integers(0, 256, (7, 40))
    state, prev = net.start(7), net.start_symbols(7)
    alone_state, alone_prev = net.start(1), net.start_symbols(1)
    for t in range(40):
        state, w = net.step(state, prev)
        alone_state, w1 = net.step(alone_state, alone_prev)
        assert np.array_equal(w[3:4], w1)
        prev, alone_prev = seqs[:, t], seqs[3:4, t]


def test_cpu_step_equals_the_torch_step(text_models):
    """The CPU step (numba) and the torch step (what a GPU runs) give the same integers."""
    from dulzip import zoo
    net, _ = zoo.load("charrnn")
    rng = np.random.default_rng(3)
    state = net.start(5)
    tstate = tuple(torch.from_numpy(a.copy()) for a in state)
    for t in range(60):
        prev = rng.integers(0, 257, 5)
        state, w = net.step(state, prev)
        tstate, tw = net.step_torch(tstate, torch.from_numpy(prev))
        assert np.array_equal(w, tw.numpy()) and np.array_equal(state[1], tstate[1].numpy())
        assert np.array_equal(state[0], tstate[0].numpy())


def test_char_rnn_is_causal_by_gradients():
    torch.manual_seed(0)
    m = CharRNN(CharRNNConfig(embed=8, hidden=16))
    x = torch.randint(0, 256, (2, 12))
    inp = torch.cat([torch.full((2, 1), START), x[:, :-1]], dim=1)
    kept = {}
    handle = m.embed.register_forward_hook(lambda mod, i, out: kept.setdefault("e", out.retain_grad() or out))
    logits, _ = m.logits(inp)
    handle.remove()
    e = kept["e"]
    for t in (0, 5, 11):
        e.grad = None
        logits[:, t].sum().backward(retain_graph=True)
        g = e.grad.abs().sum(dim=(0, 2))
        assert (g[t + 1:] == 0).all(), f"position {t} sees the future"
        assert g[t] > 0  # it does see its own input (the byte before it)


def test_sniffing_text_and_binary():
    assert api.looks_like_text(PROSE) and api.looks_like_text(CODE)
    assert api.looks_like_text(("Le café est très bon, merci.\n" * 50).encode("latin-1"))
    assert api.looks_like_text("東京".encode() * 10 + "東".encode()[:2])  # cut character at the end
    assert not api.looks_like_text(b"")
    assert not api.looks_like_text(bytes(np.random.default_rng(3).integers(0, 256, 4000, dtype=np.uint8)))
    assert not api.looks_like_text((DATA / "ladybird-256.png").read_bytes())


def test_auto_picks_text_for_text_and_bytes_for_binary(text_models):
    keep = api.Options(fallback=False)  # the tiny model may lose to zstd: look at the choice itself
    assert api.describe(api.compress(PROSE * 3, keep))["kind"] == "text"
    noise = bytes(np.random.default_rng(4).integers(0, 256, 3000, dtype=np.uint8))
    assert api.describe(api.compress(noise, keep))["kind"] == "bytes"


def test_never_larger_than_the_bytes_path(text_models):
    noise = bytes(np.random.default_rng(5).integers(0, 256, 3000, dtype=np.uint8))
    blob = api.compress(noise, api.Options(model="charrnn"))
    assert api.decompress(blob) == noise
    assert len(blob) <= len(api.compress(noise, api.Options(model="zstd")))


@pytest.mark.parametrize("how", ["truncated", "bitflip", "other-weights"])
def test_bad_text_files_are_refused(text_models, how, tmp_path):
    from tests.conftest import write_text_model
    blob = bytearray(api.compress(PROSE, MODEL_ONLY))
    if how == "truncated":
        blob = blob[:len(blob) - 7]
    elif how == "bitflip":
        blob[-5] ^= 0x04
    else:
        write_text_model(text_models, seed=1)
    with pytest.raises(DulzipError):
        api.decompress(bytes(blob))


@pytest.mark.parametrize("mixer", [None, 1, 99])
def test_other_mixer_versions_are_refused(text_models, mixer):
    """A file records the version of the mixer that coded it; another version is refused."""
    from dulzip.container import pack, unpack
    from dulzip.errors import FormatError
    c = unpack(api.compress(PROSE, MODEL_ONLY))
    assert c.header["layout"]["mixer"] == text_codec.MIXER_VERSION
    if mixer is None:
        del c.header["layout"]["mixer"]  # files of version 1 did not record it
    else:
        c.header["layout"]["mixer"] = mixer
    with pytest.raises(FormatError, match="version"):
        api.decompress(pack(c))


def test_cli_stdin_stdout_text(text_models, tmp_path):
    env = {**__import__("os").environ, "DULZIP_MODELS": str(text_models)}
    cmd = [sys.executable, "-c", "from dulzip.cli import entry; entry()"]
    packed = subprocess.run(cmd + ["compress", "-c", "-"], input=PROSE, capture_output=True, env=env, check=True).stdout
    assert packed[:4] == b"DULZ"
    back = subprocess.run(cmd + ["decompress", "-c", "-"], input=packed, capture_output=True, env=env, check=True).stdout
    assert back == PROSE
