"""Start-up: a file that goes to zstd, and the commands that need no model (--help, list, models,
test and decompress of a bytes file), never import the neural stack. Each case runs in a fresh
interpreter (this test process has torch loaded already) and reports what it imported."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dulzip import api

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "numba", "llvmlite", "constriction", "safetensors", "PIL", "tqdm", "numpy",
         "dulzip.codecs", "dulzip.exact", "dulzip.formats.png")

# the console entry (pyproject: dulzip = "dulzip.cli:entry"), then which heavy modules it loaded
ENTRY = f"""
import sys
from dulzip import cli
sys.argv[0] = "dulzip"
try:
    cli.entry()
    code = 0
except SystemExit as e:
    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
sys.stdout.flush()
print("HEAVY=" + ",".join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)
sys.exit(code)
"""


def _python(code: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))  # this checkout's dulzip, wherever pytest runs
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, timeout=120, check=False)


def dulzip(*args: str) -> tuple[int, bytes, list[str]]:
    """(exit code, stdout, heavy modules imported) of one ``dulzip ARGS`` in a fresh interpreter."""
    r = _python(ENTRY, *args)
    err = r.stderr.decode()
    assert "HEAVY=" in err, err
    line = err.rsplit("HEAVY=", 1)[1].strip()
    return r.returncode, r.stdout, [m for m in line.split(",") if m]


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    rng = __import__("random").Random(0)
    out = {"empty": tmp_path / "empty", "random": tmp_path / "random.bin", "tar": tmp_path / "x.tar",
           "jpeg": tmp_path / "x.jpg"}
    out["empty"].write_bytes(b"")
    out["random"].write_bytes(rng.randbytes(100_000))
    out["tar"].write_bytes(b"file.txt".ljust(100, b"\0") + b"0000644\0" + b"\0" * 404 + b"hello\n" + b"\0" * 506)
    out["jpeg"].write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + rng.randbytes(5000) + b"\xff\xd9")
    return out


def test_the_decision_needs_no_model_stack() -> None:
    """In-process API: binary inputs go to zstd, and round-trip, without importing any of it."""
    code = f"""
import random, sys
from dulzip import api
for data in (b"", bytes(range(256)) * 40, random.Random(1).randbytes(70000), b"\\xff\\xd8\\xff" + bytes(3000)):
    for model in ("auto", "zstd"):
        blob = api.compress(data, api.Options(model=model))
        assert api.decompress(blob) == data
        assert api.describe(blob)["kind"] == "bytes"
        out = __import__("io").BytesIO()
        api.decompress_stream(__import__("io").BytesIO(blob), out)
        assert out.getvalue() == data
assert not api.looks_like_text(bytes(range(256)))
print(",".join(m for m in {HEAVY!r} if m in sys.modules))
"""
    r = _python(code)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().strip() == ""


@pytest.mark.parametrize("kind", ["empty", "random", "tar", "jpeg"])
@pytest.mark.parametrize("model", ["auto", "zstd"])
def test_compress_to_zstd_and_back_imports_nothing_heavy(files, kind, model) -> None:
    src = files[kind]
    orig = src.read_bytes()
    code, _, heavy = dulzip("compress", "-q", "-m", model, str(src))
    assert code == 0 and heavy == []
    dlz = Path(str(src) + ".dlz")
    assert api.describe(dlz.read_bytes())["kind"] == "bytes"
    src.unlink()
    code, _, heavy = dulzip("decompress", str(dlz))
    assert code == 0 and heavy == [] and src.read_bytes() == orig
    code, _, heavy = dulzip("-d", "-c", str(dlz))
    assert code == 0 and heavy == []
    code, _, heavy = dulzip("test", str(dlz))
    assert code == 0 and heavy == []


def test_commands_without_a_model_import_nothing_heavy(files, tiny_models) -> None:
    code, out, heavy = dulzip("--help")
    assert code == 0 and b"compress" in out and heavy == []
    code, out, heavy = dulzip("--version")
    assert code == 0 and heavy == []
    code, out, heavy = dulzip("compress", "--help")
    assert code == 0 and heavy == []
    code, out, heavy = dulzip("models")
    assert code == 0 and b"pixelcnn" in out and heavy == []
    # list: a bytes file and an image coded by a model
    dlz = files["random"].with_suffix(".dlz")
    dlz.write_bytes(api.compress(files["random"].read_bytes()))
    img = files["random"].with_suffix(".ppm.dlz")
    img.write_bytes(api.compress((ROOT / "tests/data/dune-47x37.ppm").read_bytes(),
                                 api.Options(model="pixelcnn", tile=8, fallback=False)))
    for f in (dlz, img):
        code, out, heavy = dulzip("list", str(f))
        assert code == 0 and b"content:" in out and heavy == []
        code, out, heavy = dulzip("list", "--json", str(f))
        assert code == 0 and heavy == []


def test_errors_import_nothing_heavy(tmp_path) -> None:
    bad = tmp_path / "bad.dlz"
    bad.write_bytes(b"DULZ\x02garbage")
    code, _, heavy = dulzip("decompress", str(bad))
    assert code == 1 and heavy == []
    code, _, heavy = dulzip("compress", str(tmp_path / "missing"))
    assert code == 1 and heavy == []
