"""The import rule: only minivae/backend.py imports NumPy or CuPy; everything else goes through it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "minivae"
ARRAY_MODULES = {"numpy", "cupy", "cupyx"}
ALLOWED = {PACKAGE / "backend.py"}


def array_imports(path: Path):
    """(line, text) for each import of an array module in a file, however it is spelled."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):  # importlib.import_module("numpy") / __import__("numpy")
            names = [node.args[0].value]
        else:
            continue
        for name in names:
            if name.split(".")[0] in ARRAY_MODULES:
                found.append((node.lineno, name))
    return sorted(found)


def test_the_rule_sees_every_spelling(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os\nimport numpy as np\nfrom numpy.linalg import norm\n"
        "def f():\n    import cupy\n    return __import__('cupyx')\n"
        "import importlib\nm = importlib.import_module('numpy.random')\nfrom minivae import backend\n"
    )
    assert array_imports(sample) == [
        (2, "numpy"), (3, "numpy.linalg"), (5, "cupy"), (6, "cupyx"), (8, "numpy.random"),
    ]  # fmt: skip


def test_only_the_backend_imports_numpy_or_cupy():
    files = sorted(PACKAGE.rglob("*.py"))
    assert PACKAGE / "backend.py" in files and len(files) > 5
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: imports {name}"
        for path in files
        if path not in ALLOWED
        for line, name in array_imports(path)
    ]
    assert not offenders, (
        "only minivae/backend.py may import numpy or cupy (use `from minivae import backend as B`, "
        "then B.xp / B.np):\n  " + "\n  ".join(offenders)
    )
