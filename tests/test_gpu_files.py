"""benchmarks/check_gpu_files.py: decodes .dlz files made elsewhere and compares them with the
originals (run here on files made on the CPU; the real use is files made on a GPU)."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

from PIL import Image

from dulzip import api
from tests.conftest import photo

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "check_gpu_files.py"


def test_check_gpu_files(tiny_models, tmp_path):
    corpus = tmp_path / "orig" / "c"
    corpus.mkdir(parents=True)
    Image.fromarray(photo(13, 17)).save(corpus / "a.png")
    blob = api.compress((corpus / "a.png").read_bytes(), api.Options(device="cpu"))
    tar_path = tmp_path / "files.tar"
    with tarfile.open(tar_path, "w") as tar:
        ti = tarfile.TarInfo("c/a.png.dlz")
        ti.size = len(blob)
        tar.addfile(ti, io.BytesIO(blob))
    cmd = [sys.executable, str(SCRIPT), str(tar_path), "--originals", str(tmp_path / "orig"),
           "--models", str(tiny_models), "--report", str(tmp_path / "r.json")]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "r.json").read_text())["all_identical"] is True
    Image.fromarray(photo(13, 17, seed=5)).save(corpus / "a.png")  # not what was encoded
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 1
    assert json.loads((tmp_path / "r.json").read_text())["all_identical"] is False
