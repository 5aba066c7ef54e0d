"""A tool people install: the wheel carries the models that decoding needs, and a fresh virtual
environment with only that wheel (and its dependencies) compresses and decompresses an image, a
WAV and a text file byte for byte, from a folder outside the checkout.

The wheel is built from a copy of the sources (pyproject.toml, README.md, dulzip/), so that the
build leaves nothing (build/, *.egg-info) in the checkout. The install test is ``slow`` (a fresh
venv, PyTorch's CPU wheel unpacked into it: 1-2 minutes): ``pytest -m slow tests/test_install.py``.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
SHIPPED = ROOT / "dulzip" / "models_data"


def shipped_files() -> list[str]:
    return sorted(p.name for p in SHIPPED.iterdir() if p.suffix in (".safetensors", ".json"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel of this checkout, as `pip install .` builds it."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "dulzip", src / "dulzip", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp / "dist"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                        "-q", "-w", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    (whl,) = out.glob("dulzip-*.whl")
    return whl


def test_wheel_carries_the_shipped_models(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert shipped_files() and {f"dulzip/models_data/{n}" for n in shipped_files()} <= names
    for card in SHIPPED.glob("*.json"):  # every card's weights are in the folder, hence in the wheel
        assert f"dulzip/models_data/{json.loads(card.read_text())['weights']}" in names
    assert {"dulzip/__main__.py", "dulzip/zoo.py", "dulzip/models/pixelcnn.py", "dulzip/py.typed"} <= names
    entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "dulzip = dulzip.cli:entry" in zipfile.ZipFile(wheel).read(entry).decode()


def test_python_m_dulzip_finds_the_shipped_models_from_any_folder(tmp_path):
    """A checkout (as an editable install sees it) from another working directory."""
    env = {**{k: v for k, v in os.environ.items() if k != "DULZIP_MODELS"}, "PYTHONPATH": str(ROOT)}

    def run(*args) -> str:
        r = subprocess.run([sys.executable, "-m", "dulzip", *args], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    assert run("--version").strip() == "dulzip, version 0.1.0"
    listing = run("models")
    assert all(c["weights"] in listing for c in (json.loads(p.read_text()) for p in SHIPPED.glob("*.json")))


@pytest.mark.slow
def test_fresh_venv_from_the_wheel_round_trips(wheel, tmp_path):
    t0 = time.time()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py, dulzip = venv / "bin" / "python", venv / "bin" / "dulzip"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DULZIP_MODELS", "VIRTUAL_ENV")}
    # the CPU build of PyTorch pinned in the same resolution (as scripts/setup.sh): never a CUDA build
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "torch==2.13.0", str(wheel)], env=env,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    print(f"venv and install: {time.time() - t0:.0f} s")

    work = tmp_path / "work"  # outside the checkout: only the installed package can be imported
    work.mkdir()

    def run(*args, exe=dulzip) -> str:
        r = subprocess.run([str(exe), *map(str, args)], cwd=work, env=env, capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0, f"{args}: {r.stdout}{r.stderr}"
        return r.stdout

    where = run("-c", "import dulzip; print(dulzip.__file__)", exe=py).strip()
    assert Path(where).is_relative_to(venv), where
    assert "0.1.0" in run("-m", "dulzip", "--version", exe=py)
    listing = run("models")
    for c in (json.loads(p.read_text()) for p in SHIPPED.glob("*.json")):
        assert c["weights"] in listing

    text = (ROOT / "README.md").read_bytes()[:6000]
    speech = (DATA / "asterisk-confbridge-participants.wav").read_bytes()
    samples = {"photo.png": ((DATA / "dune-47x37.png").read_bytes(), "pixelcnn", ()),
               "speech.wav": (speech, None, ()),  # the adaptive-filter coder: no model
               "voice.wav": (speech, "wavenet", ("-m", "wavenet")),
               "notes.txt": (text, "charrnn", ())}
    for name, (data, model, flags) in samples.items():
        t0 = time.time()
        (work / name).write_bytes(data)
        run("compress", "-q", *flags, name)
        header = json.loads(run("list", "--json", name + ".dlz"))
        if model is None:
            assert "model" not in header and header["layout"]["cascade"] == 1, (name, header)
        else:
            assert header["model"]["name"] == model, (name, header["model"])
        (work / name).unlink()
        run("-m", "dulzip", "-d", "-q", name + ".dlz", exe=py)
        assert (work / name).read_bytes() == data, name
        print(f"{name}: {model}, {len(data)} -> {(work / (name + '.dlz')).stat().st_size} bytes, {time.time() - t0:.0f} s")
