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
        "then B.xp, and B.np in host-side modules):\n  " + "\n  ".join(offenders)
    )


# ----------------------------------------------------------------------------- NumPy through the backend

# Modules that work on host (NumPy) arrays by design and may use the backend's NumPy,
# ``B.np`` (or ``from minivae.backend import np``): reading and writing files, host-side
# figures and measures, numerical checks. Everything else reaches arrays through ``B.xp``
# and the backend's helpers, so that the same code runs on CuPy arrays.
HOST_SIDE = {
    "backend.py",  # defines it
    "data.py",  # the IDX reader, built-in data, splits: host arrays until to_device
    "checkpoint.py",  # .npz files
    "plots.py",  # matplotlib takes host arrays
    "disentanglement.py",  # measures on host codes and factors
    "gradcheck.py",  # finite differences index host copies
}
# Not host-side, but still using B.np at the time of writing; each use is on a dtype or a
# small host array, not on device data. Remove a file from here once it no longer uses it.
B_NP_FOR_NOW = {
    "optim.py",  # the state dict's scalars
}


def backend_numpy_uses(path: Path):
    """(line, text) for each use of the backend's NumPy: B.np, backend.np, or importing np from it."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr == "np"
                and isinstance(node.value, ast.Name) and node.value.id in ("B", "backend")):
            found.append((node.lineno, f"{node.value.id}.np"))
        elif (isinstance(node, ast.ImportFrom) and node.module == "minivae.backend"
              and any(alias.name == "np" for alias in node.names)):
            found.append((node.lineno, "from minivae.backend import np"))
    return sorted(found)


def test_the_backend_numpy_rule_sees_every_spelling(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from minivae import backend as B\nfrom minivae.backend import np\n"
        "a = B.np.zeros(3)\nb = backend.np.ones(2)\nc = B.xp.zeros(3)\nnp2 = B.np\n"
    )
    assert backend_numpy_uses(sample) == [
        (2, "from minivae.backend import np"), (3, "B.np"), (4, "backend.np"), (6, "B.np"),
    ]  # fmt: skip


def test_only_host_side_modules_use_the_backends_numpy():
    files = sorted(PACKAGE.rglob("*.py"))
    allowed = HOST_SIDE | B_NP_FOR_NOW
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {text}"
        for path in files
        if path.relative_to(PACKAGE).as_posix() not in allowed
        for line, text in backend_numpy_uses(path)
    ]
    assert not offenders, (
        "library code reaches arrays through B.xp and the backend's helpers; B.np is for the "
        "host-side modules listed in HOST_SIDE:\n  " + "\n  ".join(offenders)
    )
    for name in sorted(allowed):
        assert (PACKAGE / name).is_file(), f"{name} is listed but does not exist"
    stale = [name for name in sorted(B_NP_FOR_NOW) if not backend_numpy_uses(PACKAGE / name)]
    assert not stale, f"B_NP_FOR_NOW lists files that no longer use B.np; remove them: {stale}"


def test_tensors_are_recognised_with_isinstance():
    """isinstance(x, Tensor), not hasattr(x, "_ctx"): the check says what it means."""
    for_now = {"ops/shape.py", "ops/losses.py"}  # still spelled the old way at the time of writing
    offenders, spelled_old = [], set()
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "hasattr"
                    and len(node.args) == 2 and isinstance(node.args[1], ast.Constant)
                    and node.args[1].value == "_ctx"):
                spelled_old.add(name)
                if name not in for_now:
                    offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert for_now <= spelled_old, "no longer spelled the old way; remove from for_now: " \
        f"{sorted(for_now - spelled_old)}"
    assert not offenders, "use isinstance(x, Tensor) instead of hasattr(x, '_ctx'):\n  " + \
        "\n  ".join(offenders)
