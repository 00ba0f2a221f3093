"""Reference answers: each ``*_backward`` is minivae's own backward pass for that op.

Without ``--answers``, tests/exercises/test_gradients.py checks these, so the
exercise machinery and the library's backward passes are tested together. Each
answer makes the minivae op, runs its forward (which saves what the backward
needs), and calls its backward, exactly as ``Tensor.backward`` would:

    op = ReLU(); op.needs_input_grad = (True,); op.forward(x); op.backward(grad_out)

The M2 entropy has no op of its own in minivae: its answer composes minivae ops
(softmax, log_softmax, mul, sum, neg) and lets the engine's backward walk them.
Signatures are those of tests/exercises/template.py.
"""

from __future__ import annotations

from minivae import ops
from minivae.ops.binary import Add
from minivae.ops.elementwise import ReLU, Sigmoid, Softplus
from minivae.ops.gaussian import KLNormalStd, Reparameterize
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
