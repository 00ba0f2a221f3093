"""minivae.memory: freed arrays stay with the process (glibc), and the training loop asks for it."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from minivae import fast, memory
from minivae import train as train_module

REPO = Path(__file__).resolve().parents[1]
GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# A training step in miniature: twelve arrays of 0.5 to 1 MiB alive at once, freed together, their
# sizes shifting from step to step. Prints the page faults of 30 such steps.
STEPS = """
import resource, sys
import numpy as np
from minivae.memory import keep_freed_memory
if sys.argv[1] == "keep":
    print(keep_freed_memory())
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def step(i):
    kept = [np.ones((1 << 15) * (2 + (k + i) % 3)) for k in range(12)]
    del kept
for i in range(4):
    step(i)
f0 = faults()
for i in range(30):
    step(i)
print(faults() - f0)
"""


def run_steps(mode: str, **env) -> list[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in memory.USER_SETTINGS and k != "GLIBC_TUNABLES"}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", STEPS, mode], capture_output=True, text=True,
                          check=True, env={**clean, **env, "PYTHONPATH": str(REPO)})  # fmt: skip
    return done.stdout.split()


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only (Linux)")
def test_kept_memory_takes_no_page_faults_where_glibc_takes_thousands():
    (plain,) = run_steps("plain")
    kept, faults = run_steps("keep")
    assert kept == "True"
    assert int(plain) > 10_000  # glibc gives the blocks back and faults them in again
    assert int(faults) < 100


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only (Linux)")
@pytest.mark.parametrize("env", [{"MALLOC_TRIM_THRESHOLD_": "131072"},
                                 {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=131072"}])  # fmt: skip
def test_the_users_own_malloc_settings_stand(env):
    kept, _faults = run_steps("keep", **env)
    assert kept == "False"


def test_the_training_loop_keeps_memory_only_with_the_fast_paths_on(tmp_path, monkeypatch):
    calls = []
    # a recorder in its place: the test process keeps its own malloc settings
    monkeypatch.setattr(train_module, "keep_freed_memory", lambda: calls.append(1))
    config = train_module.TrainConfig(
        model={"kind": "vae", "x_dim": 784, "hidden": [8], "latent": 2},
        dataset="fashion-mnist-builtin", epochs=1, batch_size=120, n_val=60, limit_train=300,
        progress=False)  # fmt: skip
    with fast.set_enabled(False):
        train_module.train(config, tmp_path / "plain", log=lambda *a: None)
    assert calls == []
    with fast.set_enabled(True):
        train_module.train(config, tmp_path / "fast", log=lambda *a: None)
    assert calls == [1]
