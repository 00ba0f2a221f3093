"""Shape ops: reshape, transpose, indexing and slicing, concatenate, stack."""

from __future__ import annotations

from minivae import backend as B
from minivae.ops.reduce import normalize_axis
from minivae.tensor import Function


class Reshape(Function):
    """y = x with a new shape (same elements, same order)"""

    def forward(self, x, shape=()):
        self.shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot reshape an input of shape {x.shape} ({x.size} elements) "
                f"to {tuple(shape)}"
            ) from None

    def backward(self, grad_out):
        # dy/dx is the identity on the elements: reshape the gradient back
        return (grad_out.reshape(self.shape),)


class Transpose(Function):
    """y = x with its axes permuted (reversed when axes is None)"""

    def forward(self, x, axes=None):
        if axes is None:
            axes = tuple(reversed(range(x.ndim)))
        if sorted(a % x.ndim for a in axes) != list(range(x.ndim)) or len(axes) != x.ndim:
            raise ValueError(f"transpose: axes {tuple(axes)} are not a permutation for shape {x.shape}")
        self.axes = tuple(a % x.ndim for a in axes)
        return x.transpose(self.axes)

    def backward(self, grad_out):
        # the adjoint of a permutation is its inverse
        inverse = [0] * len(self.axes)
        for k, a in enumerate(self.axes):
            inverse[a] = k
        return (grad_out.transpose(inverse),)


class GetItem(Function):
    """y = x[index] (basic slicing or integer-array indexing)"""

    def forward(self, x, index=None):
        self.shape, self.index = x.shape, index
        self.dtype = x.dtype
        return x[index]

    def backward(self, grad_out):
        # dy/dx puts each output element back where it came from; repeats add up
        g = B.xp.zeros(self.shape, dtype=grad_out.dtype)
        if _is_basic(self.index):  # slices and integers pick each element at most once
            g[self.index] = grad_out
        else:
            B.scatter_add(g, self.index, grad_out)
        return (g,)


def _is_basic(index) -> bool:
    """True for an index made of slices, integers, None and Ellipsis only (no arrays or lists)."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (int, slice)) for p in parts)


class Concatenate(Function):
    """y = [x_1, x_2, ...] joined along an axis"""

    def forward(self, *xs, axis=0):
        ndim = xs[0].ndim
        (axis,) = normalize_axis("concatenate", axis, ndim)
        for k, x in enumerate(xs[1:], start=1):
            rest = [n for i, n in enumerate(x.shape) if i != axis % max(ndim, 1)]
            first = [n for i, n in enumerate(xs[0].shape) if i != axis % max(ndim, 1)]
            if x.ndim != ndim or rest != first:
                raise ValueError(
                    f"concatenate: input {k} has shape {x.shape}, which does not match "
                    f"input 0's shape {xs[0].shape} off axis {axis}"
                )
        self.axis = axis
        self.sizes = [x.shape[axis] for x in xs]
        return B.xp.concatenate(xs, axis=axis)

    def backward(self, grad_out):
        # dy/dx_k is the identity on x_k's block: split the gradient into the blocks
        cuts, total = [], 0
        for n in self.sizes[:-1]:
            total += n
            cuts.append(total)
        return tuple(B.xp.split(grad_out, cuts, axis=self.axis))


class Stack(Function):
    """y = [x_1, x_2, ...] stacked along a new axis"""

    def forward(self, *xs, axis=0):
        (axis,) = normalize_axis("stack", axis, xs[0].ndim + 1)  # a new axis: ndim + 1 places
        for k, x in enumerate(xs[1:], start=1):
            if x.shape != xs[0].shape:
                raise ValueError(
                    f"stack: input {k} has shape {x.shape} but input 0 has {xs[0].shape}"
                )
        self.axis = axis
        return B.xp.stack(xs, axis=axis)

    def backward(self, grad_out):
        # dy/dx_k is the identity on slice k of the new axis
        n = grad_out.shape[self.axis]
        return tuple(B.xp.take(grad_out, k, axis=self.axis) for k in range(n))


def reshape(x, shape):
    return Reshape.apply(x, shape=tuple(shape) if not isinstance(shape, int) else (shape,))


def transpose(x, axes=None):
    return Transpose.apply(x, axes=axes)


def getitem(x, index):
    if isinstance(index, tuple):
        index = tuple(i.data if hasattr(i, "_ctx") else i for i in index)
    elif hasattr(index, "_ctx"):  # a Tensor of indices
        index = index.data
    return GetItem.apply(x, index=index)


def concatenate(xs, axis: int = 0):
    if not xs:
        raise ValueError("concatenate: needs at least one input")
    return Concatenate.apply(*xs, axis=axis)


def stack(xs, axis: int = 0):
    if not xs:
        raise ValueError("stack: needs at least one input")
    return Stack.apply(*xs, axis=axis)
