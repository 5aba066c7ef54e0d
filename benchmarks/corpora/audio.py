"""Build dulzip's audio training and held-out benchmark corpora from Debian packages.

Reproducible: the same package versions give the same files (sources are read in sorted
order, nothing random).

    python benchmarks/corpora/audio.py --out data/audio [--work DIR]

writes, under ``--out``:

``speech-train/``, ``speech-test/``
    the English prompts of ``asterisk-core-sounds-en-wav`` (one speaker, Allison Smith;
    16-bit mono 8 kHz PCM; CC-BY-SA-3.0), copied byte for byte. A prompt in a sub-folder is
    named ``FOLDER-NAME.wav``. Held out (``speech-test``): the whole ``confbridge-*`` and
    ``queue-*`` prompt families (62 of 568 files, 2.9 MB).
``music-train/``, ``music-test/``
    every sample of the FluidR3 General MIDI soundfont (``fluid-soundfont-gm``, MIT licence:
    recorded instruments, a few synthesized ones) as a 16-bit mono WAV at its own sample rate,
    named ``INDEX-NAME.wav`` (its index in the soundfont's sample headers); the two halves of a
    stereo sample are two files (``...(L)``, ``...(R)``). Samples shorter than 0.1 s are left
    out. Held out (``music-test``): every sample that one of the instruments
    ``HELD_OUT_INSTRUMENTS`` plays, whichever other instruments share it.
"""
from __future__ import annotations

import re
import shutil
import struct
import sys
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from debs import deb_corpus_main, fetch_deb  # noqa: E402  (a script folder)

# Held out from training, so benchmark numbers are on unseen audio.
HELD_OUT_SPEECH_PREFIXES = ("confbridge-", "queue-")  # top-level prompt files of asterisk-core-sounds-en
HELD_OUT_INSTRUMENTS = ("Flute", "Marimba", "Clarinet", "Std Snare 1")  # instrument names in FluidR3_GM.sf2
SPEECH_DIR = "usr/share/asterisk/sounds/en_US_f_Allison"
SF2_FILE = "usr/share/sounds/sf2/FluidR3_GM.sf2"
MIN_SECONDS = 0.1
SAMPLE_ID = 53  # SF2 generator operator "sampleID": the sample an instrument zone plays
ROM_SAMPLE = 0x8000  # sfSampleType flag: the sample lives in a synthesizer's ROM, not in the file


@dataclass(frozen=True)
class SampleHeader:
    """One record of the SF2 ``shdr`` chunk; start/end are indices of 16-bit sample points."""
    index: int
    name: str
    start: int
    end: int
    rate: int
    kind: int


def riff_chunks(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(id, offset of the body, size) of each chunk in data[start:end]."""
    pos = start
    while pos + 8 <= end:
        cid = data[pos:pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        yield cid, pos + 8, size
        pos += 8 + size + (size & 1)


def sf2_chunks(data: bytes) -> dict[bytes, bytes]:
    """The sub-chunks of the ``sdta`` and ``pdta`` lists of an SF2 file (``smpl``, ``shdr``, ...)."""
    if data[:4] != b"RIFF" or data[8:12] != b"sfbk":
        raise ValueError("not a SoundFont 2 file")
    out = {}
    for cid, body, size in riff_chunks(data, 12, len(data)):
        if cid == b"LIST" and data[body:body + 4] in (b"sdta", b"pdta"):
            for sub, sbody, ssize in riff_chunks(data, body + 4, body + size):
                out[sub] = data[sbody:sbody + ssize]
    return out


def sample_headers(shdr: bytes) -> list[SampleHeader]:
    """The sample headers, without the terminal ``EOS`` record."""
    out = []
    for i in range(len(shdr) // 46 - 1):
        name, start, end, _ls, _le, rate, _pitch, _corr, _link, kind = struct.unpack_from(
            "<20sIIIIIBbHH", shdr, 46 * i)
        out.append(SampleHeader(i, name.split(b"\0")[0].decode("latin-1"), start, end, rate, kind))
    return out


def instrument_samples(chunks: dict[bytes, bytes]) -> dict[str, set[int]]:
    """Instrument name -> indices of the samples its zones play (instruments of one name merged)."""
    inst = [struct.unpack_from("<20sH", chunks[b"inst"], 22 * i) for i in range(len(chunks[b"inst"]) // 22)]
    ibag = [struct.unpack_from("<H", chunks[b"ibag"], 4 * i)[0] for i in range(len(chunks[b"ibag"]) // 4)]
    igen = [struct.unpack_from("<HH", chunks[b"igen"], 4 * i) for i in range(len(chunks[b"igen"]) // 4)]
    out: dict[str, set[int]] = {}
    for (name, bag), (_, next_bag) in zip(inst, inst[1:]):
        gens = igen[ibag[bag]:ibag[next_bag]]
        out.setdefault(name.split(b"\0")[0].decode("latin-1"), set()).update(
            amount for oper, amount in gens if oper == SAMPLE_ID)
    return out


def safe_name(name: str) -> str:
    """A sample name as a plain file name: ``Flute F#6(L)`` -> ``Flute_Fs6_L``."""
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", name.replace("#", "s")).strip("_")


def write_wav(path: Path, pcm: bytes, rate: int) -> None:
    """16-bit little-endian mono PCM as a canonical 44-byte-header WAV."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


def build_speech(root: Path, train: Path, test: Path) -> None:
    files = {}
    for f in sorted(root.rglob("*.wav")):
        rel = f.relative_to(root)
        name = "-".join(rel.parts)
        if name in files:
            raise RuntimeError(f"two prompts would both be named {name}")
        files[name] = f
    for name, f in files.items():
        held_out = len(f.relative_to(root).parts) == 1 and name.startswith(HELD_OUT_SPEECH_PREFIXES)
        shutil.copyfile(f, (test if held_out else train) / name)


def build_music(sf2: Path, train: Path, test: Path) -> None:
    chunks = sf2_chunks(sf2.read_bytes())
    smpl = chunks[b"smpl"]
    by_instrument = instrument_samples(chunks)
    missing = set(HELD_OUT_INSTRUMENTS) - set(by_instrument)
    if missing:
        raise RuntimeError(f"no instrument named {sorted(missing)} in {sf2}")
    held_out = set().union(*(by_instrument[name] for name in HELD_OUT_INSTRUMENTS))
    for h in sample_headers(chunks[b"shdr"]):
        if h.kind & ROM_SAMPLE or h.rate == 0 or h.end - h.start < MIN_SECONDS * h.rate:
            continue
        folder = test if h.index in held_out else train
        write_wav(folder / f"{h.index:04d}-{safe_name(h.name)}.wav", smpl[2 * h.start:2 * h.end], h.rate)


def summary(folder: Path) -> None:
    files = sorted(folder.glob("*.wav"))
    print(f"{folder.name}: {len(files)} files, {sum(f.stat().st_size for f in files) / 1e6:.2f} MB")


def build(out: Path, work: Path) -> None:
    folders = {name: out / name for name in ("speech-train", "speech-test", "music-train", "music-test")}
    for d in folders.values():
        d.mkdir(parents=True, exist_ok=True)
        for f in d.glob("*.wav"):  # files of an earlier build with other held-out lists
            f.unlink()
    build_speech(fetch_deb("asterisk-core-sounds-en-wav", work) / SPEECH_DIR,
                 folders["speech-train"], folders["speech-test"])
    build_music(fetch_deb("fluid-soundfont-gm", work) / SF2_FILE, folders["music-train"], folders["music-test"])
    for d in folders.values():
        summary(d)


def main() -> None:
    deb_corpus_main(build, "data/audio", __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
