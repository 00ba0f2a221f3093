"""Tests of the gradient-check exercises (tests/exercises): the checker, the template, the option.

The end-to-end tests run pytest in a subprocess, the way a learner does,
    python -m pytest tests/exercises --answers my_answers.py
from the repository root, and read the counts off its summary line.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from minivae.backend import np
from tests.exercises import reference
from tests.exercises.check import FAILED, NOT_ATTEMPTED, PASSED, check_answer
from tests.exercises.registry import BY_NAME, EXERCISES

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "tests" / "exercises" / "template.py"
N = len(EXERCISES)


# ----------------------------------------------------------------------------- helpers


def run_exercises(*args: str) -> tuple[int, str, dict]:
    """Run the exercises in a fresh pytest; its exit code, its output, and the summary counts."""
    cmd = [sys.executable, "-m", "pytest", "tests/exercises", "-q", "-rfs",
           "-p", "tests.exercises.plugin", "-p", "no:cacheprovider", *args]  # fmt: skip
    proc = subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True, timeout=120)
    output = proc.stdout + proc.stderr
    return proc.returncode, output, summary_counts(output)


def summary_counts(output: str) -> dict:
    """{'passed': 1, 'skipped': 13, ...} from pytest's last line, '1 passed, 13 skipped in 0.1s'."""
    lines = [ln for ln in output.splitlines() if re.search(r"\bin [\d.]+s\b", ln)]
    if not lines:
        return {}
    return {
        word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped|errors?)", lines[-1])
    }


def template_with(replacements: dict, drop: tuple = ()) -> str:
    """The template's text with some stubs' bodies replaced and some functions removed."""
    source = TEMPLATE.read_text()
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    edits = []  # (first line, last line, new text), applied bottom-up
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        if node.name in drop:
            edits.append((node.lineno - 1, node.end_lineno, ""))
        elif node.name in replacements:
            stmt = node.body[-1]  # the `raise NotImplementedError`
            body = "".join(
                "    " + ln + "\n" for ln in replacements[node.name].strip().splitlines()
            )
            edits.append((stmt.lineno - 1, stmt.end_lineno, body))
    for first, last, text in sorted(edits, reverse=True):
        lines[first:last] = [text]
    return "".join(lines)


# ----------------------------------------------------------------------------- registry, template, reference


def test_every_exercise_has_a_stub_with_its_signature_and_a_reference_answer():
    tree = ast.parse(TEMPLATE.read_text())
    stubs = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert list(stubs) == [e.answer_name for e in EXERCISES], "template order or names drifted"
    for e in EXERCISES:
        node = stubs[e.answer_name]
        assert [a.arg for a in node.args.args] == ["grad_out", *e.inputs], e.name
        doc = ast.get_docstring(node)
        for part in ("forward:", "shapes:", "lecture:", "hint:", "returns:"):
            assert part in doc, f"{e.answer_name} docstring lacks {part!r}"
        returns = "(" + ", ".join(f"d_{n}" for n in e.grads) + ("," if len(e.grads) == 1 else "")
        assert returns in doc, f"{e.answer_name}: 'returns' must list {e.grads}"
        assert ast.unparse(node.body[-1]) == "raise NotImplementedError"
        assert callable(getattr(reference, e.answer_name, None)), f"reference lacks {e.answer_name}"
        assert set(e.grads) <= set(e.inputs)


def test_exercise_names_are_unique_and_inputs_are_float64_in_their_domain():
    assert len(BY_NAME) == N
    for e in EXERCISES:
        inputs = e.make_inputs(np.random.default_rng(0))
        assert len(inputs) == len(e.inputs), e.name
        for name, x in zip(e.inputs, inputs):
            assert x.dtype == (np.int64 if name == "labels" else np.float64), (e.name, name)
        assert np.isfinite(e.forward(*inputs)).all(), e.name


@pytest.mark.parametrize("exercise", EXERCISES, ids=[e.name for e in EXERCISES])
def test_reference_answers_pass(exercise):
    outcome = check_answer(exercise, getattr(reference, exercise.answer_name))
    assert outcome.status == PASSED, outcome.message
    assert outcome.report.mode == "full"


# ----------------------------------------------------------------------------- the checker, in-process


def test_missing_and_stub_answers_are_not_attempted():
    assert check_answer("relu", None).status == NOT_ATTEMPTED

    def relu_backward(grad_out, x):
        raise NotImplementedError

    outcome = check_answer("relu", relu_backward)
    assert outcome.status == NOT_ATTEMPTED
    assert outcome.message.startswith("not attempted: relu")


def test_a_slightly_wrong_derivative_fails_with_the_worst_element():
    def sigmoid_backward(grad_out, x):
        y = 1.0 / (1.0 + np.exp(-x))
        return (grad_out * y * (1.0 - y) * (1.0 + 1e-4),)

    outcome = check_answer("sigmoid", sigmoid_backward)
    assert outcome.status == FAILED
    assert "relative error" in outcome.message and "worst: input 0 (x)" in outcome.message
    assert 5e-5 < outcome.report.worst.rel_error < 2e-4


def test_a_gradient_of_the_wrong_shape_names_both_shapes():
    def broadcast_add_backward(grad_out, a, b):
        return grad_out, grad_out  # forgot to sum b's gradient over the batch

    outcome = check_answer("broadcast_add", broadcast_add_backward)
    assert outcome.status == FAILED
    assert "dL/db has shape (3, 4), but b has shape (4,)" in outcome.message


def test_a_backward_not_linear_in_grad_out_fails_the_projection_check():
    def relu_backward(grad_out, x):
        return (np.abs(grad_out) * (x > 0),)  # right for one-hot grad_out only

    outcome = check_answer("relu", relu_backward)
    assert outcome.status == FAILED
    assert "linear in grad_out" in outcome.message and outcome.report.mode == "projection"


def test_writing_into_an_argument_is_refused():
    def relu_backward(grad_out, x):
        grad_out[x <= 0] = 0.0
        return (grad_out,)

    outcome = check_answer("relu", relu_backward)
    assert outcome.status == FAILED and "in place" in outcome.message


def test_wrong_count_and_float32_are_explained():
    def dense_backward(grad_out, x, W, b):
        return grad_out @ W.T, x.T @ grad_out

    def softplus_backward(grad_out, x):
        return (grad_out / (1.0 + np.exp(-x))).astype(np.float32)

    counted = check_answer("dense", dense_backward)
    assert (
        counted.status == FAILED and "returned 2 gradient(s); it must return 3" in counted.message
    )
    typed = check_answer("softplus", softplus_backward)
    assert typed.status == FAILED and "float32" in typed.message


# ----------------------------------------------------------------------------- the --answers option, end to end


def test_wrong_answers_fail_with_gradchecks_report(tmp_path):
    answers = tmp_path / "wrong_answers.py"
    answers.write_text(template_with({
        "relu_backward": "return (grad_out,)  # passes the gradient through everywhere",
        "dense_backward": "return grad_out @ W.T, 2.0 * (x.T @ grad_out), grad_out.sum(axis=0)",
    }))  # fmt: skip
    code, output, counts = run_exercises("--answers", str(answers))
    assert code == 1, output
    assert counts == {"failed": 2, "skipped": N - 2}, output
    assert "FAILED tests/exercises/test_gradients.py::test_gradient[relu]" in output
    assert "FAILED tests/exercises/test_gradients.py::test_gradient[dense]" in output
    assert "relu_backward (wrong_answers.py) does not match the numerical gradient" in output
    assert "relative error" in output and "analytic" in output and "numeric" in output
    assert "input 1 (W)" in output  # the wrong one of dense's three gradients is named


def test_partial_answers_pass_and_the_rest_are_not_attempted(tmp_path):
    answers = tmp_path / "my_answers.py"
    answers.write_text(template_with(
        {"relu_backward": "return (grad_out * (x > 0),)"}, drop=("entropy_backward",)
    ))  # fmt: skip
    code, output, counts = run_exercises("--answers", str(answers))
    assert code == 0, output
    assert counts == {"passed": 1, "skipped": N - 1}, output
    assert "not attempted: dense (dense_backward raises NotImplementedError)" in output
    assert "not attempted: entropy (no function entropy_backward in my_answers.py)" in output


def test_an_answers_file_that_does_not_import_is_a_usage_error(tmp_path):
    answers = tmp_path / "broken.py"
    answers.write_text("def relu_backward(grad_out, x)\n    return grad_out\n")
    code, output, _ = run_exercises("--answers", str(answers))
    assert code == 4, output  # pytest's usage error
    assert "could not import broken.py" in output and "SyntaxError" in output
