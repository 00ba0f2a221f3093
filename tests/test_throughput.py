"""benchmarks/throughput.py: the --isolate mode times each run in a process of its own and
reports the same fields as the shared-process mode; the ratios are medians of per-repeat ratios."""

from __future__ import annotations

import json
import os

import pytest
from benchmark_loader import load_benchmark


def test_ratios_are_medians_of_per_repeat_ratios():
    bench = load_benchmark("throughput.py")
    rates = {"minivae": [10.0, 30.0, 20.0], "floor": [20.0, 30.0, 80.0]}
    assert bench.ratios(rates) == {"minivae_over_floor": 0.5}  # ratios 0.5, 1.0, 0.25
    rates.update(torch=[5.0, 60.0, 10.0], torch_best=[10.0, 10.0, 10.0])
    out = bench.ratios(rates)
    assert out["minivae_over_torch"] == 2.0 and out["minivae_over_torch_best"] == 2.0
    assert out["torch_over_floor"] == pytest.approx(0.25)


def test_isolated_runs_report_rates_and_ratios(capsys, monkeypatch):
    bench = load_benchmark("throughput.py")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # main sets them
        if var in os.environ:
            monkeypatch.setenv(var, os.environ[var])  # restored after the test
        else:
            monkeypatch.delenv(var, raising=False)
    assert bench.main(["--isolate", "--no-torch", "--batch", "16", "--dtype", "float32",
                       "--steps", "2", "--warmup", "1", "--repeats", "2", "--threads", "1"]) == 0
    machine, row = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert machine["machine"]["isolated"] is True
    assert row["isolated"] is True and (row["batch"], row["dtype"], row["repeats"]) == (16, "float32", 2)
    assert row["minivae_samples_per_s"] > 0 and row["floor_samples_per_s"] > 0
    assert 0 < row["minivae_over_floor"] and "minivae_over_torch" not in row
    # minivae's child keeps freed memory, as the training loop does: no page-fault cliff
    assert 0 <= row["minivae_page_faults_per_step"] < 50 and row["floor_page_faults_per_step"] >= 0


def test_page_faults_per_step_count_the_pages_a_step_takes_fresh():
    """A step that maps 1 MiB anew and writes every 4 KiB page of it: at least 256 faults each;
    a step that reuses its memory: none."""
    import mmap

    bench = load_benchmark("throughput.py")
    page = mmap.PAGESIZE

    def fresh():
        m = mmap.mmap(-1, 1 << 20)
        for offset in range(0, 1 << 20, page):
            m[offset] = 1
        m.close()

    kept = bytearray(1 << 20)

    def reuse():
        for offset in range(0, 1 << 20, page):
            kept[offset] = 1

    seconds, faults = bench._time_and_faults(fresh, lambda: None, steps=5, warmup=1)
    assert seconds > 0 and faults >= (1 << 20) // page
    assert bench._time_and_faults(reuse, lambda: None, steps=5, warmup=1)[1] < 2
