"""Fused, numerically stable log-likelihoods, per element (sum them with the reductions).

Each is one op with its own backward, so it stays finite at logits of +-1e4
where the plain composition (log of a sigmoid) overflows.
"""

from __future__ import annotations

from minivae import backend as B
from minivae.ops.binary import broadcast_shapes, unbroadcast
from minivae.ops.elementwise import sigmoid_from_exp, softplus_and_exp
from minivae.ops.reduce import _log_softmax
from minivae.tensor import Function


class BernoulliLogProb(Function):
    """log p(x | logits) = x * l - softplus(l), elementwise, for x in [0, 1]"""

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
            sig = sigmoid_from_exp(self.logits, self.e)  # from the saved e = e^-|l|
            d = self.x - sig  # (broadcast shape)
            d *= grad_out
            gl = unbroadcast(d, self.logits.shape)
        if self.needs_input_grad[1]:
            gx = unbroadcast(grad_out * self.logits, self.x.shape)
        return gl, gx


BLOCK_ELEMENTS = 1 << 17  # about 512 KB of float32: a block stays in cache


def _bernoulli_rows(logits, x, keep_e: bool):
    """sum_d x_d l_d - softplus(l_d) over the last axis, and e = e^-|l| if asked (raw arrays)."""
    softplus, e = softplus_and_exp(logits)
    xl = x * logits
    xl -= softplus
    return xl.sum(axis=-1), (e if keep_e else None)


class BernoulliLogLikelihood(Function):
    """log p(x | logits) = sum_d [x_d l_d - softplus(l_d)]: the per-example sum over the last axis

    logits (..., B, D), x (B, D) -> (..., B). The fused fast path of
    bernoulli_log_prob(...).sum(-1): without gradients (evaluation, importance
    sampling) it works through cache-sized blocks and never stores a full-size array.
    """

    def forward(self, logits, x):
        xp = B.xp
        if x.ndim < 1 or logits.shape[logits.ndim - x.ndim:] != x.shape:
            raise ValueError(
                f"bernoulli_log_likelihood: logits of shape {logits.shape} do not end with the "
                f"shape of x {x.shape}"
            )
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
                out[0, r : r + step] = _bernoulli_rows(flat[0, r : r + step], x[r : r + step], False)[0]
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
            sig = sigmoid_from_exp(self.logits, self.e)  # from the saved e = e^-|l|
            d = self.x - sig
            d *= g
            gl = d
        if self.needs_input_grad[1]:
            gx = unbroadcast(self.logits * g, self.x.shape)
        return gl, gx


class GaussianLogProb(Function):
    """log N(x | m, e^v) = -(log 2pi + v + (x - m)^2 e^-v) / 2, elementwise (v = log variance)"""

    def forward(self, x, mean, log_var):
        shape = broadcast_shapes("gaussian_log_prob", x.shape, mean.shape)
        broadcast_shapes("gaussian_log_prob", shape, log_var.shape)
        self.shapes = (x.shape, mean.shape, log_var.shape)
        self.diff = x - mean
        self.inv_var = B.xp.exp(-log_var)
        self.sq = self.diff * self.diff * self.inv_var  # (x - m)^2 / sigma^2
        return -0.5 * (B.LOG_2PI + log_var + self.sq)

    def backward(self, grad_out):
        # d/dx = -(x - m) / s^2, d/dm = (x - m) / s^2, d/dv = ((x - m)^2 / s^2 - 1) / 2
        gx = gm = gv = None
        if self.needs_input_grad[0] or self.needs_input_grad[1]:
            dm = grad_out * self.diff * self.inv_var
            if self.needs_input_grad[0]:
                gx = unbroadcast(-dm, self.shapes[0])
            if self.needs_input_grad[1]:
                gm = unbroadcast(dm, self.shapes[1])
        if self.needs_input_grad[2]:
            gv = unbroadcast(grad_out * 0.5 * (self.sq - 1.0), self.shapes[2])
        return gx, gm, gv


class CrossEntropy(Function):
    """loss_n = -log softmax(logits_n)[y_n] = logsumexp(logits_n) - logits_n[y_n], per example"""

    def forward(self, logits, labels):
        xp = B.xp
        if logits.ndim != 2:
            raise ValueError(f"cross_entropy: logits must be (batch, classes), got {logits.shape}")
        if labels.shape != (logits.shape[0],):
            raise ValueError(
                f"cross_entropy: labels of shape {labels.shape} for logits of shape {logits.shape}; "
                f"expected ({logits.shape[0]},)"
            )
        if labels.dtype.kind not in "iu":
            raise ValueError(f"cross_entropy: labels must be integers, got dtype {labels.dtype}")
        n_classes = logits.shape[1]
        if labels.size and not bool(((labels >= 0) & (labels < n_classes)).all()):  # one device read
            raise ValueError(
                f"cross_entropy: labels must lie in [0, {n_classes}), got values from "
                f"{int(labels.min())} to {int(labels.max())}"
            )
        rows = xp.arange(logits.shape[0])
        self.log_p = _log_softmax(logits, (1,))  # (B, C)
        self.labels, self.rows = labels, rows
        return -self.log_p[rows, labels]

    def backward(self, grad_out):
        # d/dlogits = softmax(logits) - onehot(y)
        g = B.xp.exp(self.log_p)
        g[self.rows, self.labels] -= 1.0
        return g * grad_out[:, None], None


def bernoulli_log_prob(logits, x):
    return BernoulliLogProb.apply(logits, x)


def bernoulli_log_likelihood(logits, x):
    return BernoulliLogLikelihood.apply(logits, x)


def gaussian_log_prob(x, mean, log_var):
    return GaussianLogProb.apply(x, mean, log_var)


def cross_entropy(logits, labels):
    if not hasattr(labels, "_ctx"):  # keep integer labels integer (not the default float dtype)
        labels = B.xp.asarray(labels)
    return CrossEntropy.apply(logits, labels)
