"""Every fast path against the plain version it replaces (DESIGN: plain first, fast second)."""

from __future__ import annotations

import numpy as np
import pytest

import minivae as mv
from minivae import ops
from minivae.optim import Adam
from minivae.tensor import Tensor


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_blockwise_adam_is_bit_identical_to_the_plain_update(dtype):
    rng = np.random.default_rng(0)
    shapes = [(300, 500), (500,), (7, 3)]  # one array large enough to be split into blocks
    start = [rng.normal(size=s).astype(dtype) for s in shapes]
    grads = [[rng.normal(size=s).astype(dtype) for s in shapes] for _ in range(4)]

    def run(chunk):
        params = [Tensor(a.copy(), requires_grad=True) for a in start]
        opt = Adam(params, lr=1e-2, chunk=chunk)
        for step_grads in grads:
            for p, g in zip(params, step_grads):
                p.grad = g
            opt.step()
        return [p.numpy() for p in params]

    blockwise, plain = run(4096), run(None)
    assert not np.array_equal(blockwise[0], start[0])  # it moved
    for a, b in zip(blockwise, plain):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_bernoulli_matches_the_plain_composition(dtype):
    rng = np.random.default_rng(1)
    logits_np = (rng.normal(size=(3, 16, 20)) * 8).astype(dtype)  # (L, B, D): broadcasts over L
    logits_np[0, 0, :4] = [-60.0, 60.0, -1e4, 1e4]
    x_np = (rng.random((16, 20)) < 0.4).astype(dtype)
    with mv.set_default_dtype(dtype):
        fused_l = Tensor(logits_np, requires_grad=True)
        fused = ops.bernoulli_log_prob(fused_l, x_np)
        fused.sum().backward()
        plain_l = Tensor(logits_np, requires_grad=True)
        plain = x_np * plain_l - ops.softplus(plain_l)  # log p = x l - softplus(l)
        plain.sum().backward()
    tol = 1e-6 if dtype == "float32" else 1e-13
    assert fused.shape == plain.shape == (3, 16, 20)
    np.testing.assert_allclose(fused.numpy(), plain.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(fused_l.grad, plain_l.grad, rtol=tol, atol=tol)


@pytest.mark.parametrize("shape", [(700, 300), (40, 700, 300), (5, 2, 30)])
def test_blockwise_bernoulli_likelihood_matches_the_elementwise_sum(shape, monkeypatch):
    """Without gradients the fused per-example likelihood runs in blocks; same sums as the plain op."""
    from minivae.ops import losses

    monkeypatch.setattr(losses, "BLOCK_ELEMENTS", 4096)  # many blocks, with a ragged last one
    rng = np.random.default_rng(2)
    logits = rng.normal(size=shape) * 5
    x = (rng.random(shape[-2:]) < 0.3).astype(np.float64)
    with mv.set_default_dtype("float64"), mv.no_grad():
        fused = ops.bernoulli_log_likelihood(logits, x)
        plain = ops.bernoulli_log_prob(logits, x).sum(axis=-1)
    assert fused.shape == shape[:-1]
    np.testing.assert_allclose(fused.numpy(), plain.numpy(), rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_log1p_from_the_vectorized_log_matches_log1p(dtype):
    """log1p_by_log (log with one correction step) against NumPy's log1p over [0, 1] and its tail."""
    from minivae.ops.elementwise import log1p_by_log, log1p_unit

    rng = np.random.default_rng(3)
    tiny = np.finfo(dtype).tiny
    e = np.concatenate([
        rng.random(20000), 10.0 ** rng.uniform(-45, 0, 20000), [0.0, 1.0, tiny, 1e-30, 0.5],
    ]).astype(dtype)  # fmt: skip
    got, want = log1p_by_log(e), np.log1p(e)
    assert got.dtype == e.dtype
    np.testing.assert_allclose(log1p_unit(e), want, rtol=4 * np.finfo(dtype).eps, atol=0)
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(got, want, rtol=4 * eps, atol=0)  # a few units in the last place
    assert got[-5] == 0.0 and got[-3] == e[-3]  # log(1 + 0) = 0; log(1 + tiny) = tiny exactly
    plain = np.log(1.0 + e)  # what the correction step repairs: relative error 1 in the tail
    assert np.max(np.abs(plain - want) / np.maximum(want, tiny)) > 0.5


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_from_exp_matches_the_masked_form(dtype):
    """max(e, [x >= 0]) / (1 + e) against the where-form, in both tails, at 0, and for NaN."""
    from minivae.ops.elementwise import sigmoid_from_exp, stable_sigmoid

    rng = np.random.default_rng(4)
    x = np.concatenate([rng.normal(size=5000) * 30, [0.0, -0.0, -1e4, 1e4, -40.0, np.nan]]).astype(dtype)
    e = np.exp(-np.abs(x))
    masked = np.where(x >= 0, 1.0, e) / (1.0 + e)
    got = sigmoid_from_exp(x, e)
    assert got.dtype == x.dtype
    np.testing.assert_array_equal(got[:-1], masked[:-1].astype(dtype))  # the same arithmetic
    assert np.isnan(got[-1])
    assert got[-4] == 0.0 and got[-3] == 1.0 and got[-2] > 0  # sigmoid(-40) ~ 4e-18 is kept
    np.testing.assert_array_equal(stable_sigmoid(x), got)
