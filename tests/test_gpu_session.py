"""benchmarks/gpu/: a GPU session's script run as a dry run on the CPU (a tiny PixelCNN trained
for a second, exported, a file coded with it), then its check decodes the packed files here and
its report reads them; a damaged file fails the check (exit 1)."""
from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

from PIL import Image

from tests.conftest import photo

GPU = Path(__file__).parent.parent / "benchmarks" / "gpu"


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(GPU / script), *args], capture_output=True, text=True)


def test_session_check_and_report(tmp_path):
    data = tmp_path / "imgs"
    data.mkdir()
    Image.fromarray(photo(13, 17)).save(data / "a.png")
    out = tmp_path / "out"
    r = run("session.py", "--modality", "image", "--data", str(data), "--out", str(out), "--device", "cpu",
            "--run", "tiny", "--channels 4 --layers 1 --head 4 --batch 1 --crop 8", "--time-limit", "1",
            "--code", str(data))
    assert r.returncode == 0, r.stdout + r.stderr
    session = json.loads(tarfile.open(out / "session.tar").extractfile("session.json").read())
    assert session["train"]["tiny"]["rc"] == 0 and "error" not in session
    (coded,) = session["coded"]
    assert coded["decode_on_device_ok"] is True and coded["dlz_bytes"] > 0
    r = run("check.py", str(out / "session.tar"), "--report", str(tmp_path / "check.json"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads((tmp_path / "check.json").read_text())["all_identical"] is True
    r = run("report.py", str(out / "session.tar"), "--checks", str(tmp_path / "check.json"), "--out", str(tmp_path),
            "--name", "r")
    assert r.returncode == 0, r.stderr
    assert "| tiny | a.png |" in (tmp_path / "r.md").read_text()

    unpacked = tmp_path / "unpacked"
    with tarfile.open(out / "session.tar") as tar:
        tar.extractall(unpacked, filter="data")
    blob = unpacked / coded["dlz"]
    damaged = bytearray(blob.read_bytes())
    damaged[len(damaged) // 2] ^= 0x10
    blob.write_bytes(bytes(damaged))
    r = run("check.py", str(unpacked))
    assert r.returncode == 1
    assert '"identical": false' in r.stdout
