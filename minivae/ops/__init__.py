"""Every op of the engine, one family per file; each forward sits beside its backward.

``__all__`` names every op function, once, grouped by file; ``OPS`` is the same list less
``OPS`` and the two broadcasting helpers, and the test catalogue must cover every name in
it. A few ops have a measured fast version in ``minivae.fast``, which their function picks
while ``minivae.fast.enabled`` is on.
"""

from minivae.ops.binary import add, broadcast_shapes, div, mul, sub, unbroadcast
from minivae.ops.elementwise import (
    exp,
    leaky_relu,
    log,
    neg,
    pow,
    relu,
    sigmoid,
    softplus,
    sqrt,
    tanh,
)
from minivae.ops.gaussian import (
    cholesky_factor,
    full_gaussian_log_prob,
    kl_full_std,
    kl_normal_normal,
    kl_normal_std,
    reparameterize,
    reparameterize_full,
)
from minivae.ops.losses import (
    bernoulli_log_likelihood,
    bernoulli_log_prob,
    cross_entropy,
    gaussian_log_prob,
)
from minivae.ops.matmul import linear, matmul
from minivae.ops.reduce import log_softmax, logsumexp, max, mean, softmax, sum
from minivae.ops.shape import concatenate, getitem, reshape, stack, transpose

__all__ = [  # noqa: RUF022 - in the order of the lectures, not sorted
    "add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt",
    "relu", "leaky_relu", "tanh", "sigmoid", "softplus",
    "sum", "mean", "max", "logsumexp", "log_softmax", "softmax",
    "reshape", "transpose", "getitem", "concatenate", "stack",
    "matmul", "linear",
    "bernoulli_log_prob", "bernoulli_log_likelihood", "gaussian_log_prob", "cross_entropy",
    "reparameterize", "kl_normal_std", "kl_normal_normal",
    "cholesky_factor", "reparameterize_full", "kl_full_std", "full_gaussian_log_prob",
    "OPS", "unbroadcast", "broadcast_shapes",
]  # fmt: skip

OPS = tuple(name for name in __all__ if name not in ("OPS", "unbroadcast", "broadcast_shapes"))
