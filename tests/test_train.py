"""`dulzip train`: trains, checkpoints, resumes, exports a loadable model with a card."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from dulzip.cli import main
from tests.conftest import DATA


def test_train_resume_export(tmp_path, monkeypatch):
    run = tmp_path / "run"
    models = tmp_path / "models"
    args = ["train", "--data", str(DATA), "--out", str(run), "--crop", "16", "--batch", "2",
            "--channels", "8", "--layers", "2", "--no-progress"]
    r = CliRunner().invoke(main, args + ["--steps", "3"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, args + ["--steps", "5", "--export", "mini", "--models-dir", str(models)],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    log = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert log == [] or log[-1]["step"] <= 5
    (card_path,) = models.glob("mini-*.json")  # named like its weights file
    card = json.loads(card_path.read_text())
    assert (models / card["weights"]).with_suffix(".json") == card_path
    assert card["training"]["steps"] == 5 and card["parameters"] > 0
    monkeypatch.setenv("DULZIP_MODELS", str(models))
    from dulzip import zoo
    net, digest = zoo.load("mini")
    assert digest == card["sha256"] and net.cfg.channels == 8


def test_crop_source_cuts_real_windows(tmp_path):
    import numpy as np
    import torch
    from PIL import Image

    from dulzip.train.data import CropSource
    from dulzip.train.files import list_files
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (20, 31, 3), dtype=np.uint8), rng.integers(0, 256, (9, 12, 3), dtype=np.uint8)]
    for i, im in enumerate(images):
        Image.fromarray(im).save(tmp_path / f"{i}.png")
    files, skipped = list_files(tmp_path, "image")
    assert files.meta.tolist() == [[20, 31], [9, 12]] and skipped == 0
    s = CropSource(tmp_path, files, 8, gray_fraction=0.3, per_image=3)
    plan = s.plan(np.random.default_rng(1), 64)
    x, gray = s.load(plan)
    assert x.shape == (64, 3, 8, 8) and x.dtype == torch.uint8 and gray.shape == (64,)
    assert gray.any() and not gray.all()
    assert (plan["entry"][:63].reshape(21, 3) == plan["entry"][:63:3, None]).all()  # 3 crops per decoded image
    for crop, g in zip(x.numpy().transpose(0, 2, 3, 1), gray.tolist()):
        if g:  # gray crops are R = G = B
            assert (crop[..., 0] == crop[..., 1]).all() and (crop[..., 1] == crop[..., 2]).all()
            continue
        found = False
        for im in images:  # every colour crop is a window of an image, maybe mirrored
            for y in range(im.shape[0] - 7):
                for x0 in range(im.shape[1] - 7):
                    win = im[y:y + 8, x0:x0 + 8]
                    found |= (win == crop).all() or (win[:, ::-1] == crop).all()
        assert found
    x2, _ = s.load(s.plan(np.random.default_rng(1), 64))
    assert torch.equal(x, x2)  # reproducible from the seed


def test_time_limit_stops_and_ema_is_exported(tmp_path):
    import torch

    from dulzip.models.pixelcnn import PixelCNNConfig
    from dulzip.train.export import export_checkpoint
    from dulzip.train.loop import TrainConfig, load_checkpoint, lr_at, progress_at, train_model
    tcfg = TrainConfig(data=str(DATA), out=str(tmp_path / "run"), steps=10 ** 6, batch=2, crop=16, warmup=2,
                       time_limit=1.5)
    ckpt = train_model(tcfg, PixelCNNConfig(channels=8, layers=2, head=16), progress=False)
    ck = load_checkpoint(ckpt)
    assert 0 < ck["step"] < 10 ** 6 and ck["elapsed"] >= 1.5
    assert set(ck["ema"]) == set(ck["model"])
    assert any(not torch.equal(ck["ema"][k], ck["model"][k]) for k in ck["model"])  # an average, not a copy
    # the schedule follows time: at the limit the rate is at its floor
    assert lr_at(10, tcfg, progress_at(10, 1.5, tcfg)) == tcfg.lr * 0.05
    path = export_checkpoint(ckpt, "mini", tmp_path / "models")
    assert path.exists()


def test_export_keeps_other_models_and_older_versions_which_still_decode(tmp_path, monkeypatch):
    """Exporting 'made' leaves 'made-binary' alone; new 'made' weights retire the old version, which
    stays installed: a file made with it still decodes, and new files use the new weights."""
    import io

    from dulzip import api, zoo
    from dulzip.errors import ModelMismatchError
    from dulzip.models.made import MADEConfig
    from dulzip.train.export import export_checkpoint
    from dulzip.train.loop import TrainConfig, train_model
    digits = tmp_path / "digits"
    digits.mkdir()
    from PIL import Image

    from tests.conftest import photo
    for i in range(3):
        Image.fromarray(photo(6, 6, 1, seed=i)[:, :, 0]).save(digits / f"{i}.png")
    tcfg = TrainConfig(data=str(digits), out=str(tmp_path / "run"), steps=2, batch=2, warmup=1)
    cfg = MADEConfig(size=6, hidden=8, mixtures=2)
    ckpt = train_model(tcfg, cfg, progress=False)
    models = tmp_path / "models"
    monkeypatch.setenv("DULZIP_MODELS", str(models))
    export_checkpoint(ckpt, "made-binary", models)
    export_checkpoint(ckpt, "made", models)
    buf = io.BytesIO()
    Image.fromarray(photo(6, 6, 1, seed=7)[:, :, 0]).save(buf, format="PNG")
    png = buf.getvalue()
    old_blob = api.compress(png, api.Options(model="made", fallback=False))
    old_sha = zoo.card("made")["sha256"]
    tcfg.out, tcfg.steps = str(tmp_path / "run2"), 3
    export_checkpoint(ckpt, "made", models)  # the same weights again: nothing retired
    assert len(zoo.versions("made")) == 1
    export_checkpoint(train_model(tcfg, cfg, progress=False), "made", models)  # new weights
    names = sorted(json.loads(p.read_text())["name"] for p in models.glob("*.json"))
    assert names == ["made", "made", "made-binary"] and len(list(models.glob("*.safetensors"))) == 3
    current, old = zoo.versions("made")
    assert old["sha256"] == old_sha and old["retired"] and old["superseded_by"] == current["weights"]
    assert zoo.cards()["made"] == current and not current.get("retired")
    new_blob = api.compress(png, api.Options(model="made", fallback=False))
    assert api.describe(new_blob)["model"]["name"] == "made" and new_blob != old_blob
    assert api.decompress(old_blob) == png and api.decompress(new_blob) == png
    assert zoo.load("made", expect_sha256=old_sha[:32])[1] == old_sha
    listing = CliRunner().invoke(main, ["models"]).output
    assert f"older version {old['weights']}" in listing and current["weights"] in listing
    (models / old["weights"]).unlink()  # without the old version installed: refused, one message
    (models / old["weights"]).with_suffix(".json").unlink()
    with pytest.raises(ModelMismatchError, match="other 'made' weights"):
        api.decompress(old_blob)


def test_train_wavenet_on_wavs_and_compress(tmp_path, monkeypatch):
    """`dulzip train --arch wavenet` on a folder of WAVs (with each segment's own predictor and
    the residual inputs), exported, then used to code a WAV."""
    from dulzip import api
    models = tmp_path / "models"
    args = ["train", "--arch", "wavenet", "--data", str(DATA), "--out", str(tmp_path / "run"), "--batch", "2",
            "--seq", "512", "--channels", "4", "--layers", "3", "--head", "8", "--seg-order", "4", "--resid",
            "--steps", "3", "--no-progress", "--export", "wavenet-music", "--models-dir", str(models)]
    r = CliRunner().invoke(main, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    (card_path,) = models.glob("wavenet-music-*.json")
    card = json.loads(card_path.read_text())
    assert card["architecture"] == "wavenet" and card["config"]["seg_order"] == 4 and card["config"]["resid"]
    monkeypatch.setenv("DULZIP_MODELS", str(models))
    data = (DATA / "fluidr3-0507-Clarinet_E4_L.wav").read_bytes()
    blob = api.compress(data, api.Options(model="wavenet-music", fallback=False))
    assert api.describe(blob)["kind"] == "wav" and api.decompress(blob) == data


def test_audio_source_windows_are_pieces_of_recordings():
    """Windows are whole pieces of one channel of real recordings (or their polarity flip), read
    from disk at the place the WAV's chunk headers give."""
    import numpy as np

    from dulzip.formats.wav import parse_wav
    from dulzip.train.data import AudioSource, to_levels
    from dulzip.train.files import list_files
    files, _ = list_files(DATA, "audio")
    tracks = []
    for p in files.paths():
        w = parse_wav((DATA / p).read_bytes())
        lv = to_levels(w.samples, w.bits)
        tracks += [np.ascontiguousarray(lv[:, c]) for c in range(lv.shape[1])]
    s = AudioSource(DATA, files, 256)
    x, _ = s.load(s.plan(np.random.default_rng(1), 12))
    assert x.shape == (12, 256)
    joined = [t.tobytes() for t in tracks] + [(-1 - t).tobytes() for t in tracks]
    for row in x.numpy():
        assert any(row.tobytes() in j for j in joined)


def test_saved_weights_are_byte_reproducible(tmp_path):
    """The same tensors give the same file (and sha256): the header's metadata is written sorted,
    not in the order of safetensors' hash map, which changes from process to process."""
    import struct

    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file

    from dulzip.zoo import save_weights
    t = {"b.w": torch.arange(6, dtype=torch.int64).view(2, 3), "a.m": torch.tensor([7], dtype=torch.int32)}
    cfg = {"z": 1, "a": [2, 3]}
    digests = {save_weights(t, tmp_path / f"{i}.safetensors", "made", cfg) for i in range(4)}
    assert len(digests) == 1
    raw = (tmp_path / "0.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    assert n % 8 == 0 and list(header["__metadata__"]) == ["architecture", "config"]
    back = load_file(str(tmp_path / "0.safetensors"))
    assert set(back) == set(t) and all(torch.equal(back[k], t[k]) for k in t)
    with safe_open(str(tmp_path / "0.safetensors"), "pt") as f:
        assert json.loads(f.metadata()["config"]) == cfg


def test_a_wider_model_grown_from_a_checkpoint_computes_the_same():
    """--init-from into a model with more channels: the old weights carry over and the new
    units start without effect, so the loss is the same to the last bit; other shapes refuse."""
    import torch

    from dulzip.models.idf import IDF, IDFConfig
    from dulzip.train.loop import grow_into

    torch.manual_seed(0)
    small = IDF(IDFConfig(levels=2, couplings=2, hidden=8, prior_hidden=8))
    with torch.no_grad():  # the shipped init zeroes the last layers: make every weight count
        for p in small.parameters():
            p.add_(0.05 * torch.randn_like(p))
    wide = IDF(IDFConfig(levels=2, couplings=2, hidden=12, prior_hidden=16))
    grow_into(wide, small.state_dict())
    x = torch.randint(0, 256, (2, 3, 16, 16))
    with torch.no_grad():
        assert wide.loss(x).item() == small.loss(x).item()
    wide.loss(x).backward()  # the new units learn: their zeroed outputs get gradients
    assert wide.couplings[0].net.c2.weight.grad[:, 8:].abs().sum() > 0
    with pytest.raises(ValueError, match="does not fit"):
        grow_into(IDF(IDFConfig(levels=2, couplings=3, hidden=12)), small.state_dict())
    with pytest.raises(ValueError, match="does not fit"):
        grow_into(IDF(IDFConfig(levels=2, couplings=2, hidden=4, prior_hidden=8)), small.state_dict())


class _Planted:
    """Unpickling this runs a shell command: what a hostile checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os
        return os.system, (f"touch '{self.marker}'",)


def _hostile(path, marker, how: str) -> None:
    import pickle

    import torch
    payload = {"model": {"w": _Planted(marker)}, "step": 0}
    if how == "torch.save":
        torch.save(payload, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(payload, f)


@pytest.mark.parametrize("how", ["torch.save", "pickle.dump"])
def test_a_hostile_checkpoint_is_refused_never_run(tmp_path, how):
    from dulzip.errors import FormatError
    from dulzip.train.export import export_checkpoint
    from dulzip.train.loop import load_checkpoint
    ck, marker = tmp_path / "checkpoint.pt", tmp_path / "pwned"
    _hostile(ck, marker, how)
    with pytest.raises(FormatError, match="is not a dulzip checkpoint") as e:
        load_checkpoint(ck)
    assert "\n" not in str(e.value) and not marker.exists()
    with pytest.raises(FormatError):
        export_checkpoint(ck, "x", tmp_path / "models")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(FormatError, match="junk.pt is not a dulzip checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    assert not marker.exists()


@pytest.mark.parametrize("via", ["--init-from", "resume"])
def test_dulzip_train_refuses_a_hostile_checkpoint_in_one_line(tmp_path, monkeypatch, capsys, via):
    """Through the console entry: one line, exit 1, the planted command never run."""
    import sys

    from dulzip.cli import entry
    run, marker = tmp_path / "run", tmp_path / "pwned"
    run.mkdir()
    ck = run / "checkpoint.pt" if via == "resume" else tmp_path / "foreign.pt"
    _hostile(ck, marker, "torch.save")
    argv = ["dulzip", "train", "--data", str(DATA), "--out", str(run), "--steps", "1", "--channels", "4",
            "--layers", "2", "--no-progress"] + (["--init-from", str(ck)] if via == "--init-from" else [])
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as e:
        entry()
    err = capsys.readouterr().err
    assert e.value.code == 1 and err.count("\n") == 1 and "is not a dulzip checkpoint" in err
    assert not marker.exists()


def test_a_saved_checkpoint_loads_as_plain_data(tmp_path):
    """What save_checkpoint stores (weights, the optimizer's state, the EMA, configs, the RNG
    state) all loads under weights_only, so resuming keeps working."""
    import torch

    from dulzip.models.made import MADE, MADEConfig
    from dulzip.train.loop import TrainConfig, load_checkpoint, save_checkpoint
    model = MADE(MADEConfig(size=4, hidden=4, mixtures=2))
    opt = torch.optim.Adam(model.parameters())
    model.loss(torch.randint(0, 256, (2, 1, 4, 4)), torch.zeros(2, dtype=torch.bool)).backward()
    opt.step()
    ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
    save_checkpoint(tmp_path / "c.pt", model, opt, ema, 7, 1.5, TrainConfig(data="d", out="o"))
    ck = load_checkpoint(tmp_path / "c.pt")
    assert ck["step"] == 7 and ck["arch"] == "made" and ck["train_config"]["scales"] == (1, 2)
    assert torch.equal(ck["rng"], torch.get_rng_state()) and set(ck["ema"]) == set(ck["model"])
    opt.load_state_dict(ck["opt"])


def _text_source(tmp_path, seq=16, segment=48):
    from dulzip.train.data import TextSource
    from dulzip.train.files import list_files
    readme = (DATA.parent.parent / "README.md").read_bytes()
    (tmp_path / "a.txt").write_bytes(readme[:5000])
    (tmp_path / "b.txt").write_bytes(readme[5000:7000])
    files, _ = list_files(tmp_path, "text")
    return TextSource(tmp_path, files, seq, segment), {p: (tmp_path / p).read_bytes() for p in files.paths()}


def test_each_rank_and_worker_reads_its_part_of_the_same_global_batches(tmp_path):
    """Global batches are planned from (seed, step): two ranks' parts, side by side, are one
    process's batch, and worker processes load the same batches in the same order."""
    import itertools

    import torch

    from dulzip.train.data import batches
    src, _ = _text_source(tmp_path)
    one = list(itertools.islice(batches(src, 7, 0, 6), 5))
    parts = [list(itertools.islice(batches(src, 7, 0, 6, rank=r, world=2), 5)) for r in (0, 1)]
    for (x, f), (x0, f0), (x1, f1) in zip(one, *parts):
        assert torch.equal(x, torch.cat([x0, x1])) and torch.equal(f, torch.cat([f0, f1]))
    ahead = list(itertools.islice(batches(src, 7, 0, 6, workers=2), 5))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(one, ahead))
    later = next(batches(src, 7, 3, 6))  # a resumed run: batch 3 again, its rows started afresh
    assert later[1].all() and not torch.equal(later[0], one[3][0])


def test_text_rows_read_on_where_they_stopped(tmp_path):
    """A row that is not fresh continues its stream: its first symbol is the byte before the
    window, the last of the row's previous window; every window is a piece of a file."""
    import itertools

    from dulzip.models.charrnn import START
    src, files = _text_source(tmp_path)
    plans = list(itertools.islice(src.plans(0, 0, 8), 30))
    loaded = [src.load(p) for p in plans]
    assert plans[0]["fresh"].all() and not all(p["fresh"].all() for p in plans[1:])
    for (x, fresh), (prev, _), plan in zip(loaded[1:], loaded, plans[1:]):
        for row, f in enumerate(fresh.tolist()):
            if f:
                assert x[row, 0] == START
            else:
                assert x[row, 0] == prev[row, -1]
            body = bytes(x[row, 1:].tolist())
            assert body in files[src.files.path(src.index[plan["file"][row]])]


def test_a_folder_is_listed_once_and_split_stably(tmp_path, monkeypatch):
    """The listing is cached by size and time: a second listing reads no header, a changed file
    is read again. The held-out split depends on each file's own path, so files stay on their
    side as the folder grows."""
    import os

    import numpy as np
    from PIL import Image

    import dulzip.train.files as files
    from tests.conftest import photo
    for i in range(30):
        Image.fromarray(photo(8 + i, 9, 3, seed=i)).save(tmp_path / f"{i:02d}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    cache = tmp_path / "listing.npz"
    listed, skipped = files.list_files(tmp_path, "image", cache)
    assert len(listed) == 30 and skipped == 1 and listed.meta[3].tolist() == [11, 9]
    read = []
    real = files._meta
    monkeypatch.setattr(files, "_meta", lambda p, m: read.append(p.name) or real(p, m))
    again, skipped = files.list_files(tmp_path, "image", cache)
    assert again.paths() == listed.paths() and (again.meta == listed.meta).all() and skipped == 1 and read == []
    os.utime(tmp_path / "05.png", ns=(1, 1))
    assert files.list_files(tmp_path, "image", cache)[0].paths() == listed.paths() and read == ["05.png"]
    train, held = files.split(listed, 0.1)
    assert len(held) and len(train) + len(held) == 30 and not set(train.paths()) & set(held.paths())
    more = files.Files.of(listed.paths() + [f"new/{i}.png" for i in range(50)], [10] * 80, [[9, 9]] * 80, 2)
    assert set(held.paths()) <= set(files.split(more, 0.1)[1].paths())
    assert len(files.split(listed, 0.001)[1]) == 1  # a folder of 20 or more files holds some out
    assert len(files.split(listed.take(np.arange(3)), 0.001)[1]) == 0  # a handful of files: all train


def test_a_damaged_file_read_by_a_worker_is_one_error_naming_it(tmp_path):
    from dulzip.errors import FormatError
    from dulzip.train.data import CropSource, batches
    from dulzip.train.files import list_files
    good = (DATA / "ladybird-256.png").read_bytes()
    (tmp_path / "b.png").write_bytes(good[:len(good) // 3])
    listed, _ = list_files(tmp_path, "image")
    with pytest.raises(FormatError) as e:
        next(batches(CropSource(tmp_path, listed, 16, 0.0), 0, 0, 2, workers=1))
    assert str(e.value).startswith(str(tmp_path / "b.png")) and "\n" not in str(e.value)


def test_heldout_evaluation_curves_and_a_card_with_heldout_results(tmp_path):
    """A held-out folder: evaluated in metrics.jsonl, plotted by --report, and compressed for
    the exported model's card (real .dlz bits beside the baselines, and the float estimate)."""
    held = tmp_path / "held"
    held.mkdir()
    (held / "dune.png").write_bytes((DATA / "dune-47x37.png").read_bytes())
    run, models = tmp_path / "run", tmp_path / "models"
    r = CliRunner().invoke(main, ["train", "--data", str(DATA), "--heldout-data", str(held), "--out", str(run),
                                  "--crop", "16", "--batch", "2", "--channels", "8", "--layers", "2", "--head", "16",
                                  "--steps", "4", "--eval-every", "2", "--log-every", "1", "--no-progress",
                                  "--export", "mini", "--card-files", "1", "--models-dir", str(models)],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in rows if "heldout" in x] == [2, 4]
    assert all(0 < x["heldout"] < 16 and x["unit"] == "bits/sub-pixel" for x in rows if "heldout" in x)
    (card,) = [json.loads(p.read_text()) for p in models.glob("mini-*.json")]
    res = card["results"]
    assert res["images"] == 1 and any(k.startswith("dulzip") for k in res["bpsp"]) and len(res["bpsp"]) >= 3
    t = card["training"]
    assert t["heldout_float_bits"]["step"] == 4 and t["processes"] == 1 and t["command"].startswith("dulzip train")
    (run / "curves.md").unlink()
    r = CliRunner().invoke(main, ["train", "--report", "--out", str(run)])
    assert r.exit_code == 0 and (run / "curves.md").is_file() and "| 4 |" in (run / "curves.md").read_text()


@pytest.mark.parametrize("family", ["pixelcnn", "charrnn"])
def test_bf16_autocast_trains_near_full_precision(family, tmp_path):
    """--bf16 (the default on GPUs) runs here on the CPU's autocast: the first loss, before any
    update, is the full-precision one to bfloat16's precision, and training goes on."""
    from dulzip.models import registry
    from dulzip.train.loop import TrainConfig, train_model
    from tests.ddp_families import TINY, make_data
    data = make_data(tmp_path / "data")
    folder, model, extra = TINY[family]
    first = {}
    for bf16 in (False, True):
        out = tmp_path / f"run-{bf16}"
        tc = TrainConfig(data=str(data / folder), out=str(out), steps=2, batch=4, warmup=1, log_every=1, heldout=0,
                         bf16=bf16, **extra)
        train_model(tc, registry.family(family).config(**model), progress=False)
        rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in rows] == [1, 2]
        first[bf16] = rows[0]["bits"]
    assert first[True] == pytest.approx(first[False], rel=0.02) and first[True] != first[False]
