"""`dulzip train` under torchrun (gloo, on this machine's CPUs): two processes train as one, a run
resumes on another number of processes, rank 0 alone exports, and a failing rank ends the run
with one line."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ddp_families import TINY, make_data

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


def _run(args: list[str], **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, **kw)


def _bits(run: Path) -> dict[int, float]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["bits"] for r in rows if "bits" in r}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_data(tmp_path_factory.mktemp("ddp-data"))


def test_two_processes_train_every_family_as_one_and_resume_on_one(data, tmp_path):
    """The same seed and global batch: each family's losses, step by step, are those of one
    process (within float rounding: the gradients are summed in another order); the
    checkpoints written by two processes resume on one and go on as one process's run does."""
    one, two = tmp_path / "one", tmp_path / "two"
    r = _run([sys.executable, "-m", "tests.ddp_families", str(data), str(one), "--steps", "3"])
    assert r.returncode == 0, r.stderr[-3000:]
    r = _run([*TORCHRUN, "-m", "tests.ddp_families", str(data), str(two), "--steps", "3"])
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("on 2 process(es)") == len(TINY)  # rank 0 alone says it
    for fam in TINY:
        a, b = _bits(one / fam), _bits(two / fam)
        assert sorted(a) == sorted(b) == [1, 2, 3], fam
        for step in a:
            assert b[step] == pytest.approx(a[step], rel=1e-5, abs=1e-5), (fam, step)
    for run in (one, two):  # both go on to step 5 in one process
        r = _run([sys.executable, "-m", "tests.ddp_families", str(data), str(run), "--steps", "5"])
        assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("from step 3") == len(TINY)
    for fam in TINY:
        a, b = _bits(one / fam), _bits(two / fam)
        assert sorted(b) == [1, 2, 3, 4, 5], fam
        assert b[4] == pytest.approx(a[4], rel=1e-4, abs=1e-4) and b[5] == pytest.approx(a[5], rel=1e-4, abs=1e-4), fam


def test_dulzip_train_under_torchrun_exports_once(data, tmp_path):
    """The command itself under torchrun: rank 0 alone writes the metrics, the curves and the
    exported model, whose card says how many processes trained it."""
    models = tmp_path / "models"
    r = _run([*TORCHRUN, "-m", "dulzip.cli", "train", "--arch", "charrnn", "--data", str(data / "text"),
              "--out", str(tmp_path / "run"), "--batch", "4", "--seq", "32", "--steps", "4", "--hidden", "16",
              "--embed", "8", "--log-every", "1", "--no-progress", "--export", "ddp-text", "--models-dir", str(models),
              "--prime-bytes", "2000", "--workers", "1"])
    assert r.returncode == 0, r.stderr[-3000:]
    (card,) = [json.loads(p.read_text()) for p in models.glob("ddp-text-*.json")]
    assert card["training"]["processes"] == 2 and card["training"]["steps"] == 4
    assert "2 process(es)" in card["training"]["hardware"] and "torchrun" in card["training"]["command"]
    assert sorted(_bits(tmp_path / "run")) == [1, 2, 3, 4]
    assert (tmp_path / "run" / "curves.md").is_file()


def _no_traceback_of_ours(stderr: str) -> bool:
    """No Python traceback through dulzip's code (torchrun's launcher prints its own summary of
    the failed processes, with a traceback of itself)."""
    return str(ROOT / "dulzip") + os.sep not in stderr


def test_a_failing_rank_ends_the_run_with_one_line(data, tmp_path):
    """A damaged image that only some batches reach: the rank that reads it says so in one line
    naming the file (no traceback of ours), and the run ends with a failure."""
    bad = tmp_path / "photos"
    bad.mkdir()
    good = (data / "images" / "ladybird-256.png").read_bytes()
    (bad / "a.png").write_bytes(good)
    (bad / "b.png").write_bytes(good[:len(good) // 3])  # the header is whole: it is listed
    r = _run([*TORCHRUN, "-m", "dulzip.cli", "train", "--arch", "pixelcnn", "--data", str(bad),
              "--out", str(tmp_path / "run"), "--batch", "2", "--crop", "16", "--steps", "30", "--channels", "4",
              "--layers", "1", "--head", "8", "--no-progress", "--heldout", "0"])
    assert r.returncode != 0
    lines = [x for x in r.stderr.splitlines() if x.startswith("dulzip: rank")]
    assert lines and any("b.png" in x for x in lines), r.stderr[-3000:]
    assert _no_traceback_of_ours(r.stderr), r.stderr[-3000:]


def test_a_batch_that_the_processes_cannot_share_is_refused(data, tmp_path):
    r = _run([*TORCHRUN, "-m", "dulzip.cli", "train", "--arch", "charrnn", "--data", str(data / "text"),
              "--out", str(tmp_path / "run"), "--batch", "3", "--seq", "32", "--steps", "2", "--hidden", "8",
              "--no-progress"])
    assert r.returncode != 0
    assert "dulzip: rank 0 of 2: the batch (3) must be a multiple of the number of processes (2)" in r.stderr
    assert _no_traceback_of_ours(r.stderr), r.stderr[-3000:]


def test_two_nodes_train_as_one(data, tmp_path):
    """torchrun's multi-node options, two "nodes" on this machine (static rendezvous: node ranks
    and the address of node 0), one process each: the run is that of two processes on one."""
    import socket
    with socket.socket() as s:  # a free port for node 0's store
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    run = tmp_path / "run"
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
                               "--node-rank", str(n), "--master-addr", "127.0.0.1", "--master-port", str(port),
                               "-m", "tests.ddp_families", str(data), str(run), "--steps", "3",
                               "--families", "charrnn"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in (0, 1)]
    outs = [p.communicate(timeout=300) for p in nodes]
    assert all(p.returncode == 0 for p in nodes), outs[0][1][-2000:] + outs[1][1][-2000:]
    assert "on 2 process(es)" in outs[0][0] and "process(es)" not in outs[1][0]  # node 0's rank 0 speaks
    r = _run([sys.executable, "-m", "tests.ddp_families", str(data), str(tmp_path / "one"), "--steps", "3",
              "--families", "charrnn"])
    assert r.returncode == 0, r.stderr[-2000:]
    a, b = _bits(tmp_path / "one" / "charrnn"), _bits(run / "charrnn")
    assert sorted(a) == sorted(b) == [1, 2, 3] and all(b[s] == pytest.approx(a[s], rel=1e-5) for s in a)
