"""The .dlz decoding fuzzer (tests/fuzzing.py) in CI, and the corpus it leaves behind.

Why each test:

* ``test_seeds_decode``: the seeds are real files of every kind and every shipped model (retired
  idf versions and format version 1 included); they double as format-compatibility files, so a
  change that stops an old file from decoding fails here, by name.
* ``test_mutators_are_deterministic`` / ``test_crc_fixup``: a failure is only useful if it can be
  reproduced from its case number, and structure-aware mutants only reach the decoders if their
  header CRC, length and stream CRCs are right; both are properties of the fuzzer itself.
* ``test_fuzz_smoke``: a bounded run (a time budget, not a count: about a minute on 2 cores)
  over all seeds and mutators; any foreign exception, hang, memory blow-up, crash or wrong output
  fails it, with the mutants written to pytest's tmp folder and listed.
* ``test_regressions``: every saved mutant (tests/data/fuzz/regressions, found) decodes to a
  DulzipError or to the right output within the limits, each in a worker process with a timeout, so
  a hang fails the test instead of hanging CI.
* ``test_fuzz_long`` (slow): 100,000 cases.
"""
from __future__ import annotations

import json
import random
import struct
import zlib

import pytest

from tests import fuzzing as fz


@pytest.fixture(scope="module")
def seeds():
    return fz.load_seeds()


def test_seed_corpus_is_complete_and_small(seeds):
    """Every kind and every shipped model has a seed, and the corpus stays small (fast mutants)."""
    manifest = json.loads((fz.SEEDS_DIR / "manifest.json").read_text())
    kinds = {m["kind"] for m in manifest.values()}
    assert kinds >= {"png", "pnm", "text", "wav", "bytes"}
    models = {(m["model"], m["sha256"]) for m in manifest.values() if m["model"]}
    installed = {(c["name"], c["sha256"][:32]) for c in fz.model_cards()}
    assert models == installed, "a seed per installed model and version (make them: --make-seeds)"
    assert {m["version"] for m in manifest.values()} == {1, 2}
    assert sum(len(s.blob) for s in seeds) < 300_000
    assert all(len(s.blob) < 4096 for s in seeds)


def test_seeds_decode(seeds):
    """Each seed decodes to its original (what its manifest records), through both API paths."""
    import io

    from dulzip import api
    opts = fz.decode_options()
    for s in seeds:
        assert fz.blake(api.decompress(s.blob, opts)) == s.expect, s.name
        if s.kind in ("text", "bytes"):  # the kinds that stream (others: decompress again)
            sink = io.BytesIO()
            api.decompress_stream(io.BytesIO(s.blob), sink, opts)
            assert fz.blake(sink.getvalue()) == s.expect, s.name
        orig = (fz.SEEDS_DIR / f"{s.name}.orig").read_bytes()
        manifest = json.loads((fz.SEEDS_DIR / "manifest.json").read_text())[s.name]
        assert fz.blake(orig) == manifest["blake2b"], s.name


def test_mutators_are_deterministic(seeds):
    """The same (base seed, case number) gives the same mutant, whichever mutator and whatever ran
    before; another case number gives (almost always) another."""
    for name, (_, fn) in fz.MUTATORS.items():
        for seed in seeds[::3]:
            for case in range(3):
                a = fn(seed, random.Random(f"t/{case}"), seeds) if name == "splice" else fn(seed, random.Random(
                    f"t/{case}"))
                b = fn(seed, random.Random(f"t/{case}"), seeds) if name == "splice" else fn(seed, random.Random(
                    f"t/{case}"))
                assert a == b, (name, seed.name, case)
    numbers = random.Random(1).sample(range(10 ** 6), 40)
    first = [fz.make_case(seeds, n, 7) for n in numbers]
    random.Random(2).shuffle(numbers)
    again = {n: fz.make_case(seeds, n, 7) for n in numbers}
    for c in first:
        d = again[c.number]
        assert (c.seed, c.mutator, c.what, c.blob, c.stream) == (d.seed, d.mutator, d.what, d.blob, d.stream)
    assert len({c.blob for c in first}) > 30


def test_every_case_of_a_long_run_can_be_made(seeds):
    """Making a mutant never fails: case 55,949 of seed 7 once set a shared value into itself (a
    cycle in the header) and ended a long run in a RecursionError after 55,000 cases."""
    fz.make_case(seeds, 55949, 7)
    for n in random.Random(3).sample(range(10 ** 6), 2000):
        fz.make_case(seeds, n, 7)


def test_crc_fixup(seeds):
    """A structure mutant with nothing changed is the seed itself (the header re-encodes to the same
    bytes, its CRC and length recomputed), and passes the header CRC; with a field changed it still
    passes (the decoder meets the field, not a checksum error); a payload mutant passes every
    stream CRC."""
    from dulzip.container import read_header, unpack
    for s in seeds:
        m = fz.Mutant(s)
        assert m.bytes() == s.blob, s.name
        m.header["tool"] = "fuzz"
        header, _ = read_header(m.bytes())  # raises CorruptDataError if the CRC were wrong
        assert header["tool"] == "fuzz"
        for case in range(5):
            blob, _ = fz.m_payload(s, random.Random(case))
            unpack(blob)  # every stream's size and CRC32 hold
    v2 = next(s for s in seeds if s.version == 2 and s.kind == "bytes")
    blob = fz.as_version1(v2.blob)
    assert blob[4] == 1 and read_header(blob)[0] == read_header(v2.blob)[0]
    (n,) = struct.unpack_from("<I", blob, 5)
    assert zlib.crc32(blob[9:9 + n]) == struct.unpack_from("<I", blob, 9 + n)[0]


def test_mutants_reach_the_decoders(seeds):
    """Most structure and payload mutants pass the container checks (else the model decoders are
    never exercised): at least half of the payload mutants parse with all checksums right."""
    from dulzip.container import unpack
    from dulzip.errors import DulzipError
    ok = 0
    for n in range(200):
        blob, _ = fz.m_payload(seeds[n % len(seeds)], random.Random(n))
        try:
            unpack(blob)
            ok += 1
        except DulzipError:
            pass
    assert ok > 100


def _assert_no_failures(report: fz.Report) -> None:
    s = report.summary()
    lines = [f"{g['count']} x {g['signature']}: e.g. case {g['example']['case']} {g['example']['seed']} "
             f"{g['example']['mutator']}: {g['example']['what']} ({g['example'].get('message', '')[:200]})"
             for g in s["failure_groups"]]
    assert not lines, f"{s['failures']} failing mutants (saved: {s['saved'][:10]}):\n" + "\n".join(lines)


def test_fuzz_smoke(tmp_path):
    """About a minute of fuzzing (all seeds, all mutators) with no failure: any foreign exception,
    hang, crash, memory blow-up or wrong output fails CI, with its mutant saved in tmp_path. The base
    seed is fixed (the same cases on every run: a failure is reproducible), the budget is time so a
    slower machine runs fewer cases rather than longer."""
    report = fz.fuzz(time_budget=45, workers=2, base_seed=0, time_limit=20, found_dir=tmp_path / "found")
    assert len(report.results) >= 100
    _assert_no_failures(report)


def test_regressions():
    """Every saved mutant decodes to a DulzipError (or the right output) within the limits, each in
    a worker process with a timeout, so that a hang or a crash fails this test instead of CI."""
    files = sorted(fz.REGRESSIONS_DIR.glob("*.dlz")) + sorted(fz.FOUND_DIR.glob("*.dlz"))
    if not files:
        pytest.skip("no saved mutants")
    report = fz.run_cases(fz.file_cases(files), workers=2, time_limit=30, found_dir=None,
                          preload=fz.preload_models(fz.load_seeds()))
    assert len(report.results) == len(files)
    _assert_no_failures(report)


def test_harness_records_hang_crash_and_memory(tmp_path, monkeypatch):
    """The harness itself: a case that hangs, one that kills its worker by a signal and one that
    allocates past the limit are each recorded as such, and the run goes on to the next case."""
    s = fz.load_seeds(names=["bytes-zstd"])[0]
    cases = [fz.Case(i, "bytes-zstd", "test", what, blob, s.expect, False) for i, (what, blob) in enumerate([
        ("hang", b"FUZZ-HANG"), ("crash", b"FUZZ-CRASH"), ("memory", b"FUZZ-MEMORY"), ("seed", s.blob)])]
    report = fz.run_cases(cases, workers=1, time_limit=3, memory_limit=1200 << 20,
                          found_dir=tmp_path / "found", worker_hooks=True)
    got = {r.what: r.outcome for r in report.results}
    assert got == {"hang": "hang", "crash": "crash", "memory": "memory", "seed": "ok"}
    assert len(list((tmp_path / "found").glob("*.dlz"))) == 3


@pytest.mark.slow
def test_fuzz_long(tmp_path):
    """100,000 cases (about 3 hours on 2 cores) with no failure."""
    report = fz.fuzz(100_000, workers=2, base_seed=1, start=10 ** 6, found_dir=tmp_path / "found")
    _assert_no_failures(report)
