"""Layers: Module, Linear, activations, MLP, Sequential, and state dicts.

A ``Module`` finds its parameters by looking at its attributes: a Tensor with
``requires_grad=True`` is a parameter, a Module is a child, a list or tuple of
Modules holds children. Names are dotted paths (``encoder.layers.0.weight``).
"""

from __future__ import annotations

import math

from minivae import backend as B
from minivae import ops
from minivae.tensor import Tensor


class Module:
    """A container of parameters and child modules with a ``forward``."""

    training = True

    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # --- the tree -------------------------------------------------------------
    def named_children(self):
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for k, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{name}.{k}", item

    def named_parameters(self, prefix: str = ""):
        """(dotted name, Tensor) for every parameter, in a fixed order."""
        for name, value in vars(self).items():
            if isinstance(value, Tensor) and value.requires_grad:
                yield prefix + name, value
        for name, child in self.named_children():
            yield from child.named_parameters(prefix + name + ".")

    def parameters(self) -> list:
        return [p for _, p in self.named_parameters()]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True):
        self.training = mode
        for _, child in self.named_children():
            child.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def num_parameters(self) -> int:
        return sum(p.size for p in self.parameters())

    # --- state dicts ------------------------------------------------------------
    def state_dict(self) -> dict:
        """{name: NumPy array} copies of every parameter (host memory, any device)."""
        return {name: B.to_numpy(p.data).copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict) -> None:
        """Copy arrays into the parameters; names and shapes must match exactly."""
        own = dict(self.named_parameters())
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise ValueError(
                f"load_state_dict for {type(self).__name__}: missing {missing or 'nothing'}, "
                f"unexpected {unexpected or 'nothing'} (was it saved from another model?)"
            )
        for name, p in own.items():
            value = state[name]
            if tuple(value.shape) != p.shape:
                raise ValueError(
                    f"load_state_dict for {type(self).__name__}: {name} has shape "
                    f"{tuple(value.shape)} in the state but {p.shape} in the model"
                )
        for name, p in own.items():  # only after every check passed: never half-loaded
            p.data[...] = B.from_numpy(B.to_numpy(state[name]), dtype=p.data.dtype)

    def __repr__(self):
        lines = [f"{type(self).__name__}("]
        for name, child in self.named_children():
            lines.append(f"  ({name}): " + repr(child).replace("\n", "\n  "))
        lines.append(")")
        return "\n".join(lines) if len(lines) > 2 else f"{type(self).__name__}()"


def _parameter(array) -> Tensor:
    return Tensor(array, requires_grad=True)


INITS = ("he", "xavier", "uniform")


class Linear(Module):
    """y = x @ W + b with W (n_in, n_out), initialised by He (relu nets) or Xavier (tanh, sigmoid).

    init="uniform" is PyTorch's default for nn.Linear: W and b ~ U(-1/sqrt(n_in), 1/sqrt(n_in)),
    a third of He's variance (benchmarks/BENCHMARKS.md compares the two on the VAE).
    """

    def __init__(self, n_in: int, n_out: int, init: str = "he", bias: bool = True):
        if n_in <= 0 or n_out <= 0:
            raise ValueError(f"Linear: sizes must be positive, got n_in={n_in}, n_out={n_out}")
        dtype = B.get_default_dtype()
        if init == "he":  # Var W = 2 / n_in keeps relu activations' scale (He et al. 2015)
            w = B.rng().standard_normal(size=(n_in, n_out)) * math.sqrt(2.0 / n_in)
        elif init == "xavier":  # uniform with Var W = 2 / (n_in + n_out) (Glorot & Bengio 2010)
            limit = math.sqrt(6.0 / (n_in + n_out))
            w = B.rng().uniform(-limit, limit, size=(n_in, n_out))
        elif init == "uniform":  # Var W = 1 / (3 n_in), the bias drawn alike (PyTorch's default)
            limit = 1.0 / math.sqrt(n_in)
            w = B.rng().uniform(-limit, limit, size=(n_in, n_out))
        else:
            raise ValueError(f"Linear: unknown init {init!r}: choose one of {', '.join(INITS)}")
        self.n_in, self.n_out = n_in, n_out
        self.weight = _parameter(w.astype(dtype))  # (n_in, n_out)
        if not bias:
            self.bias = None
        elif init == "uniform":
            b = B.rng().uniform(-limit, limit, size=(n_out,))
            self.bias = _parameter(b.astype(dtype))  # (n_out,)
        else:
            self.bias = _parameter(B.xp.zeros(n_out, dtype=dtype))  # (n_out,)

    def forward(self, x):
        if x.shape[-1] != self.n_in:
            raise ValueError(
                f"Linear({self.n_in}, {self.n_out}): input has {x.shape[-1]} features "
                f"(shape {tuple(x.shape)}), expected {self.n_in}"
            )
        if self.bias is None:
            return ops.matmul(x, self.weight)
        return ops.linear(x, self.weight, self.bias)

    def __repr__(self):
        return f"Linear({self.n_in}, {self.n_out})"


ACTIVATIONS = {
    "relu": ops.relu,
    "leaky_relu": ops.leaky_relu,
    "tanh": ops.tanh,
    "sigmoid": ops.sigmoid,
    "softplus": ops.softplus,
}


class Activation(Module):
    """An elementwise nonlinearity by name: relu, leaky_relu, tanh, sigmoid, softplus."""

    def __init__(self, name: str):
        if name not in ACTIVATIONS:
            raise ValueError(f"unknown activation {name!r}: choose one of {', '.join(ACTIVATIONS)}")
        self.name = name
        self.fn = ACTIVATIONS[name]

    def forward(self, x):
        return self.fn(x)

    def __repr__(self):
        return f"Activation({self.name!r})"


class Sequential(Module):
    """Modules applied one after another."""

    def __init__(self, *layers: Module):
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def __getitem__(self, k):
        return self.layers[k]

    def __len__(self):
        return len(self.layers)


class MLP(Sequential):
    """Linear layers of the given sizes with an activation between them (none after the last).

    init: the layers' initialisation (``INITS``); None picks He for relu nets, else Xavier.
    """

    def __init__(self, sizes, activation: str = "relu", final_activation: str | None = None,
                 init: str | None = None):
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"MLP: needs at least an input and an output size, got {sizes}")
        for name in (activation, final_activation):  # checked even where no layer uses it yet
            if name is not None and name not in ACTIVATIONS:
                raise ValueError(f"MLP: unknown activation {name!r}: choose one of "
                                 f"{', '.join(ACTIVATIONS)}")  # fmt: skip
        if init is None:
            init = "he" if activation in ("relu", "leaky_relu") else "xavier"
        layers: list[Module] = []
        for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):  # noqa: RUF007 - plain to read
            layers.append(Linear(n_in, n_out, init=init))
            last = k == len(sizes) - 2
            if not last:
                layers.append(Activation(activation))
            elif final_activation is not None:
                layers.append(Activation(final_activation))
        super().__init__(*layers)
        self.sizes = sizes

    # --- the first layer on a block of the input (for models that reuse part of it) --------
    def first_layer_part(self, part, start: int, bias: bool = False):
        """The first layer's contribution of one block of its input: part @ W[start : start + w] (+ b).

        The first layer is linear in its input, so for an input [a, b] (a of width w_a)
            first layer([a, b]) = first_layer_part(a, 0, bias=True) + first_layer_part(b, w_a);
        a model that feeds the same a with many b (M2: one x, every class) computes a's
        part once. part (N, w) -> (N, sizes[1]).
        """
        first = self.layers[0]  # Linear(sizes[0], sizes[1])
        width = part.shape[-1]
        if start < 0 or start + width > first.n_in:
            raise ValueError(
                f"MLP.first_layer_part: a block of width {width} at column {start} does not fit "
                f"the first layer's {first.n_in} inputs"
            )
        weight = first.weight[start : start + width]  # (w, H): the rows that multiply the block
        if bias and first.bias is not None:
            return ops.linear(part, weight, first.bias)
        return ops.matmul(part, weight)

    def after_first_layer(self, h):
        """The layers after the first Linear (its activation, the next Linear, ...): (N, sizes[1]) -> out."""
        for layer in self.layers[1:]:
            h = layer(h)
        return h
