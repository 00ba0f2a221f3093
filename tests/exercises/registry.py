"""Every exercise in the order of the lessons: the index the template, README and tests follow.

Three kinds (``exercise.kind``), each with its own file:

- ``gradient`` (tests/exercises/gradients.py): the forward is given; the learner
  writes ``<name>_backward(grad_out, *inputs)``, checked by gradcheck.
- ``value`` (tests/exercises/values.py): the learner writes ``<name>(*inputs)``, a
  quantity of the lectures, checked against minivae's own value on fixed inputs.
- ``engine`` (tests/exercises/engine.py): the learner writes the backward graph walk,
  checked on small graphs against ``Tensor.backward``.

An exercise is named by its ``name`` (shared by the value and the gradient
exercise of one quantity, such as ``kl_diag``) or by the function the learner
writes, its ``answer_name`` (``kl_diag`` or ``kl_diag_backward``), which is unique.
"""

from __future__ import annotations

import difflib

from tests.exercises.engine import ENGINE
from tests.exercises.gradients import GRADIENTS
from tests.exercises.values import VALUES

_ALL = {e.answer_name: e for e in (*GRADIENTS, *VALUES, *ENGINE)}

LESSONS = (
    ("00", "latent variable models", "lessons/00_latent_variable_models.py", (
        "logsumexp_backward", "importance_weights_backward", "iwae_toy", "score_function",
    )),
    ("01", "the autoencoder", "lessons/01_autoencoder.py", (
        "dense_backward", "relu_backward", "softplus_backward", "sigmoid_backward",
        "broadcast_add_backward", "sum_axis_backward", "topological_order", "backward_walk",
    )),
    ("02", "the VAE", "lessons/02_vae.py", (
        "bernoulli_log_prob_backward", "gaussian_log_prob_backward", "gaussian_decoder_alpha",
        "reparameterize_backward", "kl_normal_std_backward", "kl_diag", "kl_diag_backward",
        "elbo_bernoulli",
    )),
    ("03", "the VAE's estimators and likelihood", "lessons/03_vae_estimators_and_likelihood.py", (
        "elbo_samples", "log_px_importance", "iwae_weights",
    )),
    ("06", "the semi-supervised VAE (M2)", "lessons/06_semi_supervised_vae.py", (
        "cross_entropy_backward", "entropy_backward", "m2_unlabelled_bound",
        "m2_unlabelled_bound_backward", "m2_optimal_q",
    )),
    ("07", "semi-supervised regression", "lessons/07_semi_supervised_regression.py", (
        "entropy_diag", "entropy_diag_backward",
    )),
    ("08", "full covariance and amortization", "lessons/08_full_covariance_and_amortization.py", (
        "reparameterize_full_backward", "kl_full", "kl_full_backward",
    )),
)  # fmt: skip
"""(lesson number, topic, lesson file, the answer names of its exercises in the suggested order).
Lessons 04 (the beta-VAE) and 05 (the conditional VAE) reuse lesson 02's quantities: beta
weighs exercise kl_normal_std's KL, and the conditional VAE's ELBO is elbo_bernoulli's with
y as a second input, so they add no exercise of their own."""

EXERCISES = tuple(_ALL[n] for _, _, _, names in LESSONS for n in names)
"""Every exercise, in the suggested order (the template's order)."""

BY_NAME = {e.answer_name: e for e in EXERCISES}
"""answer name (the learner's function) -> exercise."""

LESSON_OF = {n: number for number, _, _, names in LESSONS for n in names}
"""answer name -> the number of the lesson it goes with."""

_placed = [n for _, _, _, names in LESSONS for n in names]
if sorted(_placed) != sorted(_ALL):  # every exercise in exactly one lesson
    raise RuntimeError(
        "tests/exercises/registry.py: LESSONS must list every exercise once; missing "
        f"{sorted(set(_ALL) - set(_placed))}, unknown or twice "
        f"{sorted(n for n in set(_placed) if _placed.count(n) > 1 or n not in _ALL)}"
    )


def matching(name: str) -> list:
    """The exercises called ``name``: by their function's name or by their shared name
    (``kl_diag`` names both the value exercise kl_diag and the gradient one, kl_diag_backward)."""
    return [e for e in EXERCISES if name in (e.answer_name, e.name)]


def find(name: str):
    """The exercise whose function is ``name``, or the only exercise with that name."""
    if name in BY_NAME:
        return BY_NAME[name]
    found = matching(name)
    if len(found) == 1:
        return found[0]
    close = difflib.get_close_matches(name, list(BY_NAME), n=3)
    raise KeyError(f"no exercise called {name!r}"
                   + (f"; did you mean {', '.join(close)}?" if close else "")
                   + f" The exercises are {', '.join(BY_NAME)}")  # fmt: skip
