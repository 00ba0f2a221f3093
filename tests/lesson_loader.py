"""Run a numbered lesson from the tests, and the checks every lesson's test file makes.

A lesson's file name starts with a digit, so it cannot be imported by name. A lesson runs at
module level (it is a notebook in the percent format): loading it runs it, so ``run_script``
runs it the way ``python lessons/NN_name.py --quick --out OUT`` does. ``assert_quick_run``
and ``assert_notebook_form`` hold what every lesson promises, so that each test file states
only what its lesson adds.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import io
import json
import re
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


def assert_figures(folder: Path, expected: set) -> None:
    """The lesson made exactly the expected figures, each a real PNG of some size."""
    made = {p.name for p in Path(folder).glob("*.png")}
    assert made == expected, (
        f"missing {sorted(expected - made)}, unexpected {sorted(made - expected)}"
    )
    for name in expected:
        data = (Path(folder) / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE), f"{name} is not a PNG"
        assert len(data) > 10_000, f"{name} is suspiciously small ({len(data)} bytes)"


def assert_quick_run(run, lesson: str, dataset, verdicts) -> None:
    """A quick run records what the lesson holds, says first that its numbers only show that
    the code runs, and prints no verdict, though it records each one. dataset: the name the
    summary must record (None: no data set), or a tuple of the names it may record."""
    _, summary, namespace, printed = run
    assert summary == namespace["summary"]
    assert summary["lesson"] == lesson and summary["quick"] is True
    allowed = dataset if isinstance(dataset, tuple) else (dataset,)
    assert summary["dataset"] in allowed  # the data set the lesson actually used
    assert namespace["QUICK"] is True
    assert "QUICK mode" in printed.split("Part 1")[0]  # said before any number
    assert "the code runs, not what the lesson concludes" in printed
    assert not re.search(r"\b(NOT )?met\b", printed)
    assert all(isinstance(summary[key], bool) for key in verdicts), verdicts


def errata_anchors() -> set:
    """The anchors of docs/ERRATA.md's entries, as GitHub makes them from the headings."""
    errata = (LESSONS.parent / "docs" / "ERRATA.md").read_text(encoding="utf-8")
    headings = re.findall(r"^### (E\d+ .*)$", errata, flags=re.MULTILINE)
    return {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}


def assert_notebook_form(filename: str, settings: set, n_parts: int, cited=()) -> str:
    """lessons/<filename> reads as a notebook: under 600 lines; nothing a kernel lacks
    (__file__, sys.argv, a main()); the run command in its docstring; a first code cell of
    plain assignments that holds the given settings; n_parts parts in order, each opening
    with a question and asking for a prediction; the given sources cited; errata links that
    resolve; no file ids of the lecture notes. Returns the text."""
    text = (LESSONS / filename).read_text(encoding="utf-8")
    assert len(text.splitlines()) < 600
    assert "__file__" not in text and "sys.argv" not in text and "def main(" not in text
    assert f"python lessons/{filename} [--quick]" in ast.get_docstring(ast.parse(text))
    # the first code cell: the docstring, then only plain assignments of the settings
    body = ast.parse(text.split("# %%\n")[1]).body
    assert isinstance(body[0], ast.Expr) and all(isinstance(s, ast.Assign) for s in body[1:])
    assert {s.targets[0].id for s in body[1:]} >= {"QUICK", "SEED", "DEVICE", "OUT"} | settings
    parts = re.findall(r"^# ## Part (\d): (.*)$", text, flags=re.MULTILINE)
    assert [int(n) for n, _ in parts] == list(range(1, n_parts + 1))
    assert all(question.endswith("?") for _, question in parts)
    assert text.count("*Predict:*") == n_parts
    for source in cited:
        assert source in text, source
    links = set(re.findall(r"\(\.\./docs/ERRATA\.md#([^)]+)\)", text))
    assert links <= errata_anchors(), links - errata_anchors()
    assert not re.search(r"seed 0\d", text, flags=re.IGNORECASE)  # cite the notes by title
    assert "DESIGN.md" not in text
    return text
