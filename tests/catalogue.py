"""The op catalogue: one or more ``OpCase`` per name in ``minivae.ops.OPS``.

Each case says how to call the minivae op, what NumPy says it computes, which
inputs to draw (and from which domain), and how PyTorch computes the same thing.
The forward checks, the gradient checks, the GPU re-runs and the PyTorch oracle
all iterate over ``CASES``; ``test_every_op_has_a_case`` fails when an op in
``OPS`` has no entry here (or in ``catalogue_gaussian.GAUSSIAN_CASES``). The ops
with a fast version (``minivae.fast.OPS``) get every case twice: as the library
runs them (fast paths on by default) and, with an id ending in "-plain", with the
fast paths off, so the plain forward and backward are checked the same way.

Input domains keep the checks meaningful: log and sqrt get positive inputs, a
divisor stays away from zero, relu-like kinks are not crossed by the finite
difference step, and max gets distinct values (no ties) so its gradient is defined.
Cases tagged "large" have more than gradcheck's ``max_full`` elements and are
checked by random projections instead of the full Jacobian.
"""

from __future__ import annotations

import dataclasses
import importlib

import numpy as np
from catalogue_gaussian import GAUSSIAN_CASES
from opcase import OpCase

from minivae import fast, ops


class _LazyTorch:
    """``torch`` imported on first use, so the catalogue loads where PyTorch is absent."""

    def __getattr__(self, name):
        return getattr(importlib.import_module("torch"), name)


torch = _LazyTorch()

# ----------------------------------------------------------------------------- inputs


def sample(rng, shape, domain: str = "real"):
    """A float64 array of ``shape`` drawn from a named domain."""
    shape = tuple(shape)
    if domain == "real":
        a = rng.uniform(-2.0, 2.0, shape)
    elif domain == "positive":  # log, sqrt, fractional powers
        a = rng.uniform(0.3, 3.0, shape)
    elif domain == "nonzero":  # divisors, negative powers, relu kinks: |a| >= 0.5
        a = rng.choice([-1.0, 1.0], shape) * rng.uniform(0.5, 2.0, shape)
    elif domain == "wide":  # activations far into their flat tails
        a = rng.uniform(-30.0, 30.0, shape)
    elif domain == "unit":  # Bernoulli targets
        a = rng.uniform(0.0, 1.0, shape)
    elif domain == "distinct":  # max: values at least 0.15 apart, so no ties within eps
        n = int(np.prod(shape))
        a = (rng.permutation(n) * 0.25 - 0.125 * n + rng.uniform(-0.05, 0.05, n)).reshape(shape)
    else:
        raise ValueError(f"unknown input domain {domain!r}")
    return np.asarray(a, dtype=np.float64)


def inputs(*specs):
    """make_inputs from (shape, domain) pairs; ("labels", n, classes) gives int64 labels."""

    def make(rng):
        out = []
        for spec in specs:
            if spec[0] == "labels":
                _, n, classes = spec
                out.append(rng.integers(0, classes, n).astype(np.int64))
            else:
                shape, domain = spec
                out.append(sample(rng, shape, domain))
        return out

    return make


def real(*shape):
    return (shape, "real")


def positive(*shape):
    return (shape, "positive")


def nonzero(*shape):
    return (shape, "nonzero")


# ----------------------------------------------------------------------------- NumPy references


def np_logsumexp(x, axis=None, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    out = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
    if keepdims:
        return out
    return np.squeeze(out, axis=axis) if axis is not None else out.reshape(())


def np_log_softmax(x, axis=-1):
    return x - np_logsumexp(x, axis=axis, keepdims=True)


def np_softmax(x, axis=-1):
    return np.exp(np_log_softmax(x, axis=axis))


def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_softplus(x):
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0.0)


def np_gaussian_log_prob(x, m, v):
    return -0.5 * (np.log(2.0 * np.pi) + v + (x - m) ** 2 / np.exp(v))


def np_cross_entropy(logits, labels):
    return -np_log_softmax(logits, axis=1)[np.arange(len(labels)), labels]


def _dims(axis, ndim):
    """torch's dim argument for a NumPy axis (None means every axis)."""
    return tuple(range(ndim)) if axis is None else axis


# ----------------------------------------------------------------------------- cases

CASES: list = []


def case(op, fn, reference, make_inputs, torch_fn=None, domain="real", tags=(), id=""):
    CASES.append(OpCase(op, fn, reference, make_inputs, torch_fn, domain, tuple(tags), id))


# --- binary ops with broadcasting
_BINARY = {
    "add": (ops.add, np.add, lambda a, b: a + b),
    "sub": (ops.sub, np.subtract, lambda a, b: a - b),
    "mul": (ops.mul, np.multiply, lambda a, b: a * b),
    "div": (ops.div, np.divide, lambda a, b: a / b),
}
_BINARY_SHAPES = [
    ("same", (3, 4), (3, 4)),
    ("row", (3, 4), (4,)),  # b broadcast along a new leading axis
    ("outer", (3, 1), (1, 4)),  # both stretched
    ("scalar", (), (2, 3)),  # a 0-d input
    ("lead", (2, 3, 4), (3, 1)),  # a new axis and a stretched axis at once
]
for _name, (_fn, _ref, _tfn) in _BINARY.items():
    for _label, _sa, _sb in _BINARY_SHAPES:
        _db = "nonzero" if _name == "div" else "real"
        case(
            _name,
            _fn,
            _ref,
            inputs(real(*_sa), (_sb, _db)),
            _tfn,
            domain=_db,
            id=f"{_name}-{_label}",
        )

# --- unary elementwise
case("neg", ops.neg, np.negative, inputs(real(3, 4)), lambda x: -x)
for _p, _dom in [(2, "real"), (3, "real"), (0.5, "positive"), (1.5, "positive"), (-1, "nonzero"),
                 (-2.5, "positive"), (0, "nonzero")]:  # fmt: skip
    case(
        "pow",
        lambda x, p=_p: ops.pow(x, p),
        lambda x, p=_p: np.power(x, float(p)),
        inputs(((2, 3), _dom)),
        lambda x, p=_p: x**p,
        domain=_dom,
        id=f"pow-{_p}",
    )
case("exp", ops.exp, np.exp, inputs(real(3, 4)), lambda x: x.exp())
case("log", ops.log, np.log, inputs(positive(3, 4)), lambda x: x.log(), domain="positive")
case("sqrt", ops.sqrt, np.sqrt, inputs(positive(3, 4)), lambda x: x.sqrt(), domain="positive")
case("relu", ops.relu, lambda x: np.maximum(x, 0.0), inputs(nonzero(3, 4)),
     lambda x: torch.relu(x), domain="nonzero")  # fmt: skip
for _slope in (0.01, 0.2):
    case(
        "leaky_relu",
        lambda x, s=_slope: ops.leaky_relu(x, slope=s),
        lambda x, s=_slope: np.where(x > 0, x, s * x),
        inputs(nonzero(3, 4)),
        lambda x, s=_slope: torch.nn.functional.leaky_relu(x, s),
        domain="nonzero",
        id=f"leaky_relu-{_slope}",
    )
case("leaky_relu", ops.leaky_relu, lambda x: np.where(x > 0, x, 0.01 * x), inputs(nonzero(5,)),
     lambda x: torch.nn.functional.leaky_relu(x, 0.01), domain="nonzero",
     id="leaky_relu-default")  # fmt: skip
case("tanh", ops.tanh, np.tanh, inputs(real(3, 4)), lambda x: torch.tanh(x))
case("sigmoid", ops.sigmoid, np_sigmoid, inputs(real(3, 4)), lambda x: torch.sigmoid(x))
case("softplus", ops.softplus, np_softplus, inputs(real(3, 4)),
     lambda x: torch.nn.functional.softplus(x))  # fmt: skip

for _name, _fn, _ref, _tfn in [
    ("sigmoid", ops.sigmoid, np_sigmoid, lambda x: torch.sigmoid(x)),
    ("tanh", ops.tanh, np.tanh, lambda x: torch.tanh(x)),
    # torch's softplus turns linear above its threshold (20 by default); we never do
    (
        "softplus",
        ops.softplus,
        np_softplus,
        lambda x: torch.nn.functional.softplus(x, threshold=40),
    ),
]:
    case(_name, _fn, _ref, inputs(((4, 5), "wide")), _tfn, domain="wide", id=f"{_name}-wide")

# --- reductions: axis None / int / negative int / tuple, with and without keepdims
_REDUCTIONS = {
    "sum": (ops.sum, np.sum, lambda x, a, k: torch.sum(x, dim=_dims(a, x.ndim), keepdim=k), "real"),
    "mean": (ops.mean, np.mean, lambda x, a, k: torch.mean(x, dim=_dims(a, x.ndim), keepdim=k), "real"),
    "max": (ops.max, np.max, lambda x, a, k: torch.amax(x, dim=_dims(a, x.ndim), keepdim=k), "distinct"),
    "logsumexp": (ops.logsumexp, np_logsumexp,
                  lambda x, a, k: torch.logsumexp(x, dim=_dims(a, x.ndim), keepdim=k), "real"),
}  # fmt: skip
_AXES = [
    (None, False),
    (None, True),
    (0, False),
    (-1, True),
    ((0, 2), False),
    ((0, 2), True),
    (1, False),
]
for _name, (_fn, _ref, _tfn, _dom) in _REDUCTIONS.items():
    for _axis, _keep in _AXES:
        case(
            _name,
            lambda x, f=_fn, a=_axis, k=_keep: f(x, axis=a, keepdims=k),
            lambda x, f=_ref, a=_axis, k=_keep: f(x, axis=a, keepdims=k),
            inputs(((2, 3, 4), _dom)),
            lambda x, f=_tfn, a=_axis, k=_keep: f(x, a, k),
            domain=_dom,
            id=f"{_name}-axis{_axis}-keep{int(_keep)}".replace(" ", ""),
        )
case("max", lambda x: ops.max(x, axis=1), lambda x: np.max(x, axis=1), inputs(((4, 3), "distinct")),
     lambda x: torch.amax(x, dim=1), domain="distinct", id="max-2d-axis1")  # fmt: skip

for _name, _fn, _ref in [("log_softmax", ops.log_softmax, np_log_softmax),
                         ("softmax", ops.softmax, np_softmax)]:  # fmt: skip
    for _axis in (-1, 0, 1):
        case(
            _name,
            lambda x, f=_fn, a=_axis: f(x, axis=a),
            lambda x, f=_ref, a=_axis: f(x, axis=a),
            inputs(real(3, 4, 2)),
            lambda x, n=_name, a=_axis: getattr(torch, n)(x, dim=a),
            id=f"{_name}-axis{_axis}",
        )

# --- shape ops
for _shape_in, _shape_out in [((3, 4), (2, 6)), ((3, 4), (12,)), ((2, 3, 4), (6, 4)), ((2, 3), (3, -1)),
                              ((6,), (1, 6, 1))]:  # fmt: skip
    case(
        "reshape",
        lambda x, s=_shape_out: ops.reshape(x, s),
        lambda x, s=_shape_out: np.reshape(x, s),
        inputs(real(*_shape_in)),
        lambda x, s=_shape_out: x.reshape(s),
        id=f"reshape-{_shape_in}-to-{_shape_out}".replace(" ", ""),
    )
case("reshape", lambda x: x.reshape(4, 3), lambda x: x.reshape(4, 3), inputs(real(3, 4)),
     lambda x: x.reshape(4, 3), id="reshape-method")  # fmt: skip
for _shape, _axes in [((3, 4), None), ((2, 3, 4), None), ((2, 3, 4), (1, 0, 2)), ((2, 3, 4), (2, 0, 1)),
                      ((2, 3, 4), (-1, 0, 1))]:  # fmt: skip
    case(
        "transpose",
        lambda x, a=_axes: ops.transpose(x, a),
        lambda x, a=_axes: np.transpose(x, a),
        inputs(real(*_shape)),
        lambda x, a=_axes: x.permute(tuple(reversed(range(x.ndim))) if a is None else a),
        id=f"transpose-{_shape}-{_axes}".replace(" ", ""),
    )
case("transpose", lambda x: x.T, lambda x: x.T, inputs(real(2, 5)), lambda x: x.T, id="transpose-T")


def _torch_index(index):
    """The same index for torch: lists of integers or booleans become tensors."""
    if isinstance(index, tuple):
        return tuple(_torch_index(i) for i in index)
    return torch.tensor(index) if isinstance(index, list) else index


_MASK = np.array([True, False, True, True])
_GETITEM = [
    # (id, index for NumPy and minivae, the same for torch, input shape)
    ("int", 1, 1, (3, 4)),
    ("slice", (slice(1, 3), slice(None, None, 2)), (slice(1, 3), slice(None, None, 2)), (4, 5)),
    ("ellipsis-newaxis", (Ellipsis, None, 1), (Ellipsis, None, 1), (2, 3, 4)),
    ("intarray-repeats", [0, 2, 0, 1, 2], [0, 2, 0, 1, 2], (3, 4)),
    ("intarray-and-slice", ([0, 0, 2], slice(1, None)), ([0, 0, 2], slice(1, None)), (3, 4)),
    ("two-intarrays", ([0, 1, 1, 0], [2, 2, 0, 2]), ([0, 1, 1, 0], [2, 2, 0, 2]), (3, 4)),
    ("boolean-mask", (slice(None), _MASK), (slice(None), _MASK.tolist()), (3, 4)),
]
for _label, _index, _tindex, _shape in _GETITEM:
    case(
        "getitem",
        lambda x, i=_index: ops.getitem(x, i),
        lambda x, i=_index: x[i],
        inputs(real(*_shape)),
        lambda x, i=_tindex: x[_torch_index(i)],
        id=f"getitem-{_label}",
    )
# negative steps: torch has no negative-step slices, so its side flips
case("getitem", lambda x: x[::-1, ::-2], lambda x: x[::-1, ::-2], inputs(real(3, 5)),
     lambda x: torch.flip(x, (0, 1))[:, ::2], id="getitem-negative-steps")  # fmt: skip
case("getitem", lambda x: x[3:0:-2, 1], lambda x: x[3:0:-2, 1], inputs(real(4, 3)),
     lambda x: torch.flip(x, (0,))[0:3:2, 1], id="getitem-negative-step-range")  # fmt: skip

for _shapes, _axis in [
    (((2, 3), (4, 3)), 0),
    (((2, 3), (2, 1), (2, 2)), 1),
    (((2, 3, 1), (2, 3, 2)), -1),
]:
    case(
        "concatenate",
        lambda *xs, a=_axis: ops.concatenate(list(xs), axis=a),
        lambda *xs, a=_axis: np.concatenate(xs, axis=a),
        inputs(*[real(*s) for s in _shapes]),
        lambda *xs, a=_axis: torch.cat(xs, dim=a),
        id=f"concatenate-{len(_shapes)}-axis{_axis}",
    )
for _axis in (0, 1, -1):
    case(
        "stack",
        lambda *xs, a=_axis: ops.stack(list(xs), axis=a),
        lambda *xs, a=_axis: np.stack(xs, axis=a),
        inputs(real(2, 3), real(2, 3), real(2, 3)),
        lambda *xs, a=_axis: torch.stack(xs, dim=a),
        id=f"stack-axis{_axis}",
    )

# --- matrix products
for _label, _sa, _sb in [("2d", (3, 4), (4, 5)), ("batched", (2, 3, 4), (2, 4, 2)),
                         ("broadcast-batch", (2, 3, 4), (4, 5)), ("broadcast-batch-1", (1, 3, 2), (3, 2, 4)),
                         ("broadcast-left", (3, 4), (2, 4, 2))]:  # fmt: skip
    case("matmul", ops.matmul, np.matmul, inputs(real(*_sa), real(*_sb)), lambda a, b: a @ b,
         id=f"matmul-{_label}")  # fmt: skip
case("matmul", lambda a, b: a @ b, lambda a, b: a @ b, inputs(real(2, 3), real(3, 2)),
     lambda a, b: a @ b, id="matmul-operator")  # fmt: skip
case("linear", ops.linear, lambda x, w, b: x @ w + b, inputs(real(5, 4), real(4, 3), real(3)),
     lambda x, w, b: x @ w + b)  # fmt: skip
case("linear", ops.linear, lambda x, w, b: x @ w + b, inputs(real(64, 32), real(32, 16), real(16)),
     lambda x, w, b: x @ w + b, tags=("large",), id="linear-large")  # fmt: skip
case("log_softmax", lambda x: ops.log_softmax(x, axis=1), lambda x: np_log_softmax(x, axis=1),
     inputs(real(30, 20)), lambda x: torch.log_softmax(x, dim=1), tags=("large",),
     id="log_softmax-large")  # fmt: skip

# --- fused losses
case("bernoulli_log_prob", ops.bernoulli_log_prob, lambda l, x: x * l - np_softplus(l),
     inputs(real(3, 4), ((3, 4), "unit")),
     lambda l, x: x * l - torch.nn.functional.softplus(l), id="bernoulli_log_prob")  # fmt: skip
case("bernoulli_log_prob", ops.bernoulli_log_prob, lambda l, x: x * l - np_softplus(l),
     inputs(real(3, 4), ((4,), "unit")),
     lambda l, x: x * l - torch.nn.functional.softplus(l), id="bernoulli_log_prob-broadcast")  # fmt: skip
case("bernoulli_log_likelihood", ops.bernoulli_log_likelihood,
     lambda l, x: (x * l - np_softplus(l)).sum(-1), inputs(real(3, 4), ((3, 4), "unit")),
     lambda l, x: (x * l - torch.nn.functional.softplus(l)).sum(-1),
     id="bernoulli_log_likelihood")  # fmt: skip
case("bernoulli_log_likelihood", ops.bernoulli_log_likelihood,
     lambda l, x: (x * l - np_softplus(l)).sum(-1), inputs(real(2, 3, 4), ((3, 4), "unit")),
     lambda l, x: (x * l - torch.nn.functional.softplus(l)).sum(-1),
     id="bernoulli_log_likelihood-samples")  # fmt: skip
case("gaussian_log_prob", ops.gaussian_log_prob, np_gaussian_log_prob,
     inputs(real(3, 4), real(3, 4), real(3, 4)),
     lambda x, m, v: torch.distributions.Normal(m, torch.exp(0.5 * v)).log_prob(x))  # fmt: skip
case("gaussian_log_prob", ops.gaussian_log_prob, np_gaussian_log_prob,
     inputs(real(3, 4), real(4), real(1, 4)),
     lambda x, m, v: torch.distributions.Normal(m, torch.exp(0.5 * v)).log_prob(x),
     id="gaussian_log_prob-broadcast")  # fmt: skip
case("cross_entropy", ops.cross_entropy, np_cross_entropy, inputs(real(6, 4), ("labels", 6, 4)),
     lambda l, y: torch.nn.functional.cross_entropy(l, y, reduction="none"))  # fmt: skip



# --- the plain versions of the ops that have a fast one (minivae.fast): every case again,
# with the fast paths off, so the plain forward and backward a learner reads get the same
# forward, gradient, float32, gpu and PyTorch checks as the fast ones the library runs
def plain(fn):
    """fn called with minivae.fast off: the op builds its plain Function."""

    def call(*args):
        with fast.set_enabled(False):
            return fn(*args)

    return call


CASES += [
    dataclasses.replace(c, fn=plain(c.fn), id=f"{c.id}-plain") for c in CASES if c.op in fast.OPS
]

OWN_CASES = list(CASES)
CASES = OWN_CASES + list(GAUSSIAN_CASES)
