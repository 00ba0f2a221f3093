"""Optimizers that update parameters in place: SGD (momentum), Adam, Adagrad; gradient clipping.

Each ``update`` is its formula, written plainly. Gradients are read, never written: a
gradient array may be shared by several parameters (``a + b`` hands both the same
array), so clipping makes new ones. Adam has a measured fast version in ``minivae.fast``,
which ``Adam(...)`` builds while ``minivae.fast.enabled`` is on.
"""

from __future__ import annotations

import math
import numbers

from minivae import backend as B


class Optimizer:
    """Holds the parameters and a per-parameter state; ``step`` updates, ``zero_grad`` clears."""

    def __init__(self, params, lr: float):
        name = type(self).__name__
        if hasattr(params, "parameters"):  # a model: its parameters are what is optimized
            raise TypeError(f"{name}: give the model's parameters, {name}(model.parameters(), "
                            f"...), not the model")  # fmt: skip
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{name}: got no parameters to optimize")
        if len({id(p) for p in self.params}) != len(self.params):
            raise ValueError(f"{name}: a parameter is listed twice, so it would be updated twice "
                             "a step; list each once")  # fmt: skip
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not (math.isfinite(lr)
                                                                            and lr > 0):
            raise ValueError(f"{name}: learning rate must be a finite number > 0, got {lr!r}")
        self.lr = lr
        self.steps = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        name = type(self).__name__
        todo = [(k, p) for k, p in enumerate(self.params) if p.grad is not None]
        if not todo:  # a step would only advance the count
            raise RuntimeError(f"{name}.step: no parameter has a gradient; call "
                               "loss.backward() after zero_grad() and before step()")  # fmt: skip
        for k, p in todo:  # one set by hand: broadcasting would hide a slip
            if p.grad.shape != p.data.shape:
                raise ValueError(f"{name}.step: parameter {k} has shape {p.data.shape} but its "
                                 f"gradient {p.grad.shape}; a gradient has its parameter's shape "
                                 "(sum over the batch axis)")  # fmt: skip
        self.steps += 1
        for k, p in todo:
            self.update(k, p.data, p.grad)

    def update(self, k: int, w, g) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # --- state for checkpoints: {name: NumPy array} plus numbers ------------------
    def state_arrays(self) -> dict:
        return {}

    def state_dict(self) -> dict:
        state = {f"state.{key}": B.to_numpy(a).copy() for key, a in self.state_arrays().items()}
        state["steps"] = B.np.asarray(self.steps)
        state["lr"] = B.np.asarray(self.lr)
        return state

    def load_state_dict(self, state: dict) -> None:
        own = self.state_arrays()
        foreign = sorted(k for k in state if k.startswith("state.") and k[len("state."):] not in own)
        if foreign:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: the state holds {', '.join(foreign[:3])}"
                f"{' ...' if len(foreign) > 3 else ''}, which this optimizer does not keep: it "
                "is another optimizer's state (or the same one's with other settings)"
            )
        for key, a in own.items():
            value = state.get(f"state.{key}")
            if value is None or value.shape != a.shape:
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: state.{key} is missing or has the "
                    f"wrong shape (expected {a.shape}); the optimizer state is from another model "
                    "or optimizer"
                )
        for key, a in own.items():
            a[...] = B.from_numpy(state[f"state.{key}"], dtype=a.dtype)
        self.steps = int(state["steps"])
        self.lr = float(state["lr"])


class SGD(Optimizer):
    """w <- w - lr * v with v <- momentum * v + g (plain SGD when momentum = 0)."""

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0):
        super().__init__(params, lr)
        if not 0 <= momentum < 1:
            raise ValueError(f"SGD: momentum must be in [0, 1), got {momentum}")
        self.momentum = momentum
        self.velocity = [B.xp.zeros_like(p.data) for p in self.params] if momentum else []

    def update(self, k, w, g):
        if self.momentum:
            v = self.velocity[k]
            v *= self.momentum
            v += g
            g = v
        w -= self.lr * g

    def state_arrays(self):
        return {f"velocity.{k}": v for k, v in enumerate(self.velocity)}


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015): w <- w - lr * m_hat / (sqrt(v_hat) + eps).

    m and v are running means of the gradient and of its square; they start at 0, so
    the first steps divide by 1 - b^t to correct that bias (m_hat, v_hat).

    While ``minivae.fast.enabled`` is on (the default), ``Adam(...)`` builds a
    ``minivae.fast.Adam``: the same update in fewer passes over memory, measured faster
    and tested against this one.
    """

    def __new__(cls, *args, **kwargs):
        from minivae import fast  # here, not at the top: minivae.fast builds on this module

        build = fast.Adam if cls is Adam and fast.enabled else cls
        return super().__new__(build)

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, lr)
        if len(tuple(betas)) != 2:
            raise ValueError(f"Adam: betas is a pair (b1, b2), such as (0.9, 0.999); got {betas}")
        b1, b2 = betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"Adam: betas must lie in [0, 1), got {betas}")
        if not (math.isfinite(eps) and eps >= 0):
            raise ValueError(f"Adam: eps must be a finite number >= 0, got {eps}")
        self.b1, self.b2, self.eps = b1, b2, eps
        self.m = [B.xp.zeros_like(p.data) for p in self.params]  # running mean of g
        self.v = [B.xp.zeros_like(p.data) for p in self.params]  # running mean of g^2

    def update(self, k, w, g):
        b1, b2, t = self.b1, self.b2, self.steps
        self.m[k] = b1 * self.m[k] + (1.0 - b1) * g  # m <- b1 m + (1 - b1) g
        self.v[k] = b2 * self.v[k] + (1.0 - b2) * g * g  # v <- b2 v + (1 - b2) g^2
        m_hat = self.m[k] / (1.0 - b1**t)  # bias correction
        v_hat = self.v[k] / (1.0 - b2**t)
        w -= self.lr * m_hat / (B.xp.sqrt(v_hat) + self.eps)

    def state_arrays(self):
        state = {f"m.{k}": a for k, a in enumerate(self.m)}
        state.update({f"v.{k}": a for k, a in enumerate(self.v)})
        return state

    def load_state_dict(self, state: dict) -> None:
        """Also reads a minivae.fast.Adam's state (decayed sums): m = (1 - b1) M, v = (1 - b2) V."""
        state = dict(state)
        for k in range(len(self.params)):
            if f"state.m.{k}" not in state and f"state.g_sum.{k}" in state:
                state[f"state.m.{k}"] = (1.0 - self.b1) * state.pop(f"state.g_sum.{k}")
            if f"state.v.{k}" not in state and f"state.g2_sum.{k}" in state:
                state[f"state.v.{k}"] = (1.0 - self.b2) * state.pop(f"state.g2_sum.{k}")
        super().load_state_dict(state)


class Adagrad(Optimizer):
    """Adagrad (Duchi et al. 2011), as Kingma & Welling used: w <- w - lr * g / (sqrt(sum g^2) + eps)."""

    def __init__(self, params, lr: float = 0.01, eps: float = 1e-10):
        super().__init__(params, lr)
        self.eps = eps
        self.sum_sq = [B.xp.zeros_like(p.data) for p in self.params]

    def update(self, k, w, g):
        s = self.sum_sq[k]
        s += g * g
        w -= self.lr * g / (B.xp.sqrt(s) + self.eps)

    def state_arrays(self):
        return {f"sum_sq.{k}": s for k, s in enumerate(self.sum_sq)}


def clip_grad_norm(params, max_norm: float) -> float:
    """Scale all gradients together so their global L2 norm is at most max_norm; return the norm before."""
    if not max_norm > 0:
        raise ValueError(f"clip_grad_norm: max_norm must be positive, got {max_norm}")
    grads = [p for p in params if p.grad is not None]
    total = math.sqrt(float(sum(((p.grad * p.grad).sum().astype("float64") for p in grads), 0.0)))
    if total > max_norm:
        scale = max_norm / (total + 1e-12)
        for p in grads:
            p.grad = p.grad * scale  # a new array: gradients may be shared
    return total


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adagrad": Adagrad}
