"""Tests of the exercises (tests/exercises): registry, template, checkers, options, documents.

The end-to-end tests run pytest in a subprocess, the way a learner does,
    python -m pytest tests/exercises --answers my_answers.py
from the repository root, and read the counts off its summary line. The planted
wrong answers (one per exercise, and one per known mistake) are checked in-process.
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
from tests.exercises.make_template import render
from tests.exercises.registry import BY_NAME, EXERCISES, LESSONS, find, matching

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "tests" / "exercises"
TEMPLATE = HERE / "template.py"
N = len(EXERCISES)
IDS = [e.answer_name for e in EXERCISES]
ORIGINAL = {  # the gradient exercises that came before the value and engine ones
    "dense", "relu", "softplus", "sigmoid", "broadcast_add", "sum_axis", "bernoulli_log_prob",
    "gaussian_log_prob", "reparameterize", "kl_normal_std", "logsumexp", "importance_weights",
    "cross_entropy", "entropy",
}  # fmt: skip
NEW = [e for e in EXERCISES if not (e.kind == "gradient" and e.name in ORIGINAL)]


# ----------------------------------------------------------------------------- helpers


def run_exercises(*args: str) -> tuple[int, str, dict]:
    """Run the exercises in a fresh pytest; its exit code, its output, and the summary counts."""
    cmd = [sys.executable, "-m", "pytest", "tests/exercises", "-q", "-rfs",
           "-p", "tests.exercises.plugin", "-p", "no:cacheprovider", *args]  # fmt: skip
    proc = subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    return proc.returncode, output, summary_counts(output)


def summary_counts(output: str) -> dict:
    """{'passed': 1, 'skipped': 13, ...} from pytest's last line, '1 passed, 13 skipped in 0.1s'."""
    lines = [ln for ln in output.splitlines() if re.search(r"\bin [\d.]+s\b", ln)]
    if not lines:
        return {}
    return {
        word: int(n)
        for n, word in re.findall(r"(\d+) (passed|failed|skipped|deselected|errors?)", lines[-1])
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


def test_there_are_at_least_28_exercises_and_14_new_ones_covering_the_lectures():
    assert N >= 28 and len(NEW) >= 14, (N, len(NEW))
    kinds = {e.kind for e in EXERCISES}
    assert kinds == {"gradient", "value", "engine"}
    # the quantities the exercises must cover, as values and as gradients
    for name in ("elbo_bernoulli", "elbo_samples", "kl_diag", "kl_full", "log_px_importance",
                 "iwae_weights", "iwae_toy", "m2_unlabelled_bound", "m2_optimal_q",
                 "score_function", "entropy_diag", "topological_order", "backward_walk",
                 "kl_diag_backward", "reparameterize_full_backward", "kl_full_backward",
                 "m2_unlabelled_bound_backward", "entropy_diag_backward"):  # fmt: skip
        assert name in BY_NAME, name


def test_every_exercise_names_a_lecture_by_title_and_has_a_hint():
    titles = ("PGM Lecture 30", "Computational Intelligence Lab, Series 9",
              "'Variational Autoencoders' (2018)", "Understanding Deep Learning, ch. 17",
              "VAE Extensions slides")  # fmt: skip
    for e in EXERCISES:
        assert any(t in e.lecture for t in titles), (e.answer_name, e.lecture)
        assert not re.search(r"seed \d|\b00\d_", e.lecture), e.answer_name
        assert len(e.hint) > 20, e.answer_name


def test_the_template_is_what_make_template_writes():
    assert TEMPLATE.read_text() == render(), (
        "tests/exercises/template.py is out of date: run python -m tests.exercises.make_template"
    )


def test_every_exercise_has_a_stub_with_its_signature_and_a_reference_answer():
    tree = ast.parse(TEMPLATE.read_text())
    stubs = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert list(stubs) == IDS, "template order or names drifted"
    label = {"gradient": "forward:", "value": "formula:", "engine": "task:"}
    for e in EXERCISES:
        node = stubs[e.answer_name]
        assert [a.arg for a in node.args.args] == list(e.arguments), e.answer_name
        doc = ast.get_docstring(node)
        for part in (label[e.kind], "shapes:", "lecture:", "hint:", "returns:"):
            assert part in doc, f"{e.answer_name} docstring lacks {part!r}"
        assert ast.unparse(node.body[-1]) == "raise NotImplementedError"
        assert callable(getattr(reference, e.answer_name, None)), f"reference lacks {e.answer_name}"
        if e.kind == "gradient":
            assert set(e.grads) <= set(e.inputs)
            returns = "(" + ", ".join(f"d_{n}" for n in e.grads)
            assert returns in doc, f"{e.answer_name}: 'returns' must list {e.grads}"


def test_every_exercise_is_placed_in_one_lesson_and_names_are_unique():
    placed = [n for _, _, _, names in LESSONS for n in names]
    assert sorted(placed) == sorted(IDS) and len(set(placed)) == len(placed)
    assert len(BY_NAME) == N
    for _, _, path, _ in LESSONS:
        assert (ROOT / path).is_file(), path
    assert [e.answer_name for e in matching("kl_diag")] == ["kl_diag", "kl_diag_backward"]
    assert find("relu").answer_name == "relu_backward" and find("kl_diag").kind == "value"
    with pytest.raises(KeyError, match="no exercise called 'nope'"):
        find("nope")


def test_inputs_are_float64_in_their_domain_and_the_oracles_are_finite():
    for e in EXERCISES:
        rng = np.random.default_rng(0)
        if e.kind == "gradient":
            inputs = e.make_inputs(rng)
            assert len(inputs) == len(e.inputs), e.name
            for name, x in zip(e.inputs, inputs):
                assert x.dtype == (np.int64 if name == "labels" else np.float64), (e.name, name)
            assert np.isfinite(e.forward(*inputs)).all(), e.name
        elif e.kind == "value":
            for label, inputs in e.make_cases(rng):
                assert len(inputs) == len(e.inputs), (e.name, label)
                expected = e.oracle(*inputs)
                assert len(expected) == len(e.outputs), e.name
                assert all(np.isfinite(np.asarray(v)).all() for v in expected), (e.name, label)


@pytest.mark.parametrize("exercise", EXERCISES, ids=IDS)
def test_reference_answers_pass(exercise):
    outcome = check_answer(exercise, getattr(reference, exercise.answer_name))
    assert outcome.status == PASSED, outcome.message
    if exercise.kind == "gradient":
        assert outcome.report.mode == "full"


def test_the_stability_cases_defeat_a_naive_computation():
    # every log-weight of these cases lies below -745, where exp underflows to 0 in float64
    for name, log_w in (("log_px_importance", lambda *a: reference._log_weights(*a)),
                        ("iwae_weights", lambda a: a)):  # fmt: skip
        e = BY_NAME[name]
        _, inputs = e.make_cases(np.random.default_rng(1))[0]
        assert np.asarray(log_w(*inputs)).max() < -745.0, name


# ----------------------------------------------------------------------------- planted wrong answers


def _planted_gradient(exercise):
    """The reference backward with the LAST gradient 1.5 times too large."""
    ref = getattr(reference, exercise.answer_name)

    def wrong(grad_out, *inputs):
        grads = ref(grad_out, *inputs)
        grads = grads if isinstance(grads, tuple) else (grads,)
        return (*grads[:-1], 1.5 * grads[-1] + 0.01 * inputs[exercise.inputs.index(exercise.grads[-1])])

    return wrong, [f"({exercise.grads[-1]})", "relative error", "analytic", "numeric"]


def _planted_value(exercise):
    """The reference answer with one entry of its LAST output changed."""
    ref = getattr(reference, exercise.answer_name)

    def wrong(*inputs):
        out = ref(*inputs)
        out = list(out) if isinstance(out, tuple) else [out]
        last = np.array(out[-1], dtype=np.float64)
        last.flat[0] += 0.5 + 0.1 * abs(last.flat[0])
        out[-1] = last
        return tuple(out) if len(out) > 1 else out[0]

    name = exercise.outputs[-1]
    return wrong, [f"does not match minivae's {name}", f"output {name}", "expected", "got"]


def _planted_engine(exercise):
    if exercise.answer_name == "topological_order":

        def wrong(root):  # breadth-first: every tensor once, but not in a topological order
            order, seen, queue = [], {id(root)}, [root]
            while queue:
                node = queue.pop(0)
                order.append(node)
                for p in node._ctx.parents if node._ctx is not None else ():
                    if p.requires_grad and id(p) not in seen:
                        seen.add(id(p))
                        queue.append(p)
            return order

        return wrong, ["comes before", "which is computed from it", "diamond"]

    def wrong(root, grad_out):  # overwrites instead of adding where a tensor fans out
        grads = {id(root): grad_out}
        for node in reference.topological_order(root):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._ctx is None:
                node.grad = g if node.grad is None else node.grad + g
                continue
            for parent, pg in zip(node._ctx.parents, node._ctx.backward(g)):
                if pg is not None and parent.requires_grad:
                    grads[id(parent)] = np.asarray(pg)

    return wrong, ["leaf x has the wrong gradient", "expected", "Tensor.backward", "ADDED"]


@pytest.mark.parametrize("exercise", EXERCISES, ids=IDS)
def test_a_planted_wrong_answer_fails_naming_what_is_wrong(exercise):
    plant = {"gradient": _planted_gradient, "value": _planted_value, "engine": _planted_engine}
    wrong, words = plant[exercise.kind](exercise)
    outcome = check_answer(exercise, wrong, source="planted.py")
    assert outcome.status == FAILED, outcome.message
    for word in words:
        assert word in outcome.message, (word, outcome.message)
    assert exercise.hint[:30] in outcome.message.replace("\n", " ")  # the hint comes with it


MISTAKES = [(e, k) for e in EXERCISES if e.kind == "value" for k in range(len(e.mistakes))]


@pytest.mark.parametrize(
    ("exercise", "k"), MISTAKES, ids=[f"{e.name}-{k}" for e, k in MISTAKES]
)
def test_every_known_mistake_is_recognised_and_explained(exercise, k):
    mistake = exercise.mistakes[k]
    outcome = check_answer(exercise, mistake.answer, source="mistaken.py")
    assert outcome.status == FAILED
    assert f"likely:  {mistake.clue}" in outcome.message, outcome.message
    others = [m.clue for j, m in enumerate(exercise.mistakes) if j != k]
    assert not any(f"likely:  {c}" in outcome.message for c in others), "two mistakes look alike"


def test_a_naive_log_mean_exp_gives_inf_and_is_told_why():
    def log_px_importance(x, mu, log_var, eps, W, b):
        log_w = reference._log_weights(x, mu, log_var, eps, W, b)
        with np.errstate(divide="ignore"):
            return np.log(np.exp(log_w).mean(axis=0))  # exp underflows to 0

    outcome = check_answer("log_px_importance", log_px_importance)
    assert outcome.status == FAILED
    assert "log_px contains NaN or Inf" in outcome.message
    assert "subtract the largest log-weight" in outcome.message


def test_a_mistake_that_is_not_listed_still_gets_a_pattern():
    def entropy_diag(mu, log_var):  # log 2pi left out: every entry off by the same constant
        return 0.5 * (1.0 + log_var).sum(axis=1)

    def kl_full(mu, L):  # the sign of the whole KL flipped
        return -reference.kl_full(mu, L)

    offset = check_answer("entropy_diag", entropy_diag).message
    assert "every entry is off by the same" in offset and "additive term" in offset
    flipped = check_answer("kl_full", kl_full).message
    assert "the wrong sign" in flipped


def test_wrong_shapes_counts_and_dtypes_of_values_are_explained():
    def kl_diag(mu_q, log_var_q, mu_p, log_var_p):  # forgot to sum over the latent axis
        return 0.5 * (log_var_p - log_var_q)

    def m2_optimal_q(bounds):  # one output instead of two
        return reference.m2_optimal_q(bounds)[0]

    def entropy_diag(mu, log_var):
        return reference.entropy_diag(mu, log_var).astype(np.float32)

    shaped = check_answer("kl_diag", kl_diag).message
    assert "kl has shape (3, 4), but it must have shape (3,)" in shaped
    counted = check_answer("m2_optimal_q", m2_optimal_q).message
    assert "returned one ndarray; it must return a tuple of 2: (q, U_max)" in counted
    typed = check_answer("entropy_diag", entropy_diag).message
    assert "float32" in typed


def test_the_iwae_toy_shows_the_bound_rising_and_catches_the_elbo():
    passed = check_answer("iwae_toy", reference.iwae_toy)
    assert passed.ok and "the bound rises with K" in passed.message
    rows = re.findall(r"^\s+(\d+)\s+(-?[\d.]+) \+- ([\d.]+)\s+([\d.]+)$", passed.message, re.MULTILINE)
    assert [int(r[0]) for r in rows] == [1, 2, 5, 20, 100]
    means = [float(r[1]) for r in rows]
    assert means == sorted(means) and float(rows[-1][3]) < float(rows[0][3]) / 5

    def iwae_toy(x, sigma_x, q_mean, q_std, eps):  # the ELBO's estimate, for every K
        z = q_mean + q_std * eps
        log_w = (reference._log_normal(x, z, 2 * np.log(sigma_x)) + reference._log_normal(z, 0, 0)
                 - reference._log_normal(z, q_mean, 2 * np.log(q_std)))  # fmt: skip
        return log_w.mean(axis=1)

    failed = check_answer("iwae_toy", iwae_toy)
    assert failed.status == FAILED and "the ELBO's estimate for every K" in failed.message


def test_the_score_function_summary_compares_both_estimators_with_the_exact_gradient():
    outcome = check_answer("score_function", reference.score_function)
    assert outcome.ok
    assert "exact d/dphi E[f] = 5.7282" in outcome.message and "both unbiased" in outcome.message


def test_the_engine_walk_is_graded_against_tensor_backward():
    def backward_walk(root, grad_out):  # recursive: passes small graphs, not the long chain
        def visit(node, g):
            if node._ctx is None:
                node.grad = g if node.grad is None else node.grad + g
                return
            for parent, pg in zip(node._ctx.parents, node._ctx.backward(g)):
                if pg is not None and parent.requires_grad:
                    visit(parent, np.asarray(pg))

        visit(root, grad_out)

    deep = check_answer("backward_walk", backward_walk)
    assert deep.status == FAILED and "recursion limit" in deep.message

    def backward_walk_on_every_node(root, grad_out):  # keeps gradients on intermediates too
        reference.backward_walk(root, grad_out)
        for node in reference.topological_order(root):
            if node._ctx is not None:
                node.grad = np.zeros(node.shape)

    kept = check_answer("backward_walk", backward_walk_on_every_node)
    assert kept.status == FAILED and "only on leaves" in kept.message


def test_not_attempted_says_where_the_not_implemented_error_came_from():
    def topological_order(root):
        raise NotImplementedError

    def backward_walk(root, grad_out):
        topological_order(root)

    outcome = check_answer("backward_walk", backward_walk)
    assert outcome.status == NOT_ATTEMPTED
    assert "from topological_order, which it calls" in outcome.message


# ----------------------------------------------------------------------------- the gradient checker, in-process


def test_missing_and_stub_answers_are_not_attempted():
    assert check_answer("relu", None).status == NOT_ATTEMPTED

    def relu_backward(grad_out, x):
        raise NotImplementedError

    outcome = check_answer("relu", relu_backward)
    assert outcome.status == NOT_ATTEMPTED
    assert outcome.message == "not attempted: relu (relu_backward raises NotImplementedError)"


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


def test_an_answer_that_raises_is_a_failure_naming_the_error_and_the_shapes():
    def kl_diag_backward(grad_out, mu_q, log_var_q, mu_p, log_var_p):
        d_mu = grad_out * (mu_q - mu_p)  # (B,) against (B, J): grad_out[:, None] forgotten
        return d_mu, d_mu, -d_mu, d_mu

    def kl_diag(mu_q, log_var_q, mu_p, log_var_p):
        return (mu_q @ mu_q).sum(axis=1)  # (B, J) @ (B, J): the shapes do not line up

    for name, fn in (("kl_diag_backward", kl_diag_backward), ("kl_diag", kl_diag)):
        outcome = check_answer(name, fn)
        assert outcome.status == FAILED, name
        message = outcome.message
        assert f"{name} raised ValueError (line " in message, message
        assert "called with: " in message and "mu_q (3, " in message and "lecture:" in message


def test_a_backward_that_ignores_grad_out_is_told_to_multiply_by_it():
    def relu_backward(grad_out, x):
        return ((x > 0).astype(np.float64),)  # the local derivative only

    outcome = check_answer("relu", relu_backward)
    assert outcome.status == FAILED and "it ignores grad_out" in outcome.message


def test_a_wrong_single_number_gets_no_constant_factor_pattern():
    def gaussian_decoder_alpha(sigma, d):  # log(2 pi sigma) for log(2 pi sigma^2)
        return 1.0 / (2.0 * sigma**2), 0.5 * d * np.log(2.0 * np.pi * sigma)

    message = check_answer("gaussian_decoder_alpha", gaussian_decoder_alpha).message
    assert "does not match minivae's const" in message and "constant factor" not in message


def test_a_shared_name_checks_the_exercise_of_the_function_given():
    """check_answer("kl_diag", kl_diag_backward) checks the gradient, as --exercise kl_diag does."""
    assert check_answer("kl_diag", reference.kl_diag_backward).exercise.kind == "gradient"
    assert check_answer("kl_diag", reference.kl_diag).exercise.kind == "value"
    assert check_answer("kl_diag", reference.kl_diag_backward).ok
    with pytest.raises(KeyError, match="did you mean kl_diag"):
        find("kl_dig")


def test_writing_into_an_argument_is_refused():
    def relu_backward(grad_out, x):
        grad_out[x <= 0] = 0.0
        return (grad_out,)

    def kl_diag(mu_q, log_var_q, mu_p, log_var_p):
        mu_q -= mu_p
        return reference.kl_diag(mu_q, log_var_q, 0.0 * mu_p, log_var_p)

    outcome = check_answer("relu", relu_backward)
    assert outcome.status == FAILED and "in place" in outcome.message
    outcome = check_answer("kl_diag", kl_diag)
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


# ----------------------------------------------------------------------------- the options, end to end


def test_the_bare_template_reports_every_exercise_as_not_attempted():
    code, output, counts = run_exercises("--answers", str(TEMPLATE))
    assert code == 0, output
    assert counts == {"skipped": N}, output
    assert N >= 28
    for e in EXERCISES:
        assert f"not attempted: {e.name} ({e.answer_name} raises NotImplementedError)" in output


def test_wrong_answers_fail_with_their_reports(tmp_path):
    answers = tmp_path / "wrong_answers.py"
    answers.write_text(template_with({
        "relu_backward": "return (grad_out,)  # passes the gradient through everywhere",
        "dense_backward": "return grad_out @ W.T, 2.0 * (x.T @ grad_out), grad_out.sum(axis=0)",
        "kl_diag": "return (mu_q - mu_p).sum(axis=1)",
    }))  # fmt: skip
    code, output, counts = run_exercises("--answers", str(answers))
    assert code == 1, output
    assert counts == {"failed": 3, "skipped": N - 3}, output
    assert "FAILED tests/exercises/test_gradients.py::test_gradient[relu]" in output
    assert "FAILED tests/exercises/test_gradients.py::test_gradient[dense]" in output
    assert "FAILED tests/exercises/test_values.py::test_value[kl_diag]" in output
    assert "relu_backward (wrong_answers.py) does not match the numerical gradient" in output
    assert "relative error" in output and "analytic" in output and "numeric" in output
    assert "input 1 (W)" in output  # the wrong one of dense's three gradients is named
    assert "kl_diag (wrong_answers.py) does not match minivae's kl" in output


def test_partial_answers_pass_and_the_rest_are_not_attempted(tmp_path):
    answers = tmp_path / "my_answers.py"
    answers.write_text(template_with(
        {"relu_backward": "return (grad_out * (x > 0),)",
         "entropy_diag": "return 0.5 * (np.log(2 * np.pi) + 1.0 + log_var).sum(axis=1)"},
        drop=("entropy_backward",),
    ))  # fmt: skip
    code, output, counts = run_exercises("--answers", str(answers))
    assert code == 0, output
    assert counts == {"passed": 2, "skipped": N - 2}, output
    assert "not attempted: dense (dense_backward raises NotImplementedError)" in output
    assert "not attempted: entropy (no function entropy_backward in my_answers.py)" in output


def test_one_exercise_runs_by_name(tmp_path):
    answers = tmp_path / "my_answers.py"
    answers.write_text(template_with({"kl_diag": "return (mu_q - mu_p).sum(axis=1)"}))
    code, output, counts = run_exercises("--answers", str(answers), "--exercise", "kl_diag")
    assert code == 1, output
    assert counts == {"failed": 1, "skipped": 1, "deselected": N - 2}, output
    assert "not attempted: kl_diag (kl_diag_backward raises" in output
    code, output, counts = run_exercises("--exercise", "kl_diag_backward,iwae_toy", "-s")
    assert code == 0 and counts == {"passed": 2, "deselected": N - 2}, output
    assert "the bound rises with K" in output  # -s shows what a passing check found
    code, output, counts = run_exercises("-k", "kl_full")
    assert code == 0 and counts == {"passed": 2, "deselected": N - 2}, output


def test_an_unknown_exercise_name_is_a_usage_error():
    code, output, _ = run_exercises("--exercise", "kl_dig")
    assert code == 4, output
    assert "no exercise called 'kl_dig'; did you mean kl_diag" in output


def test_an_answers_file_that_does_not_import_is_a_usage_error(tmp_path):
    answers = tmp_path / "broken.py"
    answers.write_text("def relu_backward(grad_out, x)\n    return grad_out\n")
    code, output, _ = run_exercises("--answers", str(answers))
    assert code == 4, output  # pytest's usage error
    assert "could not import broken.py" in output and "SyntaxError" in output


# ----------------------------------------------------------------------------- the documents


def _readme_table() -> dict:
    """exercise function name -> its row of the README's table."""
    rows = {}
    for line in (HERE / "README.md").read_text().splitlines():
        m = re.match(r"\|\s*\d+\s*\|\s*`(\w+)`", line)
        if m:
            rows[m.group(1)] = line
    return rows


def test_the_readme_table_lists_every_exercise_in_order_with_its_lecture():
    rows = _readme_table()
    assert list(rows) == IDS, "the README table must list every exercise, in the template's order"
    titles = ("PGM Lecture 30", "Series 9", "Variational Autoencoders' (2018)",
              "Understanding Deep Learning", "VAE Extensions")  # fmt: skip
    for name, row in rows.items():
        assert any(t in row for t in titles), f"README row of {name} names no lecture: {row}"
    text = (HERE / "README.md").read_text()
    assert 'pip install -e ".[dev]"' in text and "--exercise" in text
    assert not re.search(r"seed \d", text)


def test_every_derivation_has_a_worked_solution_that_ends_in_a_coded_exercise():
    problems = (HERE / "DERIVATIONS.md").read_text()
    solutions = (HERE / "SOLUTIONS.md").read_text()
    numbers = re.findall(r"^## Problem (\d+)", problems, re.MULTILINE)
    assert len(numbers) >= 5
    assert re.findall(r"^## Solution (\d+)", solutions, re.MULTILINE) == numbers
    for part in re.split(r"^## Solution \d+", solutions, flags=re.MULTILINE)[1:]:
        checked = re.findall(r"Checked by exercise `(\w+)`", part)
        assert checked, f"a solution does not name the exercise that checks it:\n{part[:200]}"
        for name in checked:
            assert name in BY_NAME, name
    for needed in ("Jensen", "alpha = 1/(2 sigma^2)", "softmax", "IWAE"):
        assert needed in problems, needed
    assert "NotImplementedError" not in problems  # the problems carry no answers
