"""Reference answers of every exercise; without ``--answers`` the tests check these.

Gradient exercises: each ``*_backward`` is minivae's own backward pass for that op.
It makes the minivae op, runs its forward (which saves what the backward needs),
and calls its backward, exactly as ``Tensor.backward`` would:

    op = ReLU(); op.needs_input_grad = (True,); op.forward(x); op.backward(grad_out)

so the exercise machinery and the library's backward passes are tested together.
The M2 entropy and bound have no op of their own: their answers compose minivae
ops and let the engine's backward walk them.

Value exercises: plain NumPy formulas in float64, written apart from minivae, so
that their check (against minivae's functions) tests the library too. They are
the worked solutions of tests/exercises/SOLUTIONS.md in code.

Engine exercises: a topological sort by counting users (Kahn's algorithm, not the
depth-first search of minivae.tensor) and the walk over it.

Signatures are those of tests/exercises/template.py.
"""

from __future__ import annotations

import math

from minivae import ops
from minivae.backend import LOG_2PI, np
from minivae.distributions import DiagonalGaussian
from minivae.ops.binary import Add
from minivae.ops.elementwise import ReLU, Sigmoid, Softplus
from minivae.ops.gaussian import (
    KLFullStd,
    KLNormalNormal,
    KLNormalStd,
    Reparameterize,
    ReparameterizeFull,
)
from minivae.ops.losses import BernoulliLogProb, CrossEntropy, GaussianLogProb
from minivae.ops.matmul import Linear
from minivae.ops.reduce import LogSumExp, Softmax, Sum
from minivae.tensor import Tensor


def _backward(op_class, grad_out, inputs, needs, **options) -> tuple:
    """Run one op's forward then its backward; the gradients of the inputs marked in ``needs``."""
    op = op_class()
    op.needs_input_grad = needs
    op.forward(*inputs, **options)
    grads = op.backward(grad_out)
    if not isinstance(grads, tuple):
        grads = (grads,)
    return tuple(g for g, need in zip(grads, needs) if need)


def dense_backward(grad_out, x, W, b):
    return _backward(Linear, grad_out, (x, W, b), (True, True, True))


def relu_backward(grad_out, x):
    return _backward(ReLU, grad_out, (x,), (True,))


def softplus_backward(grad_out, x):
    return _backward(Softplus, grad_out, (x,), (True,))


def sigmoid_backward(grad_out, x):
    return _backward(Sigmoid, grad_out, (x,), (True,))


def broadcast_add_backward(grad_out, a, b):
    return _backward(Add, grad_out, (a, b), (True, True))


def sum_axis_backward(grad_out, x):
    return _backward(Sum, grad_out, (x,), (True,), axis=1)


def bernoulli_log_prob_backward(grad_out, logits, x):
    return _backward(BernoulliLogProb, grad_out, (logits, x), (True, False))


def gaussian_log_prob_backward(grad_out, x, mean, log_var):
    return _backward(GaussianLogProb, grad_out, (x, mean, log_var), (False, True, True))


def reparameterize_backward(grad_out, mu, log_var, eps):
    return _backward(Reparameterize, grad_out, (mu, log_var, eps), (True, True, False))


def kl_normal_std_backward(grad_out, mu, log_var):
    return _backward(KLNormalStd, grad_out, (mu, log_var), (True, True))


def logsumexp_backward(grad_out, x):
    return _backward(LogSumExp, grad_out, (x,), (True,), axis=1)


def importance_weights_backward(grad_out, log_w):
    return _backward(Softmax, grad_out, (log_w,), (True,), axis=1)


def cross_entropy_backward(grad_out, logits, labels):
    return _backward(CrossEntropy, grad_out, (logits, labels), (True, False))


def entropy_backward(grad_out, logits):
    # H = -sum_y q_y log q_y, built from minivae ops; the engine walks their backward passes
    t = Tensor(logits, requires_grad=True)
    q = ops.softmax(t, axis=1)  # (B, C)
    log_q = ops.log_softmax(t, axis=1)  # (B, C)
    H = -(q * log_q).sum(axis=1)  # (B,)
    H.backward(grad_out)
    return (t.grad,)


# ----------------------------------------------------------------------------- more gradients


def kl_diag_backward(grad_out, mu_q, log_var_q, mu_p, log_var_p):
    return _backward(KLNormalNormal, grad_out, (mu_q, log_var_q, mu_p, log_var_p),
                     (True, True, True, True))  # fmt: skip


def reparameterize_full_backward(grad_out, mu, L, eps):
    return _backward(ReparameterizeFull, grad_out, (mu, L, eps), (True, True, False))


def kl_full_backward(grad_out, mu, L):
    return _backward(KLFullStd, grad_out, (mu, L), (True, True))


def m2_unlabelled_bound_backward(grad_out, logits, bounds):
    # U = sum_y q L + H(q), built from minivae ops; the engine walks their backward passes
    t, b = Tensor(logits, requires_grad=True), Tensor(bounds, requires_grad=True)
    q = ops.softmax(t, axis=1)  # (B, C)
    U = (q * b).sum(axis=1) - (q * ops.log_softmax(t, axis=1)).sum(axis=1)  # (B,)
    U.backward(grad_out)
    return t.grad, b.grad


def entropy_diag_backward(grad_out, mu, log_var):
    m, v = Tensor(mu, requires_grad=True), Tensor(log_var, requires_grad=True)
    DiagonalGaussian(m, v).entropy().backward(grad_out)
    d_mu = np.zeros_like(mu) if m.grad is None else m.grad  # H never reads mu: no gradient
    return d_mu, v.grad


# ----------------------------------------------------------------------------- value exercises


def _softplus(a):
    return np.logaddexp(0.0, a)


def _log_normal(z, mean, log_var):
    """log N(z | mean, e^log_var), elementwise."""
    return -0.5 * (LOG_2PI + log_var + (z - mean) ** 2 * np.exp(-log_var))


def _log_mean_exp(a, axis):
    m = a.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(a - m).mean(axis=axis, keepdims=True))).squeeze(axis)


def _log_weights(x, mu, log_var, eps, W, b):
    """log w = log p(x|z) + log p(z) - log q(z|x) at z = mu + sigma eps: (..., B)."""
    z = mu + np.exp(0.5 * log_var) * eps  # (..., B, J)
    logits = z @ W + b  # (..., B, D)
    log_px_z = (x * logits - _softplus(logits)).sum(axis=-1)  # Bernoulli, summed over pixels
    log_pz = _log_normal(z, 0.0, 0.0).sum(axis=-1)
    log_qz = _log_normal(z, mu, log_var).sum(axis=-1)
    return log_px_z + log_pz - log_qz


def elbo_bernoulli(x, mu, log_var, eps, W, b):
    z = mu + np.exp(0.5 * log_var) * eps  # (B, J)
    logits = z @ W + b  # (B, D)
    recon = (x * logits - _softplus(logits)).sum(axis=1)  # (B,)
    kl = 0.5 * (mu**2 + np.exp(log_var) - 1.0 - log_var).sum(axis=1)  # (B,)
    return recon - kl


def elbo_samples(x, mu, log_var, eps, W, b):
    return _log_weights(x, mu, log_var, eps, W, b).mean(axis=0)  # (L, B) -> (B,)


def kl_diag(mu_q, log_var_q, mu_p, log_var_p):
    var_ratio = np.exp(log_var_q - log_var_p)
    mean_term = (mu_q - mu_p) ** 2 * np.exp(-log_var_p)
    return 0.5 * (log_var_p - log_var_q + var_ratio + mean_term - 1.0).sum(axis=1)


def kl_full(mu, L):
    d = L.shape[-1]
    diag = np.diagonal(L, axis1=1, axis2=2)  # (B, D)
    trace = (np.tril(L) ** 2).sum(axis=(1, 2))  # tr(L L^T)
    return 0.5 * (trace + (mu**2).sum(axis=1) - d - 2.0 * np.log(diag).sum(axis=1))


def entropy_diag(mu, log_var):
    return 0.5 * (LOG_2PI + 1.0 + log_var).sum(axis=1)


def gaussian_decoder_alpha(sigma, d):
    return 1.0 / (2.0 * sigma**2), 0.5 * d * math.log(2.0 * math.pi * sigma**2)


def log_px_importance(x, mu, log_var, eps, W, b):
    return _log_mean_exp(_log_weights(x, mu, log_var, eps, W, b), axis=0)  # (K, B) -> (B,)


def iwae_weights(log_w):
    e = np.exp(log_w - log_w.max(axis=0, keepdims=True))  # (K, B), the largest is 1
    return e / e.sum(axis=0, keepdims=True)


def iwae_toy(x, sigma_x, q_mean, q_std, eps):
    z = q_mean + q_std * eps  # (R, K)
    log_w = (_log_normal(x, z, 2.0 * math.log(sigma_x)) + _log_normal(z, 0.0, 0.0)
             - _log_normal(z, q_mean, 2.0 * math.log(q_std)))  # fmt: skip
    return _log_mean_exp(log_w, axis=1)  # (R,)


def score_function(phi, eps):
    x = phi**3 + math.exp(phi) * eps  # (N,) samples of q_phi
    f = x**2 + np.sin(x)
    score = eps**2 - 1.0 + 3.0 * phi**2 * eps * math.exp(-phi)  # d/dphi log q_phi(x), x fixed
    dx_dphi = 3.0 * phi**2 + math.exp(phi) * eps
    return f * score, (2.0 * x + np.cos(x)) * dx_dphi


def m2_unlabelled_bound(logits, bounds):
    m = logits.max(axis=1, keepdims=True)
    log_q = logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))  # (B, C)
    q = np.exp(log_q)
    return (q * bounds).sum(axis=1) - (q * log_q).sum(axis=1)


def m2_optimal_q(bounds):
    m = bounds.max(axis=1, keepdims=True)
    e = np.exp(bounds - m)  # (B, C)
    q = e / e.sum(axis=1, keepdims=True)  # q*(y|x) = softmax_y L(x, y)
    return q, m[:, 0] + np.log(e.sum(axis=1))  # U(q*) = log sum_y exp L(x, y)


# ----------------------------------------------------------------------------- engine exercises


def topological_order(root):
    # Kahn's algorithm: count each tensor's users, release it when all of them are done
    users = {id(root): 0}
    nodes = {id(root): root}
    stack = [root]
    while stack:  # first pass: every tensor that needs a gradient, and its number of users
        node = stack.pop()
        if node._ctx is None:
            continue
        for parent in node._ctx.parents:
            if not parent.requires_grad:
                continue
            if id(parent) not in nodes:
                nodes[id(parent)] = parent
                users[id(parent)] = 0
                stack.append(parent)
            users[id(parent)] += 1
    order, ready = [], [root]
    while ready:
        node = ready.pop()
        order.append(node)
        if node._ctx is None:
            continue
        for parent in node._ctx.parents:
            if parent.requires_grad:
                users[id(parent)] -= 1
                if users[id(parent)] == 0:
                    ready.append(parent)
    return order


def backward_walk(root, grad_out):
    grads = {id(root): np.asarray(grad_out, dtype=root.data.dtype)}
    for node in topological_order(root):
        g = grads.pop(id(node), None)
        if g is None:
            continue
        if node._ctx is None:  # a leaf: keep (add to) its gradient
            node.grad = g if node.grad is None else node.grad + g
            continue
        in_grads = node._ctx.backward(g)
        if not isinstance(in_grads, tuple):
            in_grads = (in_grads,)
        for parent, pg in zip(node._ctx.parents, in_grads):
            if pg is None or not parent.requires_grad:
                continue
            pg = np.asarray(pg)
            grads[id(parent)] = pg if id(parent) not in grads else grads[id(parent)] + pg
