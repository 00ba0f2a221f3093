"""Matrix products: matmul (2-D and batched) and the fused dense layer y = xW + b."""

from __future__ import annotations

from minivae.ops.binary import unbroadcast
from minivae.tensor import Function


def _check_matmul(op: str, a, b):
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError(
            f"{op}: needs inputs with at least 2 dimensions, got shapes {a.shape} and {b.shape} "
            "(reshape a vector to (1, n) or (n, 1))"
        )
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(
            f"{op}: shapes {a.shape} and {b.shape} do not line up: the last axis of the first "
            f"({a.shape[-1]}) must equal the second-to-last of the second ({b.shape[-2]})"
        )


class MatMul(Function):
    """Y = A @ B (the last two axes multiply, leading axes broadcast)"""

    def forward(self, a, b):
        _check_matmul("matmul", a, b)
        self.a, self.b = a, b
        return a @ b

    def backward(self, grad_out):
        # dY/dA: G @ B^T, dY/dB: A^T @ G (summed over broadcast batch axes)
        a, b = self.a, self.b
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = unbroadcast(grad_out @ b.swapaxes(-1, -2), a.shape)
        if self.needs_input_grad[1]:
            gb = unbroadcast(a.swapaxes(-1, -2) @ grad_out, b.shape)
        return ga, gb


class Linear(Function):
    """y = x @ W + b for x (B, n_in), W (n_in, n_out), b (n_out,): matmul and add in one op"""

    def forward(self, x, weight, bias):
        _check_matmul("linear", x, weight)
        if x.ndim != 2:
            raise ValueError(f"linear: x must be (batch, features), got shape {x.shape}")
        if bias.shape != (weight.shape[1],):
            raise ValueError(
                f"linear: bias of shape {bias.shape} does not match weight {weight.shape}; "
                f"expected ({weight.shape[1]},)"
            )
        self.x, self.weight = x, weight
        y = x @ weight  # (B, n_out)
        y += bias  # in place: y is our own new array
        return y

    def backward(self, grad_out):
        # dy/dx = W^T, dy/dW = x^T, dy/db = 1 summed over the batch
        gx = grad_out @ self.weight.T if self.needs_input_grad[0] else None
        gw = self.x.T @ grad_out if self.needs_input_grad[1] else None
        gb = grad_out.sum(axis=0) if self.needs_input_grad[2] else None
        return gx, gw, gb


def matmul(a, b):
    return MatMul.apply(a, b)


def linear(x, weight, bias):
    return Linear.apply(x, weight, bias)
