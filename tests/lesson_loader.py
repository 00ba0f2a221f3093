"""Run a numbered lesson from the tests: as a script (both forms) or, older form, through main().

A lesson's file name starts with a digit, so it cannot be imported by name. A lesson in
the notebook form runs at module level: loading it runs it, so ``run_script`` runs it the
way ``python lessons/NN_name.py --quick --out OUT`` does. An older lesson has a ``main(argv)``
that ``run_quick`` calls.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import runpy
import sys
from pathlib import Path

LESSONS = Path(__file__).resolve().parent.parent / "lessons"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def load_lesson(filename: str):
    """lessons/<filename> as a module, e.g. load_lesson("02_vae.py")."""
    path = LESSONS / filename
    spec = importlib.util.spec_from_file_location("lesson_" + path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(out: Path, filename: str, *extra: str):
    """Run lessons/<filename> as ``python lessons/<filename> --quick --out OUT *extra`` would.

    Returns (its output folder, its summary.json, its namespace when done, what it printed).
    """
    path = LESSONS / filename
    saved, printed = sys.argv, io.StringIO()
    sys.argv = [str(path), "--quick", "--out", str(out), *extra]
    try:
        with contextlib.redirect_stdout(printed):
            namespace = runpy.run_path(str(path), run_name="__main__")
    finally:
        sys.argv = saved
        print(printed.getvalue())  # pytest shows it when a test fails
    folder = Path(out) / Path(filename).stem
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    return folder, summary, namespace, printed.getvalue()


def run_quick(out: Path, filename: str, *extra: str):
    """(Older form) run a lesson's main(["--quick", "--out", out, *extra]) once.

    Returns (its output folder, its summary.json, what main returned, the module).
    """
    lesson = load_lesson(filename)
    returned = lesson.main(["--quick", "--out", str(out), *extra])
    folder = Path(out) / Path(filename).stem
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    return folder, summary, returned, lesson


def assert_figures(folder: Path, expected: set) -> None:
    """The lesson made exactly the expected figures, each a real PNG of some size."""
    made = {p.name for p in Path(folder).glob("*.png")}
    assert made == expected, f"missing {sorted(expected - made)}, unexpected {sorted(made - expected)}"
    for name in expected:
        data = (Path(folder) / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE), f"{name} is not a PNG"
        assert len(data) > 10_000, f"{name} is suspiciously small ({len(data)} bytes)"
