"""Check one exercise answer, whatever its kind, and say what is wrong in words.

    from tests.exercises.check import check_answer
    outcome = check_answer("relu", relu_backward)   # an exercise, its name or its function's name
    print(outcome.status, outcome.message)

Three kinds of exercises (tests/exercises/registry.py lists them all):

**gradient** (``<name>_backward``): the forward is given, the answer is its backward.
1. no function, or one that raises NotImplementedError: "not attempted";
2. one call with a random grad_out: the answer must return one float64 array per
   input in ``exercise.grads``, each of its input's shape, all finite, and must not
   write into its arguments (they are read-only views);
3. ``minivae.gradcheck.gradcheck`` in "full" mode: the whole Jacobian, one backward
   per output element (grad_out one-hot), against central differences in float64;
4. gradcheck in "projection" mode: random (not one-hot) grad_out, which catches a
   backward that is not linear in grad_out.
A failure message holds gradcheck's report: the worst element, which input and
which output element, the analytic and numeric values and their relative error.

**value** (``<name>``): the answer computes a quantity; minivae computes the same
(the exercise's oracle) on fixed inputs. The answer's outputs must have the count,
shapes and float64 dtype of the oracle's, be finite, and match to a relative 1e-7.
A failure names the output and its worst element, expected against got, a pattern
(a constant factor, a constant offset, a flipped sign) and, when the answer equals
one of the exercise's known mistakes, that mistake. Some exercises then run a
summary check (the IWAE bound rising with K), whose table the passing message holds.

**engine** (``topological_order``, ``backward_walk``): graded on small graphs
against ``Tensor.backward`` by tests/exercises/engine.py.
"""

from __future__ import annotations

import importlib.util
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

from minivae import backend as B
from minivae.backend import np
from minivae.gradcheck import GradcheckReport, gradcheck
from minivae.tensor import Function
from tests.exercises.gradients import GradientExercise as Exercise
from tests.exercises.registry import find, matching


def matching_names(name: str) -> list:
    """The function names of the exercises that ``name`` selects (one, or a value-gradient pair)."""
    return [e.answer_name for e in matching(name)]

PASSED, FAILED, NOT_ATTEMPTED = "passed", "failed", "not attempted"


class AnswerError(Exception):
    """The answer returned the wrong kind of thing: count, shape, dtype, NaN, or wrote in place."""


@dataclass
class Outcome:
    """What the check found for one exercise."""

    exercise: Exercise
    status: str  # PASSED, FAILED or NOT_ATTEMPTED
    message: str
    report: GradcheckReport | None = None

    @property
    def ok(self) -> bool:
        return self.status == PASSED


# ----------------------------------------------------------------------------- the learner's answers


class Answers:
    """Where the answers come from: a learner's file, or the reference module."""

    def __init__(self, module, label: str):
        self.module, self.label = module, label

    def lookup(self, exercise: Exercise):
        """The exercise's function (``exercise.answer_name``), or None when the module has none."""
        return getattr(self.module, exercise.answer_name, None)


def load_answers(path) -> Answers:
    """Import a learner's answers file (any name, any folder) as a module."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no answers file at {path}: copy tests/exercises/template.py there (or pass the "
            "path of your copy to --answers)"
        )
    name = "minivae_exercise_answers"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # so that dataclasses and pickling inside it work
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return Answers(module, path.name)


def reference_answers() -> Answers:
    from tests.exercises import reference  # imported on first use: it loads every op

    return Answers(reference, "the reference answers, tests/exercises/reference.py")


# ----------------------------------------------------------------------------- calling an answer


def _raised(fname: str, err: Exception, names, values) -> str:
    """What to say when the answer itself raised: the error, and the arguments' shapes."""
    shapes = ", ".join(f"{n} {np.shape(v)}" if isinstance(v, np.ndarray) else f"{n} = {v!r}"
                       for n, v in zip(names, values))  # fmt: skip
    where = ""
    tb = err.__traceback__
    while tb is not None:  # the last line of the learner's own code
        if tb.tb_frame.f_code.co_name == fname or tb.tb_frame.f_globals.get("__name__", "") == (
                "minivae_exercise_answers"):  # fmt: skip
            where = f" (line {tb.tb_lineno} of {Path(tb.tb_frame.f_code.co_filename).name})"
        tb = tb.tb_next
    hint = (" Shapes that do not line up: a per-example quantity (B,) meets a (B, D) array "
            "through [:, None]." if "broadcast" in str(err) or "shape" in str(err) else "")
    return (f"{fname} raised {type(err).__name__}{where}: {err}\n"
            f"  called with: {shapes}.{hint}")


def _read_only(a):
    view = np.asarray(a).view()
    view.flags.writeable = False
    return view


def call_answer(exercise: Exercise, backward, grad_out, inputs) -> tuple:
    """Call ``backward(grad_out, *inputs)`` and check what it returns; AnswerError if wrong."""
    fname = exercise.answer_name
    try:
        result = backward(_read_only(grad_out), *[_read_only(x) for x in inputs])
    except NotImplementedError:
        raise
    except Exception as err:  # the learner's code failed: in place, or otherwise
        if isinstance(err, ValueError) and "read-only" in str(err):
            raise AnswerError(
                f"{fname} wrote into one of its arguments in place ({err}). grad_out and the "
                "inputs belong to the caller: make a new array (g = grad_out * mask, not "
                "grad_out *= mask)."
            ) from err
        raise AnswerError(_raised(fname, err, ("grad_out", *exercise.inputs),
                                  (grad_out, *inputs))) from err  # fmt: skip
    wanted = ", ".join(f"dL/d{n}" for n in exercise.grads)
    if len(exercise.grads) == 1 and not isinstance(result, (tuple, list)) and result is not None:
        result = (result,)  # a single gradient may come back bare
    if not isinstance(result, (tuple, list)):
        raise AnswerError(
            f"{fname} returned {type(result).__name__}; it must return a tuple ({wanted},)"
        )
    if len(result) != len(exercise.grads):
        raise AnswerError(
            f"{fname} returned {len(result)} gradient(s); it must return {len(exercise.grads)}: "
            f"({wanted}), in that order"
        )
    grads = []
    for name, g in zip(exercise.grads, result):
        x = inputs[exercise.inputs.index(name)]
        if g is None:
            raise AnswerError(f"{fname} returned None for dL/d{name}")
        g = np.asarray(g)
        if g.shape != np.shape(x):
            raise AnswerError(
                f"{fname}: dL/d{name} has shape {g.shape}, but {name} has shape {np.shape(x)}; "
                f"a gradient always has its input's shape (grad_out has shape {np.shape(grad_out)})"
            )
        if g.dtype != np.float64:
            raise AnswerError(
                f"{fname}: dL/d{name} has dtype {g.dtype}; keep gradients in float64 (the check "
                "compares to about 1e-6, beyond what float32 holds)"
            )
        if not np.isfinite(g).all():
            raise AnswerError(f"{fname}: dL/d{name} contains NaN or Inf:\n{g}")
        grads.append(g)
    return tuple(grads)


def as_function(exercise: Exercise, backward) -> type:
    """A minivae Function whose forward is the exercise's and whose backward is the answer's."""
    positions = [exercise.inputs.index(n) for n in exercise.grads]

    class ExerciseOp(Function):
        def forward(self, *arrays):
            self.arrays = arrays
            return exercise.forward(*arrays)

        def backward(self, grad_out):
            grads = call_answer(exercise, backward, grad_out, self.arrays)
            per_input = [None] * len(self.arrays)  # data and noise inputs get no gradient
            for k, g in zip(positions, grads):
                per_input[k] = g
            return tuple(per_input)

    ExerciseOp.__name__ = ExerciseOp.__qualname__ = exercise.answer_name  # engine errors name it
    ExerciseOp.__doc__ = exercise.math
    return ExerciseOp


# ----------------------------------------------------------------------------- the check


_HOW = (
    "(analytic: what your backward returned; numeric: the central difference "
    "(f(x + eps) - f(x - eps)) / 2 eps of the forward, eps = 1e-6)\n"
)


def _describe(exercise: Exercise) -> str:
    return (
        f"  forward: {exercise.math}\n"
        f"  shapes:  {exercise.shapes}\n"
        f"  hint:    {exercise.hint}\n"
        f"  lecture: {exercise.lecture}"
    )


def check_answer(exercise, answer, source: str = "your answers") -> Outcome:
    """Check ``answer`` (the learner's function, or None) for one exercise of any kind."""
    if isinstance(exercise, str):
        named = getattr(answer, "__name__", None)  # "kl_diag" names two: the function decides
        exercise = find(named if named in matching_names(exercise) else exercise)
    fname = exercise.answer_name
    if answer is None:
        return Outcome(exercise, NOT_ATTEMPTED,
                       f"not attempted: {exercise.name} (no function {fname} in {source})")  # fmt: skip
    if not callable(answer):
        return Outcome(exercise, FAILED, f"{fname} in {source} is not a function")
    with B.set_device("cpu"):  # the exercises are NumPy, whatever device the suite runs on
        if exercise.kind == "gradient":
            return _check_gradient(exercise, answer, source)
        if exercise.kind == "value":
            return _check_value(exercise, answer, source)
        return _check_engine(exercise, answer, source)


def _not_attempted(exercise, err: NotImplementedError) -> Outcome:
    """The Outcome for an answer that raised NotImplementedError, naming where it was raised."""
    fname = exercise.answer_name
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    raiser = tb.tb_frame.f_code.co_name if tb is not None else fname
    via = "" if raiser in (fname, "<lambda>") else f", from {raiser}, which it calls"
    return Outcome(exercise, NOT_ATTEMPTED,
                   f"not attempted: {exercise.name} ({fname} raises NotImplementedError{via})")  # fmt: skip


def _check_gradient(exercise, backward, source: str) -> Outcome:
    """Gradient-check ``backward`` (a ``<name>_backward`` function) for one exercise."""
    fname = exercise.answer_name
    rng = np.random.default_rng(zlib.crc32(exercise.name.encode()))
    inputs = exercise.make_inputs(rng)
    grad_out = rng.standard_normal(np.shape(exercise.forward(*inputs)))
    try:
        once = call_answer(exercise, backward, grad_out, inputs)
        twice = call_answer(exercise, backward, 2.0 * grad_out, inputs)
    except NotImplementedError as err:
        return _not_attempted(exercise, err)
    except AnswerError as err:
        return Outcome(exercise, FAILED, f"{err}\n{_describe(exercise)}")
    if any(np.abs(g).max() > 0 for g in once) and all(
            np.array_equal(a, b) for a, b in zip(once, twice)):  # fmt: skip
        return Outcome(exercise, FAILED,
                       f"{fname} ({source}) returns the same gradients for grad_out and for "
                       "2 * grad_out: it ignores grad_out. The chain rule multiplies the local "
                       "derivative by grad_out = dL/dy (and sums over the axes of y that the "
                       f"input does not have).\n{_describe(exercise)}")  # fmt: skip

    op = as_function(exercise, backward)
    positions = [exercise.inputs.index(n) for n in exercise.grads]

    def fn(*tensors):  # the inputs that get gradients vary; data and noise stay fixed
        args = list(inputs)
        for k, t in zip(positions, tensors):
            args[k] = t
        return op.apply(*args)

    checked = [inputs[k] for k in positions]
    try:
        full = gradcheck(fn, checked, mode="full", names=exercise.grads)
        if not full.ok:
            return Outcome(
                exercise, FAILED,
                f"{fname} ({source}) does not match the numerical gradient.\n{_HOW}{full}\n"
                f"{_describe(exercise)}",
                full,
            )  # fmt: skip
        proj = gradcheck(fn, checked, mode="projection", n_projections=4,
                         names=exercise.grads)  # fmt: skip
    except AnswerError as err:
        return Outcome(exercise, FAILED, f"{err}\n{_describe(exercise)}")
    if not proj.ok:
        return Outcome(
            exercise, FAILED,
            f"{fname} ({source}) is right for one-hot grad_out but wrong for a general one: "
            "the backward must be linear in grad_out (multiply by it; never take its abs, "
            f"square, or sum it away).\n{_HOW}{proj}\n{_describe(exercise)}",
            proj,
        )  # fmt: skip
    return Outcome(exercise, PASSED, f"{fname} ({source}): {full}", full)


# ----------------------------------------------------------------------------- value exercises


def _read_only_args(inputs) -> list:
    """Arrays as read-only views; numbers (sigma, d) as they are."""
    return [_read_only(x) if isinstance(x, np.ndarray) else x for x in inputs]


def _as_outputs(exercise, result, fname: str) -> tuple:
    """The answer's outputs as a tuple of float64 arrays, or AnswerError naming what is off."""
    names = exercise.outputs
    wanted = ", ".join(names)
    if len(names) == 1 and not isinstance(result, (tuple, list)):
        result = (result,)  # a single output may come back bare
    if not isinstance(result, (tuple, list)):
        raise AnswerError(
            f"{fname} returned one {type(result).__name__}; it must return a tuple of "
            f"{len(names)}: ({wanted}), in that order"
        )
    if len(result) != len(names):
        raise AnswerError(
            f"{fname} returned {len(result)} value(s); it must return {len(names)}: "
            f"({wanted}), in that order"
        )
    outputs = []
    for name, value in zip(names, result):
        if value is None:
            raise AnswerError(f"{fname} returned None for {name}")
        if hasattr(value, "data") and not isinstance(value, np.ndarray):
            value = value.data  # a minivae Tensor: its array
        value = np.asarray(value)
        if value.dtype.kind in "iub":
            value = value.astype(np.float64)
        if value.dtype != np.float64:
            raise AnswerError(
                f"{fname}: {name} has dtype {value.dtype}; compute in float64 (the check "
                "compares to about 1e-7, beyond what float32 holds)"
            )
        outputs.append(value)
    return tuple(outputs)


def _close(got, expected, exercise):
    return np.abs(got - expected) <= exercise.atol + exercise.rtol * np.abs(expected)


def _pattern(got, expected) -> str:
    """A pattern shared by every entry of a wrong output, in words, or ''."""
    if not expected.size:
        return ""
    scale = max(float(np.abs(expected).max()), 1e-12)
    if np.allclose(got, -expected, rtol=1e-6, atol=1e-9 * scale) and np.abs(expected).max() > 0:
        return "every entry has the right size and the wrong sign: a sign is flipped"
    nonzero = np.abs(expected) > 1e-12 * scale
    if expected.size > 1 and nonzero.all():  # one number is always some multiple of another
        ratio = got / expected
        r = float(ratio.flat[0])
        if np.allclose(ratio, r, rtol=1e-6, atol=0.0) and abs(r - 1.0) > 1e-6:
            return (f"every entry is {r:.6g} times the expected one: a constant factor is "
                    "missing or extra")  # fmt: skip
    diff = got - expected
    d = float(diff.flat[0])
    if expected.size > 1 and np.allclose(diff, d, rtol=1e-6, atol=1e-9 * scale):
        return (f"every entry is off by the same {d:+.6g}: an additive term is missing or extra "
                "(a constant such as log 2pi, D/2, log K?)")  # fmt: skip
    return ""


def _likely_mistakes(exercise, inputs, k: int, got, expected) -> list:
    """The clues of the known mistakes whose output k equals the answer's (and is wrong)."""
    clues = []
    for mistake in exercise.mistakes:
        wrong = mistake.answer(*inputs)
        wrong = wrong if isinstance(wrong, tuple) else (wrong,)
        w = np.asarray(wrong[k], dtype=np.float64)
        if w.shape != got.shape or _close(w, expected, exercise).all():
            continue
        if _close(got, w, exercise).all():
            clues.append(mistake.clue)
    return clues


def _describe_value(exercise) -> str:
    return (
        f"  formula: {exercise.math}\n"
        f"  shapes:  {exercise.shapes}\n"
        f"  hint:    {exercise.hint}\n"
        f"  lecture: {exercise.lecture}"
    )


def _fmt(v) -> str:
    return f"{float(v):.10g}"


def _mismatch_message(exercise, fname, source, label, inputs, k, got, expected) -> str:
    name = exercise.outputs[k]
    bad = ~_close(got, expected, exercise)
    err = np.abs(got - expected)
    worst = np.unravel_index(int(np.argmax(np.where(bad, err, -1.0))), expected.shape)
    e, g = expected[worst], got[worst]
    rel = abs(g - e) / max(abs(e), abs(g), 1e-300)
    where = f", element {tuple(int(i) for i in worst)}" if expected.ndim else ""
    lines = [
        f"{fname} ({source}) does not match minivae's {name}.",
        f"  case:    {label}",
        (
            f"  output {name} (shape {expected.shape}): {int(bad.sum())} of {expected.size} "
            f"entries differ; the worst{where}: expected {_fmt(e)}, got {_fmt(g)} "
            f"(relative error {rel:.3g})"
        ),
        f"  expected from {exercise.oracle_name}",
    ]
    clues = _likely_mistakes(exercise, inputs, k, got, expected)
    for clue in clues:
        lines.append(f"  likely:  {clue}")
    pattern = _pattern(got, expected) if not clues else ""
    if pattern:
        lines.append(f"  pattern: {pattern}")
    return "\n".join(lines) + "\n" + _describe_value(exercise)


def _check_value(exercise, answer, source: str) -> Outcome:
    """Compare the answer's outputs with minivae's (the oracle) on every fixed case."""
    fname = exercise.answer_name
    rng = np.random.default_rng(zlib.crc32(exercise.name.encode()))
    cases = exercise.make_cases(rng)
    expected_all = []
    for n, (label, inputs) in enumerate(cases):
        expected = tuple(np.asarray(e, dtype=np.float64) for e in exercise.oracle(*inputs))
        expected_all.append(expected)
        try:
            result = answer(*_read_only_args(inputs))
        except NotImplementedError as err:
            if n == 0:
                return _not_attempted(exercise, err)
            raise
        except Exception as err:  # noqa: BLE001 - the learner's code failed: in place, or otherwise
            if isinstance(err, ValueError) and "read-only" in str(err):
                return Outcome(exercise, FAILED,
                               f"{fname} wrote into one of its arguments in place ({err}); they "
                               "belong to the caller: make new arrays.\n"
                               + _describe_value(exercise))  # fmt: skip
            return Outcome(exercise, FAILED,
                           f"{_raised(fname, err, exercise.inputs, inputs)} (case: {label})\n"
                           + _describe_value(exercise))  # fmt: skip
        try:
            got_all = _as_outputs(exercise, result, fname)
        except AnswerError as err:
            return Outcome(exercise, FAILED, f"{err}\n{_describe_value(exercise)}")
        for k, (got, want) in enumerate(zip(got_all, expected)):
            name = exercise.outputs[k]
            if got.shape != want.shape:
                return Outcome(exercise, FAILED,
                               f"{fname}: {name} has shape {got.shape}, but it must have shape "
                               f"{want.shape} (case: {label}); one number per example means "
                               "summing over the other axes, never over the batch.\n"
                               + _describe_value(exercise))  # fmt: skip
            if not np.isfinite(got).all():
                bad = np.argwhere(~np.isfinite(got))
                first = tuple(int(i) for i in bad[0]) if got.ndim else ()
                why = exercise.nonfinite or "look for a log of 0, a 0 / 0 or an exp that overflows"
                return Outcome(exercise, FAILED,
                               f"{fname}: {name} contains NaN or Inf ({len(bad)} of {got.size} "
                               f"entries; the first at {first}: {got[first]}, expected "
                               f"{_fmt(want[first])}) (case: {label}).\n  why:     {why}\n"
                               + _describe_value(exercise))  # fmt: skip
            if not _close(got, want, exercise).all():
                return Outcome(exercise, FAILED,
                               _mismatch_message(exercise, fname, source, label, inputs, k,
                                                 got, want))  # fmt: skip
    text = (f"{fname} ({source}): {', '.join(exercise.outputs)} match {exercise.oracle_name} "
            f"on {len(cases)} case(s)")  # fmt: skip
    if exercise.summary is not None:
        ok, summary = exercise.summary(cases, expected_all)
        if not ok:
            return Outcome(exercise, FAILED, f"{text}, but {summary}")
        text += f"; {summary}"
    return Outcome(exercise, PASSED, text)


# ----------------------------------------------------------------------------- engine exercises


def _check_engine(exercise, answer, source: str) -> Outcome:
    """Run the exercise's grader (small graphs against Tensor.backward)."""
    try:
        problem = exercise.grade(answer, f"{exercise.answer_name} ({source})")
    except NotImplementedError as err:
        return _not_attempted(exercise, err)
    if problem is not None:
        return Outcome(
            exercise, FAILED,
            f"{problem}\n  task:    {exercise.math}\n  hint:    {exercise.hint}\n"
            f"  lecture: {exercise.lecture}",
        )  # fmt: skip
    return Outcome(exercise, PASSED,
                   f"{exercise.answer_name} ({source}) agrees with Tensor.backward on every graph")  # fmt: skip
