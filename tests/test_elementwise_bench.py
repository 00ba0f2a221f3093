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
