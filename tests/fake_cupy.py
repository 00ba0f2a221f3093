"""A strict stand-in for CuPy, so that the CuPy code path runs on machines without a GPU.

It is NOT a GPU and says nothing about speed or about CUDA numerics. The arithmetic is
NumPy's, on the host. What it checks is the discipline that CuPy enforces and NumPy does
not, so that the mistakes which only show on a learner's GPU show in CI instead:

- Device arrays are their own type, ``fake_cupy.ndarray``, a wrapper around a NumPy array.
  It refuses implicit conversion to NumPy as CuPy does: ``numpy.asarray(d)`` and
  ``d.__array__()`` raise TypeError, and so does every NumPy ufunc or function that is
  handed a device array (CuPy raises for the ones that mix device and host arrays; this
  stand-in raises for the others too, because minivae's device code calls ``B.xp``, never
  NumPy). Operators that mix a device array with a host ``numpy.ndarray`` raise TypeError.
  Python and NumPy scalars mix freely, as in CuPy.
- Reductions and indexing return 0-d device arrays, never NumPy scalars, as CuPy does.
  ``float(d)``, ``int(d)``, ``bool(d)`` and ``d.item()`` work on one-element arrays and
  read one value back to the host.
- Data crosses between host and device only through ``asarray`` / ``array`` (host to
  device), ``asnumpy`` / ``d.get()`` (device to host), and the scalar reads above. Every crossing is counted in ``transfers`` (see ``Transfers``), with the
  line of minivae (or of a test) that asked for it.
- It has its own random generator, ``random.default_rng(seed)``, with CuPy's
  ``Generator`` methods only (no ``normal``, no ``permutation``) and a bit stream of its
  own, so code that draws device noise from ``numpy.random`` or expects NumPy's draws is
  caught.
- It offers only the part of CuPy that minivae calls. Anything else raises AttributeError
  naming the missing name: add it here (with CuPy's signature) when minivae starts to
  use it.

Select it with ``python -m pytest --gpu-standin`` (tests/conftest.py), which hands this
module to ``minivae.backend.use_gpu_module``.
"""

from __future__ import annotations

import builtins
import os
import sys
import types
from collections import Counter
from typing import NamedTuple

import numpy

# ----------------------------------------------------------------------------- counting


class Event(NamedTuple):
    """One host <-> device crossing: its kind, what crossed, and the code that asked for it."""

    kind: str
    what: str
    file: str  # relative to the working directory, e.g. "minivae/train.py"
    line: int
    function: str

    def __str__(self):
        return f"{self.kind:9} {self.file}:{self.line} ({self.function}): {self.what}"


class Transfers:
    """Counts of host <-> device crossings, by kind, with where each came from.

    kinds:
      "to_device"  host data copied to the device (asarray/array of host data, a host
                   index array or a host value given to a device array's [] )
      "to_host"    device data copied to the host (asnumpy, .get())
      "scalar"     one value read on the host (float(), int(), bool(), .item(), format)
      "sync"       a result whose size depends on the data, which CuPy must read back
                   (nonzero, indexing with a boolean mask)
    """

    def __init__(self):
        self.counts: Counter = Counter()
        self.events: list = []

    def add(self, kind: str, what: str) -> None:
        self.counts[kind] += 1
        self.events.append(Event(kind, what, *_caller()))

    def reset(self) -> None:
        self.counts.clear()
        self.events.clear()

    @property
    def total(self) -> int:
        return builtins.sum(self.counts.values())  # this module defines its own sum

    def __repr__(self):
        return f"Transfers({dict(self.counts)})"


transfers = Transfers()

_HERE = os.path.abspath(__file__)
_BACKEND = os.path.join("minivae", "backend.py")


def _caller() -> tuple:
    """(file, line, function) of the first frame outside this module and minivae/backend.py."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if os.path.abspath(name) != _HERE and not name.endswith(_BACKEND):
            return os.path.relpath(name).replace(os.sep, "/"), frame.f_lineno, frame.f_code.co_name
        frame = frame.f_back
    return "?", 0, "?"


# ----------------------------------------------------------------------------- unwrapping


def _host_refused(where: str, a) -> TypeError:
    return TypeError(
        f"{where}: got a host numpy.ndarray (shape {a.shape}, dtype {a.dtype}) where CuPy "
        "needs a device array (CuPy: 'Unsupported type <class 'numpy.ndarray'>'). Move it "
        "with cupy.asarray (minivae.backend.from_numpy) first."
    )


def _unwrap(x, where: str):
    """The NumPy array behind a device array; scalars, dtypes and shapes pass; host arrays raise."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, numpy.ndarray):
        raise _host_refused(where, x)
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v, where) for v in x)
    return x


def _unwrap_operand(x, where: str):
    """One operand of an elementwise operation: a device array or a scalar, nothing else."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, numpy.ndarray):
        raise _host_refused(where, x)
    if isinstance(x, (bool, int, float, complex, numpy.generic)):
        return x
    raise TypeError(f"{where}: unsupported operand type {type(x).__name__} (CuPy takes device arrays and scalars)")


def _wrap(result):
    """Device arrays for NumPy results (0-d for NumPy scalars, as CuPy returns)."""
    if isinstance(result, numpy.ndarray):
        return ndarray._of(result)
    if isinstance(result, numpy.generic):
        return ndarray._of(numpy.asarray(result))
    if isinstance(result, tuple):
        return tuple(_wrap(r) for r in result)
    if isinstance(result, list):
        return [_wrap(r) for r in result]
    return result


def _call(fn, where: str, args, kwargs, operands_only: bool = False):
    """fn(*args, **kwargs) on the NumPy arrays behind device arrays; the result on the device."""
    unwrap = _unwrap_operand if operands_only else _unwrap
    plain = [unwrap(a, where) for a in args]
    out = kwargs.get("out")
    kw = {}
    for k, v in kwargs.items():
        if k in ("dtype", "casting", "order", "axis", "keepdims", "copy"):
            kw[k] = v
        else:
            kw[k] = _unwrap(v, f"{where}({k}=)")
    with numpy.errstate(all="ignore"):  # GPUs raise no floating-point warnings
        result = fn(*plain, **kw)
    if out is not None:
        return out  # the very device array the caller handed in
    return _wrap(result)


def _index(key, where: str):
    """A [] key with device arrays unwrapped; host index arrays are counted as transfers."""
    if isinstance(key, tuple):
        return tuple(_index(k, where) for k in key)
    if isinstance(key, ndarray):
        if key.dtype == bool:
            transfers.add("sync", f"{where} with a boolean mask {key.shape}")
        return key._a
    if isinstance(key, (numpy.ndarray, list)):
        transfers.add("to_device", f"{where} with a host index {type(key).__name__}")
        return key
    return key


# ----------------------------------------------------------------------------- ndarray

_REFUSE_ARRAY = (
    "Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct "
    "a NumPy array explicitly."  # CuPy's own message
)


class ndarray:
    """A device array: a NumPy array that only this module may touch.

    Its type says module "cupy", as CuPy's does, so code that recognises device arrays by
    their module (minivae.plots) recognises these.
    """

    __module__ = "cupy"
    __slots__ = ("_a",)
    __hash__ = None

    def __init__(self, shape, dtype=float):
        self._a = numpy.empty(shape, dtype=dtype)  # cupy.ndarray(shape, dtype): uninitialised

    @classmethod
    def _of(cls, a: numpy.ndarray) -> ndarray:
        obj = object.__new__(cls)
        obj._a = a if type(a) is numpy.ndarray else numpy.asarray(a)  # 0-d, never a NumPy scalar
        return obj

    # ---- refusing NumPy

    def __array__(self, *args, **kwargs):
        raise TypeError(_REFUSE_ARRAY)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        name = ufunc.__name__
        everything = list(inputs) + list(kwargs.get("out", ()))
        host = [x for x in everything if isinstance(x, numpy.ndarray)]
        if host:
            raise TypeError(
                f"numpy.{name} mixes a device array with a host numpy.ndarray (shape "
                f"{host[0].shape}): CuPy refuses this. Move one side with cupy.asarray / "
                "cupy.asnumpy (minivae.backend.from_numpy / to_numpy) first."
            )
        scalar_left = any(isinstance(x, numpy.generic) for x in inputs)
        if method == "__call__" and scalar_left and name in _OPERATOR_UFUNCS:
            # a NumPy scalar on the left of an operator (numpy.float32(2) * d) arrives here;
            # CuPy runs it on the device, and so does this stand-in
            return _call(getattr(numpy, name), f"cupy.{name}", inputs, kwargs, operands_only=True)
        raise TypeError(
            f"numpy.{name}{'' if method == '__call__' else '.' + method} was called on a "
            f"device array: device code calls the array module (minivae.backend.xp.{name}), "
            "never NumPy."
        )

    def __array_function__(self, func, types_, args, kwargs):
        raise TypeError(
            f"numpy.{func.__name__} was called on a device array: CuPy refuses it when host "
            "arrays are mixed in, and minivae's device code calls the array module "
            f"(minivae.backend.xp.{func.__name__}) instead of NumPy."
        )

    # ---- attributes

    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    T = property(lambda self: ndarray._of(self._a.T))

    def __getattr__(self, name):
        raise AttributeError(
            f"the CuPy stand-in's ndarray has no attribute {name!r}: it offers only the CuPy "
            "API that minivae calls. If CuPy has it, add it to tests/fake_cupy.py."
        )

    # ---- host crossings

    def get(self) -> numpy.ndarray:
        transfers.add("to_host", f"get() of {self.shape}")
        return self._a.copy()

    def _one_value(self, how: str):
        if self._a.size != 1:
            raise TypeError(f"{how} needs an array of one element, got shape {self.shape}")
        transfers.add("scalar", f"{how} of {self.shape}")
        return self._a.reshape(()).item()

    def item(self):
        return self._one_value("item()")

    def __float__(self):
        return float(self._one_value("float()"))

    def __int__(self):
        return int(self._one_value("int()"))

    def __bool__(self):
        if self._a.size != 1:
            raise ValueError(
                f"The truth value of an array with {self._a.size} elements is ambiguous. "
                "Use a.any() or a.all()"
            )
        return bool(self._one_value("bool()"))

    def __format__(self, spec):
        if self._a.ndim == 0:
            return format(self._one_value("format()"), spec)
        return format(str(self), spec)

    def __repr__(self):
        return repr(self._a)  # CuPy's repr reads the values too; not counted (debugging)

    def __str__(self):
        return str(self._a)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (ndarray._of(numpy.asarray(row)) for row in self._a)

    def __copy__(self):
        return ndarray._of(self._a.copy())

    def __deepcopy__(self, memo):
        return ndarray._of(self._a.copy())

    # ---- indexing

    def __getitem__(self, key):
        return _wrap(self._a[_index(key, "[]")])

    def __setitem__(self, key, value):
        if isinstance(value, numpy.ndarray):
            transfers.add("to_device", f"[]= with a host value {value.shape}")
        elif isinstance(value, ndarray):
            value = value._a
        self._a[_index(key, "[]=")] = value

    # ---- methods (CuPy's names and signatures; results stay on the device)

    # ---- operators (the binary ones are set below the class)

    def __neg__(self):
        return ndarray._of(-self._a)

    def __pos__(self):
        return ndarray._of(+self._a)

    def __abs__(self):
        return ndarray._of(numpy.absolute(self._a))

    def __invert__(self):
        return ndarray._of(~self._a)


# ---- ndarray's methods (CuPy's names and signatures; results stay on the device)


def _method(name):
    def method(self, *args, **kwargs):
        return _call(getattr(self._a, name), f"ndarray.{name}", args, kwargs)

    method.__name__ = name
    return method


for _name in ("reshape", "astype", "copy", "transpose", "squeeze", "swapaxes", "sum", "mean",
              "max", "min", "all"):
    setattr(ndarray, _name, _method(_name))


# ---- ndarray's operators: a device array or a scalar on the other side, never a host array

_OPERANDS = (ndarray, numpy.ndarray, bool, int, float, complex, numpy.generic)


def _binary(name):
    op = getattr(numpy.ndarray, name)

    def binary(self, other):
        if not isinstance(other, _OPERANDS):
            return NotImplemented
        plain = _unwrap_operand(other, f"the operator {name}")
        with numpy.errstate(all="ignore"):
            result = op(self._a, plain)
        return result if result is NotImplemented else _wrap(result)

    binary.__name__ = name
    return binary


def _inplace(name):
    op = getattr(numpy.ndarray, name)

    def inplace(self, other):
        if not isinstance(other, _OPERANDS):
            return NotImplemented
        plain = _unwrap_operand(other, f"the operator {name}")
        with numpy.errstate(all="ignore"):
            op(self._a, plain)
        return self

    inplace.__name__ = name
    return inplace


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor"):
    setattr(ndarray, f"__{_name}__", _binary(f"__{_name}__"))
    setattr(ndarray, f"__r{_name}__", _binary(f"__r{_name}__"))
    setattr(ndarray, f"__i{_name}__", _inplace(f"__i{_name}__"))
for _name in ("lt", "le", "gt", "ge", "eq", "ne"):
    setattr(ndarray, f"__{_name}__", _binary(f"__{_name}__"))


# the NumPy ufuncs behind Python's operators: the ones a NumPy scalar on the left may call
_OPERATOR_UFUNCS = {
    "add", "subtract", "multiply", "true_divide", "divide", "floor_divide", "remainder",
    "power", "matmul", "bitwise_and", "bitwise_or", "bitwise_xor", "less", "less_equal",
    "greater", "greater_equal", "equal", "not_equal",
}

# ----------------------------------------------------------------------------- transfers


def asarray(a, dtype=None, order=None):
    """A device array; host data (NumPy arrays, lists, scalars) is copied to the device."""
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == numpy.dtype(dtype) else a.astype(dtype)
    host = numpy.asarray(a, dtype=dtype, order=order)
    transfers.add("to_device", f"asarray of {type(a).__name__} {host.shape}")
    return ndarray._of(host.copy())


def array(a, dtype=None, copy=True, order="K", ndmin=0):
    if isinstance(a, ndarray):
        out = a._a.astype(dtype or a.dtype, order=order, copy=copy)
        return ndarray._of(out if ndmin <= out.ndim else out.reshape((1,) * (ndmin - out.ndim) + out.shape))
    host = numpy.array(a, dtype=dtype, order=order, ndmin=ndmin)
    transfers.add("to_device", f"array of {type(a).__name__} {host.shape}")
    return ndarray._of(host)


def asnumpy(a, stream=None, order="C", out=None):
    """A host copy (NumPy) of a device array; host input comes back as it is."""
    if isinstance(a, ndarray):
        return a.get()
    return numpy.asarray(a)


# ----------------------------------------------------------------------------- functions


def _function(name, operands_only=False):
    fn = getattr(numpy, name)

    def function(*args, **kwargs):
        return _call(fn, f"cupy.{name}", args, kwargs, operands_only)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"cupy.{name} (the stand-in runs numpy.{name} on the wrapped arrays)."
    return function


# elementwise functions (CuPy's ufuncs): device arrays and scalars only, no lists
for _name in ("exp", "log", "log1p", "sqrt", "tanh", "sin", "cos", "abs", "negative", "maximum",
              "subtract", "multiply", "divide", "logaddexp", "less", "greater_equal", "isfinite",
              "isnan", "isinf", "where"):
    globals()[_name] = _function(_name, operands_only=True)

# the others
for _name in ("zeros", "zeros_like", "ones_like", "empty", "empty_like", "full", "arange", "eye",
              "tri", "broadcast_to", "repeat", "tile", "take", "concatenate", "stack", "split",
              "expand_dims", "diagonal", "argmax", "copyto", "result_type", "matmul",
              "tril_indices"):
    globals()[_name] = _function(_name)
del _name

finfo = numpy.finfo  # CuPy re-exports these two of NumPy's: descriptions of a dtype, no arrays
dtype = numpy.dtype


def nonzero(a):
    transfers.add("sync", f"nonzero of {getattr(a, 'shape', '?')}")
    return _call(numpy.nonzero, "cupy.nonzero", (a,), {})


# dtypes are NumPy's own objects in CuPy too
for _name in ("float32", "float64", "int64"):
    globals()[_name] = getattr(numpy, _name)
del _name

def _linalg_solve(a, b):
    return _call(numpy.linalg.solve, "cupy.linalg.solve", (a, b), {})


linalg = types.SimpleNamespace(solve=_linalg_solve)


# ----------------------------------------------------------------------------- random


class Generator:
    """cupy.random.Generator: only CuPy's methods, results on the device.

    The bits come from Philox, not from NumPy's default PCG64, so device draws differ from
    NumPy's for the same seed, as CuPy's (XORWOW) do.
    """

    def __init__(self, seed=None):
        self._gen = numpy.random.Generator(numpy.random.Philox(seed))

    def random(self, size=None, dtype=numpy.float64, out=None):
        return self._fill(self._gen.random(size=size, dtype=_float_dtype(dtype, "random")), out)

    def standard_normal(self, size=None, dtype=numpy.float64, out=None):
        dtype = _float_dtype(dtype, "standard_normal")
        return self._fill(self._gen.standard_normal(size=size, dtype=dtype), out)

    def uniform(self, low=0.0, high=1.0, size=None, dtype=numpy.float64):
        low, high = (_unwrap_operand(v, "Generator.uniform") for v in (low, high))
        draws = self._gen.uniform(low, high, size=size)
        return ndarray._of(numpy.asarray(draws).astype(dtype, copy=False))

    def _fill(self, draws, out):
        if out is None:
            return ndarray._of(numpy.asarray(draws))
        out._a[...] = draws
        return out

    def __getattr__(self, name):
        raise AttributeError(
            f"cupy.random.Generator has no method {name!r} in the CuPy stand-in (CuPy's "
            "Generator lacks normal, permutation, shuffle and choice: draw standard_normal "
            "and scale it, or shuffle on the host)."
        )


def _float_dtype(dtype, where):
    dt = numpy.dtype(dtype)
    if dt.char not in "fd":
        raise TypeError(f"Unsupported dtype {dt.name} for {where}")
    return dt.type


random = types.SimpleNamespace(default_rng=lambda seed=None: Generator(seed), Generator=Generator)


# ----------------------------------------------------------------------------- cuda, cupyx


class _Stream:
    def synchronize(self):
        pass


cuda = types.SimpleNamespace(
    runtime=types.SimpleNamespace(
        getDeviceCount=lambda: 1,
        getDeviceProperties=lambda i: {"name": b"CuPy stand-in (NumPy on the host, not a GPU)"},
    ),
    Stream=types.SimpleNamespace(null=_Stream()),
)


def _scatter_add(a, slices, value):
    """cupyx.scatter_add: a[slices] += value, adding repeated indices."""
    numpy.add.at(_unwrap(a, "cupyx.scatter_add"), _index(slices, "cupyx.scatter_add"),
                 _unwrap_operand(value, "cupyx.scatter_add"))


cupyx = types.SimpleNamespace(scatter_add=_scatter_add)


def __getattr__(name):
    raise AttributeError(
        f"cupy.{name} is not in the CuPy stand-in: it offers only the CuPy API that minivae "
        "calls. If CuPy has it, add it to tests/fake_cupy.py."
    )
