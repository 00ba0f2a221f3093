"""The array backend: device and dtype choice, their errors, seeding, and import hygiene."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minivae as mv
from minivae import backend as B

REPO = Path(__file__).resolve().parents[1]


def run_python(code: str, **env_changes):
    """Run ``python -c code`` in a fresh interpreter with the repository importable."""
    env = {k: v for k, v in os.environ.items() if k != "MINIVAE_DEVICE"}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(env_changes)
    return subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
    )


# ----------------------------------------------------------------------------- defaults


def test_defaults_are_cpu_and_float32_in_a_fresh_interpreter():
    proc = run_python(
        "import minivae as mv; from minivae import backend as B; import numpy as np\n"
        "print(mv.get_device(), np.dtype(mv.get_default_dtype()).name, B.xp.__name__,"
        " mv.Tensor([1.0]).dtype)"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["cpu", "float32", "numpy", "float32"]


def test_defaults_in_this_process():
    if os.environ.get("MINIVAE_DEVICE", "cpu").strip().lower() in ("", "cpu"):
        assert mv.get_device() == "cpu" and B.xp is np
    assert mv.get_default_dtype() is np.float32


def test_importing_minivae_does_not_import_cupy():
    proc = run_python("import sys, minivae, minivae.nn, minivae.optim, minivae.gradcheck\n"
                      "print(sorted(m for m in sys.modules if m.split('.')[0] in ('cupy', 'cupyx')))")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_a_bogus_minivae_device_fails_at_the_first_array_until_a_device_is_chosen():
    """The import succeeds (so a program can still choose, and report the setting in one
    line); every use of an array says what is wrong; set_device clears it, and a with-block
    puts the refusal back."""
    code = (
        "import minivae as mv\n"
        "from minivae import backend as B\n"
        "print('imported')\n"
        "for use in (lambda: mv.Tensor([1.0]), mv.get_device, B.rng, lambda: B.xp.exp):\n"
        "    try:\n"
        "        use()\n"
        "    except RuntimeError as err:\n"
        "        print('refused:', err)\n"
        "with mv.set_device('cpu'):\n"
        "    print('inside', mv.Tensor([2.0]).data, mv.get_device())\n"
        "try:\n"
        "    mv.Tensor([1.0])\n"
        "except RuntimeError:\n"
        "    print('refused again')\n"
        "mv.set_device('cpu')\n"
        "print('chosen', mv.Tensor([3.0]).data, B.ENVIRONMENT_ERROR)\n"
    )
    proc = run_python(code, MINIVAE_DEVICE="bogus")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    message = "MINIVAE_DEVICE='bogus' is not a device: choose one of cpu, gpu, or unset it"
    assert lines[0] == "imported"
    assert lines[1:5] == [f"refused: {message}"] * 4
    assert lines[5:] == ["inside [2.] cpu", "refused again", "chosen [3.] None"]


def test_minivae_device_gpu_without_a_gpu_is_kept_as_the_reason_not_a_silent_cpu():
    with B.use_gpu_module(None):  # the real CuPy, also in a --gpu-standin pass
        if B.gpu_available():
            pytest.skip("a GPU is available here: the error cannot happen")
    proc = run_python(
        "import minivae as mv\nfrom minivae import backend as B\nprint(B.ENVIRONMENT_ERROR)\n"
        "mv.Tensor([1.0])",
        MINIVAE_DEVICE="gpu",
    )
    assert proc.returncode != 0
    assert proc.stdout.startswith("MINIVAE_DEVICE='gpu' cannot be used: device 'gpu' needs")
    assert "RuntimeError: MINIVAE_DEVICE='gpu' cannot be used" in proc.stderr


def test_minivae_device_cpu_is_read_loosely():
    proc = run_python("import minivae; print(minivae.get_device())", MINIVAE_DEVICE=" CPU ")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "cpu"


# ----------------------------------------------------------------------------- devices


def test_gpu_without_cupy_says_what_to_install():
    with B.use_gpu_module(None):  # the real CuPy, also in a --gpu-standin pass
        if B.gpu_available():
            pytest.skip("a GPU is available here: the error cannot happen")
        with pytest.raises(RuntimeError) as info:
            mv.set_device("gpu")
        assert mv.get_device() == "cpu" and B.xp is np  # nothing half-switched
        assert B.gpu_available() is False
    message = str(info.value)
    if importlib.util.find_spec("cupy") is None:
        assert "needs CuPy, which is not installed" in message
        assert 'pip install -e ".[gpu]"' in message and "MINIVAE_DEVICE=cpu" in message
    else:  # CuPy is there, but no CUDA device
        assert "needs a CUDA device" in message


@pytest.mark.parametrize("name", ["tpu", "GPU", "", "cuda"])
def test_unknown_devices_are_refused_with_the_choices(name):
    with pytest.raises(ValueError, match=r"unknown device .*: choose one of cpu, gpu"):
        mv.set_device(name)
    assert mv.get_device() == "cpu"


@pytest.mark.parametrize("name", ["float16", "int32", "bogus", "complex128", None])
def test_unknown_dtypes_are_refused_with_the_choices(name):
    with pytest.raises(ValueError, match=r"unknown dtype .*: choose one of float32, float64"):
        mv.set_default_dtype(name)
    assert mv.get_default_dtype() is np.float32


@pytest.mark.parametrize("name", ["float64", np.float64, np.dtype("float64")])
def test_set_default_dtype_accepts_names_types_and_dtypes(name):
    mv.set_default_dtype(name)  # plain call: stays set (conftest restores it after the test)
    assert mv.get_default_dtype() is np.float64
    assert mv.Tensor([1.0]).dtype == np.float64


def test_context_manager_forms_restore():
    with mv.set_default_dtype("float64"):
        assert mv.get_default_dtype() is np.float64
        with mv.set_default_dtype("float32"):
            assert mv.get_default_dtype() is np.float32
        assert mv.get_default_dtype() is np.float64
    assert mv.get_default_dtype() is np.float32
    with pytest.raises(KeyError), mv.set_default_dtype("float64"):
        raise KeyError("boom")
    assert mv.get_default_dtype() is np.float32
    with mv.set_device("cpu"):
        assert mv.get_device() == "cpu"
    assert mv.get_device() == "cpu" and B.xp is np


def test_set_device_restores_the_previous_device(monkeypatch):
    """The context manager puts back whatever device was current (faked here without a GPU)."""
    calls = []
    monkeypatch.setattr(B, "_import_cupy", lambda: calls.append("cupy") or np)
    with mv.set_device("gpu"):
        assert mv.get_device() == "gpu" and calls == ["cupy"]
        with mv.set_device("cpu"):
            assert mv.get_device() == "cpu"
        assert mv.get_device() == "gpu"
    assert mv.get_device() == "cpu"


# ----------------------------------------------------------------------------- randomness


def test_manual_seed_makes_the_generator_reproducible():
    mv.manual_seed(123)
    a = B.rng().normal(size=5)
    b = B.rng().normal(size=5)
    mv.manual_seed(123)
    np.testing.assert_array_equal(B.rng().normal(size=5), a)
    np.testing.assert_array_equal(B.rng().normal(size=5), b)
    assert not np.array_equal(a, b)
    mv.manual_seed(124)
    assert not np.array_equal(B.rng().normal(size=5), a)


def test_rng_state_round_trip():
    mv.manual_seed(5)
    B.rng().normal(size=3)
    state = B.get_rng_state()
    x = B.rng().normal(size=4)
    B.set_rng_state(state)
    np.testing.assert_array_equal(B.rng().normal(size=4), x)


# ----------------------------------------------------------------------------- arrays


def test_asarray_gives_python_numbers_the_default_dtype():
    assert B.asarray([1.0, 2.0]).dtype == np.float32
    assert B.asarray(np.ones(2)).dtype == np.float64  # arrays keep theirs
    with mv.set_default_dtype("float64"):
        assert B.asarray(0.5).dtype == np.float64


def test_array_device_to_numpy_and_from_numpy():
    a = np.arange(3.0)
    assert B.array_device(a) == "cpu"
    assert B.array_device([1.0]) is None and B.array_device(2.0) is None
    assert B.to_numpy(a) is a
    np.testing.assert_array_equal(B.to_numpy(mv.Tensor(a)), a)
    assert B.from_numpy(a, dtype=np.float32).dtype == np.float32


def test_scatter_add_adds_repeated_indices():
    target = np.zeros(4)
    B.scatter_add(target, np.array([0, 2, 0, 0]), np.array([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(target, [8.0, 0.0, 2.0, 0.0])


# ----------------------------------------------------------------------------- the gpu's module


def test_use_gpu_module_runs_the_gpu_on_another_module_and_puts_back_the_previous():
    import fake_cupy

    before = (B._cupy, B._cupyx)
    with B.use_gpu_module(fake_cupy, fake_cupy.cupyx):
        assert B.gpu_available()
        with mv.set_device("gpu"):
            assert B.xp is fake_cupy and mv.get_device() == "gpu"
            a = B.from_numpy(np.arange(3.0))
            assert isinstance(a, fake_cupy.ndarray) and B.array_device(a) == "gpu"
            assert B.is_array(a) and not B.is_array(np.arange(3.0))
            np.testing.assert_array_equal(B.to_numpy(a), [0.0, 1.0, 2.0])
            with pytest.raises(RuntimeError, match="switch to the cpu first"):
                B.use_gpu_module(None)
        assert B.xp is np
    assert (B._cupy, B._cupyx) == before


def test_the_gpu_generator_is_the_gpu_modules_own_and_seeded_by_manual_seed():
    import fake_cupy

    with B.use_gpu_module(fake_cupy, fake_cupy.cupyx), mv.set_device("gpu"):
        mv.manual_seed(7)
        first = B.rng().standard_normal(size=(4,), dtype=np.float32)
        assert isinstance(first, fake_cupy.ndarray)
        mv.manual_seed(7)
        again = B.rng().standard_normal(size=(4,), dtype=np.float32)
        np.testing.assert_array_equal(B.to_numpy(first), B.to_numpy(again))
        with mv.set_device("cpu"):
            on_cpu = B.rng().standard_normal(size=(4,), dtype=np.float32)
        assert isinstance(on_cpu, np.ndarray)  # each device keeps its own generator


def test_python_numbers_are_filled_on_the_device_not_copied_there():
    import fake_cupy

    with B.use_gpu_module(fake_cupy, fake_cupy.cupyx), mv.set_device("gpu"):
        fake_cupy.transfers.reset()
        half = B.asarray(0.5)
        assert isinstance(half, fake_cupy.ndarray) and half.dtype == np.float32 and half.ndim == 0
        assert B.asarray(2, dtype=np.float64).dtype == np.float64
        assert fake_cupy.transfers.total == 0
        B.asarray([1.0, 2.0])  # a list is host data: one copy
        assert fake_cupy.transfers.counts == {"to_device": 1}


def test_scatter_add_on_the_gpu_goes_through_the_cupyx_module():
    import fake_cupy

    with B.use_gpu_module(fake_cupy, fake_cupy.cupyx), mv.set_device("gpu"):
        target = B.xp.zeros(3)
        B.scatter_add(target, B.from_numpy(np.array([1, 1, 2])), B.from_numpy(np.ones(3)))
        np.testing.assert_array_equal(B.to_numpy(target), [0.0, 2.0, 1.0])
