"""The probability heads (dulzip/heads): their integer side stays free of float math, and they
import no model, runtime or codec (the models, runtimes and codecs import them)."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

HEADS = sorted((Path(__file__).parents[1] / "dulzip" / "heads").glob("*.py"))
# the float side, for training only: its bits are estimates, never coded
FLOAT_SIDE = {"head_params", "mixture_bits"}
# the probability path's rule (shared/hooks/before-stop checks exact/ and coding/ the same way):
# tables come from integer arithmetic and lookup tables; '# exact-ok' marks a table built at export
FLOAT_MATH = re.compile(r"torch\.(exp|log|sigmoid|tanh|softmax|log_softmax)\(|F\.(softmax|log_softmax|sigmoid)\("
                        r"|np\.(exp|log|tanh)\(")


@pytest.mark.parametrize("path", HEADS, ids=lambda p: p.name)
def test_integer_side_has_no_float_math(path):
    lines = path.read_text().splitlines()
    hits = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name not in FLOAT_SIDE:
            for i in range(node.lineno - 1, node.end_lineno):
                if FLOAT_MATH.search(lines[i]) and "# exact-ok" not in lines[i]:
                    hits.append(f"{path.name}:{i + 1}: {lines[i].strip()}")
    assert not hits, "float math on a head's integer side:\n" + "\n".join(hits)


def test_heads_import_no_model_runtime_or_codec():
    code = ("import sys, dulzip.heads.logistic, dulzip.heads.audio; "
            "print(' '.join(m for m in sys.modules if m.startswith('dulzip.')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    allowed = {"dulzip.heads", "dulzip.heads.logistic", "dulzip.heads.audio", "dulzip.coding", "dulzip.coding.tables",
               "dulzip.exact", "dulzip.exact.quant", "dulzip.errors"}
    assert set(loaded) <= allowed, set(loaded) - allowed
