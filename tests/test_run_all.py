"""lessons/run_all.py: the lessons in order, and the options it can pass to all of them."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout

from lessons import run_all


def test_lessons_are_listed_in_their_numbered_order():
    names = [os.path.basename(p) for p in run_all.lesson_files()]
    assert names[0].startswith("00_") and len(names) >= 7
    assert names == sorted(names)
    assert all(n[:2].isdigit() and n[2] == "_" for n in names)


def test_an_option_of_one_lesson_is_refused_before_any_lesson_runs(monkeypatch, capsys):
    ran = []
    monkeypatch.setattr(run_all, "load", lambda path: ran.append(path))
    with pytest.raises(SystemExit) as err:
        run_all.main(["--quick", "--ablation-epochs=3", "--seed", "1"])
    message = str(err.value.code)
    assert "not --ablation-epochs." in message and "05_semi_supervised_vae.py" in message
    assert ran == []


def test_shared_options_pass_the_check_and_their_values_are_checked():
    run_all.check_shared_options(["--quick", "--seed", "3", "--no-progress", "--out", "x"])
    with pytest.raises(SystemExit):
        run_all.check_shared_options(["--seed", "three"])
