"""Unary elementwise ops and activations, each forward beside its backward."""

from __future__ import annotations

from minivae import backend as B
from minivae import fast
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


def stable_sigmoid(x):
    """sigmoid(x) = 1 / (1 + e^-x) for raw arrays, from e = e^-|x| so that nothing overflows;
    e^x / (1 + e^x) for x < 0 keeps full relative precision there (sigmoid(-40) ~ 4e-18)."""
    e = B.xp.exp(-B.xp.abs(x))  # e^-|x|, in (0, 1]: never overflows
    return B.xp.where(x >= 0, 1.0, e) / (1.0 + e)  # 1 / (1 + e^-x), or e^x / (1 + e^x) for x < 0


def stable_softplus(x):
    """softplus(x) = log(1 + e^x) for raw arrays, as max(x, 0) + log(1 + e^-|x|): e^-|x| <= 1
    never overflows, and log1p keeps the small term exact where e^-|x| is tiny."""
    return B.xp.maximum(x, 0.0) + B.xp.log1p(B.xp.exp(-B.xp.abs(x)))


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
        self.x = x
        return stable_softplus(x)

    def backward(self, grad_out):
        # dy/dx = e^x / (1 + e^x) = sigmoid(x)
        return (grad_out * stable_sigmoid(self.x),)


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
    """log(1 + e^x); its measured fast version, minivae.fast.Softplus, while fast.enabled."""
    return (fast.Softplus if fast.enabled else Softplus).apply(x)
