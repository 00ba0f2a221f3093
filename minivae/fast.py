"""Fast paths: measured speed-ups of a few ops and of Adam, kept apart from the plain core.

The ops in ``minivae/ops/`` and the optimizers in ``minivae/optim.py`` are written as
their formulas; read those first. This module holds faster versions of some of them.
Each one was measured (the comment above it names the section of
``benchmarks/BENCHMARKS.md`` that holds the numbers) and each is tested against the
plain version it stands in for, values and gradients, in ``tests/test_fast_paths.py``.

    log1p_by_log, log1p_unit    log(1 + e) for e in [0, 1] from the vectorized log (float32, cpu)
    one_plus_and_correction     u = fl(1 + e) and the correction c with log(1 + e) = log(u) + c
    sum_log_by_products         sum of log(u) over a row as the logs of products of 16 entries
    sigmoid_from_exp            sigmoid(x) rebuilt from a saved e^-|x|
    softplus_and_exp            softplus(x) and e^-|x| in one pass, in place
    Softplus                    the softplus op on those two
    BernoulliLogProb            the Bernoulli log-likelihood per element on those two
    BernoulliLogLikelihood      the same summed per example, in cache-sized blocks without gradients
    TotalCorrelation            the batch estimate of the total correlation, one op with its backward
    Adam                        Adam on decayed sums, constants folded, scratch buffers reused
    flush_subnormal             Adam's first moment set to 0 below the normal range (every 8 steps)

**The switch.** ``minivae.fast.enabled`` is True unless the environment variable
``MINIVAE_FAST`` is ``0`` when minivae is imported (any value but 0 and 1 is kept in
``ENVIRONMENT_ERROR``, and raised at the first op that reads the switch).
``set_enabled(False)`` turns it off, plainly or for a block:
``with fast.set_enabled(False): ...``. The ops read it at every
call (``ops.softplus(x)`` runs ``fast.Softplus`` or the plain ``Softplus``), and so does
``distributions.total_correlation`` (``fast.TotalCorrelation`` or eight plain ops); ``Adam(...)``
reads it when it is built (it builds a ``fast.Adam`` while it is on), and so does the
training loop when it starts (it keeps freed memory in the process while it is on:
``minivae/memory.py``). The results match the plain versions to a few units in the last
place, not always bit for bit, so reproduce a run with the setting it ran with. The other ops have no fast version.

M2's fast sum over y changes how that model evaluates its bound rather than an op, so it
stays with the model (``minivae/models/m2.py``, ``fast_sum_over_y``) and its own tests; it
follows this switch too, unless a model or its class sets ``fast_sum_over_y`` itself.
"""

from __future__ import annotations

import math
import os

from minivae import backend as B
from minivae import optim
from minivae.ops.binary import broadcast_shapes, check_trailing_shape, unbroadcast
from minivae.tensor import Function

OPS = ("softplus", "bernoulli_log_prob", "bernoulli_log_likelihood")  # the ops with a fast version


class _Unset:
    """``enabled`` while MINIVAE_FAST holds neither 0 nor 1: reading it (``if fast.enabled``,
    at the first op) raises ENVIRONMENT_ERROR's message, until ``set_enabled`` decides. So the
    import succeeds, and a program (the ``minivae`` command, a lesson) reports it in one line."""

    def __bool__(self):
        raise ValueError(ENVIRONMENT_ERROR)

    def __repr__(self) -> str:
        return f"<unset: {ENVIRONMENT_ERROR}>"


_env = os.environ.get("MINIVAE_FAST", "1").strip() or "1"
ENVIRONMENT_ERROR: str | None = None  # why MINIVAE_FAST could not be read, if it could not
if _env in ("0", "1"):
    enabled = _env == "1"
else:
    ENVIRONMENT_ERROR = (
        f"MINIVAE_FAST={_env!r}: set it to 1 (the fast paths, the default) or 0 (plain ops only)"
    )
    enabled = _Unset()


class _Restore:
    """Returned by set_enabled: a no-op, or a context manager that puts the old setting back."""

    def __init__(self, previous):
        self._previous = previous

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        global enabled, ENVIRONMENT_ERROR
        enabled, ENVIRONMENT_ERROR = self._previous
        return False


def set_enabled(flag: bool) -> _Restore:
    """Turn the fast paths on or off; usable plainly or as ``with set_enabled(False):``."""
    global enabled, ENVIRONMENT_ERROR
    previous = (enabled, ENVIRONMENT_ERROR)
    enabled, ENVIRONMENT_ERROR = bool(flag), None
    return _Restore(previous)


# ----------------------------------------------------------------------------- raw-array kernels

# BENCHMARKS.md, "Measurements behind single decisions (AMD, 2026-12-01)", rows "log(1 + e^-|l|)":
# NumPy on AVX2 has a SIMD log but only a scalar log1p. For float32 the corrected log is
# 3.32 times faster at 2.5e-7 relative difference; for float64 log1p itself is faster (0.92).
# On the GPU log1p is native. So: the corrected log for float32 on the cpu only.


def log1p_unit(e):
    """log(1 + e) for e in [0, 1] (raw arrays): log1p_by_log for float32 on the cpu, else log1p."""
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
    u, c = one_plus_and_correction(e)
    out = B.xp.log(u, out=u)
    out += c
    return out


def one_plus_and_correction(e):
    """(u, c): u = fl(1 + e) and c = d / u, so that log(1 + e) = log(u) + c (raw arrays; log1p_by_log)."""
    u = e + 1.0
    c = u - 1.0
    B.xp.subtract(e, c, out=c)  # d = e - (u - 1): the exact rounding error of 1 + e
    c /= u
    return u, c


PRODUCT_ROUNDS = 4  # products of 16 entries (81 at most with odd widths), below 2^81: no overflow


def sum_log_by_products(u):
    """The sum of log(u) over the last axis, for u in [1, 2] (raw arrays; u is left as it is).

    log a + log b = log(a b): the last axis is halved PRODUCT_ROUNDS times by multiplying
    its two halves (an odd last column joins the last product), so one log is taken per
    16 entries instead of one per entry. Each multiply rounds by 2^-24 relative at most
    (float32; 2^-53 in float64), which moves the log of a product of 16 by at most
    15 * 2^-24 = 9e-7: about the rounding of a float32 sum of the 16 logs.
    """
    xp = B.xp
    for _ in range(PRODUCT_ROUNDS):
        d = u.shape[-1]
        if d < 2:
            break
        h = d // 2
        p = u[..., :h] * u[..., h : 2 * h]  # (..., h)
        if d % 2:
            p[..., -1] *= u[..., -1]
        u = p
    return xp.log(u).sum(axis=-1)


# BENCHMARKS.md, "Measurements behind single decisions (AMD, 2026-12-01)", rows "sigmoid(l) from
# e^-|l|": the numerator max(e, [x >= 0]) by arithmetic is 12.2 (float32) and 7.58 (float64)
# times faster than the masked multiply it replaced, and needs no second exp in the backward.


def sigmoid_from_exp(x, e):
    """sigmoid(x) from e = e^-|x|: 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0 (raw arrays).

    The numerator is max(e, [x >= 0]): 1 for x >= 0 (since e <= 1), e otherwise; NaN stays
    NaN. The same arithmetic as the plain ``where(x >= 0, 1, e) / (1 + e)``, bit for bit.
    """
    xp = B.xp
    num = xp.empty_like(e)
    xp.greater_equal(x, 0, out=num)  # 1.0 where x >= 0, else 0.0
    xp.maximum(num, e, out=num)
    num /= e + 1.0
    return num


# BENCHMARKS.md, "Softplus: `logaddexp(0, x)` against `max(x, 0) + log1p(exp(-|x|))`": the
# written-out form, in place, 0.226 ms against 2.507 ms; with log1p_unit for its log term.


def softplus_and_exp(x):
    """(softplus(x), e^-|x|) for raw arrays: max(x, 0) + log(1 + e^-|x|), computed in place.

    e^-|x| is returned so that a backward can rebuild sigmoid(x) with ``sigmoid_from_exp``
    instead of a second exp.
    """
    xp = B.xp
    e = xp.abs(x)
    xp.negative(e, out=e)
    xp.exp(e, out=e)  # e^-|x|, in (0, 1]
    t = log1p_unit(e)  # log(1 + e^-|x|)
    t += xp.maximum(x, 0.0)
    return t, e


# ----------------------------------------------------------------------------- ops


class Softplus(Function):
    """y = log(1 + e^x); fast version of ops.elementwise.Softplus (keeps e^-|x| for the backward)"""

    def forward(self, x):
        y, self.e = softplus_and_exp(x)
        self.x = x
        return y

    def backward(self, grad_out):
        # dy/dx = sigmoid(x), from the saved e = e^-|x|
        return (grad_out * sigmoid_from_exp(self.x, self.e),)


class BernoulliLogProb(Function):
    """log p(x | logits) = x * l - softplus(l); fast version of ops.losses.BernoulliLogProb"""

    def forward(self, logits, x):
        if logits.shape != x.shape:
            broadcast_shapes("bernoulli_log_prob", logits.shape, x.shape)
        self.logits, self.x = logits, x
        softplus, self.e = softplus_and_exp(logits)  # e = e^-|l| is kept for the backward
        out = x * logits  # (broadcast shape)
        out -= softplus
        return out

    def backward(self, grad_out):
        # d/dl = x - sigmoid(l), d/dx = l
        gl = gx = None
        if self.needs_input_grad[0]:
            d = self.x - sigmoid_from_exp(self.logits, self.e)  # (broadcast shape)
            d *= grad_out
            gl = unbroadcast(d, self.logits.shape)
        if self.needs_input_grad[1]:
            gx = unbroadcast(grad_out * self.logits, self.x.shape)
        return gl, gx


# BENCHMARKS.md, "Importance-sampled test NLL, K = 5000, 10000 test images": the evaluation
# this path serves took 0.86 of PyTorch's time on the same weights. Without gradients the
# sum runs over cache-sized blocks, so no full-size per-pixel array is written to memory
# and read back. (A figure for the whole evaluation: the blocks were not timed alone.)

BLOCK_ELEMENTS = 1 << 17  # about 512 KB of float32: a block stays in cache


# BENCHMARKS.md, "Bernoulli log-likelihood: one log per 16 pixels": 1.49 and 1.46 times faster
# than a log per pixel on 512 and 128 rows of 784 (float32), as close to the exact sums; "The
# float64 row sums by products": 1.75 and 1.69 times in float64. Few full-size arrays: with
# five alive at once, glibc gave their memory back after every call and each call faulted it
# in again (1,536 page faults, 3.7 times slower).


def _bernoulli_rows(logits, x, keep_e: bool):
    """sum_d x_d l_d - softplus(l_d) over the last axis, and e = e^-|l| if asked (raw arrays).

    softplus(l) = max(l, 0) + log(1 + e^-|l|). On the cpu the sum of the log terms over a
    row is taken as logs of products of u = fl(1 + e) (``sum_log_by_products``): one log per
    16 pixels instead of one each. The correction c = d / u of ``log1p_by_log`` is left out
    here: it is below one unit in the last place of 1 per pixel, and a row's sum rounds by
    more (BENCHMARKS.md, "The row sums without the correction term", and for float64 "The
    float64 row sums by products").
    """
    if B.device == "gpu":  # log1p per pixel, native there (the products were not timed on one)
        return _bernoulli_rows_per_pixel(logits, x, keep_e)
    xp = B.xp
    e = xp.abs(logits)
    xp.negative(e, out=e)
    xp.exp(e, out=e)  # e^-|l|, in (0, 1]
    u = e + 1.0  # log(1 + e) = log(u) up to one unit in the last place of 1
    log_u = sum_log_by_products(u)  # (...,): sum_d log(u_d)
    xl = xp.greater(logits, 0, out=u)  # u's memory, no longer needed: [l > 0] as 1.0 or 0.0
    xp.subtract(x, xl, out=xl)
    xl *= logits  # (x - [l > 0]) l = x l - max(l, 0)
    return xl.sum(axis=-1) - log_u, (e if keep_e else None)


def _bernoulli_rows_per_pixel(logits, x, keep_e: bool):
    """The same sums from softplus per pixel (``softplus_and_exp``): the GPU's form."""
    softplus, e = softplus_and_exp(logits)
    xl = x * logits
    xl -= softplus
    return xl.sum(axis=-1), (e if keep_e else None)


class BernoulliLogLikelihood(Function):
    """log p(x | logits) = sum_d [x_d l_d - softplus(l_d)]; fast ops.losses.BernoulliLogLikelihood

    logits (..., B, D), x (B, D) -> (..., B). With gradients: one pass that keeps e^-|l|
    for the backward. Without (evaluation, importance sampling): cache-sized blocks.
    """

    def forward(self, logits, x):
        xp = B.xp
        check_trailing_shape("bernoulli_log_likelihood", ("logits", "x"), logits.shape, x.shape)
        self.logits, self.x = logits, x
        if any(self.needs_input_grad):  # training: one pass, keep e^-|l| for the backward
            out, self.e = _bernoulli_rows(logits, x, keep_e=True)
            return out
        lead = logits.shape[: logits.ndim - x.ndim]  # sample axes that x broadcasts over
        flat = logits.reshape((-1,) + x.shape)  # (M, B, D): a view
        out = xp.empty(flat.shape[:-1], dtype=xp.result_type(logits, x))  # (M, B)
        if x.ndim >= 2 and x.shape[0] > 1 and flat.shape[0] == 1:
            step = max(1, BLOCK_ELEMENTS // max(1, x[0].size))  # blocks of rows of x
            for r in range(0, x.shape[0], step):
                rows = slice(r, r + step)
                out[0, rows] = _bernoulli_rows(flat[0, rows], x[rows], False)[0]
        else:
            step = max(1, BLOCK_ELEMENTS // max(1, x.size))  # blocks of samples
            for m in range(0, flat.shape[0], step):
                out[m : m + step] = _bernoulli_rows(flat[m : m + step], x, False)[0]
        return out.reshape(lead + x.shape[:-1])

    def backward(self, grad_out):
        # d/dl_d = x_d - sigmoid(l_d) (times the upstream gradient of its row), d/dx_d = l_d
        gl = gx = None
        g = grad_out[..., None]  # (..., B, 1): each row's gradient spread over its D entries
        if self.needs_input_grad[0]:
            gl = self.x - sigmoid_from_exp(self.logits, self.e)  # from the saved e = e^-|l|
            gl *= g
        if self.needs_input_grad[1]:
            gx = unbroadcast(self.logits * g, self.x.shape)
        return gl, gx


# BENCHMARKS.md, "Measurements behind single decisions (AMD, 2026-12-01)", paragraph "Total
# correlation, one op": the plain estimate is eight ops over (B, B, D) arrays, each pass of
# which goes out to memory, and a β-TCVAE step at B = 512, D = 10 spent most of its time
# there. This op works on one latent dimension's (B, B) slice at a time, small enough to stay
# in cache, with every sum over the batch along a contiguous axis, and keeps only the softmax
# weights for the backward.


class TotalCorrelation(Function):
    """TC_i = log q(z_i) - sum_d log q(z_id), both from the batch; distributions.total_correlation

    z, mu, log_var (B, D) -> (B,). With p_dij = log N(z_id | mu_jd, e^(log_var_jd)):
        log q(z_i)   = logsumexp_j sum_d p_dij - log B,
        log q(z_id)  = logsumexp_j p_dij - log B.
    Backward: the gradient of TC_i in p_dij is G_dij = g_i (V_ij - W_dij), V and W the
    softmaxes over j of the joint and of each marginal; then through p_dij, with
    r = z_id - mu_jd and s = e^(-log_var_jd): dp/dz = -r s, dp/dmu = r s,
    dp/dlog_var = (r^2 s - 1) / 2.
    """

    def forward(self, z, mu, log_var):
        xp = B.xp
        if not (z.ndim == 2 and z.shape == mu.shape == log_var.shape):
            raise ValueError(
                f"total_correlation: z, mu and log_var must be (B, D) arrays of one shape, got "
                f"{z.shape}, {mu.shape} and {log_var.shape}"
            )
        b, d = z.shape
        self.zt, self.mut = z.T.copy(), mu.T.copy()  # (D, B): one row per latent dimension
        log_var_t = log_var.T.copy()
        self.prec = xp.exp(-log_var_t)  # (D, B): s_jd = 1 / sigma_jd^2
        self.w = xp.empty((d, b, b), dtype=z.dtype)  # the p_d, then the marginals' softmaxes W_d
        quad = xp.zeros((b, b), dtype=z.dtype)  # sum_d of r^2 s + log_var: the joint, up to -1/2
        log_marg = xp.empty((d, b), dtype=z.dtype)
        for k in range(d):  # one (B_i, B_j) slice at a time
            p = self.w[k]
            xp.subtract(self.zt[k][:, None], self.mut[k][None, :], out=p)  # r_ij = z_ik - mu_jk
            p *= p
            p *= self.prec[k]
            p += log_var_t[k]
            quad += p
            p *= -0.5  # p_kij + log(2 pi) / 2
            log_marg[k] = _log_sum_and_softmax(p)  # p is now W_k
        quad *= -0.5  # sum_d p_dij + D log(2 pi) / 2
        log_joint = _log_sum_and_softmax(quad)
        self.v = quad  # V
        half_log_2pi, log_b = 0.5 * B.LOG_2PI, math.log(b)  # the constants left out above
        log_joint -= d * half_log_2pi + log_b  # log q(z_i)
        log_marg -= half_log_2pi + log_b  # log q(z_id)
        return log_joint - log_marg.sum(axis=0)

    def backward(self, grad_out):
        # G = g_i (V_ij - W_kij); H = G r s; dz_ik = -sum_j H, dmu_jk = sum_i H,
        # dlog_var_jk = sum_i G (r^2 s - 1) / 2 = (sum_i H r - sum_i G) / 2
        xp = B.xp
        d, b = self.zt.shape
        gz, gmu, glv = (xp.empty((d, b), dtype=self.w.dtype) for _ in range(3))
        r, h = xp.empty((b, b), dtype=self.w.dtype), xp.empty((b, b), dtype=self.w.dtype)
        for k in range(d):
            g = self.w[k]  # W_k, overwritten by G_k: it is not needed again
            xp.subtract(self.v, g, out=g)
            g *= grad_out[:, None]
            xp.subtract(self.zt[k][:, None], self.mut[k][None, :], out=r)
            xp.multiply(g, r, out=h)
            h *= self.prec[k]
            gz[k] = -h.sum(axis=1)
            gmu[k] = h.sum(axis=0)
            h *= r
            glv[k] = 0.5 * (h.sum(axis=0) - g.sum(axis=0))
        return gz.T, gmu.T, glv.T


def _log_sum_and_softmax(a):
    """logsumexp of a over its last axis; a is overwritten by the softmax weights."""
    xp = B.xp
    top = a.max(axis=-1, keepdims=True)
    a -= top
    xp.exp(a, out=a)
    total = a.sum(axis=-1, keepdims=True)
    a /= total
    return (xp.log(total) + top)[..., 0]


# ----------------------------------------------------------------------------- Adam

# BENCHMARKS.md, "Measurements behind single decisions (AMD, 2026-12-01)", rows "Adam: 10
# passes on decayed sums vs 13 on moments": 1.82 times faster in float32, 1.21 in float64,
# over the eight parameter arrays of the 784-400-20 VAE (6.7e-8 and 8.9e-16 in the weights
# after ten steps). The row "Adam: 65536-element blocks vs whole arrays" is why the update
# runs over whole arrays.


def adam_on_decayed_sums(w, g, g_sum, g2_sum, tmp, b1: float, b2: float, step: float, eps: float):
    """One Adam update in place, in 10 passes over memory (raw arrays, any matching blocks).

    g_sum M and g2_sum V are decayed sums, M <- b1 M + g and V <- b2 V + g^2, so that the
    moments are m = (1 - b1) M and v = (1 - b2) V. Then
        lr m_hat / (sqrt(v_hat) + eps) = step M / (sqrt(V) + eps'),
        r = sqrt((1 - b2) / (1 - b2^t)),  step = lr (1 - b1) / ((1 - b1^t) r),  eps' = eps / r,
    every constant folded into two numbers (``Adam.step`` computes them once per step).
    tmp is a scratch array of w's shape, reused so that a step allocates nothing.
    """
    xp = B.xp
    g_sum *= b1
    g_sum += g  # M <- b1 M + g
    g2_sum *= b2
    xp.multiply(g, g, out=tmp)
    g2_sum += tmp  # V <- b2 V + g^2
    xp.sqrt(g2_sum, out=tmp)
    tmp += eps
    xp.divide(g_sum, tmp, out=tmp)
    tmp *= step
    w -= tmp  # w <- w - step M / (sqrt(V) + eps') = w - lr m_hat / (sqrt(v_hat) + eps)


# BENCHMARKS.md, "Subnormal numbers (Intel, 2026-12-02)": 20 Adam steps on a 1024 x 256 weight
# with a quarter of its rows at M = 1e-39 took 45 ms with the flush and 96 ms without; lesson
# 04 took 677 s instead of 862 s, with the same printed numbers. The flush is three passes
# over M, a fifth of an Adam step when nothing is subnormal, so it runs every FLUSH_EVERY
# steps (BENCHMARKS.md, "The subnormal flush every 8 steps"): an entry that decays below
# the normal range is then slow for at most 8 steps instead of about 150.
FLUSH_EVERY = 8


def flush_subnormal(a, tmp, mask) -> None:
    """Set the entries of a whose magnitude is below the smallest normal float to 0, in place.

    tmp (a's shape and dtype) and mask (a's shape, bool) are scratch arrays. A weight whose
    gradient is mostly 0 (the first layer's row of a pixel that is rarely on) sees its M
    decay by b1 per step into the subnormal range and stay there some 150 steps; NumPy's
    arithmetic on subnormal numbers is many times slower. The zeroed entries moved their
    weight by less than tiny / eps anyway.
    """
    B.xp.abs(a, out=tmp)
    B.xp.less(tmp, B.xp.finfo(a.dtype).tiny, out=mask)
    B.xp.copyto(a, 0, where=mask)


class Adam(optim.Adam):
    """Adam (Kingma & Ba 2015) on decayed sums; the fast version of ``minivae.optim.Adam``.

    The same update as the plain class (``adam_on_decayed_sums`` says why), with the first
    moment's subnormal entries flushed to 0 after every FLUSH_EVERY-th update
    (``flush_subnormal``; counted by ``steps``, so a resumed run flushes where it would have).
    Its state is M and V (``g_sum``, ``g2_sum``); its state dict saves them under those
    names, and ``load_state_dict`` also reads the plain class's m and v (M = m / (1 - b1)).
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, lr, betas, eps)
        self.g_sum, self.g2_sum = self.m, self.v  # the zero arrays, now M and V
        del self.m, self.v  # no moments m, v here: (1 - b1) M and (1 - b2) V are them
        self.scratch = [B.xp.empty_like(p.data) for p in self.params]
        self.subnormal = [B.xp.empty(p.shape, dtype=bool) for p in self.params]

    def step(self) -> None:
        t = self.steps + 1  # the step about to be taken
        r = math.sqrt((1.0 - self.b2) / (1.0 - self.b2**t))
        self._step_size = self.lr * (1.0 - self.b1) / ((1.0 - self.b1**t) * r)
        self._eps = self.eps / r
        super().step()

    def update(self, k, w, g):
        adam_on_decayed_sums(w, g, self.g_sum[k], self.g2_sum[k], self.scratch[k],
                             self.b1, self.b2, self._step_size, self._eps)  # fmt: skip
        if self.steps % FLUSH_EVERY == 0:
            flush_subnormal(self.g_sum[k], self.scratch[k], self.subnormal[k])

    def state_arrays(self):
        state = {f"g_sum.{k}": a for k, a in enumerate(self.g_sum)}
        state.update({f"g2_sum.{k}": a for k, a in enumerate(self.g2_sum)})
        return state

    def load_state_dict(self, state: dict) -> None:
        """Also reads the plain Adam's moments: M = m / (1 - b1), V = v / (1 - b2)."""
        state = dict(state)
        for k in range(len(self.params)):
            if f"state.g_sum.{k}" not in state and f"state.m.{k}" in state:
                state[f"state.g_sum.{k}"] = state.pop(f"state.m.{k}") / (1.0 - self.b1)
            if f"state.g2_sum.{k}" not in state and f"state.v.{k}" in state:
                state[f"state.g2_sum.{k}"] = state.pop(f"state.v.{k}") / (1.0 - self.b2)
        optim.Optimizer.load_state_dict(self, state)
