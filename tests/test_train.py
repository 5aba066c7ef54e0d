"""`dulzip train`: trains, checkpoints, resumes, exports a loadable model with a card."""
from __future__ import annotations

import json

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
