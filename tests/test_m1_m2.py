"""benchmarks/m1_m2.py's preparation of M1's codes for M2: which units it keeps, and the
standardization that lets M2's one learned variance fit every unit; and a toy-sized run of
both stages on MNIST, trained and then read back from the kept M1."""

from __future__ import annotations

import json

import numpy as np
import pytest
from benchmark_loader import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("m1_m2.py")


def fake_codes(rng):
    """Codes of 5 units: spreads 3, 0.05 (switched off), 1, 0.5 and 0.01 (switched off)."""
    spread = np.array([3.0, 0.05, 1.0, 0.5, 0.01])
    mu = rng.standard_normal((400, 5)) * spread + np.array([1.0, 0.0, -2.0, 4.0, 0.0])
    log_var = rng.uniform(-4, 0, (400, 5))
    mu_test = rng.standard_normal((50, 5)) * spread
    return mu, log_var, mu_test


def test_kept_codes_keeps_the_units_that_spread_and_their_values(bench):
    mu, log_var, mu_test = fake_codes(np.random.default_rng(0))
    m, sd, m_test, keep = bench.kept_codes(mu, log_var, mu_test, 0.1, standardize=False)
    assert keep.tolist() == [True, False, True, True, False]
    np.testing.assert_array_equal(m, mu[:, [0, 2, 3]])
    np.testing.assert_array_equal(m_test, mu_test[:, [0, 2, 3]])
    np.testing.assert_allclose(sd, np.exp(0.5 * log_var[:, [0, 2, 3]]))


def test_standardized_codes_have_mean_0_spread_1_and_sd_scaled_alike(bench):
    mu, log_var, mu_test = fake_codes(np.random.default_rng(1))
    raw = bench.kept_codes(mu, log_var, mu_test, 0.1, standardize=False)
    m, sd, m_test, keep = bench.kept_codes(mu, log_var, mu_test, 0.1, standardize=True)
    np.testing.assert_array_equal(keep, raw[3])  # standardizing keeps the same units
    np.testing.assert_allclose(m.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(m.std(axis=0), 1.0)
    spread = raw[0].std(axis=0)
    np.testing.assert_allclose(sd, raw[1] / spread)  # a sample's noise scales with its mean
    np.testing.assert_allclose(m_test, (raw[2] - raw[0].mean(axis=0)) / spread)
    # the sampled codes mu + sd * eps map the same way as the means
    eps = np.random.default_rng(2).standard_normal(m.shape)
    np.testing.assert_allclose(m + sd * eps, (raw[0] + raw[1] * eps - raw[0].mean(axis=0)) / spread)


@pytest.mark.mnist
def test_a_small_run_end_to_end_and_again_from_the_kept_m1(bench, monkeypatch, tmp_path, capsys):
    """Both stages on MNIST at a toy size (1 epoch each, 20 hidden units): M2 classifies
    better than chance, and a second run that reads the kept M1 back reports the same."""
    from test_data import real_mnist_root

    root = real_mnist_root()
    if root is None:
        pytest.skip("MNIST files not found: set MINIVAE_DATA to the folder holding mnist/")
    monkeypatch.setenv("MINIVAE_DATA", str(root))
    argv = ["--draws", "0", "--m1-epochs", "1", "--m1-hidden", "20", "--epochs", "1",
            "--hidden", "20", "--m1-dir", str(tmp_path)]  # fmt: skip
    rows, logs = [], []
    for _ in range(2):
        assert bench.main(argv) == 0
        out = capsys.readouterr()
        row, summary = (json.loads(line) for line in out.out.splitlines())
        rows.append(row)
        logs.append(out.err)
    assert "M1 epoch 1" in logs[0] and "M1 read from" not in logs[0]  # trained, then kept
    assert "M1 read from" in logs[1] and "M1 epoch" not in logs[1]
    assert (tmp_path / "m1_draw_0_h20_e1.npz").exists()
    assert 1 <= row["kept_units"] <= 50 and row["m1_epochs"] == 1 and row["hidden"] == 20
    assert row["test_error"] < 0.8  # chance is 0.9
    assert rows[1]["test_error_per_epoch"] == rows[0]["test_error_per_epoch"]
    assert rows[1]["kept_units"] == rows[0]["kept_units"]
    assert summary["test_errors"] == [row["test_error"]] and summary["draws"] == [0]
