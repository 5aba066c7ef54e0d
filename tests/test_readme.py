"""The README's Python example runs as written."""
from __future__ import annotations

import re
from pathlib import Path


def test_readme_python_example(text_models, monkeypatch, tmp_path):
    """Every python block of the README, run as written in a folder of its own (the files it
    writes stay there) that sees the repository's tests/data."""
    root = Path(__file__).parent.parent
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "data").symlink_to(root / "tests" / "data")
    monkeypatch.chdir(tmp_path)
    text = (root / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {})
