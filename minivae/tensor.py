"""Tensors, the Function pattern, and the backward graph walk.

A ``Tensor`` wraps a backend array. An op is a ``Function`` subclass whose
``forward`` works on raw arrays and whose ``backward`` returns one gradient per
input, in order (``None`` where an input needs none). ``Function.apply`` runs
the forward and, when gradients are wanted, records the op on its output.

``Tensor.backward`` sorts the graph topologically without recursion (so a
10,000-op chain works), walks it in reverse, adds gradients where a tensor fans
out, checks that every gradient has its input's shape (naming the op if not),
and keeps gradients only on leaves that asked for them.
"""

from __future__ import annotations

from minivae import backend as B

# ----------------------------------------------------------------------------- global switches

_grad_enabled = True
_anomaly = False


class _CalledFirst(type):
    """``with no_grad:`` without parentheses reaches the class itself: say to call it."""

    def __enter__(cls):
        raise TypeError(f"write `with {cls.__name__}():`, with parentheses: {cls.__name__} is "
                        "a class, and the with-statement needs an instance of it")  # fmt: skip

    def __exit__(cls, *exc):  # pragma: no cover - __enter__ always raises
        return False


class no_grad(metaclass=_CalledFirst):
    """Context manager (and decorator) that records no graph: for evaluation and updates.

    ``with no_grad():``, ``@no_grad()`` and ``@no_grad`` all work.
    """

    def __new__(cls, fn=None):
        self = super().__new__(cls)
        if fn is not None and not callable(fn):
            raise TypeError(f"no_grad() takes no arguments (or, as @no_grad, a function), "
                            f"got {fn!r}")  # fmt: skip
        return self if fn is None else self(fn)  # @no_grad without parentheses: fn is given

    def __enter__(self):
        global _grad_enabled
        self._prev = _grad_enabled
        _grad_enabled = False
        return self

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._prev
        return False

    def __call__(self, fn):
        def wrapped(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)

        wrapped.__name__ = fn.__name__
        wrapped.__doc__ = fn.__doc__
        return wrapped


def is_grad_enabled() -> bool:
    return _grad_enabled


class detect_anomaly(metaclass=_CalledFirst):
    """Opt-in check after every forward and backward: the first op to make NaN or Inf raises.

    ``with detect_anomaly(): loss.backward()`` (or ``set_detect_anomaly(True)``).
    It costs a scan of every array, so it is off by default. A forward run in anomaly mode
    also keeps a copy of each op's arrays, and its backward raises if one was changed in
    place in between (``with detect_anomaly(): loss = ...; loss.backward()``); that doubles
    the graph's memory.
    """

    def __init__(self, enabled: bool = True):
        self.enabled = enabled

    def __enter__(self):
        global _anomaly
        self._prev = _anomaly
        _anomaly = self.enabled
        return self

    def __exit__(self, *exc):
        global _anomaly
        _anomaly = self._prev
        return False


def set_detect_anomaly(enabled: bool) -> None:
    global _anomaly
    _anomaly = bool(enabled)


class AnomalyError(FloatingPointError):
    """Raised in anomaly mode by the first op whose forward or backward is not finite, and
    by a backward whose forward's arrays were changed in place after the forward."""


def _check_finite(array, what: str) -> None:
    if array is not None and not bool(B.xp.isfinite(array).all()):
        n_nan = int(B.xp.isnan(array).sum())
        n_inf = int(B.xp.isinf(array).sum())
        raise AnomalyError(f"{what} produced {n_nan} NaN and {n_inf} Inf values (shape {array.shape})")


def _changed(now, then) -> bool:
    """True if the array now differs from its copy then anywhere (a NaN equals a NaN)."""
    differ = now != then
    if now.dtype.kind in "fc":
        differ &= ~(B.xp.isnan(now) & B.xp.isnan(then))
    return bool(differ.any())


def _check_unchanged(fn) -> None:
    """In anomaly mode each op keeps copies of its inputs and output at the forward: a
    backward computed from arrays changed since (a ``.data`` edit, an optimizer step between
    forward and backward) would give the gradient of a computation that never ran."""
    for k, (array, copy) in enumerate(fn._anomaly_copies):
        if _changed(array, copy):
            which = "its output" if k == len(fn._anomaly_copies) - 1 else f"input {k}"
            raise AnomalyError(
                f"{type(fn).__name__}: {which} (shape {array.shape}) was changed in place "
                "between the forward and the backward (a .data edit, or an optimizer step "
                "before backward()), so its gradients would be wrong. Change arrays after "
                "backward(), then compute the loss again."
            )


# ----------------------------------------------------------------------------- Tensor


def _check_device(data, where: str):
    dev = B.array_device(data)
    if dev is not None and dev != B.device:
        raise TypeError(
            f"{where}: got a {'CuPy' if dev == 'gpu' else 'NumPy'} array, but the current device "
            f"is {B.device!r} ({'CuPy' if B.device == 'gpu' else 'NumPy'}). Move it with "
            "minivae.backend.from_numpy / to_numpy, or select the matching device."
        )


class Tensor:
    """An array with an optional gradient and the op that made it."""

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "name", "_backward_done", "__weakref__")  # noqa: RUF023
    __array_priority__ = 1000  # so that ndarray + Tensor calls Tensor.__radd__

    def __init__(self, data, requires_grad: bool = False, name: str | None = None):
        if isinstance(data, Tensor):
            data = data.data
        elif B.array_device(data) is None:
            given, data = data, B.asarray(data)
            if data.dtype.kind not in "biuf":
                raise TypeError(f"a Tensor holds numbers, got {given!r} (dtype {data.dtype})")
        else:
            _check_device(data, "Tensor")
        self.data = data
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._ctx: Function | None = None
        self.name = name
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(f"only floating tensors can require gradients, got dtype {data.dtype}")

    # --- array-like properties -------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        op = f", op={type(self._ctx).__name__}" if self._ctx is not None else ""
        return f"Tensor({B.to_numpy(self.data)!r}{grad}{op})"

    def numpy(self):
        """The data as a NumPy array: on the cpu the tensor's own array (writing into it
        changes the tensor; ``.numpy().copy()`` for a copy), from the gpu a copy."""
        return B.to_numpy(self.data)

    def item(self) -> float:
        return self.data.item()

    def detach(self) -> Tensor:
        """The same data, cut from the graph."""
        return Tensor(self.data)

    def zero_grad(self) -> None:
        self.grad = None

    # --- backward ---------------------------------------------------------------
    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Backpropagate from this tensor; a non-scalar needs ``grad`` (d loss / d self).

        Gradients add up in the leaves' ``.grad``. A second backward() from the same tensor
        is refused (it would add the same gradients again) unless the first one was given
        retain_graph=True, which asks for exactly that.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward() on a tensor that does not require gradients: no input of the "
                "computation had requires_grad=True (or it ran under no_grad)."
            )
        if getattr(self, "_backward_done", False):
            raise RuntimeError(
                "backward() has already run from this tensor: its gradients are in .grad, and "
                "a second pass would add them again. For new gradients, zero them and compute "
                "the loss anew; to add them twice on purpose, give the first backward() "
                "retain_graph=True."
            )
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() on a non-scalar tensor of shape {self.shape} needs a gradient "
                    "argument of that shape; reduce it first (for example loss.sum() or .mean())."
                )
            grad = B.xp.ones_like(self.data)
        else:
            grad = grad.data if isinstance(grad, Tensor) else B.asarray(grad, dtype=self.dtype)
            if grad.shape != self.shape:
                raise ValueError(
                    f"backward(): gradient of shape {grad.shape} for a tensor of shape {self.shape}"
                )
        grads = {id(self): grad}
        array_type = B.xp.ndarray
        for node in _topological_order(self):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            ctx = node._ctx
            if ctx is None:  # a leaf: keep its gradient
                node.grad = g if node.grad is None else node.grad + g
                continue
            if "_anomaly_copies" in ctx.__dict__:  # the forward ran in anomaly mode
                _check_unchanged(ctx)
            in_grads = ctx.backward(g)
            if isinstance(in_grads, list):
                in_grads = tuple(in_grads)
            elif not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            if len(in_grads) != len(ctx.parents):
                raise RuntimeError(
                    f"{type(ctx).__name__}.backward returned {len(in_grads)} gradient(s) for the "
                    f"{len(ctx.parents)} input(s) of its forward: return a tuple with one entry "
                    "per input, in order (None for an input that needs no gradient)"
                )
            if _anomaly:
                for k, ig in enumerate(in_grads):
                    _check_finite(ig, f"backward of {type(ctx).__name__} (input {k})")
            for k, (parent, pg) in enumerate(zip(ctx.parents, in_grads)):
                if pg is None or not parent.requires_grad:
                    continue
                if not isinstance(pg, array_type):  # a full sum gives numpy.float64: keep arrays
                    pg = B.xp.asarray(pg)
                if pg.shape != parent.data.shape:
                    raise RuntimeError(
                        f"{type(ctx).__name__}.backward returned a gradient of shape {pg.shape} "
                        f"for input {k} of shape {parent.data.shape}"
                    )
                key = id(parent)
                prev = grads.get(key)
                grads[key] = pg if prev is None else prev + pg
        self._backward_done = not retain_graph

    # --- operators (defined in minivae.ops, bound below) --------------------------
    def __add__(self, other):
        return _ops().add(self, other)

    def __radd__(self, other):
        return _ops().add(other, self)

    def __sub__(self, other):
        return _ops().sub(self, other)

    def __rsub__(self, other):
        return _ops().sub(other, self)

    def __mul__(self, other):
        return _ops().mul(self, other)

    def __rmul__(self, other):
        return _ops().mul(other, self)

    def __truediv__(self, other):
        return _ops().div(self, other)

    def __rtruediv__(self, other):
        return _ops().div(other, self)

    def __neg__(self):
        return _ops().neg(self)

    def __pow__(self, exponent):
        return _ops().pow(self, exponent)

    def __matmul__(self, other):
        return _ops().matmul(self, other)

    def __rmatmul__(self, other):
        return _ops().matmul(other, self)

    def __getitem__(self, index):
        return _ops().getitem(self, index)

    @property
    def T(self):
        return _ops().transpose(self)

    def sum(self, axis=None, keepdims=False):
        return _ops().sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return _ops().mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        return _ops().max(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _ops().reshape(self, shape)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return _ops().transpose(self, axes or None)

    def exp(self):
        return _ops().exp(self)

    def log(self):
        return _ops().log(self)

    def sqrt(self):
        return _ops().sqrt(self)

    def relu(self):
        return _ops().relu(self)

    def tanh(self):
        return _ops().tanh(self)

    def sigmoid(self):
        return _ops().sigmoid(self)


def _ops():
    from minivae import ops

    return ops


def _topological_order(root: Tensor) -> list:
    """Nodes from the root back to the leaves, each after every node that uses it (iterative DFS)."""
    order = []
    visited = set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        ctx = node._ctx
        if ctx is not None:
            for parent in ctx.parents:
                if parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
    order.reverse()  # post-order reversed: root first
    return order


def as_tensor(x) -> Tensor:
    """A Tensor as it is, or a constant Tensor around an array or a number."""
    return x if isinstance(x, Tensor) else Tensor(x)


# ----------------------------------------------------------------------------- Function


class Function:
    """One op: ``forward(*arrays, **options)`` and ``backward(grad_out)`` side by side.

    In ``forward``, save on ``self`` what ``backward`` needs. ``backward`` returns a
    tuple with one gradient per input (``None`` where ``self.needs_input_grad[k]``
    is False, to skip the work).
    """

    __slots__ = ("parents", "needs_input_grad", "__dict__")  # noqa: RUF023

    def forward(self, *arrays, **options):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad_out):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **options) -> Tensor:
        device, array_device = B.device, B.array_device
        tensors, constants = [], False
        for x in inputs:
            if isinstance(x, Tensor):
                if array_device(x.data) != device:
                    _check_device(x.data, cls.__name__)
                tensors.append(x)
            elif array_device(x) is not None:  # a raw array: a constant
                _check_device(x, cls.__name__)
                tensors.append(Tensor(x))
            else:  # a Python number or list: filled in below
                tensors.append(None)
                constants = True
        if constants:  # they take the dtype of the first tensor input
            ref = next((t for t in tensors if t is not None), None)
            dtype = ref.data.dtype if ref is not None else None
            tensors = [Tensor(B.asarray(x, dtype=dtype)) if t is None else t
                       for x, t in zip(inputs, tensors)]  # fmt: skip
        fn = cls()
        needs = tuple([t.requires_grad for t in tensors])
        fn.needs_input_grad = needs
        out_data = fn.forward(*[t.data for t in tensors], **options)
        if not isinstance(out_data, B.xp.ndarray):  # NumPy's full reductions give numpy.float64
            out_data = B.xp.asarray(out_data)
        if _anomaly:
            _check_finite(out_data, f"forward of {cls.__name__}")
        out = Tensor.__new__(Tensor)
        out.data = out_data
        out.grad = None
        out.name = None
        if _grad_enabled and True in needs:
            out.requires_grad = True
            fn.parents = tensors
            out._ctx = fn
            if _anomaly:  # checked by the backward (_check_unchanged)
                fn._anomaly_copies = [(a, a.copy()) for a in [t.data for t in tensors] + [out_data]]
        else:
            out.requires_grad = False
            out._ctx = None
        return out
