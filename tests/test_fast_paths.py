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
