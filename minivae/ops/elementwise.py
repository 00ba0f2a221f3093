"""Unary elementwise ops and activations, each forward beside its backward."""

from __future__ import annotations

from minivae import backend as B
from minivae.tensor import Function


class Neg(Function):
    """y = -x"""

    def forward(self, x):
        return -x

    def backward(self, grad_out):
        # dy/dx = -1
        return (-grad_out,)


class Pow(Function):
    """y = x^p for a constant number p"""

    def forward(self, x, p):
        self.x, self.p = x, p
        return x**p

    def backward(self, grad_out):
        # dy/dx = p x^(p-1)
        return (grad_out * (self.p * self.x ** (self.p - 1)),)


class Exp(Function):
    """y = e^x"""

    def forward(self, x):
        self.y = B.xp.exp(x)
        return self.y

    def backward(self, grad_out):
        # dy/dx = e^x = y
        return (grad_out * self.y,)


class Log(Function):
    """y = log x"""

    def forward(self, x):
        self.x = x
        return B.xp.log(x)

    def backward(self, grad_out):
        # dy/dx = 1 / x
        return (grad_out / self.x,)


class Sqrt(Function):
    """y = sqrt(x)"""

    def forward(self, x):
        self.y = B.xp.sqrt(x)
        return self.y

    def backward(self, grad_out):
        # dy/dx = 1 / (2 sqrt(x))
        return (grad_out / (2.0 * self.y),)


class ReLU(Function):
    """y = max(x, 0)"""

    def forward(self, x):
        self.positive = x > 0
        return x * self.positive

    def backward(self, grad_out):
        # dy/dx = 1 where x > 0, else 0
        return (grad_out * self.positive,)


class LeakyReLU(Function):
    """y = x if x > 0 else slope * x"""

    def forward(self, x, slope=0.01):
        self.scale = B.xp.where(x > 0, 1.0, slope).astype(x.dtype)
        return x * self.scale

    def backward(self, grad_out):
        # dy/dx = 1 where x > 0, else slope
        return (grad_out * self.scale,)


class Tanh(Function):
    """y = tanh x"""

    def forward(self, x):
        self.y = B.xp.tanh(x)
        return self.y

    def backward(self, grad_out):
        # dy/dx = 1 - tanh(x)^2
        return (grad_out * (1.0 - self.y * self.y),)


def log1p_unit(e):
    """log(1 + e) for e in [0, 1] (raw arrays): the fastest accurate form for the array's type.

    NumPy on AVX2 machines has a SIMD log but only a scalar log1p; for float32 there,
    log1p_by_log is 3.3 times faster at the same accuracy. For float64 log1p itself is
    faster (0.92x), and on the GPU it is native (benchmarks/BENCHMARKS.md, "Measurements
    behind single decisions").
    """
    if B.device == "gpu" or e.dtype.itemsize > 4:
        return B.xp.log1p(e)
    return log1p_by_log(e)


def log1p_by_log(e):
    """log(1 + e) for e in [0, 1] from the vectorized log, with one correction step (raw arrays).

    u = fl(1 + e) is rounded, but its rounding error d = e - (u - 1) is exact (Fast2Sum), and
    log(1 + e) = log(u) + log(1 + d / u) = log(u) + d / u up to (d / u)^2 / 2, far below one
    unit in the last place. So it equals log1p(e) to the accuracy of log, and stays exact in
    the tail (u = 1 gives d = e).
    """
    xp = B.xp
    u = e + 1.0
    d = u - 1.0
    xp.subtract(e, d, out=d)  # d = e - (u - 1): the exact rounding error of 1 + e
    d /= u
    out = xp.log(u, out=u)
    out += d
    return out


def sigmoid_from_exp(x, e):
    """sigmoid(x) from e = e^-|x|: 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0 (raw arrays).

    The numerator is max(e, [x >= 0]) (1 for x >= 0 since e <= 1; e otherwise), arithmetic
    that is 7 to 12 times faster in NumPy than a masked multiply (benchmarks/BENCHMARKS.md);
    NaN stays NaN.
    """
    xp = B.xp
    num = xp.empty_like(e)
    xp.greater_equal(x, 0, out=num)  # 1.0 where x >= 0, else 0.0
    xp.maximum(num, e, out=num)
    num /= e + 1.0
    return num


def stable_sigmoid(x):
    """sigmoid(x) = 1 / (1 + e^-x), from e = e^-|x| (never overflows), raw arrays:
    1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0, which keeps full relative precision
    in the left tail (sigmoid(-40) ~ 4e-18, where (1 + tanh(x/2)) / 2 rounds to 0)."""
    xp = B.xp
    e = xp.abs(x)
    xp.negative(e, out=e)
    xp.exp(e, out=e)
    return sigmoid_from_exp(x, e)


def softplus_and_exp(x):
    """(softplus(x), e^-|x|) for raw arrays, where softplus(x) = log(1 + e^x) = max(x, 0) + log(1 + e^-|x|).

    Never overflows. e^-|x| is returned for a backward to rebuild sigmoid(x) from
    (``sigmoid_from_exp``). Written out rather than as logaddexp(0, x), which is ten times
    slower in NumPy (benchmarks/BENCHMARKS.md, "softplus").
    """
    xp = B.xp
    e = xp.abs(x)
    xp.negative(e, out=e)
    xp.exp(e, out=e)  # e^-|x|, in (0, 1]
    t = log1p_unit(e)  # log(1 + e^-|x|)
    t += xp.maximum(x, 0.0)
    return t, e


def stable_softplus(x):
    """softplus(x) = log(1 + e^x), stable at any x (raw arrays); see ``softplus_and_exp``."""
    return softplus_and_exp(x)[0]


class Sigmoid(Function):
    """y = 1 / (1 + e^-x)"""

    def forward(self, x):
        self.y = stable_sigmoid(x)
        return self.y

    def backward(self, grad_out):
        # dy/dx = y (1 - y)
        return (grad_out * (self.y * (1.0 - self.y)),)


class Softplus(Function):
    """y = log(1 + e^x)"""

    def forward(self, x):
        y, self.e = softplus_and_exp(x)  # e = e^-|x| is kept for the backward's sigmoid
        self.x = x
        return y

    def backward(self, grad_out):
        # dy/dx = sigmoid(x)
        return (grad_out * sigmoid_from_exp(self.x, self.e),)


def neg(x):
    return Neg.apply(x)


def pow(x, p):
    if hasattr(p, "shape") or not isinstance(p, (int, float)):
        raise TypeError(
            f"pow: the exponent must be a Python number, got {type(p).__name__}; "
            "for a tensor exponent write exp(b * log(a))"
        )
    return Pow.apply(x, p=p)


def exp(x):
    return Exp.apply(x)


def log(x):
    return Log.apply(x)


def sqrt(x):
    return Sqrt.apply(x)


def relu(x):
    return ReLU.apply(x)


def leaky_relu(x, slope: float = 0.01):
    return LeakyReLU.apply(x, slope=slope)


def tanh(x):
    return Tanh.apply(x)


def sigmoid(x):
    return Sigmoid.apply(x)


def softplus(x):
    return Softplus.apply(x)
