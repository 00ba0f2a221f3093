"""lessons/run_all.py: the lessons in order, the options it passes to all of them, both lesson forms."""

from __future__ import annotations

import json
import os
import sys
import textwrap

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout

from lessons import run_all

# Two tiny lessons, one of each form, that record the command line they were given.
NOTEBOOK_FORM = '''
"""A lesson in the notebook form."""
QUICK = False
SEED = 0
OUT = "runs/lessons"

from lessons import common

lesson = common.setup("90_notebook_form", globals())
lesson.report("seed_seen", SEED)
summary = lesson.finish()
'''
MAIN_FORM = '''
"""A lesson in the older form, with main(argv)."""
from lessons.common import Lesson, parse_args


def main(argv=None):
    lesson = Lesson("91_main_form", parse_args(argv, __doc__))
    lesson.report("seed_seen", lesson.args.seed)
    return lesson.finish()


if __name__ == "__main__":
    main()
'''


def test_lessons_are_listed_in_their_numbered_order():
    names = [os.path.basename(p) for p in run_all.lesson_files()]
    assert names[0].startswith("00_") and len(names) >= 7
    assert names == sorted(names)
    assert all(n[:2].isdigit() and n[2] == "_" for n in names)


def test_an_option_of_one_lesson_is_refused_before_any_lesson_runs(monkeypatch, capsys):
    ran = []
    monkeypatch.setattr(run_all, "run_lesson", lambda path, argv: ran.append(path))
    with pytest.raises(SystemExit) as err:
        run_all.main(["--quick", "--ablation-epochs=3", "--seed", "1"])
    message = capsys.readouterr().err
    assert err.value.code == 2  # a usage error, as argparse's own
    assert "not --ablation-epochs." in message and "06_semi_supervised_vae.py" in message
    assert ran == []
    with pytest.raises(SystemExit) as err:
        run_all.main(["--quick", "--seed", "-1"])  # a value argparse refuses: also 2
    assert err.value.code == 2 and "--seed: must be a whole number >= 0" in capsys.readouterr().err
    assert ran == []


def test_shared_options_pass_the_check_and_their_values_are_checked():
    run_all.check_shared_options(["--quick", "--seed", "3", "--no-progress", "--out", "x"])
    with pytest.raises(SystemExit):
        run_all.check_shared_options(["--seed", "three"])


def test_both_lesson_forms_run_with_the_options_passed_through(tmp_path, monkeypatch):
    files = []
    for name, source in (("90_notebook_form.py", NOTEBOOK_FORM), ("91_main_form.py", MAIN_FORM)):
        (tmp_path / name).write_text(textwrap.dedent(source), encoding="utf-8")
        files.append(str(tmp_path / name))
    monkeypatch.setattr(run_all, "lesson_files", lambda: files)
    argv_before = list(sys.argv)
    out = tmp_path / "out"
    assert run_all.main(["--quick", "--seed", "7", "--out", str(out)]) == 0
    for name in ("90_notebook_form", "91_main_form"):
        summary = json.loads((out / name / "summary.json").read_text(encoding="utf-8"))
        assert summary["quick"] is True and summary["seed"] == 7 and summary["seed_seen"] == 7
    assert sys.argv == argv_before  # the lessons' command line was put back
