"""Gradient checks of the exercises, one test per entry of tests/exercises/registry.py.

    python -m pytest tests/exercises --answers my_answers.py -v

An answer that still raises NotImplementedError, or is missing from the file, is
skipped as "not attempted"; a wrong one fails with gradcheck's report. Without
--answers the reference answers (minivae's own backward passes) are checked.
"""

from __future__ import annotations

import pytest

from tests.exercises.check import FAILED, NOT_ATTEMPTED, check_answer
from tests.exercises.registry import EXERCISES


@pytest.mark.parametrize("exercise", EXERCISES, ids=[e.name for e in EXERCISES])
def test_gradient(exercise, exercise_answers):
    backward = exercise_answers.lookup(exercise)
    outcome = check_answer(exercise, backward, source=exercise_answers.label)
    if outcome.status == NOT_ATTEMPTED:
        pytest.skip(outcome.message)
    if outcome.status == FAILED:
        pytest.fail(outcome.message, pytrace=False)
