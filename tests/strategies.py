"""Hypothesis strategies for the engine's property tests, and the fixed profiles CI runs with.

    bounded_floats()        finite floats in [-3, 3] (no NaN, Inf or subnormals)
    bounded_arrays(shape)   float64 arrays of such floats
    shapes()                small array shapes (0 to 3 axes, sides 1 to 4)
    broadcast_pairs()       two shapes that broadcast together, and their broadcast shape
    broadcast_to_pairs()    (small, big): small broadcasts *to* big (for unbroadcast)
    views()                 a recipe for a non-contiguous view of a larger array,
                            applied inside the test function with ``make_view``

Profiles (registered by ``register_profiles``, which conftest.py calls): "ci", the
default, with an explicit small example count, no deadline (the shared machines
are slow and uneven) and derandomized runs so CI is repeatable; "dev" for a
longer local search: ``HYPOTHESIS_PROFILE=dev python -m pytest tests``.
"""

from __future__ import annotations

from dataclasses import dataclass

import hypothesis.extra.numpy as hnp
import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

PROFILES = {
    "ci": {"max_examples": 25, "deadline": None, "derandomize": True, "print_blob": True,
               "suppress_health_check": [HealthCheck.too_slow]},
    "dev": {"max_examples": 200, "deadline": None,
                "suppress_health_check": [HealthCheck.too_slow]},
}  # fmt: skip


def register_profiles() -> None:
    for name, options in PROFILES.items():
        settings.register_profile(name, **options)


# ----------------------------------------------------------------------------- values


def bounded_floats(lo: float = -3.0, hi: float = 3.0):
    """Finite float64 values in [lo, hi]."""
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False, width=64)


def bounded_arrays(shape, lo: float = -3.0, hi: float = 3.0):
    """float64 arrays of ``shape`` (a shape or a strategy for one) with bounded elements."""
    return hnp.arrays(np.float64, shape, elements=bounded_floats(lo, hi))


# ----------------------------------------------------------------------------- shapes


def shapes(min_dims: int = 0, max_dims: int = 3, max_side: int = 4):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side)


def broadcast_pairs(max_dims: int = 3, max_side: int = 3):
    """(shape_a, shape_b, result): two shapes that broadcast together, and the result shape."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=2, min_dims=0, max_dims=max_dims, min_side=1, max_side=max_side
    ).map(lambda bs: (bs.input_shapes[0], bs.input_shapes[1], bs.result_shape))


@st.composite
def broadcast_to_pairs(draw, max_dims: int = 4, max_side: int = 4):
    """(small, big) with np.broadcast_to(a_small, big) valid: fewer or equal axes, sides 1 or big's."""
    big = draw(shapes(min_dims=0, max_dims=max_dims, max_side=max_side))
    keep = draw(st.integers(0, len(big)))  # how many trailing axes small keeps
    small = tuple(
        draw(st.sampled_from([1, n])) for n in big[len(big) - keep:]
    )  # fmt: skip
    return small, big


# ----------------------------------------------------------------------------- non-contiguous views


@dataclass(frozen=True)
class ViewRecipe:
    """How to cut a non-contiguous view of shape ``shape`` out of a larger array of ``base_shape``."""

    kind: str  # "transpose", "strided", "reversed" or "columns"
    shape: tuple  # the view's shape
    base_shape: tuple  # the larger array it is cut from

    def apply(self, base):
        if self.kind == "transpose":
            return base.T
        if self.kind == "strided":
            return base[::2, 1::3]
        if self.kind == "reversed":
            return base[::-1, ::-2]
        if self.kind == "columns":
            return base[:, 1 : 1 + self.shape[1]]
        raise ValueError(self.kind)


@st.composite
def views(draw, max_side: int = 4):
    """A ViewRecipe for a 2-D view of shape (m, n), m, n in 2..max_side, never C-contiguous."""
    m = draw(st.integers(2, max_side))
    n = draw(st.integers(2, max_side))
    kind = draw(st.sampled_from(["transpose", "strided", "reversed", "columns"]))
    if kind == "transpose":
        base = (n, m)
    elif kind == "strided":
        base = (2 * m - 1, 3 * n - 1)  # [::2, 1::3] keeps m rows and n columns
    elif kind == "reversed":
        base = (m, 2 * n - 1)  # [::-1, ::-2] keeps n columns
    else:
        base = (m, n + 2)
    return ViewRecipe(kind, (m, n), base)


def make_view(recipe: ViewRecipe, rng):
    """Make the larger array (inside the test function) and return (view, contiguous copy)."""
    base = rng.uniform(-2.0, 2.0, recipe.base_shape)
    view = recipe.apply(base)
    assert view.shape == recipe.shape, (recipe, view.shape)
    assert not view.flags.c_contiguous, recipe
    return view, np.ascontiguousarray(view)
