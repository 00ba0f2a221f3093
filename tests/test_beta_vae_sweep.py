"""benchmarks/beta_vae_sweep.py scores the model it trained: one tiny run, then the same
checkpoint scored again with --score, must give the same numbers, within their ranges."""

from __future__ import annotations

import json

import pytest
from benchmark_loader import load_benchmark

from minivae import data as D


def test_a_tiny_sweep_reports_what_scoring_its_checkpoint_gives(tmp_path, capsys):
    sweep = load_benchmark("beta_vae_sweep.py")
    assert sweep.main(["--betas", "2", "--seeds", "0", "--epochs", "1", "--hidden", "8",
                       "--latent", "3", "--batch-size", "500", "--lr-schedule", "cosine",
                       "--out", str(tmp_path)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    row, summary = lines[0], lines[-1]
    assert (row["beta"], row["seed"]) == (2.0, 0)
    assert 0.0 <= row["mig"] <= 1.0 and list(row["gaps"]) == list(D.FACTOR_NAMES)
    assert row["mig"] == pytest.approx(sum(row["gaps"].values()) / 5, abs=1e-3)
    assert 0 <= row["active_units"] <= 3 and row["rate"] > 0
    assert summary["best_beta"] == 2.0 and summary["summary"]["2"]["mig_mean"] == row["mig"]
    # per unit: its activity and I(z_u; v_k) / H(v_k); each factor's gap is its top two's difference
    unit_mi = row["unit_mi"]
    assert len(unit_mi) == 3 and all(len(r) == 5 and all(0.0 <= v <= 1.0 for v in r) for r in unit_mi)
    assert sum(a > 0.01 for a in row["unit_activity"]) == row["active_units"]
    for k, name in enumerate(D.FACTOR_NAMES):
        first, second = sorted((r[k] for r in unit_mi), reverse=True)[:2]
        assert row["gaps"][name] == pytest.approx(first - second, abs=2e-3)
    (checkpoint,) = tmp_path.glob("beta2-seed0-*/checkpoint.npz")
    config = json.loads((checkpoint.parent / "config.json").read_text())
    assert config["lr_schedule"] == "cosine" and config["batch_size"] == 500
    assert sweep.main(["--score", str(checkpoint)]) == 0
    again = json.loads(capsys.readouterr().out)
    keys = ("mig", "gaps", "rate", "active_units", "unit_activity", "unit_mi")
    assert {k: again[k] for k in keys} == {k: row[k] for k in keys}
