"""pytest plugin of the exercises: the ``--answers`` option and the ``exercise_answers`` fixture.

    python -m pytest tests/exercises --answers my_answers.py -v

With ``--answers PATH`` the checks in tests/exercises/test_gradients.py run on the
``*_backward`` functions of that file; without it, on the reference answers
(minivae's own backward passes). pytest reads options only from the rootdir
conftest or a plugin, so tests/conftest.py registers this module with
``pytest_plugins = ["tests.exercises.plugin"]`` (or pass ``-p tests.exercises.plugin``).
"""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest

from tests.exercises.check import Answers, load_answers, reference_answers

_ANSWERS = pytest.StashKey[Answers]()


def pytest_addoption(parser):
    group = parser.getgroup("minivae exercises", "gradient-check exercises (tests/exercises)")
    group.addoption(
        "--answers",
        metavar="PATH",
        default=None,
        help="a Python file with your *_backward functions (a copy of "
        "tests/exercises/template.py) for the exercises to check; without it they check "
        "minivae's own backward passes",
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
    except Exception:
        raise pytest.UsageError(
            f"--answers: could not import {path.name}:\n{traceback.format_exc(limit=-3)}"
        ) from None


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
