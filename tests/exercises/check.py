"""Check one exercise answer: wrap the given forward and the learner's backward in a
minivae Function, and compare its gradients with central differences.

    from tests.exercises.check import check_answer
    outcome = check_answer("relu", relu_backward)   # an Exercise or its name
    print(outcome.status, outcome.message)

The check, in order:
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
from tests.exercises.registry import BY_NAME, Exercise

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
    """Where the ``*_backward`` functions come from: a learner's file, or the reference module."""

    def __init__(self, module, label: str):
        self.module, self.label = module, label

    def lookup(self, exercise: Exercise):
        """The function ``<name>_backward``, or None when the module has none."""
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

    return Answers(reference, "the reference answers (minivae's own backward passes)")


# ----------------------------------------------------------------------------- calling an answer


def _read_only(a):
    view = np.asarray(a).view()
    view.flags.writeable = False
    return view


def call_answer(exercise: Exercise, backward, grad_out, inputs) -> tuple:
    """Call ``backward(grad_out, *inputs)`` and check what it returns; AnswerError if wrong."""
    fname = exercise.answer_name
    try:
        result = backward(_read_only(grad_out), *[_read_only(x) for x in inputs])
    except ValueError as err:
        if "read-only" not in str(err):
            raise
        raise AnswerError(
            f"{fname} wrote into one of its arguments in place ({err}). grad_out and the inputs "
            "belong to the caller: make a new array (g = grad_out * mask, not grad_out *= mask)."
        ) from err
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


def check_answer(exercise, backward, source: str = "your answers") -> Outcome:
    """Gradient-check ``backward`` (a ``<name>_backward`` function) for one exercise."""
    if isinstance(exercise, str):
        exercise = BY_NAME[exercise]
    fname = exercise.answer_name
    if backward is None:
        return Outcome(exercise, NOT_ATTEMPTED,
                       f"not attempted: {exercise.name} (no function {fname} in {source})")  # fmt: skip
    if not callable(backward):
        return Outcome(exercise, FAILED, f"{fname} in {source} is not a function")

    with B.set_device("cpu"):  # the exercises are NumPy, whatever device the suite runs on
        rng = np.random.default_rng(zlib.crc32(exercise.name.encode()))
        inputs = exercise.make_inputs(rng)
        grad_out = rng.standard_normal(np.shape(exercise.forward(*inputs)))
        try:
            call_answer(exercise, backward, grad_out, inputs)
        except NotImplementedError:
            return Outcome(exercise, NOT_ATTEMPTED,
                           f"not attempted: {exercise.name} ({fname} raises NotImplementedError)")  # fmt: skip
        except AnswerError as err:
            return Outcome(exercise, FAILED, f"{err}\n{_describe(exercise)}")

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
