"""Gradient checks of the gradient exercises (tests/exercises/gradients.py), one test each.

    python -m pytest tests/exercises --answers my_answers.py -v

An answer that still raises NotImplementedError, or is missing from the file, is
skipped as "not attempted"; a wrong one fails with gradcheck's report. Without
--answers the reference answers (minivae's own backward passes) are checked.
"""

from __future__ import annotations

import pytest

from tests.exercises.check import FAILED, NOT_ATTEMPTED, check_answer
from tests.exercises.registry import EXERCISES

GRADIENT_EXERCISES = [e for e in EXERCISES if e.kind == "gradient"]


@pytest.mark.parametrize("exercise", GRADIENT_EXERCISES, ids=[e.name for e in GRADIENT_EXERCISES])
def test_gradient(exercise, exercise_answers):
    answer = exercise_answers.lookup(exercise)
    outcome = check_answer(exercise, answer, source=exercise_answers.label)
    if outcome.status == NOT_ATTEMPTED:
        pytest.skip(outcome.message)
    if outcome.status == FAILED:
        pytest.fail(outcome.message, pytrace=False)
