"""Checks of the value and engine exercises (tests/exercises/values.py, engine.py), one test each.

    python -m pytest tests/exercises --answers my_answers.py -v
    python -m pytest tests/exercises --answers my_answers.py --exercise iwae_toy -s

A value exercise passes when the answer's numbers equal minivae's on fixed inputs;
an engine exercise when the walk agrees with Tensor.backward on small graphs. A
missing answer, or one that raises NotImplementedError, is skipped as "not
attempted". A passing test prints what the check found (the IWAE bound against K,
the two gradient estimators' means): run with -s (or -rP) to see it.
"""

from __future__ import annotations

import pytest

from tests.exercises.check import FAILED, NOT_ATTEMPTED, check_answer
from tests.exercises.registry import EXERCISES

VALUE_EXERCISES = [e for e in EXERCISES if e.kind == "value"]
ENGINE_EXERCISES = [e for e in EXERCISES if e.kind == "engine"]


def _run(exercise, exercise_answers):
    answer = exercise_answers.lookup(exercise)
    outcome = check_answer(exercise, answer, source=exercise_answers.label)
    if outcome.status == NOT_ATTEMPTED:
        pytest.skip(outcome.message)
    if outcome.status == FAILED:
        pytest.fail(outcome.message, pytrace=False)
    print(outcome.message)


@pytest.mark.parametrize("exercise", VALUE_EXERCISES, ids=[e.name for e in VALUE_EXERCISES])
def test_value(exercise, exercise_answers):
    _run(exercise, exercise_answers)


@pytest.mark.parametrize("exercise", ENGINE_EXERCISES, ids=[e.name for e in ENGINE_EXERCISES])
def test_engine(exercise, exercise_answers):
    _run(exercise, exercise_answers)
