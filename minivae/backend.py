"""The array backend: the only module that imports NumPy or CuPy.

Everything else reaches arrays through this module:

    from minivae import backend as B
    B.xp.exp(a)          # the current array module (numpy or cupy)
    B.rng().normal(...)  # the seeded random generator of the current device
    B.to_numpy(a)        # a host copy, whatever the device

The device is "cpu" (NumPy) unless ``MINIVAE_DEVICE=gpu`` is set or
``set_device("gpu")`` is called; ``set_device`` also works as a context
manager. Asking for the GPU without CuPy or without a CUDA device raises an
error that says which is missing: there is no silent fallback. Importing
minivae on the CPU never imports CuPy.

A ``MINIVAE_DEVICE`` that cannot be honoured (a name that is not a device, or
``gpu`` without CuPy) does not stop the import: ``ENVIRONMENT_ERROR`` says why,
and the first use of an array raises that message, until ``set_device`` picks a
device. So a program (the ``minivae`` command's ``--device``, a lesson's DEVICE)
can still choose, and report a bad setting in one line.

The default floating dtype is float32; ``set_default_dtype("float64")`` (also a
context manager) switches it, which is what gradient checks do.
"""

from __future__ import annotations

import os

import numpy

DEVICES = ("cpu", "gpu")
DTYPES = ("float32", "float64")

_cupy = None  # the cupy module, imported on first use of the gpu
_cupyx = None  # cupyx (its scatter_add), imported with it


def _import_cupy():
    """Import CuPy and check that a CUDA device is present, with a clear error otherwise."""
    global _cupy, _cupyx
    if _cupy is not None:
        return _cupy
    try:
        import cupy
        import cupyx
    except ImportError as err:
        raise RuntimeError(
            "device 'gpu' needs CuPy, which is not installed. Install the gpu extra (in the "
            "checkout: pip install -e \".[gpu]\", a CuPy wheel for CUDA 12) or pick the cpu "
            "with MINIVAE_DEVICE=cpu."
        ) from err
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDA driver missing or broken
        raise RuntimeError(
            f"device 'gpu' needs a CUDA device, but CUDA could not be used ({err}). "
            "Check the NVIDIA driver (nvidia-smi), or pick the cpu with MINIVAE_DEVICE=cpu."
        ) from err
    if count == 0:
        raise RuntimeError(
            "device 'gpu' needs a CUDA device, but CuPy found none. "
            "Pick the cpu with MINIVAE_DEVICE=cpu."
        )
    _cupy, _cupyx = cupy, cupyx
    return cupy


def use_gpu_module(cupy_module, cupyx_module=None):
    """Run device "gpu" on the given modules in place of CuPy and cupyx; None imports CuPy again.

    The seam for the tests' CuPy stand-in (``python -m pytest --gpu-standin``), which checks
    the CuPy code path's discipline on a machine without a GPU. The module must offer what
    minivae calls of CuPy (``ndarray``, the array functions, ``random.default_rng``); the
    cupyx one ``scatter_add``. It takes effect at the next ``set_device("gpu")``, with a
    fresh gpu random generator; usable plainly or as ``with use_gpu_module(m, mx):``.
    """
    global _cupy, _cupyx
    if device == "gpu":
        raise RuntimeError("use_gpu_module: switch to the cpu first (set_device('cpu'))")
    previous = (_cupy, _cupyx)
    _cupy, _cupyx = cupy_module, cupyx_module
    _rngs.pop("gpu", None)
    return _Restore(lambda: use_gpu_module(*previous))


def gpu_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device (never raises)."""
    try:
        _import_cupy()
    except RuntimeError:
        return False
    return True


# ----------------------------------------------------------------------------- state

xp = numpy  # the current array module; read it as B.xp, never "from ... import xp"
device = "cpu"
ENVIRONMENT_ERROR: str | None = None  # why MINIVAE_DEVICE could not be honoured, if it could not
default_dtype = numpy.float32
_rngs: dict[str, object] = {}
_seed: int | None = None


class _Restore:
    """Returned by set_device / set_default_dtype: a no-op, or a context manager that undoes it."""

    def __init__(self, undo):
        self._undo = undo

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._undo()
        return False


def set_device(name: str) -> _Restore:
    """Select "cpu" (NumPy) or "gpu" (CuPy); usable plainly or as ``with set_device("gpu"):``."""
    global xp, device, ENVIRONMENT_ERROR
    if name not in DEVICES:
        raise ValueError(f"unknown device {name!r}: choose one of {', '.join(DEVICES)}")
    previous = (xp, device, ENVIRONMENT_ERROR)
    xp = _import_cupy() if name == "gpu" else numpy
    device, ENVIRONMENT_ERROR = name, None
    return _Restore(lambda: _put_back(previous))


def _put_back(state) -> None:
    global xp, device, ENVIRONMENT_ERROR
    xp, device, ENVIRONMENT_ERROR = state


def get_device() -> str:
    _check_usable()
    return device


class _Unusable:
    """Stands in for the array module while MINIVAE_DEVICE cannot be honoured: every use of
    it (``B.xp.exp``, ``B.xp.ndarray``) raises ENVIRONMENT_ERROR's message."""

    def __getattr__(self, name):
        _check_usable()
        raise AttributeError(name)  # a stale reference after set_device

    def __repr__(self) -> str:
        return f"<no array module: {ENVIRONMENT_ERROR}>"


def _check_usable() -> None:
    if ENVIRONMENT_ERROR is not None:
        raise RuntimeError(ENVIRONMENT_ERROR)


def set_default_dtype(name) -> _Restore:
    """Select float32 (default) or float64; usable plainly or as a context manager."""
    global default_dtype
    try:  # numpy.dtype(None) is float64 and numpy.dtype("bogus") a TypeError: both are unknown here
        key = numpy.dtype(name).name if name is not None else None
    except TypeError:
        key = None
    if key not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}: choose one of {', '.join(DTYPES)}")
    previous = default_dtype
    default_dtype = numpy.dtype(key).type
    return _Restore(lambda: set_default_dtype(previous))


def get_default_dtype():
    return default_dtype


# ----------------------------------------------------------------------------- randomness

def manual_seed(seed: int) -> None:
    """Seed the random generators of every device (the gpu one is made when first used)."""
    global _seed
    _seed = int(seed)
    _rngs.clear()


def rng():
    """The random generator of the current device (numpy.random.Generator or cupy's)."""
    _check_usable()
    gen = _rngs.get(device)
    if gen is None:
        seed = _seed if _seed is not None else None
        if device == "gpu":
            gen = _cupy.random.default_rng(seed)
        else:
            gen = numpy.random.default_rng(seed)
        _rngs[device] = gen
    return gen


def get_rng_state() -> dict:
    """The cpu generator's state as a plain dict (JSON-serialisable), for checkpoints."""
    return rng_on_cpu().bit_generator.state


def set_rng_state(state: dict) -> None:
    rng_on_cpu().bit_generator.state = state


def rng_on_cpu():
    gen = _rngs.get("cpu")
    if gen is None:
        gen = numpy.random.default_rng(_seed)
        _rngs["cpu"] = gen
    return gen


# ----------------------------------------------------------------------------- arrays

def is_array(a) -> bool:
    """True for an array of the current device's module."""
    return isinstance(a, xp.ndarray)


def array_device(a) -> str:
    """'cpu' for a NumPy array, 'gpu' for a CuPy one, None for anything else."""
    if isinstance(a, numpy.ndarray):
        return "cpu"
    if _cupy is not None and isinstance(a, _cupy.ndarray):
        return "gpu"
    mod = type(a).__module__
    if mod.startswith("cupy"):
        return "gpu"
    return None


def asarray(a, dtype=None):
    """An array of the current device; Python floats and float lists take the default dtype.

    A Python number becomes a 0-d array filled on the device (``xp.full``): on the gpu that
    is a kernel with the number as its argument, where ``xp.asarray`` would copy it from the
    host, one transfer for every constant of every step.
    """
    if isinstance(a, (bool, int, float)):
        if dtype is None:
            dtype = default_dtype
        return xp.full((), a, dtype=dtype)
    if dtype is None and not hasattr(a, "dtype"):
        probe = numpy.asarray(a)
        dtype = default_dtype if probe.dtype.kind in "fiub" else None
        a = probe
    return xp.asarray(a, dtype=dtype)


def to_numpy(a):
    """A NumPy copy (or view) of an array from any device."""
    if isinstance(a, numpy.ndarray):
        return a
    if hasattr(a, "get"):
        return a.get()
    if hasattr(a, "data") and not isinstance(a, (list, tuple)):  # a Tensor
        return to_numpy(a.data)
    return numpy.asarray(a)


def from_numpy(a, dtype=None):
    """Move a NumPy array to the current device (a no-op on the cpu)."""
    return xp.asarray(a, dtype=dtype)


def scatter_add(target, index, values):
    """target[index] += values, adding repeated indices (numpy.add.at or cupyx's scatter_add)."""
    _check_usable()
    if device == "gpu":
        _cupyx.scatter_add(target, index, values)
    else:
        numpy.add.at(target, index, values)
    return target


def synchronize() -> None:
    """Wait for the gpu to finish queued work (for timing); nothing on the cpu."""
    _check_usable()
    if device == "gpu":
        _cupy.cuda.Stream.null.synchronize()


# numerical constants shared by the stable formulas
LOG_2PI = float(numpy.log(2.0 * numpy.pi))
inf = numpy.inf
pi = numpy.pi

# numpy names used by modules that must not import numpy themselves (host-side code)
np = numpy


def _device_from_environment() -> None:
    """Honour MINIVAE_DEVICE, or keep why not in ENVIRONMENT_ERROR (the module docstring)."""
    global xp, device, ENVIRONMENT_ERROR
    name = os.environ.get("MINIVAE_DEVICE", "cpu").strip().lower() or "cpu"
    if name == "cpu":
        return
    try:
        set_device(name)
        return
    except ValueError:
        problem = f"is not a device: choose one of {', '.join(DEVICES)}, or unset it"
    except RuntimeError as err:  # gpu without CuPy or CUDA; the message says which
        problem = f"cannot be used: {err}"
    xp, device = _Unusable(), name
    ENVIRONMENT_ERROR = f"MINIVAE_DEVICE={name!r} {problem}"


_device_from_environment()
