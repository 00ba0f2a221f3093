"""benchmarks/adam_threads.py times Adam's update split over two threads: the split must give
the plain update's weights to the bit, or its timing compares different work."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from benchmark_loader import load_benchmark

from minivae import fast


def test_split_update_gives_the_plain_weights_to_the_bit():
    bench = load_benchmark("adam_threads.py")
    x = (np.random.default_rng(1).random((32, 784)) < 0.13).astype(np.float64)
    with fast.set_enabled(True), ThreadPoolExecutor(1) as pool:
        weights = []
        for with_pool in (None, pool):
            step, model = bench.make_minivae(32, x, with_pool)
            for _ in range(3):
                step()
            weights.append([p.data.copy() for p in model.parameters()])
    start = bench.make_minivae(32, x)[1]  # the weights before any step
    assert any(not np.array_equal(a, b.data) for a, b in zip(weights[0], start.parameters()))
    assert all(np.array_equal(a, b) for a, b in zip(*weights))
    # the two layers of 784 x 400 entries are the ones split
    assert sum(p.data.size >= bench.SPLIT_MIN for p in start.parameters()) == 2
