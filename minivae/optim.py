"""Optimizers that update parameters in place: SGD (momentum), Adam, Adagrad; gradient clipping.

Gradients are read, never written: a gradient array may be shared by several
parameters (``a + b`` hands both the same array), so clipping makes new ones.
"""

from __future__ import annotations

import math

from minivae import backend as B


class Optimizer:
    """Holds the parameters and a per-parameter state; ``step`` updates, ``zero_grad`` clears."""

    def __init__(self, params, lr: float):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got no parameters to optimize")
        if not lr > 0:
            raise ValueError(f"{type(self).__name__}: learning rate must be positive, got {lr}")
        self.lr = lr
        self.steps = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        self.steps += 1
        self.begin_step()
        for k, p in enumerate(self.params):
            if p.grad is not None:
                self.update(k, p.data, p.grad)

    def begin_step(self) -> None:
        """Once per step, before the updates: the place for constants every parameter shares."""

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
        for key, a in own.items():
            value = state.get(f"state.{key}")
            if value is None or value.shape != a.shape:
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: state.{key} is missing or has the "
                    f"wrong shape (expected {a.shape}); the optimizer state is from another model "
                    "or optimizer (or from an older Adam that stored m and v instead of decayed sums)"
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
    """Adam (Kingma & Ba 2015): w <- w - lr * m_hat / (sqrt(v_hat) + eps), bias-corrected moments.

    The moments m_t = b1 m_{t-1} + (1 - b1) g_t and v_t = b2 v_{t-1} + (1 - b2) g_t^2 are
    kept as decayed sums, M_t = b1 M_{t-1} + g_t and V_t = b2 V_{t-1} + g_t^2, so that
    m_t = (1 - b1) M_t and v_t = (1 - b2) V_t. The update is the same,
        m_hat / (sqrt(v_hat) + eps) = c M / (sqrt(V) + eps / r),
        r = sqrt((1 - b2) / (1 - b2^t)),  c = (1 - b1) / ((1 - b1^t) r),
    with every constant folded into two numbers: 10 passes over memory per step instead
    of 13 (the update is memory-bound; benchmarks/BENCHMARKS.md, "Measurements behind
    single decisions").

    M below the smallest normal float (``finfo.tiny``) is set to 0 after each update. A
    weight whose gradient is mostly 0 (the first layer's row of a pixel that is rarely
    on) sees M decay by b1 per step into the subnormal range and stay there for some 150
    steps; NumPy's arithmetic on subnormal numbers is many times slower, and lesson 03's
    VAEs spent 45 % of their time in this update (benchmarks/BENCHMARKS.md, "Subnormal
    numbers"). The zeroed entries moved their weight by less than tiny / eps anyway. The
    flush costs three more passes over M.
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 chunk: int | None = None):
        super().__init__(params, lr)
        # elements per block on the CPU (None: whole arrays). Blocks that stay in cache
        # can help where the last-level cache is small; on a 32 MB L3 the whole float32
        # update fits and 65536-element blocks are 18 % slower (benchmarks/BENCHMARKS.md)
        self.chunk = chunk if B.device == "cpu" else None
        b1, b2 = betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"Adam: betas must lie in [0, 1), got {betas}")
        self.b1, self.b2, self.eps = b1, b2, eps
        self.g_sum = [B.xp.zeros_like(p.data) for p in self.params]  # M = m / (1 - b1)
        self.g2_sum = [B.xp.zeros_like(p.data) for p in self.params]  # V = v / (1 - b2)
        self.scratch = [B.xp.empty_like(p.data) for p in self.params]
        self.subnormal = [B.xp.empty(p.shape, dtype=bool) for p in self.params]

    def begin_step(self):
        """This step's two numbers: lr c and eps / r (the docstring's r and c, at t = steps)."""
        r = math.sqrt((1.0 - self.b2) / (1.0 - self.b2**self.steps))
        self._step_size = self.lr * (1.0 - self.b1) / ((1.0 - self.b1**self.steps) * r)
        self._eps = self.eps / r

    def update(self, k, w, g):
        # tmp: reused, so a step allocates nothing
        g_sum, g2_sum, tmp = self.g_sum[k], self.g2_sum[k], self.scratch[k]
        step, eps = self._step_size, self._eps
        if self.chunk and w.size > self.chunk and all(a.flags.c_contiguous for a in (w, g)):
            # fast path (CPU): the same elementwise update, a cache-sized block at a time,
            # so each array is read from memory once instead of once per operation
            w, g, g_sum, g2_sum, tmp = (a.reshape(-1) for a in (w, g, g_sum, g2_sum, tmp))
            for s in range(0, w.size, self.chunk):
                part = slice(s, s + self.chunk)
                self._adam(w[part], g[part], g_sum[part], g2_sum[part], tmp[part], step, eps)
        else:
            self._adam(w, g, g_sum, g2_sum, tmp, step, eps)
        flush_subnormal(self.g_sum[k], self.scratch[k], self.subnormal[k])

    def _adam(self, w, g, g_sum, g2_sum, tmp, step, eps):
        """The plain update on whole arrays (or on matching blocks of them)."""
        g_sum *= self.b1
        g_sum += g  # M <- b1 M + g
        g2_sum *= self.b2
        B.xp.multiply(g, g, out=tmp)
        g2_sum += tmp  # V <- b2 V + g^2
        B.xp.sqrt(g2_sum, out=tmp)
        tmp += eps
        B.xp.divide(g_sum, tmp, out=tmp)
        tmp *= step
        w -= tmp  # w <- w - lr c M / (sqrt(V) + eps / r) = w - lr m_hat / (sqrt(v_hat) + eps)

    @property
    def m(self) -> list:
        """The first moments m = (1 - b1) M (new arrays, for reading)."""
        return [(1.0 - self.b1) * a for a in self.g_sum]

    @property
    def v(self) -> list:
        """The second moments v = (1 - b2) V (new arrays, for reading)."""
        return [(1.0 - self.b2) * a for a in self.g2_sum]

    def state_arrays(self):
        state = {f"g_sum.{k}": a for k, a in enumerate(self.g_sum)}
        state.update({f"g2_sum.{k}": a for k, a in enumerate(self.g2_sum)})
        return state


def flush_subnormal(a, tmp, mask) -> None:
    """Set the entries of a whose magnitude is below the smallest normal float to 0, in place.

    tmp (a's shape and dtype) and mask (a's shape, bool) are scratch arrays.
    """
    B.xp.abs(a, out=tmp)
    B.xp.less(tmp, B.np.finfo(a.dtype).tiny, out=mask)
    B.xp.copyto(a, 0, where=mask)


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
