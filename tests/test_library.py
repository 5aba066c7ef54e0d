"""The Python API as a library user meets it: bytes-like input, file objects and paths,
``dulzip.open`` like ``gzip.open``, errors and warnings at the top level, typed."""
from __future__ import annotations

import array
import io
import warnings
from pathlib import Path

import numpy as np
import pytest

import dulzip
from tests.conftest import photo

DATA = bytes(range(256)) * 50
PPM = b"P6\n9 7\n255\n" + photo(7, 9).tobytes()


@pytest.mark.parametrize("make", [bytes, bytearray, memoryview, lambda d: array.array("B", d),
                                  lambda d: np.frombuffer(d, dtype=np.uint8), lambda d: memoryview(d)[::1]])
def test_bytes_like_inputs(make):
    blob = dulzip.compress(make(DATA))
    assert dulzip.decompress(make(blob)) == DATA


def test_multibyte_buffers_are_taken_as_their_bytes():
    a = array.array("I", range(1000))
    assert dulzip.decompress(dulzip.compress(a)) == a.tobytes()


@pytest.mark.parametrize("bad, words", [("text", "encode the text first"), (12, "not int"), (None, "not NoneType")])
def test_clear_type_errors(bad, words):
    with pytest.raises(TypeError, match=words):
        dulzip.compress(bad)


def test_unknown_option_is_named():
    with pytest.raises(TypeError, match="modle"):
        dulzip.compress(DATA, modle="zstd")


def test_errors_at_the_top_level():
    assert issubclass(dulzip.FormatError, dulzip.DulzipError)
    assert issubclass(dulzip.CorruptDataError, dulzip.DulzipError)
    with pytest.raises(dulzip.FormatError):
        dulzip.decompress(b"not a dlz file")
    blob = bytearray(dulzip.compress(DATA))
    blob[-3] ^= 1
    with pytest.raises(dulzip.DulzipError):
        dulzip.decompress(blob)


def test_explicit_model_that_cannot_apply_is_an_error(tiny_models):
    with pytest.raises(dulzip.UsageError, match="cannot code"):
        dulzip.compress(b"plain text, not an image\n" * 20, model="pixelcnn")
    with pytest.raises(dulzip.UsageError, match="unknown model 'nonesuch'"):
        dulzip.compress(PPM, model="nonesuch")


def test_missing_model_is_a_warning_and_zstd(tmp_path, monkeypatch):
    empty = tmp_path / "none"
    empty.mkdir()
    monkeypatch.setenv("DULZIP_MODELS", str(empty))
    with pytest.warns(dulzip.DulzipWarning, match="image model 'pixelcnn' is not installed"):
        blob = dulzip.compress(PPM)
    assert dulzip.decompress(blob) == PPM
    with pytest.warns(dulzip.DulzipWarning, match="text model 'charrnn' is not installed"):
        dulzip.compress(b"some text\n" * 50)


def test_asked_for_model_that_loses_to_zstd_says_so(tiny_models):
    flat = b"P6\n64 64\n255\n" + bytes(64 * 64 * 3)  # zstd takes it to almost nothing
    with pytest.warns(dulzip.DulzipWarning, match="the zstd file is kept"):
        blob = dulzip.compress(flat, model="pixelcnn", tile=8)
    assert dulzip.decompress(blob) == flat
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dulzip.compress(flat, tile=8)  # under auto it is no news


def test_compress_file_paths_and_file_objects(tmp_path, tiny_models):
    src = tmp_path / "pic.ppm"
    src.write_bytes(PPM)
    n = dulzip.compress_file(src, tmp_path / "pic.ppm.dlz", tile=8)
    assert n == (tmp_path / "pic.ppm.dlz").stat().st_size
    out = io.BytesIO()
    assert dulzip.decompress_file(str(tmp_path / "pic.ppm.dlz"), out) == len(PPM)
    assert out.getvalue() == PPM
    sink = io.BytesIO()
    dulzip.compress_file(io.BytesIO(DATA), sink)
    sink.seek(0)
    back = tmp_path / "back.bin"
    dulzip.decompress_file(sink, back)
    assert back.read_bytes() == DATA


def test_compress_file_streams_large_inputs(monkeypatch):
    from dulzip.formats import sniff
    monkeypatch.setattr(sniff, "STREAM_MIN", 4096)
    called = []
    from dulzip import api
    real = api.compress_stream
    monkeypatch.setattr(api, "compress_stream", lambda *a, **k: called.append(1) or real(*a, **k))
    sink = io.BytesIO()
    dulzip.compress_file(io.BytesIO(DATA), sink)
    assert called and dulzip.decompress(sink.getvalue()) == DATA


def test_open_binary_and_text(tmp_path):
    path = tmp_path / "notes.dlz"
    with dulzip.open(path, "wb") as f:
        f.write(b"first ")
        f.write(memoryview(b"second"))
    with dulzip.open(path) as f:
        assert f.read(6) == b"first " and f.read() == b"second"
        f.seek(0)
        assert f.read() == b"first second"
    with dulzip.open(path, "wt", encoding="utf-8") as f:
        f.write("héllo\nwörld\n")
    with dulzip.open(path, "rt", encoding="utf-8") as f:
        assert list(f) == ["héllo\n", "wörld\n"]
    assert dulzip.decompress(path.read_bytes()) == "héllo\nwörld\n".encode()


def test_open_writes_nothing_on_error_and_x_refuses(tmp_path):
    path = tmp_path / "x.dlz"
    with pytest.raises(RuntimeError):
        with dulzip.open(path, "wb") as f:
            f.write(DATA)
            raise RuntimeError("stop")
    assert not path.exists() and not list(tmp_path.iterdir())
    with dulzip.open(path, "xb") as f:
        f.write(DATA)
    with pytest.raises(FileExistsError):
        dulzip.open(path, "xb")
    for mode in ("ab", "r+b", "rbt", "q"):
        with pytest.raises(ValueError):
            dulzip.open(path, mode)


def test_open_file_objects_and_damage(tmp_path):
    buf = io.BytesIO()
    with dulzip.open(buf, "wb") as f:
        f.write(DATA)
    assert not buf.closed  # a file object given is left open, as gzip does
    raw = bytearray(buf.getvalue())
    with dulzip.open(io.BytesIO(raw)) as f:
        assert f.read() == DATA
    raw[-5] ^= 0xFF
    with pytest.raises(dulzip.DulzipError):
        dulzip.open(io.BytesIO(raw))  # the checksum is checked before any byte is given out


def test_typed_and_documented():
    root = Path(dulzip.__file__).parent
    assert (root / "py.typed").exists()
    for name in dulzip.__all__:
        assert getattr(dulzip, name) is not None
        obj = getattr(dulzip, name)
        assert isinstance(obj, str) or obj.__doc__, name


def test_exported_models_are_found_without_configuration(tmp_path, monkeypatch):
    """`train --export` writes to the user's models folder by default; dulzip finds what is
    there beside the shipped models, and the user's copy of a name hides the shipped one."""
    from click.testing import CliRunner

    from dulzip import zoo
    from dulzip.cli import main
    from tests.conftest import write_model
    monkeypatch.delenv("DULZIP_MODELS", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert zoo.models_dir() == tmp_path / "xdg" / "dulzip" / "models"
    shipped = set(zoo.cards())
    write_model(zoo.models_dir(), "mine")
    assert set(zoo.cards()) == shipped | {"mine"}
    blob = dulzip.compress(PPM, model="mine", tile=8, fallback=False)
    assert dulzip.decompress(blob) == PPM
    r = CliRunner().invoke(main, ["models"])
    assert r.exit_code == 0 and "mine" in r.output and str(zoo.models_dir()) in r.output
    if "pixelcnn" in shipped:
        write_model(zoo.models_dir(), "pixelcnn")
        assert zoo.cards()["pixelcnn"]["_folder"] == str(zoo.models_dir())


@pytest.mark.parametrize("field", [{"stereo": "mid"}, {"image_mixer": 99}, {"image_mixer": 0}])
def test_an_option_that_would_write_an_undecodable_file_is_refused(field):
    with pytest.raises(dulzip.UsageError):
        dulzip.Options(**field)
