"""zstd's habits, one test each (as zstd's tests/playTests.sh checks its own): the real entry
point in a subprocess (``python -m dulzip``), mostly on plain bytes that go to zstd (no model
needed, a run takes a fraction of a second); the model paths with tiny models."""
from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from dulzip.argv import translate
from dulzip.container import MAGIC
from dulzip.errors import UsageError
from tests.conftest import photo

ROOT = Path(__file__).parent.parent
CMD = [sys.executable, "-m", "dulzip"]
COMMANDS = {"compress", "decompress", "test", "list", "models", "train", "bench"}
BYTES = bytes(range(256)) * 40 + b"\x00\xff" * 300  # binary: the zstd path


@pytest.fixture
def env(tmp_path) -> dict:
    models = tmp_path / "no-models"
    models.mkdir()
    return {**os.environ, "PYTHONPATH": str(ROOT), "DULZIP_MODELS": str(models)}


def dz(env, *args, cwd=None, input: bytes | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(CMD + [str(a) for a in args], env=env, cwd=cwd, input=input, capture_output=True,
                          timeout=120, **kw)


@pytest.fixture
def blob_file(tmp_path) -> Path:
    p = tmp_path / "data.bin"
    p.write_bytes(BYTES)
    return p


# -- the translation itself ---------------------------------------------------------------
@pytest.mark.parametrize("argv, expect", [
    (["f"], ["compress", "f"]),
    (["-d", "f.dlz"], ["decompress", "f.dlz"]),
    (["f.dlz", "-d"], ["decompress", "f.dlz"]),
    (["-dc", "f.dlz"], ["decompress", "-c", "f.dlz"]),
    (["-dcf", "f.dlz"], ["decompress", "-c", "-f", "f.dlz"]),
    (["-fdk", "f.dlz"], ["decompress", "-f", "-k", "f.dlz"]),
    (["-19", "f"], ["compress", "--level", "19", "f"]),
    (["-9kv", "f"], ["compress", "--level", "9", "-k", "-v", "f"]),
    (["--best", "f"], ["compress", "--level", "9", "f"]),
    (["--fast", "f"], ["compress", "--level", "1", "f"]),
    (["-d", "-19", "f.dlz"], ["decompress", "f.dlz"]),  # a level is ignored by -d, as zstd does
    (["-T2", "f"], ["compress", "-T", "2", "f"]),
    (["-vT", "2", "f"], ["compress", "-v", "-T", "2", "f"]),
    (["-o", "-", "f"], ["compress", "-o", "-", "f"]),
    (["-ofile", "f"], ["compress", "-o", "file", "f"]),
    (["-m", "zstd", "f"], ["compress", "-m", "zstd", "f"]),
    (["-l", "f.dlz"], ["list", "f.dlz"]),
    (["-t", "f.dlz"], ["test", "f.dlz"]),
    (["--decompress", "f.dlz"], ["decompress", "f.dlz"]),
    (["--", "-d"], ["compress", "--", "-d"]),  # a file named -d
    ([], ["compress"]),
    (["-d"], ["decompress"]),
    (["decompress", "-c", "f.dlz"], ["decompress", "-c", "f.dlz"]),
    (["compress", "-z", "f"], ["compress", "f"]),
    (["--help"], ["--help"]),
    (["-V"], ["-V"]),
])
def test_translate(argv, expect):
    assert translate(argv, COMMANDS) == expect


@pytest.mark.parametrize("argv", [["-d", "-z", "f"], ["-dt", "f"], ["compress", "-d", "f"]])
def test_translate_refuses_two_modes(argv):
    with pytest.raises(UsageError):
        translate(argv, COMMANDS)


# -- each habit, end to end ----------------------------------------------------------------
def test_bare_file_compresses_and_d_anywhere_decompresses(env, blob_file):
    r = dz(env, blob_file)
    assert r.returncode == 0, r.stderr
    dlz = Path(str(blob_file) + ".dlz")
    assert dlz.exists() and blob_file.exists()
    blob_file.unlink()
    r = dz(env, dlz, "-d")  # after the file
    assert r.returncode == 0, r.stderr
    assert blob_file.read_bytes() == BYTES
    r = dz(env, "-f", dlz, "--decompress")  # long form, with another option first
    assert r.returncode == 0 and blob_file.read_bytes() == BYTES


def test_dc_writes_standard_output(env, blob_file):
    dz(env, blob_file)
    r = dz(env, "-dc", str(blob_file) + ".dlz")
    assert r.returncode == 0 and r.stdout == BYTES


def test_pipes_without_arguments(env):
    r = dz(env, input=BYTES)
    assert r.returncode == 0 and r.stdout.startswith(MAGIC)
    back = dz(env, "-d", input=r.stdout)
    assert back.returncode == 0 and back.stdout == BYTES


def test_no_input_and_a_terminal_is_a_usage_error(env):
    controller, terminal = pty.openpty()
    try:
        r = subprocess.run(CMD, env=env, stdin=terminal, capture_output=True, timeout=60)
    finally:
        os.close(controller)
        os.close(terminal)
    assert r.returncode == 2 and b"standard input is a terminal" in r.stderr


def test_refuses_compressed_data_to_a_terminal(env, blob_file):
    controller, terminal = pty.openpty()
    try:
        r = subprocess.run(CMD + ["-c", str(blob_file)], env=env, stdout=terminal, stderr=subprocess.PIPE,
                           timeout=60)
    finally:
        os.close(controller)
        os.close(terminal)
    assert r.returncode == 1 and b"terminal" in r.stderr


def test_o_dash_is_standard_output(env, blob_file, tmp_path):
    r = dz(env, blob_file, "-o", "-")
    assert r.returncode == 0 and not (tmp_path / "-").exists()
    back = dz(env, "-d", "-o", "-", input=r.stdout)
    assert back.returncode == 0 and back.stdout == BYTES and not (tmp_path / "-").exists()


def test_recursive_over_folders(env, tmp_path):
    tree = tmp_path / "tree"
    (tree / "sub" / "deeper").mkdir(parents=True)
    files = {tree / "a.bin": BYTES, tree / "sub" / "b.bin": BYTES[::-1], tree / "sub" / "deeper" / "c.bin": b"c" * 999}
    for p, d in files.items():
        p.write_bytes(d)
    (tree / "already.dlz").write_bytes(b"not compressed again")
    r = dz(env, "-r", tree)
    assert r.returncode == 0, r.stderr
    assert b"already.dlz: already has the .dlz suffix; ignored" in r.stderr
    assert not (tree / "already.dlz.dlz").exists()
    for p in files:
        assert Path(str(p) + ".dlz").exists()
        p.unlink()
    assert dz(env, "-t", "-r", tree).returncode == 1  # already.dlz is no .dlz file: reported, exit 1
    (tree / "already.dlz").unlink()
    r = dz(env, "-tr", tree)
    assert r.returncode == 0 and r.stderr.count(b"OK") == 3
    r = dz(env, "-dr", tree)
    assert r.returncode == 0, r.stderr
    assert all(p.read_bytes() == d for p, d in files.items())
    # without -r a folder is refused by name, and the others go on
    r = dz(env, tree, tree / "a.bin", "-f")
    assert r.returncode == 1 and b"is a directory" in r.stderr and b"1 of 2 files failed" in r.stderr


def test_l_lists_and_t_tests(env, blob_file):
    dz(env, blob_file)
    dlz = str(blob_file) + ".dlz"
    r = dz(env, "-l", dlz)
    assert r.returncode == 0 and b"content:   bytes, 10840 bytes" in r.stdout
    r = dz(env, "-t", dlz)
    assert r.returncode == 0 and b"OK (10840 bytes)" in r.stderr
    r = dz(env, "-l", input=Path(dlz).read_bytes())  # standard input too
    assert r.returncode == 0 and b"content:   bytes" in r.stdout


def test_mode_and_mtime_kept_both_ways(env, blob_file, tmp_path):
    os.chmod(blob_file, 0o751)
    os.utime(blob_file, ns=(1_500_000_000_123_456_789, 1_600_000_000_987_654_321))
    assert dz(env, blob_file).returncode == 0
    dlz = Path(str(blob_file) + ".dlz")
    for p in (dlz,):
        st = p.stat()
        assert st.st_mode & 0o7777 == 0o751 and st.st_mtime_ns == 1_600_000_000_987_654_321
    out = tmp_path / "back.bin"
    assert dz(env, "-d", dlz, "-o", out).returncode == 0
    st = out.stat()
    assert st.st_mode & 0o7777 == 0o751 and st.st_mtime_ns == 1_600_000_000_987_654_321
    assert st.st_atime_ns == 1_500_000_000_123_456_789


def test_read_only_source_gives_a_read_only_output(env, blob_file):
    os.chmod(blob_file, 0o444)
    assert dz(env, blob_file).returncode == 0
    assert Path(str(blob_file) + ".dlz").stat().st_mode & 0o777 == 0o444


def test_standard_input_gives_a_fresh_file_its_usual_mode(env, tmp_path):
    out = tmp_path / "piped.dlz"
    assert dz(env, "-o", out, input=BYTES).returncode == 0
    assert out.stat().st_mode & 0o777 == 0o600  # the temporary file's: standard input has no mode


def test_levels_and_version(env, blob_file):
    for level in ("-1", "-19", "--fast", "--best", "-3k"):
        r = dz(env, level, "-f", blob_file)
        assert r.returncode == 0, (level, r.stderr)
    assert dz(env, "-20", "-f", blob_file).returncode == 2  # 1..19
    r = dz(env, "-V")
    assert r.returncode == 0 and b"dulzip, version" in r.stdout
    assert b"-1 .. -19" in dz(env, "compress", "--help").stdout


def test_level_chooses_the_image_coder():
    """Fast levels take the flow at every size, the best ones the PixelCNN at every size, the
    default by size (the shipped models)."""
    from dulzip import api, zoo
    if not {"pixelcnn", "idf"} <= set(zoo.cards()):
        pytest.skip("the shipped image models are not installed")
    small, large = photo(64, 64), photo(16 * 64, 9 * 64)
    assert api.choose_image_model(small) == "pixelcnn"
    assert api.choose_image_model(large) == "idf"
    assert api.choose_image_model(small, 1) == "idf"
    assert api.choose_image_model(large, 9) == "pixelcnn"
    assert api.choose_image_model(small, 5) == "pixelcnn"


def test_verbose_reports_model_rate_and_time(env, blob_file, tiny_models, tmp_path):
    r = dz(env, "-v", blob_file)
    assert r.returncode == 0
    line = r.stderr.decode().strip().splitlines()[-1]
    assert "10,840 ->" in line and "[zstd, bytes," in line and "bits/byte" in line and " s, " in line
    img = tmp_path / "pic.ppm"
    img.write_bytes(b"P6\n9 7\n255\n" + photo(7, 9).tobytes())
    r = dz({**env, "DULZIP_MODELS": str(tiny_models)}, "compress", "--model-only", "--tile", "8", "-v", img)
    assert r.returncode == 0, r.stderr
    assert "[pixelcnn, pnm, " in r.stderr.decode() and "bits/sub-pixel" in r.stderr.decode()
    r = dz({**env, "DULZIP_MODELS": str(tiny_models)}, "-dvf", str(img) + ".dlz")
    assert r.returncode == 0 and b"bytes ->" in r.stderr


def test_python_m_dulzip(env, blob_file):
    r = dz(env, "--help")
    assert r.returncode == 0 and b"dulzip photo.png" in r.stdout
