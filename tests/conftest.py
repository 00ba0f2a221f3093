"""Shared test setup: the Hypothesis profile, the ``device`` fixture, and state restoring.

- Hypothesis loads the "ci" profile (see tests/strategies.py) unless
  HYPOTHESIS_PROFILE names another.
- ``device`` runs a test once on "cpu" (NumPy) and once on "gpu" (CuPy); the gpu
  run carries the ``gpu`` marker and is skipped, saying why, without CuPy and a
  CUDA device. Inside the test the backend is switched to that device.
- ``--gpu-standin`` runs the gpu tests without a GPU, on tests/fake_cupy.py: a strict
  stand-in for CuPy (NumPy underneath) that refuses what CuPy refuses (implicit
  conversion to NumPy, host arrays mixed into device work, NumPy's generator for device
  noise) and counts every host <-> device transfer. It checks the CuPy code path's
  discipline, not a GPU. ``python -m pytest --gpu-standin -m gpu`` runs just those tests.
- Every test leaves the engine as it found it: default dtype, device, grad mode,
  anomaly mode and the random generators are put back afterwards, so a test that
  fails half-way through a ``set_default_dtype("float64")`` cannot leak into others.
"""

from __future__ import annotations

import functools
import os

import pytest
from hypothesis import settings
from strategies import register_profiles

from minivae import backend as B
from minivae import tensor as _tensor

register_profiles()
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_addoption(parser):
    parser.addoption(
        "--gpu-standin",
        action="store_true",
        default=False,
        help="run the gpu tests on tests/fake_cupy.py, a strict CuPy stand-in on NumPy (not a GPU)",
    )


def pytest_configure(config):
    if config.getoption("--gpu-standin"):
        import fake_cupy

        B.use_gpu_module(fake_cupy, fake_cupy.cupyx)
        gpu_available.cache_clear()


def pytest_unconfigure(config):
    if config.getoption("--gpu-standin"):
        B.use_gpu_module(None)


def pytest_report_header(config):
    if config.getoption("--gpu-standin"):
        return "gpu: the CuPy stand-in tests/fake_cupy.py (NumPy on the host, not a GPU)"
    return None


@functools.lru_cache(maxsize=1)
def gpu_available() -> bool:
    return B.gpu_available()


GPU_SKIP_REASON = (
    "needs CuPy and a CUDA device (minivae.backend.gpu_available() is False); "
    "install the gpu extra on a machine with an NVIDIA GPU to run it"
)


@pytest.fixture(params=["cpu", pytest.param("gpu", marks=pytest.mark.gpu)])
def device(request):
    """The device under test; arrays made inside the test should go through B.from_numpy."""
    if request.param == "gpu" and not gpu_available():
        pytest.skip(GPU_SKIP_REASON)
    with B.set_device(request.param):
        yield request.param


@pytest.fixture(autouse=True)
def _restore_engine_state():
    dtype, dev = B.get_default_dtype(), B.get_device()
    grad, anomaly = _tensor._grad_enabled, _tensor._anomaly
    seed, rngs = B._seed, dict(B._rngs)
    yield
    B.set_default_dtype(dtype)
    if B.get_device() != dev:
        B.set_device(dev)
    _tensor._grad_enabled, _tensor._anomaly = grad, anomaly
    B._seed = seed
    B._rngs.clear()
    B._rngs.update(rngs)
