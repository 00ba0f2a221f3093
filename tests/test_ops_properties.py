"""Property tests with Hypothesis: broadcasting, unbroadcast, non-contiguous views, stability.

The strategies live in tests/strategies.py; the example counts come from the
profile conftest.py loads ("ci": small, fixed, derandomized).
"""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from strategies import (
    bounded_arrays,
    bounded_floats,
    broadcast_pairs,
    broadcast_to_pairs,
    make_view,
    shapes,
    views,
)

import minivae as mv
from minivae import ops
from minivae.gradcheck import gradcheck
from minivae.ops.binary import unbroadcast

BINARY = {"add": ops.add, "sub": ops.sub, "mul": ops.mul, "div": ops.div}
seeds = st.integers(0, 2**32 - 1)


@given(pair=broadcast_pairs(), op=st.sampled_from(sorted(BINARY)), seed=seeds)
def test_binary_ops_broadcast_and_pass_gradcheck(pair, op, seed):
    shape_a, shape_b, result = pair
    rng = np.random.default_rng(seed)
    a = rng.uniform(-2.0, 2.0, shape_a)
    b = rng.uniform(-2.0, 2.0, shape_b)
    if op == "div":  # keep the divisor away from zero
        b = np.sign(b + (b == 0)) * (0.5 + np.abs(b))
    with mv.set_default_dtype("float64"):
        out = BINARY[op](mv.Tensor(a), mv.Tensor(b))
    assert out.shape == result == np.broadcast_shapes(shape_a, shape_b)
    report = gradcheck(BINARY[op], [a, b], mode="full")
    assert report.ok, f"{op} {shape_a} {shape_b}\n{report}"


@given(pair=broadcast_to_pairs(), seed=seeds)
def test_unbroadcast_is_the_adjoint_of_broadcasting(pair, seed):
    small, big = pair
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(small)
    g = rng.standard_normal(big)
    back = unbroadcast(g, small)
    assert np.shape(back) == small
    lhs = float(np.sum(np.broadcast_to(a, big) * g))  # <broadcast(a), g>
    rhs = float(np.sum(a * back))  # <a, unbroadcast(g)>
    assert abs(lhs - rhs) <= 1e-10 * (1.0 + abs(lhs) + float(np.abs(g).sum()))


UNARY_ON_VIEWS = {
    "exp": ops.exp,
    "tanh": ops.tanh,
    "sigmoid": ops.sigmoid,
    "softplus": ops.softplus,
    "sum0": lambda x: ops.sum(x, axis=0),
    "max1": lambda x: ops.max(x, axis=1),
    "log_softmax": ops.log_softmax,
    "transpose": ops.transpose,
    "reshape": lambda x: ops.reshape(x, (-1,)),
    "getitem": lambda x: x[::-1, [0, 1, 0]],
    "matmul": lambda x: ops.matmul(x, x.T),
    "mul-self": lambda x: x * x,
}


def _value_and_grad(fn, array, v_seed):
    with mv.set_default_dtype("float64"):
        x = mv.Tensor(array, requires_grad=True)
        out = fn(x)
        v = np.random.default_rng(v_seed).standard_normal(out.shape)
        out.backward(v)
    return out.numpy(), x.grad


@given(recipe=views(), op=st.sampled_from(sorted(UNARY_ON_VIEWS)), seed=seeds)
def test_ops_on_non_contiguous_views_match_contiguous_copies(recipe, op, seed):
    view, copy = make_view(recipe, np.random.default_rng(seed))
    fn = UNARY_ON_VIEWS[op]
    out_v, grad_v = _value_and_grad(fn, view, seed + 1)
    out_c, grad_c = _value_and_grad(fn, copy, seed + 1)
    np.testing.assert_allclose(out_v, out_c, rtol=1e-13, atol=1e-14)
    assert grad_v.shape == view.shape
    np.testing.assert_allclose(grad_v, grad_c, rtol=1e-13, atol=1e-14)


@given(recipe=views(), op=st.sampled_from(sorted(BINARY)), seed=seeds)
def test_binary_ops_on_non_contiguous_views_match_contiguous_copies(recipe, op, seed):
    rng = np.random.default_rng(seed)
    view_a, copy_a = make_view(recipe, rng)
    view_b, copy_b = make_view(recipe, rng)
    view_b, copy_b = view_b[:1] + 3.0, copy_b[:1] + 3.0  # broadcast along rows, away from zero
    results = []
    for a, b in [(view_a, view_b), (copy_a, copy_b)]:
        with mv.set_default_dtype("float64"):
            ta, tb = mv.Tensor(a, requires_grad=True), mv.Tensor(b, requires_grad=True)
            out = BINARY[op](ta, tb)
            out.backward(np.ones(out.shape))
        results.append((out.numpy(), ta.grad, tb.grad))
    for got, want in zip(results[0], results[1]):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)


@given(x=bounded_arrays(shapes(min_dims=1, max_dims=3)), shift=bounded_floats(-1e4, 1e4))
def test_logsumexp_and_log_softmax_are_shift_invariant(x, shift):
    axis = x.ndim - 1
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        with mv.set_default_dtype("float64"):
            base = ops.logsumexp(mv.Tensor(x), axis=axis).numpy()
            t = mv.Tensor(x + shift, requires_grad=True)
            lse = ops.logsumexp(t, axis=axis)
            lse.sum().backward()
            ls = ops.log_softmax(mv.Tensor(x + shift), axis=axis).numpy()
            ls0 = ops.log_softmax(mv.Tensor(x), axis=axis).numpy()
    tol = 1e-12 * (10.0 + abs(shift))  # x + shift itself is rounded at that scale
    assert np.all(np.isfinite(lse.numpy())) and np.all(np.isfinite(ls))
    np.testing.assert_allclose(lse.numpy(), base + shift, rtol=0, atol=tol)
    np.testing.assert_allclose(ls, ls0, rtol=0, atol=tol)
    # the gradient is softmax: shift-invariant too, and each slice sums to one
    np.testing.assert_allclose(t.grad, np.exp(ls0), rtol=0, atol=1e-9)
    np.testing.assert_allclose(t.grad.sum(axis=axis), 1.0, rtol=0, atol=1e-12)


@given(
    x=bounded_arrays(shapes(min_dims=1, max_dims=3)),
    data=st.data(),
    op=st.sampled_from(["sum", "mean", "logsumexp"]),
    keepdims=st.booleans(),
)
def test_reductions_over_any_axes_match_numpy_and_pass_gradcheck(x, data, op, keepdims):
    axes = data.draw(st.sets(st.integers(-x.ndim, x.ndim - 1), max_size=x.ndim), label="axes")
    axes = tuple(sorted({a % x.ndim for a in axes}))
    axis = None if not axes else (axes if len(axes) > 1 else axes[0])
    fn = getattr(ops, op)
    ref = {
        "sum": np.sum,
        "mean": np.mean,
        "logsumexp": lambda a, axis, keepdims: np.log(
            np.sum(np.exp(a), axis=axis, keepdims=keepdims)
        ),
    }[op]
    with mv.set_default_dtype("float64"):
        out = fn(mv.Tensor(x), axis=axis, keepdims=keepdims)
    expected = np.asarray(ref(x, axis=axis, keepdims=keepdims))
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)
    report = gradcheck(lambda t: fn(t, axis=axis, keepdims=keepdims), [x], mode="full")
    assert report.ok, str(report)
