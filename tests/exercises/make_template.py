"""Write tests/exercises/template.py from the registry: one stub per exercise, in lesson order.

    python -m tests.exercises.make_template

The stubs' docstrings are the exercises' own texts (formula, shapes, lecture, hint),
so they cannot drift apart: tests/test_exercises.py holds template.py equal to
what this module renders. Change an exercise in its file, then run this.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.exercises.registry import BY_NAME, LESSONS

TEMPLATE = Path(__file__).resolve().parent / "template.py"
WIDTH = 96

HEADER = '''"""Your answers to the exercises: copy this file and fill in one function at a time.

Copy it anywhere (say my_answers.py) and check it from the root of the minivae checkout:

    python -m pytest tests/exercises --answers my_answers.py -v
    python -m pytest tests/exercises --answers my_answers.py --exercise kl_diag   # one exercise

The functions follow the lessons (lessons/00_... to lessons/08_...). Three kinds:

- <name>_backward(grad_out, *inputs): the backward pass of a given forward. grad_out is
  dL/d(output) of some loss L, shaped like the forward's output; the inputs are the
  forward's, in order (read-only NumPy float64 arrays). Return a tuple with dL/d(input)
  for the inputs named under "returns", in that order, each shaped like its input (a
  single gradient may be returned bare): the chain rule applied to grad_out, never the
  whole Jacobian. The forward is written out under "forward" (tests/exercises/gradients.py).
- <name>(*inputs): a quantity of the lectures, computed in NumPy in float64. Return the
  outputs named under "returns", in that order. minivae computes the same quantity on
  the same inputs and the numbers must agree.
- topological_order(root) and backward_walk(root, grad_out): minivae's backward graph
  walk, checked on small graphs against Tensor.backward. A Tensor t made by an op has
  t._ctx, that op's Function: t._ctx.parents are its input Tensors, and
  t._ctx.backward(g) returns one gradient per parent (None where a parent needs none).
  A leaf has t._ctx None. t.requires_grad says whether a gradient flows into t, and a
  leaf keeps its gradient in t.grad.

A function that still raises NotImplementedError (or is missing) is reported as
skipped, "not attempted". tests/exercises/README.md explains the checks and their
messages; DERIVATIONS.md holds the problems to do on paper first.
"""

import math  # noqa: F401 (for your answers)

import numpy as np  # noqa: F401 (for your answers)
'''

_LABEL = {"gradient": "forward", "value": "formula", "engine": "task"}


def _field(label: str, text: str) -> str:
    head = f"    {label + ':':8s} "
    return textwrap.fill(text, width=WIDTH, initial_indent=head,
                         subsequent_indent=" " * len(head), break_on_hyphens=False)  # fmt: skip


def _title(exercise) -> str:
    return exercise.title[0].upper() + exercise.title[1:] + "."


def render_stub(exercise) -> str:
    args = ", ".join(exercise.arguments)
    fields = [
        _field(_LABEL[exercise.kind], exercise.math),
        _field("shapes", exercise.shapes),
        _field("lecture", exercise.lecture),
        _field("hint", exercise.hint),
        _field("returns", exercise.returns),
    ]
    body = "\n".join(fields)
    return (f"def {exercise.answer_name}({args}):\n"
            f'    """{_title(exercise)}\n\n{body}\n    """\n'
            "    raise NotImplementedError\n")  # fmt: skip


def render() -> str:
    parts = [HEADER]
    for k, (number, topic, path, names) in enumerate(LESSONS):
        gap = "\n" if k == 0 else "\n\n"  # one blank line after the imports, two between functions
        parts.append(f"{gap}# {'-' * 40} lesson {number}: {topic}\n# {path}\n")
        for name in names:
            parts.append("\n\n" + render_stub(BY_NAME[name]))
    return "".join(parts)


def main() -> None:
    TEMPLATE.write_text(render())
    print(f"wrote {TEMPLATE} ({len(BY_NAME)} exercises)")


if __name__ == "__main__":
    main()
