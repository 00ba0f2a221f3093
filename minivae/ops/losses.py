"""Fused, numerically stable log-likelihoods, per element (sum them with the reductions).

Each is one op with its own backward, so it stays finite at logits of +-1e4
where the plain composition (log of a sigmoid) overflows.
"""

from __future__ import annotations

from minivae import backend as B
from minivae import fast
from minivae.ops.binary import broadcast_shapes, check_trailing_shape, unbroadcast
from minivae.ops.elementwise import stable_sigmoid, stable_softplus
from minivae.ops.reduce import _log_softmax
from minivae.tensor import Function


class BernoulliLogProb(Function):
    """log p(x | logits) = x * l - softplus(l), elementwise, for x in [0, 1]"""

    def forward(self, logits, x):
        if logits.shape != x.shape:
            broadcast_shapes("bernoulli_log_prob", logits.shape, x.shape)
        self.logits, self.x = logits, x
        return x * logits - stable_softplus(logits)  # (broadcast shape)

    def backward(self, grad_out):
        # d/dl = x - sigmoid(l), d/dx = l
        gl = gx = None
        if self.needs_input_grad[0]:
            gl = unbroadcast(grad_out * (self.x - stable_sigmoid(self.logits)), self.logits.shape)
        if self.needs_input_grad[1]:
            gx = unbroadcast(grad_out * self.logits, self.x.shape)
        return gl, gx


class BernoulliLogLikelihood(Function):
    """log p(x | logits) = sum_d [x_d l_d - softplus(l_d)]: the per-example sum over the last axis

    logits (..., B, D), x (B, D) -> (..., B): bernoulli_log_prob(...).sum(-1) as one op.
    """

    def forward(self, logits, x):
        check_trailing_shape("bernoulli_log_likelihood", ("logits", "x"), logits.shape, x.shape)
        self.logits, self.x = logits, x
        return (x * logits - stable_softplus(logits)).sum(axis=-1)

    def backward(self, grad_out):
        # d/dl_d = x_d - sigmoid(l_d), d/dx_d = l_d, each times the upstream gradient of its row
        g = grad_out[..., None]  # (..., B, 1): each row's gradient spread over its D entries
        gl = gx = None
        if self.needs_input_grad[0]:
            gl = (self.x - stable_sigmoid(self.logits)) * g  # (..., B, D), the shape of logits
        if self.needs_input_grad[1]:
            gx = unbroadcast(self.logits * g, self.x.shape)  # summed over the sample axes
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
    """x * l - softplus(l); minivae.fast.BernoulliLogProb while minivae.fast.enabled."""
    return (fast.BernoulliLogProb if fast.enabled else BernoulliLogProb).apply(logits, x)


def bernoulli_log_likelihood(logits, x):
    """sum_d [x_d l_d - softplus(l_d)]; minivae.fast.BernoulliLogLikelihood while fast.enabled."""
    op = fast.BernoulliLogLikelihood if fast.enabled else BernoulliLogLikelihood
    return op.apply(logits, x)


def gaussian_log_prob(x, mean, log_var):
    return GaussianLogProb.apply(x, mean, log_var)


def cross_entropy(logits, labels):
    if not hasattr(labels, "_ctx"):  # keep integer labels integer (not the default float dtype)
        labels = B.xp.asarray(labels)
    return CrossEntropy.apply(logits, labels)
