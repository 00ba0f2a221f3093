"""pytest plugin of the exercises: the ``--answers`` and ``--exercise`` options, ``exercise_answers``.

    python -m pytest tests/exercises --answers my_answers.py -v
    python -m pytest tests/exercises --answers my_answers.py --exercise kl_diag

With ``--answers PATH`` the checks in tests/exercises/test_*.py run on the functions
of that file; without it, on the reference answers (tests/exercises/reference.py).
``--exercise NAME`` (repeatable, or comma-separated) keeps only the checks of the
named exercises: a function's name (``kl_diag_backward``) or an exercise's name
(``kl_diag``: its value and its gradient exercise); every other test is deselected.
pytest reads options only from the rootdir conftest or a plugin, so pyproject.toml
loads this module with ``-p tests.exercises.plugin``.
"""

from __future__ import annotations

import difflib
import traceback
from pathlib import Path

import pytest

from tests.exercises.check import Answers, load_answers, reference_answers
from tests.exercises.registry import BY_NAME, matching

_ANSWERS = pytest.StashKey[Answers]()


def pytest_addoption(parser):
    group = parser.getgroup("minivae exercises", "gradient-check exercises (tests/exercises)")
    group.addoption(
        "--answers",
        metavar="PATH",
        default=None,
        help="a Python file with your answers (a copy of tests/exercises/template.py: "
        "backward passes, values and the engine's walk) for the exercises to check; without "
        "it they check the reference answers (tests/exercises/reference.py)",
    )
    group.addoption(
        "--exercise",
        metavar="NAME",
        action="append",
        default=[],
        help="check only this exercise: the name of its function (kl_diag_backward) or of the "
        "exercise (kl_diag, its value and gradient parts); repeat it or separate names by commas",
    )


def pytest_configure(config):
    path = config.getoption("answers", default=None)
    if path is None:
        return
    path = Path(path)
    if not path.is_absolute():
        path = Path(config.invocation_params.dir) / path
    try:
        config.stash[_ANSWERS] = load_answers(path)
    except FileNotFoundError as err:
        raise pytest.UsageError(f"--answers: {err}") from None
    except Exception:  # noqa: BLE001 - any error of the learner's file is reported
        raise pytest.UsageError(
            f"--answers: could not import {path.name}:\n{traceback.format_exc(limit=-3)}"
        ) from None


def _selected(config) -> set | None:
    """The answer names picked by --exercise, or None when the option is not given."""
    names = [n.strip() for arg in config.getoption("exercise", default=[]) for n in arg.split(",")]
    names = [n for n in names if n]
    if not names:
        return None
    picked = set()
    for name in names:
        found = matching(name)
        if not found:
            close = difflib.get_close_matches(name, list(BY_NAME), n=3)
            raise pytest.UsageError(
                f"--exercise: no exercise called {name!r}"
                + (f"; did you mean {', '.join(close)}?" if close else "")
                + f" (the exercises: {', '.join(BY_NAME)})"
            )
        picked.update(e.answer_name for e in found)
    return picked


def pytest_collection_modifyitems(config, items):
    picked = _selected(config)
    if picked is None:
        return
    here = Path(__file__).resolve().parent
    keep, drop = [], []
    for item in items:
        exercise = getattr(getattr(item, "callspec", None), "params", {}).get("exercise")
        in_here = Path(str(item.path)).resolve().parent == here
        chosen = in_here and getattr(exercise, "answer_name", None) in picked
        (keep if chosen else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_report_header(config):
    answers = config.stash.get(_ANSWERS, None)
    if answers is not None:
        return f"exercises: checking the answers in {answers.label}"
    return None


@pytest.fixture(scope="session")
def exercise_answers(pytestconfig) -> Answers:
    """The learner's answers (``--answers``), or the reference answers without the option."""
    answers = pytestconfig.stash.get(_ANSWERS, None)
    return answers if answers is not None else reference_answers()
