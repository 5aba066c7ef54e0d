"""WAV audio: the pipeline from a file to coded sample blocks and back.

A WAV of 8-, 16- or 24-bit PCM with 1 to 8 channels is split into its header (re-created when
canonical, else kept as side data) and its samples. By default (``-m auto``) the samples go to
the adaptive-filter coder (:mod:`dulzip.codecs.cascade`: no network, no torch; layout field
``cascade``). Asked for by name (``-m wavenet``, ``-m wavenet-music``), a WaveNet codes 8/16-bit
mono or stereo as before: stereo as left and side when the channels are correlated
(:mod:`dulzip.transforms`). Files of either kind keep decoding.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from dulzip.container import Container, pack
from dulzip.errors import CorruptDataError, FormatError, UsageError
from dulzip.formats import sniff
from dulzip.kinds.common import (add_coded, add_side, coded_streams, content_header, load_for, modality,
                                 model_header, prepare, read_side)
from dulzip.transforms import stereo_mode, stereo_side

if TYPE_CHECKING:
    from dulzip.codecs.audio import AudioLayout
    from dulzip.formats import wav
    from dulzip.options import Options

KINDS = ("wav",)
SPEECH_MODEL = "wavenet"  # audio sampled at up to SPEECH_RATE Hz
MUSIC_MODEL = "wavenet-music"  # faster sample rates, where installed
SPEECH_RATE = 16000


def choose_audio_model(rate: int) -> str:
    """The WaveNet that suits a WAV of this sample rate (for ``-m``; WAVs go to the
    adaptive-filter coder by default): the speech model for rates up to SPEECH_RATE, the music
    model above (where installed, else the speech model)."""
    from dulzip import zoo
    if rate > SPEECH_RATE and MUSIC_MODEL in zoo.cards():
        return MUSIC_MODEL
    return SPEECH_MODEL


def sniff_wav(data: bytes, opts: Options) -> wav.Wav | None:
    """The parsed WAV when the audio path takes this input (a WAV it models, and an audio
    model asked for, or 'auto': the adaptive-filter coder needs none), else None."""
    if not sniff.looks_like_wav(data[:12]):
        return None
    explicit = opts.model != "auto"
    if explicit and modality(opts.model) != "audio":
        return None
    from dulzip.formats import wav
    w = wav.parse_wav(data)
    if explicit and (w is None or w.bits not in wav.NETWORK_BITS or w.channels > wav.NETWORK_CHANNELS):
        raise UsageError(f"model '{opts.model}' codes 8/16-bit mono or stereo PCM WAV files; this WAV is of "
                         "another kind (use -m auto, or -m zstd)")
    return w


def layout_header(lay: AudioLayout, w: wav.Wav) -> dict:
    return {"frames": len(w.samples), "channels": w.channels, "bits": w.bits, "rate": w.rate,
            "block": lay.block, "max_streams": lay.streams, "seg_min": lay.seg_min}


def _wav_side(header: dict, payloads: list[bytes], prefix: bytes, suffix: bytes) -> None:
    """The WAV's bytes around its samples: re-created from the layout when they are the usual
    44-byte header alone, else stored."""
    from dulzip.formats import wav
    lay = header["layout"]
    if not suffix and prefix == wav.canonical_prefix(lay["rate"], lay["bits"], lay["channels"], lay["frames"]):
        lay["canonical"] = True
    else:
        add_side(header, payloads, {"wav.prefix": prefix, "wav.suffix": suffix})


def _read_side(side: dict, lay: dict) -> dict:
    """The WAV's bytes around its samples, from the side data read or the layout (canonical)."""
    from dulzip.formats import wav
    if lay.get("canonical"):
        return {"wav.prefix": wav.canonical_prefix(lay["rate"], lay["bits"], lay["channels"], lay["frames"]),
                "wav.suffix": b""}
    if "wav.prefix" not in side or "wav.suffix" not in side:
        raise FormatError("the .dlz file lacks the WAV header")
    return side


def _cascade_layout(frames: int, channels: int, bits: int, rate: int) -> dict:
    from dulzip.codecs.cascade import BLOCK, CASCADE_VERSION
    return {"frames": frames, "channels": channels, "bits": bits, "rate": rate, "block": BLOCK,
            "cascade": CASCADE_VERSION}


def compress_cascade(data: bytes, w: wav.Wav, opts: Options) -> bytes:
    """The default: every channel pair (or lone channel) and block one ``cascade`` stream."""
    from dulzip.codecs.cascade import BLOCK, encode_samples
    from dulzip.options import cores
    header = content_header("wav", data)
    header.update(layout=_cascade_layout(len(w.samples), w.channels, w.bits, w.rate), streams=[])
    payloads: list[bytes] = []
    _wav_side(header, payloads, w.prefix, w.suffix)
    streams = encode_samples(w.samples, w.bits, w.rate, BLOCK, opts.threads or cores(), opts.fallback)
    header["model_bits"] = round(add_coded(header, payloads, "audio", streams))
    return pack(Container(header, payloads))


def compress(data: bytes, w: wav.Wav, opts: Options) -> bytes:
    if opts.model == "auto":
        return compress_cascade(data, w, opts)
    from dulzip.codecs.audio import AudioLayout, encode_audio
    from dulzip.train.data import to_levels
    name = opts.model
    net, digest = prepare(name, opts)
    if net.modality != "audio":
        raise UsageError(f"model '{name}' is not an audio model")
    layout = AudioLayout.for_model(net)
    header = model_header("wav", data, name, digest)
    header.update(layout=layout_header(layout, w), streams=[])
    payloads: list[bytes] = []
    _wav_side(header, payloads, w.prefix, w.suffix)
    samples = w.samples
    if w.channels == 2 and stereo_mode(w.samples, w.bits, opts.stereo) == "side":
        header["layout"]["stereo"] = "side"
        samples = stereo_side(samples, w.bits)
    streams = encode_audio(to_levels(samples, w.bits), w.bits, net, layout, opts.progress, opts.fallback)
    header["model_bits"] = round(add_coded(header, payloads, "audio", streams))
    return pack(Container(header, payloads))


def decompress(c: Container, opts: Options) -> bytes:
    import numpy as np

    h = c.header
    lay = h["layout"]  # its fields' types and ranges checked by dulzip.schema with the header
    frames, channels, bits = (lay[k] for k in ("frames", "channels", "bits"))
    side = read_side(c, ("wav",))
    streams = coded_streams(c, "audio")
    if "cascade" in lay:  # the adaptive-filter coder: no network, no torch
        from dulzip.codecs.cascade import decode_samples
        from dulzip.options import cores
        samples = decode_samples(streams, frames, channels, bits, lay["block"], opts.threads or cores())
        return _build(side, samples, lay)
    if all(s.coder != "model" for s in streams):  # no block needs the network: neither it nor torch is loaded
        from dulzip.codecs.plainaudio import decode_all_plain
        levels = decode_all_plain(streams, frames, channels, bits, lay["block"])
    else:
        from dulzip.codecs.audio import AudioLayout, decode_audio
        layout = AudioLayout(block=lay["block"], streams=lay["max_streams"], seg_min=lay["seg_min"])
        name, net = load_for(h, opts)
        if net.modality != "audio":
            raise FormatError(f"model '{name}' is not an audio model")
        levels = decode_audio(streams, frames, channels, bits, net, layout, opts.progress)
    samples = ((levels - 128) // 256 if bits == 8 else levels).astype(np.int16)
    if lay.get("stereo") == "side" and channels == 2:
        samples = stereo_side(samples, bits, inverse=True)
    elif lay.get("stereo", "lr") != "lr":
        raise FormatError(f"unknown stereo coding '{lay.get('stereo')}'")
    return _build(side, samples, lay)


def _build(side: dict, samples, lay: dict) -> bytes:
    from dulzip.formats import wav
    side = _read_side(side, lay)
    return wav.build_wav(wav.Wav(side["wav.prefix"], samples, side["wav.suffix"], lay["rate"], lay["bits"],
                                 lay["channels"]))


def compress_stream(src, out, opts: Options, head: bytes, size: int) -> dict | None:
    """A WAV of any length through the adaptive-filter coder in bounded memory: its samples
    are read ``threads`` blocks at a time (``head``: the bytes already read from ``src``;
    ``size``: the file's length). The file is the one :func:`compress_cascade` makes of the
    same input (where that one keeps its coder over zstd's whole-file fallback). None when the
    input is not a WAV this coder takes (it then goes the bytes way)."""
    import hashlib
    import tempfile

    from dulzip import __version__
    from dulzip.codecs.cascade import BLOCK, encode_frames
    from dulzip.container import add_stream, write_container
    from dulzip.dlzfile import _Chain
    from dulzip.formats import wav
    from dulzip.options import cores
    lay = wav.find_samples(head, size)
    if lay is None:
        return None
    fb = lay.channels * lay.bits // 8
    src = _Chain(head[lay.offset:], src)
    prefix = head[:lay.offset]
    digest = hashlib.blake2b(prefix, digest_size=16)
    threads = opts.threads or cores()
    header = {"kind": "wav", "length": size, "blake2b": "", "tool": __version__,
              "layout": _cascade_layout(lay.frames, lay.channels, lay.bits, lay.rate), "streams": []}
    metas: list[dict] = []
    est = 0
    one = lay.frames <= BLOCK  # the file's only block: the lighter settings (cascade.encode_frames)
    with tempfile.TemporaryFile() as spool, ThreadPoolExecutor(threads) as pool:
        left = lay.frames
        while left:
            raws = []
            for _ in range(threads):
                n = min(BLOCK, left)
                if n == 0:
                    break
                raw = read_exact(src, n * fb)
                digest.update(raw)
                raws.append(raw)
                left -= n
            for part in pool.map(lambda r: encode_frames(wav.frames_of(r, lay), lay.bits, lay.rate, opts.fallback, one),
                                 raws):
                for s in part:
                    add_stream({"streams": metas}, [], f"audio.{len(metas)}", s.coder, s.payload)
                    spool.write(s.payload)
                    est += 8 * len(s.payload)
        suffix = src.read()
        digest.update(suffix)
        if len(prefix) + lay.frames * fb + len(suffix) != size:
            raise FormatError("the WAV changed size while it was read")
        header["blake2b"] = digest.hexdigest()
        side: list[bytes] = []
        _wav_side(header, side, prefix, suffix)
        header["streams"] += metas
        header["model_bits"] = round(est)
        spool.seek(0)
        write_container(out, header, _Chain(b"".join(side), spool))
    return header


def read_exact(src, n: int) -> bytes:
    """n bytes of ``src``; FormatError where it ends before (a WAV cut while it was read)."""
    buf = bytearray()
    while len(buf) < n:
        more = src.read(n - len(buf))
        if not more:
            raise FormatError("the WAV ended before its samples did (changed while it was read?)")
        buf += more
    return bytes(buf)


def decompress_stream(src, emit, h: dict, opts: Options) -> None:
    """Decode a file of the adaptive-filter coder block by block (``threads`` at a time),
    passing the WAV's bytes, in order, to ``emit``: memory bounded by the blocks, not the file."""
    from dulzip.codecs.cascade import decode_frames, groups
    from dulzip.codecs.stream import Stream, cuts
    from dulzip.container import iter_streams
    from dulzip.formats import wav
    from dulzip.kinds.common import unstream
    from dulzip.options import cores
    lay = h["layout"]
    frames, channels, bits = (lay[k] for k in ("frames", "channels", "bits"))
    G = len(groups(channels))
    side = {k: bytes.fromhex(v) for k, v in h.get("inline", {}).items()}
    streams = iter_streams(src, h)
    audio: list[Stream] = []
    for meta, data in streams:  # the side streams come first, then the blocks'
        if meta["name"].startswith("audio."):
            audio.append(Stream(meta["coder"], data))
            break
        side[meta["name"]] = unstream(meta, data, h["length"] + (1 << 20))
    side = _read_side(side, lay)
    emit(side["wav.prefix"])
    threads = opts.threads or cores()
    blocks = cuts(frames, lay["block"])
    with ThreadPoolExecutor(threads) as pool:
        for i in range(0, len(blocks), threads):
            batch = blocks[i:i + threads]
            while len(audio) < G * len(batch):
                meta, data = next(streams, (None, None))
                if meta is None:
                    break
                audio.append(Stream(meta["coder"], data))
            if len(audio) != G * len(batch):
                raise CorruptDataError("the .dlz file has fewer audio blocks than its layout needs")
            parts = [audio[j * G:(j + 1) * G] for j in range(len(batch))]
            for x in pool.map(lambda a: decode_frames(a[0], a[1][1], channels, bits), zip(parts, batch)):
                emit(wav.sample_bytes(x, bits))
            audio = []
    for _ in streams:  # iter_streams checks that nothing follows the last stream
        raise CorruptDataError("the .dlz file has more audio blocks than its layout needs")
    emit(side["wav.suffix"])
