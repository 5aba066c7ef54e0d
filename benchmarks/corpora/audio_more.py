"""Build more audio corpora from Debian packages: non-English speech and music (tuning and held-out sets).

Reproducible: the same package versions (and the same fluidsynth version, for the rendered
pieces) give the same files. Sources are read in sorted order and subsets are taken by even
strides over that order, nothing random.

    python benchmarks/corpora/audio_more.py --out data/audio [--cache DIR] [--install-tools] [--bits16]

needs ``flac`` and ``metaflac`` (package ``flac``) and ``fluidsynth`` (``apt-get install -y
fluidsynth``, or ``--install-tools`` to have the script run that), and numpy. Every file it writes
is a canonical PCM WAV (``RIFF``, a 16-byte ``fmt`` chunk of format 1, then ``data``; written by
Python's ``wave`` module) at the source's own sample rate and channel count, 16-bit, or 24-bit where
the source is 24-bit (``--bits16``: those too are written 16-bit, their low 8 bits dropped).
Music files last 2 to 90 s; a longer source keeps its first 60 s. Writes, under ``--out``:

``speech-heldout/``
    Telephone prompts in four languages other than English, 16-bit mono 8 kHz, copied sample for
    sample: of the prompts of at least 1 s of each package, in sorted path order, every 12th.
    Named ``LANG-NAME.wav`` (``LANG-FOLDER-NAME.wav`` for a prompt in a sub-folder).
    ``asterisk-core-sounds-fr-wav`` (fr_CA, June Wallack; CC-BY-SA-3.0),
    ``asterisk-core-sounds-es-wav`` (es_MX; the copyright file credits Allison Smith, the voice of
    the English training prompts, CC-BY-SA-3.0), ``asterisk-core-sounds-it-wav`` (it_IT, Carlo
    Flora; CC-BY-3.0), ``asterisk-core-sounds-ru-wav`` (ru_RU, "Maxim"; CC-BY-3.0). Held out: no
    package of the speech training set (``asterisk-core-sounds-en-wav``, see audio.py); other
    languages, and speakers other than es's.
``music-tune/``
    For choosing the audio coder's parameters.
    ``openmsx_fluidr3-NAME.wav``: pieces of ``openttd-openmsx`` (MIDI, GPL-2.0) rendered by
    fluidsynth at 44.1 kHz stereo with ``fluid-soundfont-gm`` (FluidR3_GM.sf2, MIT; the
    soundfont the training set ``music-train`` comes from, allowed here, never in the held-out
    set), then peak-normalized to -1 dBFS and rounded to 16 bits; ``sonicpi-NAME.wav``:
    loops, instruments and drums of ``sonic-pi-samples`` (FLAC, 44.1 kHz, mostly stereo; CC0,
    a few CC-BY-SA-4.0/MIT); ``h2data-KIT_NAME.wav``: the GMRockKit drum kit of
    ``hydrogen-data`` (WAV, 44.1 kHz mono; GPL-2+); ``h2effects-KIT_NAME.wav``: acoustic guitar
    strums of ``hydrogen-drumkits-effects`` (belofilms_GuitarStrums, FLAC, 96 kHz 24-bit
    stereo; CC-BY-3.0).
``music-heldout/``
    For benchmark numbers on music none of whose packages was seen in training or tuning.
    ``blupi_timgm6mb-NAME.wav``: pieces of ``planetblupi-music-midi`` (MIDI, GPL-3+) rendered
    like the tuning pieces but with ``timgm6mb-soundfont`` (TimGM6mb.sf2, GPL-2: its own
    samples, none from FluidR3); ``msgeneral-INDEX-NAME.wav``: stereo samples of
    ``musescore-general-soundfont-lossless`` (MuseScore_General_Full.sf2; its stereo samples are
    the ones that are not FluidR3's: the Splendid Grand piano, public domain, and the VSCO 2
    ensemble strings, CC0), the left and right samples that the SF2 sample headers link joined
    as one 44.1 kHz stereo WAV (its mono FluidR3-derived samples are left out);
    ``h2kits-KIT_NAME.wav``: acoustic and electronic drum kits of ``hydrogen-drumkits`` (WAV and
    FLAC, 44.1 kHz 16-bit mono and stereo, 48 kHz 24-bit stereo (ForzeeStereo) and mono
    (rumpf_kit); GPL-2/GPL-2+, CC-BY-3.0, CC-BY-SA-3.0, CC0 kit by kit, see its copyright file).

Music sources are files or SF2 stereo pairs of at least 2 s, 16- or 24-bit (8-bit and AIFF
sources are left out); from each source ``SOURCE_COUNTS`` of them are taken, evenly spaced over
the sorted list. No lossy (Ogg, MP3) source is used.
"""
from __future__ import annotations

import argparse
import shutil
import struct
import subprocess
import sys
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from audio import riff_chunks, safe_name, sf2_chunks  # noqa: E402  (a script folder)
from debs import fetch_deb  # noqa: E402

SPEECH = {  # language -> package; the prompts are in usr/share/asterisk/sounds/<its one voice folder>
    "es": "asterisk-core-sounds-es-wav",
    "fr": "asterisk-core-sounds-fr-wav",
    "it": "asterisk-core-sounds-it-wav",
    "ru": "asterisk-core-sounds-ru-wav",
}
SPEECH_MIN_SECONDS = 1.0  # shorter prompts (digits, letters) are mostly silence
SPEECH_EVERY = 12

MIN_SECONDS = 2.0  # music files
MAX_SECONDS = 90.0  # a longer source ...
CUT_SECONDS = 60.0  # ... keeps its first 60 s
RENDER_RATE = 44100
RENDER_PEAK = 10 ** (-1 / 20)  # rendered pieces are normalized to a -1 dBFS peak

MIDI_OPENMSX = ("openttd-openmsx", "usr/share/games/openttd/baseset/openmsx")
MIDI_BLUPI = ("planetblupi-music-midi", "usr/share/planetblupi/music")
SF2_FLUID = ("fluid-soundfont-gm", "usr/share/sounds/sf2/FluidR3_GM.sf2")
SF2_TIMGM = ("timgm6mb-soundfont", "usr/share/sounds/sf2/TimGM6mb.sf2")
SF2_MUSESCORE = ("musescore-general-soundfont-lossless", "usr/share/sounds/sf2/MuseScore_General_Full.sf2")
H2_DRUMKITS = "usr/share/hydrogen/data/drumkits"

SOURCE_COUNTS = {  # how many files each source gives (see pick)
    "openmsx_fluidr3": 2, "sonicpi": 30, "h2data": 10, "h2effects": 10,  # music-tune
    "blupi_timgm6mb": 2, "msgeneral": 18, "h2kits": 36,  # music-heldout
}
SF2_LEFT, SF2_RIGHT = 4, 2  # sfSampleType of the two halves of a stereo sample


@dataclass(frozen=True)
class Audio:
    """Interleaved little-endian signed PCM."""
    rate: int
    channels: int
    width: int  # bytes a sample: 2 or 3
    pcm: bytes

    @property
    def frames(self) -> int:
        return len(self.pcm) // (self.channels * self.width)

    @property
    def seconds(self) -> float:
        return self.frames / self.rate

    def head(self, seconds: float) -> "Audio":
        n = int(round(seconds * self.rate)) * self.channels * self.width
        return Audio(self.rate, self.channels, self.width, self.pcm[:n])

    def to16(self) -> "Audio":
        """24-bit samples as 16-bit (their low byte dropped); 16-bit ones unchanged."""
        if self.width == 2:
            return self
        b = np.frombuffer(self.pcm, np.uint8).reshape(-1, 3)
        return Audio(self.rate, self.channels, 2, b[:, 1:].tobytes())


def write_wav(path: Path, a: Audio) -> None:
    """A canonical 44-byte-header PCM WAV (format 1, 16-byte fmt chunk). A data chunk of an odd
    size (24-bit mono, an odd number of frames) loses its last frame, so that no pad byte is due."""
    pcm = a.pcm[:len(a.pcm) - a.channels * a.width] if len(a.pcm) % 2 else a.pcm
    with wave.open(str(path), "wb") as w:
        w.setnchannels(a.channels)
        w.setsampwidth(a.width)
        w.setframerate(a.rate)
        w.writeframes(pcm)


# ---- reading sources -------------------------------------------------------------------------

def read_wav(path: Path) -> Audio | None:
    """A PCM WAV (format 1, or WAVE_FORMAT_EXTENSIBLE with the PCM sub-format) of 16 or 24 bits,
    mono or stereo; None for anything else (8-bit, float, ...)."""
    data = path.read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    fmt = body = None
    for cid, off, size in riff_chunks(data, 12, len(data)):
        if cid == b"fmt ":
            fmt = data[off:off + size]
        elif cid == b"data" and body is None:
            body = data[off:off + size]
    if fmt is None or body is None or len(fmt) < 16:
        return None
    tag, channels, rate, _byte_rate, align, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == 0xFFFE and len(fmt) >= 26:
        tag = struct.unpack_from("<H", fmt, 24)[0]
    if tag != 1 or bits not in (16, 24) or channels not in (1, 2) or align != channels * bits // 8:
        return None
    body = body[:len(body) - len(body) % align]
    return Audio(rate, channels, bits // 8, body)


def read_flac(path: Path) -> Audio | None:
    """A FLAC file decoded by the reference ``flac`` tool; None unless 16/24-bit mono/stereo."""
    info = subprocess.run(["metaflac", "--show-sample-rate", "--show-channels", "--show-bps", str(path)],
                          check=True, capture_output=True, text=True).stdout.split()
    rate, channels, bits = map(int, info)
    if bits not in (16, 24) or channels not in (1, 2):
        return None
    pcm = subprocess.run(["flac", "-d", "-s", "-c", "--force-raw-format", "--endian=little",
                          "--sign=signed", str(path)], check=True, capture_output=True).stdout
    return Audio(rate, channels, bits // 8, pcm)


def read_audio(path: Path) -> Audio | None:
    suffix = path.suffix.lower()
    if suffix == ".wav":
        return read_wav(path)
    if suffix == ".flac":
        return read_flac(path)
    return None  # AIFF and others


def probe_seconds(path: Path) -> float | None:
    """The length of a usable audio file from its header alone; None if it is not usable."""
    suffix = path.suffix.lower()
    if suffix == ".flac":
        rate, channels, bits, frames = map(int, subprocess.run(
            ["metaflac", "--show-sample-rate", "--show-channels", "--show-bps", "--show-total-samples",
             str(path)], check=True, capture_output=True, text=True).stdout.split())
        return frames / rate if bits in (16, 24) and channels in (1, 2) and rate else None
    if suffix == ".wav":
        a = read_wav(path)
        return None if a is None else a.seconds
    return None


def fit_length(a: Audio) -> Audio | None:
    """None below MIN_SECONDS; the first CUT_SECONDS of anything longer than MAX_SECONDS."""
    if a.seconds < MIN_SECONDS:
        return None
    return a.head(CUT_SECONDS) if a.seconds > MAX_SECONDS else a


def spread(items: Sequence, n: int) -> list:
    """n items evenly spaced over the sequence (the middle of each of n equal stretches)."""
    if n >= len(items):
        return list(items)
    return [items[(2 * i + 1) * len(items) // (2 * n)] for i in range(n)]


def pick(items: Sequence[tuple[str, str, Callable]], n: int) -> list[tuple[str, str, Callable]]:
    """n of the (group, name, load) items, shared out between the groups (a drum kit, an
    instrument family, ...) as evenly as their sizes allow, then evenly spaced within each group;
    where n is less than the number of groups, one item of each of n evenly spaced groups."""
    groups: dict[str, list] = {}
    for item in items:
        groups.setdefault(item[0], []).append(item)
    quota = dict.fromkeys(groups, 0)
    left = n
    while left > 0:
        open_groups = [g for g in groups if quota[g] < len(groups[g])]
        if not open_groups:
            break
        for g in open_groups if left >= len(open_groups) else spread(open_groups, left):
            quota[g] += 1
            left -= 1
    return [item for g in groups for item in spread(groups[g], quota[g])]


# ---- music sources: lists of (group, file name without prefix, a function giving its Audio) ---

Source = list[tuple[str, str, Callable[[], Audio]]]


def file_source(root: Path) -> Source:
    """Every usable audio file of at least MIN_SECONDS under root, in sorted path order, named by
    its path (``FOLDER_NAME``); grouped by its folder (a drum kit), or in a flat folder by its name
    up to the first ``_`` (``loop_amen`` -> ``loop``)."""
    out = []
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        seconds = probe_seconds(f)
        if seconds is not None and seconds >= MIN_SECONDS:
            rel = f.relative_to(root)
            group = rel.parts[0] if len(rel.parts) > 1 else rel.stem.split("_")[0]
            out.append((group, safe_name("_".join(rel.with_suffix("").parts)),
                        lambda f=f: fit_length(read_audio(f))))
    return out


def sf2_stereo_source(sf2: Path) -> Source:
    """Each stereo sample of a SoundFont of at least MIN_SECONDS (a left sample and the right one
    its link names, as one stereo recording), in sample-header order, named ``INDEX-NAME`` (the
    left sample's index and name); aliases of one stretch of sample data are given once."""
    chunks = sf2_chunks(sf2.read_bytes())
    if b"sm24" in chunks:
        raise RuntimeError(f"{sf2}: 24-bit SoundFonts are not handled")
    smpl, shdr = chunks[b"smpl"], chunks[b"shdr"]
    heads = [struct.unpack_from("<20sIIIIIBbHH", shdr, 46 * i) for i in range(len(shdr) // 46 - 1)]

    def load(lstart: int, rstart: int, n: int, rate: int) -> Audio:
        left = np.frombuffer(smpl, "<i2", n, 2 * lstart)
        right = np.frombuffer(smpl, "<i2", n, 2 * rstart)
        return fit_length(Audio(rate, 2, 2, np.column_stack([left, right]).tobytes()))

    out, seen = [], set()
    for index, (name, start, end, _ls, _le, rate, _p, _c, link, kind) in enumerate(heads):
        if kind != SF2_LEFT or link >= len(heads):
            continue
        _rn, rstart, rend, _rls, _rle, rrate, _rp, _rc, _rl, rkind = heads[link]
        n = min(end - start, rend - rstart)
        if rkind != SF2_RIGHT or rrate != rate or rate == 0 or n < MIN_SECONDS * rate:
            continue
        if (start, rstart) in seen:
            continue
        seen.add((start, rstart))
        label = name.split(b"\0")[0].decode("latin-1")
        label = label[:-3] if label.endswith("(L)") else label[:-1] if label.endswith("L") else label
        group = label.replace(" ", "_").split("_")[0]  # an instrument: Piano, Celli, ViolTrm, ...
        out.append((group, f"{index:04d}-{safe_name(label)}", lambda a=(start, rstart, n, rate): load(*a)))
    return out


def render(mid: Path, sf2: Path) -> Audio:
    """A MIDI file rendered by fluidsynth with a soundfont to 32-bit float 44.1 kHz stereo (its
    default reverb and chorus), cut to length, normalized to a -1 dBFS peak, rounded to 16 bits."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "out.raw"
        subprocess.run(["fluidsynth", "-q", "-n", "-i", "-F", str(raw), "-T", "raw", "-O", "float",
                        "-E", "little", "-r", str(RENDER_RATE), str(sf2), str(mid)],
                       check=True, stdout=subprocess.DEVNULL)
        x = np.fromfile(raw, "<f4").reshape(-1, 2).astype(np.float64)
    if len(x) > MAX_SECONDS * RENDER_RATE:
        x = x[:int(CUT_SECONDS * RENDER_RATE)]
    peak = float(np.abs(x).max()) if len(x) else 0.0
    if peak > 0:
        x *= RENDER_PEAK / peak
    pcm = np.clip(np.rint(x * 32767), -32768, 32767).astype("<i2")
    return fit_length(Audio(RENDER_RATE, 2, 2, pcm.tobytes()))


def midi_source(midis: Path, sf2: Path) -> Source:
    """The MIDI files of a folder, in sorted order, each to be rendered with the soundfont."""
    return [(mid.stem, safe_name(mid.stem), lambda mid=mid: render(mid, sf2))
            for mid in sorted(midis.glob("*.mid"))]


# ---- folders ---------------------------------------------------------------------------------

def build_speech(folder: Path, cache: Path) -> None:
    for lang, pkg in sorted(SPEECH.items()):
        voices = sorted((fetch_deb(pkg, cache) / "usr/share/asterisk/sounds").iterdir())
        if len(voices) != 1:
            raise RuntimeError(f"{pkg}: expected one voice folder, found {[v.name for v in voices]}")
        prompts = []
        for f in sorted(voices[0].rglob("*.wav")):
            a = read_wav(f)
            if a is None or a.rate != 8000 or a.channels != 1 or a.width != 2:
                raise RuntimeError(f"{f}: not 8 kHz 16-bit mono PCM")
            if a.seconds >= SPEECH_MIN_SECONDS:
                prompts.append((f, a))
        for f, a in prompts[::SPEECH_EVERY]:
            write_wav(folder / f"{lang}-{'-'.join(f.relative_to(voices[0]).parts)}", a)


def music_sources(cache: Path) -> dict[str, dict[str, Callable[[], Source]]]:
    """folder -> file-name prefix -> the function listing that source's eligible files."""
    def pkg(name: str) -> Path:
        return fetch_deb(name, cache)

    return {
        "music-tune": {
            "openmsx_fluidr3": lambda: midi_source(pkg(MIDI_OPENMSX[0]) / MIDI_OPENMSX[1],
                                                   pkg(SF2_FLUID[0]) / SF2_FLUID[1]),
            "sonicpi": lambda: file_source(pkg("sonic-pi-samples") / "usr/share/sonic-pi/samples"),
            "h2data": lambda: file_source(pkg("hydrogen-data") / H2_DRUMKITS),
            "h2effects": lambda: file_source(pkg("hydrogen-drumkits-effects") / H2_DRUMKITS),
        },
        "music-heldout": {
            "blupi_timgm6mb": lambda: midi_source(pkg(MIDI_BLUPI[0]) / MIDI_BLUPI[1],
                                                  pkg(SF2_TIMGM[0]) / SF2_TIMGM[1]),
            "msgeneral": lambda: sf2_stereo_source(pkg(SF2_MUSESCORE[0]) / SF2_MUSESCORE[1]),
            "h2kits": lambda: file_source(pkg("hydrogen-drumkits") / H2_DRUMKITS),
        },
    }


def summary(folder: Path) -> None:
    files = sorted(folder.glob("*.wav"))
    seconds = stereo = hi = 0.0
    for f in files:
        with wave.open(str(f)) as w:
            s = w.getnframes() / w.getframerate()
            seconds += s
            if w.getnchannels() == 2 and w.getframerate() in (44100, 48000):
                stereo += s
            hi += s if w.getsampwidth() == 3 else 0
    print(f"{folder.name}: {len(files)} files, {sum(f.stat().st_size for f in files):,} bytes, "
          f"{seconds:.1f} s; 44.1/48 kHz stereo {stereo:.1f} s; 24-bit {hi:.1f} s")


def build(out: Path, cache: Path, bits16: bool = False) -> None:
    for tool, how in (("flac", "flac"), ("metaflac", "flac"), ("fluidsynth", "fluidsynth")):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: apt-get install -y {how} (or run with --install-tools)")
    folders = {name: out / name for name in ("speech-heldout", "music-tune", "music-heldout")}
    for d in folders.values():
        d.mkdir(parents=True, exist_ok=True)
        for f in d.glob("*.wav"):  # files of an earlier build
            f.unlink()
    build_speech(folders["speech-heldout"], cache)
    for folder, sources in music_sources(cache).items():
        for prefix, listing in sources.items():
            for _group, name, load in pick(listing(), SOURCE_COUNTS[prefix]):
                a = load()
                if a is None:  # a rendered piece shorter than MIN_SECONDS
                    continue
                write_wav(folders[folder] / f"{prefix}-{name}.wav", a.to16() if bits16 else a)
    for d in folders.values():
        summary(d)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("data/audio"))
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "dulzip-debs",
                    help="folder for the downloaded and unpacked .deb files, kept between runs")
    ap.add_argument("--install-tools", action="store_true",
                    help="apt-get install -y flac fluidsynth first (needs root)")
    ap.add_argument("--bits16", action="store_true",
                    help="write 24-bit sources as 16-bit (their low 8 bits dropped)")
    args = ap.parse_args()
    if args.install_tools:
        subprocess.run(["apt-get", "install", "-y", "flac", "fluidsynth"], check=True)
    args.cache.mkdir(parents=True, exist_ok=True)
    build(args.out, args.cache, args.bits16)


if __name__ == "__main__":
    main()
