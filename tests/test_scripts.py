"""The shell scripts' embedded Python imports only what the package has (a renamed module once
broke scripts/demo.sh, the README's first command, while every test passed)."""
from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
IMPORTS = sorted({(p.relative_to(ROOT).as_posix(), m.group(1), m.group(2))
                  for p in [*ROOT.glob("scripts/*.sh"), *ROOT.glob("benchmarks/**/*.sh")]
                  for m in re.finditer(r"^from (dulzip[\w.]*) import ([\w, ]+)$", p.read_text(), re.M)})


@pytest.mark.parametrize("script,module,names", IMPORTS)
def test_script_imports_exist(script, module, names):
    mod = importlib.import_module(module)
    for name in (n.strip() for n in names.split(",")):
        assert hasattr(mod, name) or importlib.util.find_spec(f"{module}.{name}"), f"{script}: {module}.{name}"


def test_the_scripts_were_read():
    assert any(s == "scripts/demo.sh" for s, _, _ in IMPORTS)
