"""Reductions (sum, mean, max) and the stable soft-max family (logsumexp, softmax, log_softmax)."""

from __future__ import annotations

import numbers

from minivae import backend as B
from minivae.tensor import Function


def normalize_axis(op: str, axis, ndim: int):
    """axis as a sorted tuple of non-negative ints (None means all), or a ValueError naming the op."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, numbers.Integral) and not isinstance(axis, bool):
        axes = (int(axis),)
    elif isinstance(axis, (tuple, list)) and all(
            isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in axis):  # fmt: skip
        axes = tuple(int(a) for a in axis)
    else:
        raise TypeError(f"{op}: axis must be a whole number or a tuple of them (or None), "
                        f"got {axis!r}")  # fmt: skip
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"{op}: axis {a} is out of range for an input with {ndim} dimensions")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: axis {axis} names an axis twice")
    return tuple(sorted(out))


def expand_reduced(grad, axes: tuple, keepdims: bool):
    """Put back the reduced axes (length 1) so ``grad`` broadcasts against the input."""
    if keepdims or not axes:
        return grad
    return B.xp.expand_dims(grad, axes)


class Sum(Function):
    """y = sum of x over axes"""

    def forward(self, x, axis=None, keepdims=False):
        self.axes = normalize_axis("sum", axis, x.ndim)
        self.keepdims, self.shape = keepdims, x.shape
        return x.sum(axis=self.axes, keepdims=keepdims)

    def backward(self, grad_out):
        # dy/dx = 1 for every summed element: copy grad_out back along the reduced axes
        g = expand_reduced(grad_out, self.axes, self.keepdims)
        return (B.xp.broadcast_to(g, self.shape),)


class Mean(Function):
    """y = mean of x over axes"""

    def forward(self, x, axis=None, keepdims=False):
        self.axes = normalize_axis("mean", axis, x.ndim)
        self.keepdims, self.shape = keepdims, x.shape
        self.count = 1
        for a in self.axes:
            self.count *= x.shape[a]
        # sum / n is what x.mean computes, bit for bit, without numpy's Python-level wrapper
        return x.sum(axis=self.axes, keepdims=keepdims) / self.count

    def backward(self, grad_out):
        # dy/dx = 1 / n for every averaged element
        g = expand_reduced(grad_out, self.axes, self.keepdims) / self.count
        return (B.xp.broadcast_to(g, self.shape),)


class Max(Function):
    """y = max of x over axes (ties share the gradient equally)"""

    def forward(self, x, axis=None, keepdims=False):
        self.axes = normalize_axis("max", axis, x.ndim)
        self.keepdims = keepdims
        y = x.max(axis=self.axes, keepdims=True)
        self.winners = x == y
        return y if keepdims else y.squeeze(axis=self.axes)

    def backward(self, grad_out):
        # dy/dx = 1 / (number of maxima) at a maximum, else 0
        g = expand_reduced(grad_out, self.axes, self.keepdims)
        count = self.winners.sum(axis=self.axes, keepdims=True, dtype=grad_out.dtype)  # not int64
        return (g * self.winners / count,)


def _logsumexp(x, axis: tuple):
    """log sum exp x over axis with keepdims, shifted by the max so nothing overflows (raw arrays)."""
    xp = B.xp
    m = x.max(axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0.0).astype(x.dtype)  # all -inf rows stay -inf, not NaN
    return m + xp.log(xp.exp(x - m).sum(axis=axis, keepdims=True))


def _log_softmax(x, axis: tuple):
    """x - logsumexp(x) as (x - m) - log sum e^(x - m) (raw arrays): subtracting the max first
    keeps float32 exact where x is large (-1e4 - (-1e4 + log 3) would round at 1e-3)."""
    xp = B.xp
    m = x.max(axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0.0).astype(x.dtype)
    shifted = x - m
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


class LogSumExp(Function):
    """y = log sum_i e^(x_i) over axes"""

    def forward(self, x, axis=None, keepdims=False):
        self.axes = normalize_axis("logsumexp", axis, x.ndim)
        self.keepdims = keepdims
        y = _logsumexp(x, self.axes)
        self.x, self.y = x, y
        return y if keepdims else y.squeeze(axis=self.axes)

    def backward(self, grad_out):
        # dy/dx_i = softmax(x)_i
        g = expand_reduced(grad_out, self.axes, self.keepdims)
        return (g * B.xp.exp(self.x - self.y),)


class LogSoftmax(Function):
    """y_i = x_i - log sum_j e^(x_j) along one axis"""

    def forward(self, x, axis=-1):
        self.axis = normalize_axis("log_softmax", axis, x.ndim)
        self.y = _log_softmax(x, self.axis)
        return self.y

    def backward(self, grad_out):
        # dy_i/dx_j = [i = j] - softmax(x)_j
        p = B.xp.exp(self.y)
        return (grad_out - p * grad_out.sum(axis=self.axis, keepdims=True),)


class Softmax(Function):
    """y_i = e^(x_i) / sum_j e^(x_j) along one axis"""

    def forward(self, x, axis=-1):
        self.axis = normalize_axis("softmax", axis, x.ndim)
        self.y = B.xp.exp(_log_softmax(x, self.axis))
        return self.y

    def backward(self, grad_out):
        # dy_i/dx_j = y_i ([i = j] - y_j)
        y = self.y
        return (y * (grad_out - (grad_out * y).sum(axis=self.axis, keepdims=True)),)


def sum(x, axis=None, keepdims: bool = False):
    return Sum.apply(x, axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims: bool = False):
    return Mean.apply(x, axis=axis, keepdims=keepdims)


def max(x, axis=None, keepdims: bool = False):
    return Max.apply(x, axis=axis, keepdims=keepdims)


def logsumexp(x, axis=None, keepdims: bool = False):
    return LogSumExp.apply(x, axis=axis, keepdims=keepdims)


def log_softmax(x, axis: int = -1):
    return LogSoftmax.apply(x, axis=axis)


def softmax(x, axis: int = -1):
    return Softmax.apply(x, axis=axis)
