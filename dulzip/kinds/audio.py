"""WAV audio: the pipeline from a file to coded sample blocks and back.

A WAV the audio model takes (8/16-bit PCM, mono or stereo) is split into its header (re-created
when canonical, else kept as side data) and its samples; stereo is coded as left and side when
the channels are correlated (:mod:`dulzip.transforms`); the model is chosen by sample rate.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from dulzip.container import Container, pack
from dulzip.errors import FormatError, UsageError
from dulzip.formats import sniff
from dulzip.kinds.common import (add_coded, add_side, coded_streams, load_for, missing, modality, model_header,
                                 prepare, read_side)
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
    """The default audio model, from the input alone: the speech model for sample rates up to
    SPEECH_RATE, the music model above (where installed, else the speech model)."""
    from dulzip import zoo
    if rate > SPEECH_RATE and MUSIC_MODEL in zoo.cards():
        return MUSIC_MODEL
    return SPEECH_MODEL


def sniff_wav(data: bytes, opts: Options) -> wav.Wav | None:
    """The parsed WAV when the audio path takes this input (a WAV it models, and an audio
    model asked for or 'auto' with one installed), else None."""
    from dulzip import zoo
    if not sniff.looks_like_wav(data[:12]):
        return None
    explicit = opts.model != "auto"
    if explicit and modality(opts.model) != "audio":
        return None
    from dulzip.formats import wav
    w = wav.parse_wav(data)
    if w is None:
        if explicit:
            raise UsageError(f"model '{opts.model}' codes 8/16-bit PCM WAV files; this WAV is of another "
                             "kind (use -m auto, or -m zstd)")
        return None
    if not explicit and SPEECH_MODEL not in zoo.cards():
        missing("audio", SPEECH_MODEL)
        return None
    return w


def layout_header(lay: AudioLayout, w: wav.Wav) -> dict:
    return {"frames": len(w.samples), "channels": w.channels, "bits": w.bits, "rate": w.rate,
            "block": lay.block, "max_streams": lay.streams, "seg_min": lay.seg_min}


def compress(data: bytes, w: wav.Wav, opts: Options) -> bytes:
    from dulzip.codecs.audio import AudioLayout, encode_audio
    from dulzip.formats import wav
    from dulzip.train.data import to_levels
    name = choose_audio_model(w.rate) if opts.model == "auto" else opts.model
    net, digest = prepare(name, opts)
    if net.modality != "audio":
        raise UsageError(f"model '{name}' is not an audio model")
    layout = AudioLayout.for_model(net)
    header = model_header("wav", data, name, digest)
    header.update(layout=layout_header(layout, w), streams=[])
    payloads: list[bytes] = []
    if not w.suffix and w.prefix == wav.canonical_prefix(w.rate, w.bits, w.channels, len(w.samples)):
        header["layout"]["canonical"] = True  # the usual 44-byte header: re-created, not stored
    else:
        add_side(header, payloads, {"wav.prefix": w.prefix, "wav.suffix": w.suffix})
    samples = w.samples
    if w.channels == 2 and stereo_mode(w.samples, w.bits, opts.stereo) == "side":
        header["layout"]["stereo"] = "side"
        samples = stereo_side(samples, w.bits)
    streams = encode_audio(to_levels(samples, w.bits), w.bits, net, layout, opts.progress, opts.fallback)
    header["model_bits"] = round(add_coded(header, payloads, "audio", streams))
    return pack(Container(header, payloads))


def decompress(c: Container, opts: Options) -> bytes:
    import numpy as np

    from dulzip.formats import wav
    h = c.header
    lay = h["layout"]  # its fields' types and ranges checked by dulzip.schema with the header
    frames, channels, bits, rate = (lay[k] for k in ("frames", "channels", "bits", "rate"))
    side = read_side(c, ("wav",))
    if lay.get("canonical"):
        side = {"wav.prefix": wav.canonical_prefix(rate, bits, channels, frames), "wav.suffix": b""}
    streams = coded_streams(c, "audio")
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
    try:
        return wav.build_wav(wav.Wav(side["wav.prefix"], samples, side["wav.suffix"], rate, bits, channels))
    except KeyError:
        raise FormatError("the .dlz file lacks the WAV header") from None
