"""Faults of the machine and hostile paths: whatever ends a run (a full disk, a read-only
folder, Ctrl-C, SIGTERM, SIGKILL, a second run racing it, a bug), the command line loses
nothing: the input is intact, no partial output and no temporary file stay, and the user
reads one line. Most tests run the real entry point in a subprocess, on plain bytes with
``-m zstd`` (no model needed). Reading standard input from a pipe the test holds open keeps
a run busy, its temporary file open (the output is opened before the input is read, as zstd
does), for exactly as long as a test needs."""
from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import resource
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from dulzip.cli import main

ROOT = Path(__file__).parent.parent
CMD = [sys.executable, "-m", "dulzip.cli"]


@pytest.fixture
def env(tmp_path) -> dict:
    models = tmp_path / "no-models"
    models.mkdir()
    return {**os.environ, "PYTHONPATH": str(ROOT), "DULZIP_MODELS": str(models)}


def _default_signals() -> None:
    """A child as a terminal starts it: SIGINT and SIGTERM at their defaults (a test run in the
    background inherits SIGINT ignored, and dulzip rightly keeps an ignored signal ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def start(env, *args, **kw) -> subprocess.Popen:
    """A run reading standard input from a pipe the test writes (bytes) and closes."""
    kw.setdefault("preexec_fn", _default_signals)
    return subprocess.Popen(CMD + [str(a) for a in args], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **kw)


def dulzip(env, *args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(CMD + [str(a) for a in args], env=env, capture_output=True, text=True, timeout=120, **kw)


def parts(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith(".part"))


def wait_for_parts(folder: Path, n: int = 1, *procs: subprocess.Popen, timeout: float = 30) -> list[Path]:
    end = time.time() + timeout
    while len(parts(folder)) < n:
        assert time.time() < end, "no temporary file appeared"
        for p in procs:
            assert p.poll() is None, p.communicate()[1]
        time.sleep(0.02)
    return parts(folder)


def digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("dulzip: ") and "Traceback" not in stderr, stderr
    return lines[0]


def zstd_blob(data: bytes) -> bytes:
    from dulzip import api
    return api.compress(data, api.Options(model="zstd"))


def decoded(p: Path) -> bytes:
    from dulzip import api
    return api.decompress(p.read_bytes())


# ---------------------------------------------------------------- disk full, read-only folder

def _file_size_limit(n: int):
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit raises EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (n, n))
    return limit


@pytest.mark.parametrize("command", ["compress", "decompress"])
def test_disk_full_one_line_input_intact_nothing_left(tmp_path, env, command):
    data = os.urandom(256 << 10)
    src = tmp_path / "in.bin"
    src.write_bytes(data if command == "compress" else zstd_blob(data))
    before, out = digest(src), tmp_path / "out"
    model = ["-m", "zstd"] if command == "compress" else []
    p = dulzip(env, command, *model, src, "-o", out, preexec_fn=_file_size_limit(64 << 10))
    assert p.returncode == 1 and "File too large" in one_line(p.stderr)
    assert digest(src) == before and not out.exists() and parts(tmp_path) == []


def _without_root_powers():
    """Root writes anywhere: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the child
    (it stays uid 0, so it still reads the venv), as if the folder were read-only."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl")


def _read_only_preexec():
    if os.geteuid() != 0:
        return None
    try:
        subprocess.run([sys.executable, "-c", "pass"], preexec_fn=_without_root_powers, check=True)
    except (subprocess.SubprocessError, OSError):
        pytest.skip("running as root without the right to drop capabilities: a folder cannot be read-only")
    return _without_root_powers


def test_read_only_output_folder(tmp_path, env):
    preexec = _read_only_preexec()
    ro = tmp_path / "ro"
    ro.mkdir()
    src = ro / "in.bin"
    src.write_bytes(os.urandom(4096))
    ro.chmod(0o555)
    try:
        p = dulzip(env, "compress", "-m", "zstd", "--rm", src, preexec_fn=preexec)
        assert p.returncode == 1 and "Permission denied" in one_line(p.stderr)
        assert src.exists() and sorted(x.name for x in ro.iterdir()) == ["in.bin"]
    finally:
        ro.chmod(0o755)


# ---------------------------------------------------------------- signals

@pytest.mark.parametrize("command", ["compress", "decompress"])
def test_sigint_sigterm_mid_run_remove_the_temporary_file(tmp_path, env, command):
    """Two runs at once (startup is the slow part), one per signal, each in its own folder."""
    head = zstd_blob(os.urandom(100_000))[:5000] if command == "decompress" else b"x" * 5000
    runs = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        folder = tmp_path / sig.name
        folder.mkdir()
        runs[sig] = folder, start(env, command, *(["-m", "zstd"] if command == "compress" else []), "-",
                                  "-o", folder / "out")
        runs[sig][1].stdin.write(head)
        runs[sig][1].stdin.flush()
    for sig, (folder, p) in runs.items():
        wait_for_parts(folder, 1, p)
        time.sleep(0.1)
        p.send_signal(sig)
    for sig, (folder, p) in runs.items():
        _, err = p.communicate(timeout=60)
        code, word = {signal.SIGINT: (130, "interrupted"), signal.SIGTERM: (143, "terminated")}[sig]
        assert (p.returncode, one_line(err.decode())) == (code, f"dulzip: {word}")
        assert not (folder / "out").exists() and parts(folder) == []


def test_sigterm_while_compressing_a_large_stream(tmp_path, env):
    """Busy in zstd, not waiting on input: the signal is acted on between pieces."""
    src = tmp_path / "big.bin"
    with open(src, "wb") as f:  # streams (32 MB): a slow random first piece, then zeros (sparse)
        f.write(os.urandom(2 << 20))
        f.truncate(32 << 20)
    before, out = digest(src), tmp_path / "big.dlz"
    p = start(env, "compress", "-m", "zstd", "--rm", src)
    wait_for_parts(tmp_path, 1, p)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143 and one_line(err.decode()) == "dulzip: terminated"
    assert digest(src) == before and not out.exists() and parts(tmp_path) == []


def test_sigkill_leftover_is_removed_by_the_next_run_but_not_a_live_ones(tmp_path, env):
    out = tmp_path / "out.dlz"
    live, dead = (start(env, "compress", "-m", "zstd", "-f", "-", "-o", out) for _ in range(2))
    wait_for_parts(tmp_path, 2, live, dead)
    (left,) = (p for p in parts(tmp_path) if f".{dead.pid}." in p.name)
    (live_part,) = (p for p in parts(tmp_path) if f".{live.pid}." in p.name)
    dead.kill()
    dead.communicate()
    assert parts(tmp_path) == sorted([live_part, left])  # SIGKILL: nothing could clean
    small = tmp_path / "small"
    small.write_bytes(b"small" * 100)
    p = dulzip(env, "compress", "-m", "zstd", small, "-o", out)
    assert p.returncode == 0, p.stderr
    assert parts(tmp_path) == [live_part]  # the dead run's file went, the live run's stayed
    live.communicate(b"live" * 100, timeout=60)
    assert live.returncode == 0 and decoded(out) == b"live" * 100 and parts(tmp_path) == []


@pytest.mark.parametrize("force", [False, True])
def test_two_runs_into_one_output(tmp_path, env, force):
    """Both open their temporary files before either publishes (each waits on its input):
    without -f the second finds the name taken at publication and fails; with -f the last
    one wins. Either way the output is one whole file and no temporary file stays."""
    out, a, b = tmp_path / "out.dlz", os.urandom(300_000), os.urandom(200_000)
    flags = ["-f"] if force else []
    pa = start(env, "compress", "-m", "zstd", *flags, "-", "-o", out)
    pb = start(env, "compress", "-m", "zstd", *flags, "-", "-o", out)
    wait_for_parts(tmp_path, 2, pa, pb)
    pa.communicate(a, timeout=60)
    assert pa.returncode == 0
    _, err = pb.communicate(b, timeout=60)
    if force:
        assert pb.returncode == 0 and decoded(out) == b
    else:
        assert pb.returncode == 1 and "already exists" in one_line(err.decode()) and decoded(out) == a
    assert parts(tmp_path) == []


# ---------------------------------------------------------------- outputs that must not be replaced

def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def y(tmp_path) -> Path:
    p = tmp_path / "y.bin"
    p.write_bytes(b"precious " * 1000)
    return p


@pytest.mark.parametrize("command", ["compress", "decompress"])
@pytest.mark.parametrize("via", ["itself", "symlink", "hardlink"])
def test_output_that_is_the_input_is_refused(tmp_path, y, command, via):
    if command == "decompress":
        y.write_bytes(zstd_blob(b"precious " * 1000))
    before = y.read_bytes()
    out = {"itself": lambda: y, "symlink": lambda: (tmp_path / "ln").symlink_to(y) or tmp_path / "ln",
           "hardlink": lambda: (tmp_path / "hl").hardlink_to(y) or tmp_path / "hl"}[via]()
    r = cli(command, *(["-m", "zstd"] if command == "compress" else []), "-f", "--rm", "-o", out, y)
    assert r.exit_code == 1 and "is the input file itself" in one_line(r.output)
    assert y.read_bytes() == before and out.read_bytes() == before
    assert out.is_symlink() == (via == "symlink") and parts(tmp_path) == []


@pytest.mark.parametrize("command", ["compress", "decompress"])
def test_dev_null_is_written_through_and_the_source_kept(y, command):
    if command == "decompress":
        y.write_bytes(zstd_blob(b"precious " * 1000))
    r = cli(command, *(["-m", "zstd"] if command == "compress" else []), "--rm", "-o", os.devnull, y)
    assert r.exit_code == 0, r.output
    assert "source kept" in r.output and y.exists()
    assert os.path.exists(os.devnull) and stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_fifo_output_is_written_through_not_replaced(tmp_path, y):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    r = cli("compress", "-m", "zstd", "--rm", "-o", fifo, y)
    reader.join(30)
    assert r.exit_code == 0 and stat.S_ISFIFO(os.lstat(fifo).st_mode) and y.exists()
    from dulzip import api
    assert api.decompress(got[0]) == y.read_bytes() and parts(tmp_path) == []


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("dangling", [False, True])
def test_symlink_output_is_never_replaced(tmp_path, y, force, dangling):
    target, link = tmp_path / "target", tmp_path / "y.bin.dlz"
    if not dangling:
        target.write_bytes(b"someone else's")
    link.symlink_to(target)
    r = cli("compress", "-m", "zstd", *(["-f"] if force else []), "--rm", y)
    assert r.exit_code == 1 and "symbolic link; not replaced" in one_line(r.output)
    assert link.is_symlink() and y.exists() and parts(tmp_path) == []
    assert target.exists() != dangling and (dangling or target.read_bytes() == b"someone else's")


def test_rm_after_a_streamed_compress_verifies_then_removes(tmp_path):
    """A large input streams; --rm reopens the temporary file by its name to verify it before
    the source goes (and decompress --rm brings it back)."""
    src = tmp_path / "big.bin"
    head = os.urandom(1 << 16)
    with open(src, "wb") as f:
        f.write(head)
        f.truncate(32 << 20)
    r = cli("compress", "-m", "zstd", "--rm", src)
    assert r.exit_code == 0, r.output
    assert not src.exists() and parts(tmp_path) == []
    r = cli("decompress", "--rm", f"{src}.dlz")
    assert r.exit_code == 0, r.output
    assert src.read_bytes() == head + bytes((32 << 20) - len(head)) and not Path(f"{src}.dlz").exists()


# ---------------------------------------------------------------- bugs

@pytest.mark.parametrize("command", ["decompress", "test", "list"])
@pytest.mark.parametrize("bug", [ZeroDivisionError("division by zero"), RecursionError("maximum recursion depth")])
def test_internal_error_is_one_line_traceback_with_v(tmp_path, monkeypatch, command, bug):
    from dulzip import api

    def broken(*a, **k):
        raise bug
    for fn in ("decompress", "decompress_stream", "describe"):
        monkeypatch.setattr(api, fn, broken)
    dlz = tmp_path / "x.bin.dlz"
    dlz.write_bytes(b"anything")
    r = cli(command, dlz)
    line = one_line(r.output)
    assert r.exit_code == 1 and f"internal error: {type(bug).__name__}: " in line and "-v" in line
    assert not (tmp_path / "x.bin").exists() and parts(tmp_path) == []
    r = cli(command, "-v", dlz)
    assert r.exit_code == 1 and "Traceback" in r.output and f"internal error: {type(bug).__name__}" in r.output


def test_entry_turns_any_bug_into_one_line_and_restores_signals(monkeypatch, capsys):
    from dulzip import cli as cli_module
    from dulzip import zoo
    monkeypatch.setattr(zoo, "all_cards", lambda: 1 / 0)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    for argv, traceback in ((["dulzip", "models"], False), (["dulzip", "models", "-v"], True)):
        monkeypatch.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as e:
            cli_module.entry()
        err = capsys.readouterr().err
        assert e.value.code == 1 and "dulzip: internal error: ZeroDivisionError" in err
        assert ("Traceback" in err) == traceback and (traceback or len(err.strip().splitlines()) == 1)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers


def test_stale_files_of_other_names_and_live_processes_are_kept(tmp_path):
    from dulzip.outfile import remove_stale
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    names = [f".out.{dead.pid}.0123abcd.part",  # removed: its process is gone
             f".out.{os.getpid()}.0123abcd.part",  # a live process's
             f".out.x.{dead.pid}.0123abcd.part",  # another output's ("out.x")
             f".out.{dead.pid}.part", "out.part"]  # not ours
    for n in names:
        (tmp_path / n).write_bytes(b"")
    with contextlib.suppress(FileExistsError):
        (tmp_path / f".out.{dead.pid}.89abcdef.part").mkdir()  # not a file: kept
    remove_stale(tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[1:] + [f".out.{dead.pid}.89abcdef.part"])
