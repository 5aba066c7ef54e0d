"""The command line: zstd's conventions, and bad input giving one line, exit 1, nothing partial."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dulzip.cli import main
from tests.conftest import photo, write_model


def run(*args, input=None):
    if args and args[0] == "compress":  # the tiny test model loses to zstd: keep its path anyway
        args = ("compress", "--model-only", "--tile", "8") + args[1:]
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


@pytest.fixture
def sample(tmp_path, tiny_models) -> Path:
    p = tmp_path / "pic.ppm"
    p.write_bytes(b"P6\n9 7\n255\n" + photo(7, 9).tobytes())
    return p


def test_compress_decompress_keep_source(sample):
    orig = sample.read_bytes()
    r = run("compress", str(sample))
    assert r.exit_code == 0, r.output
    dlz = Path(str(sample) + ".dlz")
    assert dlz.exists() and sample.exists()
    sample.unlink()
    r = run("decompress", str(dlz))
    assert r.exit_code == 0 and sample.read_bytes() == orig


def test_refuses_to_overwrite_without_force(sample):
    assert run("compress", str(sample)).exit_code == 0
    r = run("compress", str(sample))
    assert r.exit_code == 1 and "already exists" in r.output
    assert run("compress", "-f", str(sample)).exit_code == 0


def test_output_option_stdout_and_stdin(sample, tmp_path):
    out = tmp_path / "x.dlz"
    assert run("compress", str(sample), "-o", str(out)).exit_code == 0
    r = CliRunner().invoke(main, ["decompress", "-c", str(out)])
    assert r.exit_code == 0 and r.stdout_bytes == sample.read_bytes()
    r = CliRunner().invoke(main, ["compress", "--model-only", "-"], input=sample.read_bytes())
    assert r.exit_code == 0
    r2 = CliRunner().invoke(main, ["decompress", "-"], input=r.stdout_bytes)
    assert r2.stdout_bytes == sample.read_bytes()


def test_rm_removes_source_after_verified_write(sample):
    orig = sample.read_bytes()
    assert run("compress", "--rm", str(sample)).exit_code == 0
    assert not sample.exists()
    assert run("decompress", "--rm", str(sample) + ".dlz").exit_code == 0
    assert sample.read_bytes() == orig and not Path(str(sample) + ".dlz").exists()


def test_test_and_list(sample):
    run("compress", str(sample))
    r = run("test", str(sample) + ".dlz")
    assert r.exit_code == 0 and "OK" in r.output
    r = run("list", str(sample) + ".dlz")
    assert r.exit_code == 0 and "bits/dim" in r.output and "pixelcnn" in r.output
    assert "image mixer version 2" in r.output


def test_models_lists_names(tiny_models):
    r = run("models")
    assert r.exit_code == 0 and "pixelcnn" in r.output


def _damaged(sample, how: str) -> Path:
    run("compress", str(sample))
    dlz = Path(str(sample) + ".dlz")
    data = bytearray(dlz.read_bytes())
    if how == "truncated":
        data = data[:len(data) // 2]
    elif how == "bitflip":
        data[-3] ^= 0x10
    elif how == "magic":
        data[:4] = b"NOPE"
    elif how == "future":
        data[4] = 99
    bad = sample.parent / f"{how}.ppm.dlz"
    bad.write_bytes(bytes(data))
    return bad


@pytest.mark.parametrize("how", ["truncated", "bitflip", "magic", "future"])
def test_bad_files_one_line_exit_1_nothing_left(sample, how):
    bad = _damaged(sample, how)
    before = bad.read_bytes()
    r = run("decompress", str(bad))
    assert r.exit_code == 1
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("dulzip: ") and "Traceback" not in r.output
    out = Path(str(bad)[:-4])
    assert not out.exists() and bad.read_bytes() == before
    assert not [p for p in bad.parent.iterdir() if p.name.endswith(".part")]


def test_other_weights_are_refused(sample, tiny_models):
    run("compress", str(sample))
    write_model(tiny_models, seed=99)  # replace the installed weights
    r = run("decompress", "-f", str(sample) + ".dlz", "-o", str(sample.parent / "o.ppm"))
    assert r.exit_code == 1 and "other 'pixelcnn' weights" in r.output
    assert not (sample.parent / "o.ppm").exists()


def test_directory_missing_file_and_unwritable_output(sample, tmp_path):
    assert "is a directory" in run("compress", str(tmp_path)).output
    r = run("compress", str(tmp_path / "nope"))
    assert r.exit_code == 1 and "no such file" in r.output
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        r = run("compress", str(sample), "-o", str(ro / "x.dlz"))
        assert r.exit_code == 1
    r = run("compress", str(sample), "-o", str(tmp_path / "missing-dir" / "x.dlz"))
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1


def test_several_inputs_go_on_past_a_failure(sample, tmp_path):
    other = tmp_path / "b.bin"
    other.write_bytes(b"abc" * 100)
    r = run("compress", str(tmp_path / "missing"), str(sample), str(other))
    assert r.exit_code == 1
    assert Path(str(sample) + ".dlz").exists() and Path(str(other) + ".dlz").exists()
    assert "1 of 3 files failed" in r.output


def test_unknown_suffix_and_usage_errors(sample):
    r = run("decompress", str(sample))
    assert r.exit_code == 1 and "unknown suffix" in r.output
    r = CliRunner().invoke(main, ["compress", str(sample), str(sample), "-o", "x"])
    assert r.exit_code == 2


def test_real_entry_point_dash_d_and_no_traceback(sample, tmp_path):
    """Through the console entry (a subprocess): ``dulzip -d`` and a clean one-line error."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    cmd = [sys.executable, "-c", "from dulzip.cli import entry; entry()"]
    subprocess.run(cmd + ["compress", "-q", "--model-only", str(sample)], check=True, env=env)
    sample.unlink()
    p = subprocess.run(cmd + ["-d", str(sample) + ".dlz"], env=env, capture_output=True)
    assert p.returncode == 0 and sample.exists()
    junk = tmp_path / "junk.dlz"
    junk.write_bytes(os.urandom(100))
    p = subprocess.run(cmd + ["-d", str(junk)], env=env, capture_output=True, text=True)
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "Traceback" not in p.stderr


def test_models_shows_measured_results(tiny_models):
    import json
    card_path = tiny_models / "pixelcnn.json"
    card = json.loads(card_path.read_text())
    card["results"] = {"corpus": "x", "bpsp": {"PNG (Pillow -9, optimize)": 3.4, "dulzip (.dlz file)": 3.1}}
    card_path.write_text(json.dumps(card))
    r = run("models")
    assert r.exit_code == 0 and "3.100 bits/sub-pixel" in r.output
