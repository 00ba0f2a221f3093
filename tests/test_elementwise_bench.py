"""benchmarks/elementwise.py: each timed pair computes the same numbers both ways, so that the
timings compare like with like (the row blocks of the Bernoulli likelihood included)."""

from __future__ import annotations

import numpy as np
import pytest
from benchmark_loader import load_benchmark


@pytest.mark.parametrize("dtype, rtol", [("float32", 1e-6), ("float64", 1e-14)])
def test_each_pair_agrees(dtype, rtol):
    bench = load_benchmark("elementwise.py")
    logits = (np.random.default_rng(0).standard_normal((300, 50)) * 3).astype(dtype)  # 3 row blocks
    e = np.exp(-np.abs(logits))
    pairs = bench.pairs(np, logits, e)
    assert any("row blocks" in what for what in pairs)
    for what, (replaced, minivae_form) in pairs.items():
        a, b = replaced(), minivae_form()
        assert a.shape == b.shape and a.dtype == b.dtype, what
        np.testing.assert_allclose(a, b, rtol=rtol, err_msg=what)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adam_pairs_step_alike(dtype):
    """The Adam rows time updates that move the weights alike: the flush at every step and
    the library's flush every FLUSH_EVERY steps to the bit (nothing here is subnormal)."""
    bench = load_benchmark("elementwise.py")
    pairs = bench.adam_pairs(np, dtype)
    flush = [what for what in pairs if "flush every step" in what]
    assert len(flush) == 1
    assert pairs[flush[0]][2]() == 0.0
    for what, (_, _, compare) in pairs.items():
        assert compare() < 1e-5, what
