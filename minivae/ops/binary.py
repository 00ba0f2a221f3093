"""Binary elementwise ops with broadcasting: add, sub, mul, div.

Broadcasting copies an input along some axes in the forward pass, so its
adjoint in the backward pass is a sum over those axes: ``unbroadcast`` does that
sum, and every backward below calls it where you can see it.
"""

from __future__ import annotations

from minivae.tensor import Function


def unbroadcast(grad, shape: tuple):
    """Sum ``grad`` down to ``shape``: the adjoint of broadcasting ``shape`` to ``grad.shape``."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:  # axes that broadcasting added in front
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(k for k, n in enumerate(shape) if n == 1 and grad.shape[k] != 1)
    if stretched:  # axes of length 1 that broadcasting stretched
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def broadcast_shapes(op: str, a_shape: tuple, b_shape: tuple) -> tuple:
    """The broadcast shape, or a ValueError naming the op and both shapes."""
    ndim = max(len(a_shape), len(b_shape))
    a_full = (1,) * (ndim - len(a_shape)) + tuple(a_shape)
    b_full = (1,) * (ndim - len(b_shape)) + tuple(b_shape)
    out = []
    for m, n in zip(a_full, b_full):
        if m != n and m != 1 and n != 1:
            raise ValueError(
                f"{op}: shapes {tuple(a_shape)} and {tuple(b_shape)} do not broadcast "
                f"(sizes {m} and {n} meet on one axis; line the axes up, or add one with reshape)"
            )
        out.append(max(m, n) if m != 0 and n != 0 else 0)
    return tuple(out)


def check_trailing_shape(op: str, names: tuple, shape: tuple, tail: tuple) -> None:
    """A ValueError naming the op unless ``shape`` ends with ``tail`` (broadcast over the rest).

    names: what the two inputs are called, for the message, e.g. ("logits", "x").
    """
    if len(tail) < 1 or tuple(shape[len(shape) - len(tail) :]) != tuple(tail):
        raise ValueError(
            f"{op}: {names[0]} of shape {tuple(shape)} do not end with the shape of {names[1]} "
            f"{tuple(tail)} (put extra axes, such as samples, in front)"
        )


class Add(Function):
    """y = a + b"""

    def forward(self, a, b):
        if a.shape != b.shape:
            broadcast_shapes("add", a.shape, b.shape)
        self.a_shape, self.b_shape = a.shape, b.shape
        return a + b

    def backward(self, grad_out):
        # dy/da = 1, dy/db = 1
        ga = unbroadcast(grad_out, self.a_shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(grad_out, self.b_shape) if self.needs_input_grad[1] else None
        return ga, gb


class Sub(Function):
    """y = a - b"""

    def forward(self, a, b):
        if a.shape != b.shape:
            broadcast_shapes("sub", a.shape, b.shape)
        self.a_shape, self.b_shape = a.shape, b.shape
        return a - b

    def backward(self, grad_out):
        # dy/da = 1, dy/db = -1
        ga = unbroadcast(grad_out, self.a_shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(-grad_out, self.b_shape) if self.needs_input_grad[1] else None
        return ga, gb


class Mul(Function):
    """y = a * b"""

    def forward(self, a, b):
        if a.shape != b.shape:
            broadcast_shapes("mul", a.shape, b.shape)
        self.a, self.b = a, b
        return a * b

    def backward(self, grad_out):
        # dy/da = b, dy/db = a
        ga = unbroadcast(grad_out * self.b, self.a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(grad_out * self.a, self.b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    """y = a / b"""

    def forward(self, a, b):
        if a.shape != b.shape:
            broadcast_shapes("div", a.shape, b.shape)
        self.a, self.b = a, b
        return a / b

    def backward(self, grad_out):
        # dy/da = 1 / b, dy/db = -a / b^2
        ga = unbroadcast(grad_out / self.b, self.a.shape) if self.needs_input_grad[0] else None
        if self.needs_input_grad[1]:
            gb = unbroadcast(-grad_out * self.a / (self.b * self.b), self.b.shape)
        else:
            gb = None
        return ga, gb


def add(a, b):
    return Add.apply(a, b)


def sub(a, b):
    return Sub.apply(a, b)


def mul(a, b):
    return Mul.apply(a, b)


def div(a, b):
    return Div.apply(a, b)
