"""The README's Python example runs as written."""
from __future__ import annotations

import re
from pathlib import Path


def test_readme_python_example(tiny_models, monkeypatch):
    root = Path(__file__).parent.parent
    monkeypatch.chdir(root)
    text = (root / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {})
