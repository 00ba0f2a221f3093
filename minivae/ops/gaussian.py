"""Gaussian ops of the VAE: reparameterization, analytic KL, full covariance through Cholesky.

The encoder outputs a mean mu and a log-variance v = log sigma^2. Every op below
reads v through ``std_from_log_var`` (sigma = e^(v/2)), the one place that turns
the parameter into a standard deviation, so the sampler and the KL can never
disagree about what v means (Computational Intelligence Lab, Series 9, Problem 1.7;
docs/DESIGN.md, "σ from log-variance").

The noise eps is an input, drawn outside (by ``minivae.distributions``), so a
test can fix it and every op here is a deterministic function with a backward.

Shapes: diagonal ops take mu, v (B, D) and noise (B, D) or (L, B, D) for L samples
(broadcasting, undone by ``unbroadcast`` in backward). The KLs sum over the last
axis: (B, D) -> (B,). Full-covariance ops take a Cholesky factor L (B, D, D); only
its lower triangle is read (entries above the diagonal get zero gradient), and its
diagonal must be positive, which ``cholesky_factor`` guarantees.
"""

from __future__ import annotations

from minivae import backend as B
from minivae.ops.binary import broadcast_shapes, unbroadcast
from minivae.tensor import Function


def std_from_log_var(log_var):
    """sigma = exp(log sigma^2 / 2) (raw arrays): the one reading of the log-variance."""
    return B.xp.exp(0.5 * log_var)


def _full(op: str, *shapes) -> tuple:
    """The broadcast shape of several inputs, or a ValueError naming the op and the shapes."""
    out = shapes[0]
    for s in shapes[1:]:
        out = broadcast_shapes(op, out, s)
    return tuple(out)


def _expand_last(grad_out, shape):
    """grad_out (...,) of a sum over the last axis, copied back along that axis to ``shape``."""
    return B.xp.broadcast_to(grad_out[..., None], shape)


def _at_full(a, full):
    """a broadcast to the full shape (a view), or a itself when it already has it."""
    return a if a.shape == full else B.xp.broadcast_to(a, full)


class Reparameterize(Function):
    """z = mu + exp(v / 2) * eps (v = log sigma^2), elementwise with broadcasting"""

    def forward(self, mu, log_var, eps):
        _full("reparameterize", mu.shape, log_var.shape, eps.shape)
        self.shapes = (mu.shape, log_var.shape, eps.shape)
        self.std = std_from_log_var(log_var)
        self.eps = eps
        return mu + self.std * eps

    def backward(self, grad_out):
        # dz/dmu = 1, dz/dv = eps * sigma / 2, dz/deps = sigma
        gm = gv = ge = None
        if self.needs_input_grad[0]:
            gm = unbroadcast(grad_out, self.shapes[0])
        if self.needs_input_grad[1]:
            gv = unbroadcast(grad_out * self.eps * (0.5 * self.std), self.shapes[1])
        if self.needs_input_grad[2]:
            ge = unbroadcast(grad_out * self.std, self.shapes[2])
        return gm, gv, ge


class KLNormalStd(Function):
    """KL(N(mu, e^v) || N(0, 1)) = 1/2 sum_d (mu^2 + e^v - 1 - v), summed over the last axis"""

    def forward(self, mu, log_var):
        full = _full("kl_normal_std", mu.shape, log_var.shape)
        if not full:
            raise ValueError("kl_normal_std: needs inputs with a last (latent) axis, got scalars")
        self.full, self.mu, self.log_var = full, mu, log_var
        std = std_from_log_var(log_var)
        self.var = std * std  # sigma^2, read the same way as the sampler reads it
        terms = mu * mu + self.var - 1.0 - log_var
        return 0.5 * _at_full(terms, full).sum(axis=-1)

    def backward(self, grad_out):
        # dKL/dmu = mu, dKL/dv = (e^v - 1) / 2
        g = grad_out[..., None]  # (..., 1): each example's gradient along its latent axis
        gm = gv = None
        if self.needs_input_grad[0]:
            gm = unbroadcast(_at_full(g * self.mu, self.full), self.mu.shape)
        if self.needs_input_grad[1]:
            gv = unbroadcast(_at_full(g * (0.5 * (self.var - 1.0)), self.full), self.log_var.shape)
        return gm, gv


class KLNormalNormal(Function):
    """KL(N(m, e^v) || N(n, e^w)) = 1/2 sum_d (w - v + (e^v + (m - n)^2) e^-w - 1), last axis"""

    def forward(self, mu_q, log_var_q, mu_p, log_var_p):
        shapes = (mu_q.shape, log_var_q.shape, mu_p.shape, log_var_p.shape)
        full = _full("kl_normal_normal", *shapes)
        if not full:
            raise ValueError("kl_normal_normal: needs inputs with a last (latent) axis, got scalars")
        self.full, self.shapes = full, shapes
        std_q, std_p = std_from_log_var(log_var_q), std_from_log_var(log_var_p)
        self.var_q, self.var_p = std_q * std_q, std_p * std_p
        self.diff = mu_q - mu_p
        self.ratio = (self.var_q + self.diff * self.diff) / self.var_p
        terms = log_var_p - log_var_q + self.ratio - 1.0
        return 0.5 * B.xp.broadcast_to(terms, full).sum(axis=-1)

    def backward(self, grad_out):
        # dKL/dm = (m - n) / e^w = -dKL/dn, dKL/dv = (e^(v - w) - 1) / 2,
        # dKL/dw = (1 - (e^v + (m - n)^2) e^-w) / 2
        g = _expand_last(grad_out, self.full)
        need = self.needs_input_grad
        gmq = gvq = gmp = gvp = None
        if need[0] or need[2]:
            dm = g * (self.diff / self.var_p)
            gmq = unbroadcast(dm, self.shapes[0]) if need[0] else None
            gmp = unbroadcast(-dm, self.shapes[2]) if need[2] else None
        if need[1]:
            gvq = unbroadcast(g * (0.5 * (self.var_q / self.var_p - 1.0)), self.shapes[1])
        if need[3]:
            gvp = unbroadcast(g * (0.5 * (1.0 - self.ratio)), self.shapes[3])
        return gmq, gvq, gmp, gvp


# ----------------------------------------------------------------------------- full covariance


def _tril_mask(d: int, dtype):
    """(d, d) array with ones on and below the diagonal, zeros above."""
    return B.xp.tri(d, dtype=dtype)


def _diagonal(a):
    """The diagonals of a stack of square matrices: (..., D, D) -> (..., D)."""
    return B.xp.diagonal(a, axis1=-2, axis2=-1)


def _check_square(op: str, L):
    if L.ndim < 2 or L.shape[-1] != L.shape[-2]:
        raise ValueError(f"{op}: L must be a stack of square matrices (..., D, D), got shape {L.shape}")


def _check_positive_diagonal(op: str, L):
    diag = _diagonal(L)
    if diag.size and not bool((diag > 0).all()):
        raise ValueError(
            f"{op}: the diagonal of the Cholesky factor L must be positive, got a smallest "
            f"diagonal entry of {float(diag.min())} (build L with cholesky_factor)"
        )


class CholeskyFactor(Function):
    """L = strict lower triangle from the offdiag entries (row by row) + diag(exp(log_diag))"""

    def forward(self, log_diag, offdiag):
        xp = B.xp
        d = log_diag.shape[-1] if log_diag.ndim else 0
        n_off = d * (d - 1) // 2
        if log_diag.ndim < 1 or offdiag.shape != log_diag.shape[:-1] + (n_off,):
            raise ValueError(
                f"cholesky_factor: log_diag of shape {log_diag.shape} needs offdiag of shape "
                f"{log_diag.shape[:-1] + (n_off,)} (D (D - 1) / 2 = {n_off} entries below the "
                f"diagonal, row by row), got {offdiag.shape}"
            )
        self.rows, self.cols = xp.tril_indices(d, -1)  # the entries below the diagonal, row by row
        self.idx = xp.arange(d)
        self.diag = xp.exp(log_diag)  # (..., D), positive
        L = xp.zeros(log_diag.shape + (d,), dtype=log_diag.dtype)  # (..., D, D)
        L[..., self.rows, self.cols] = offdiag
        L[..., self.idx, self.idx] = self.diag
        return L

    def backward(self, grad_out):
        # dL_dd/dlog_diag_d = exp(log_diag_d), dL_ij/doffdiag_k = 1 where (i, j) is entry k
        g_diag = g_off = None
        if self.needs_input_grad[0]:
            g_diag = grad_out[..., self.idx, self.idx] * self.diag
        if self.needs_input_grad[1]:
            g_off = grad_out[..., self.rows, self.cols]
        return g_diag, g_off


class ReparameterizeFull(Function):
    """z = mu + L eps with L lower-triangular (Sigma = L L^T), batched over leading axes"""

    def forward(self, mu, L, eps):
        _check_square("reparameterize_full", L)
        d = L.shape[-1]
        if mu.shape[-1:] != (d,) or eps.shape[-1:] != (d,):
            raise ValueError(
                f"reparameterize_full: mu {mu.shape} and eps {eps.shape} must end in D = {d} "
                f"to match L {L.shape}"
            )
        _full("reparameterize_full", mu.shape, eps.shape, L.shape[:-1])
        self.shapes = (mu.shape, L.shape, eps.shape)
        self.mask = _tril_mask(d, L.dtype)
        self.L = L * self.mask  # (..., D, D), only the lower triangle is read
        self.eps = eps
        return mu + (self.L @ eps[..., None])[..., 0]

    def backward(self, grad_out):
        # dz/dmu = I, dz_i/dL_ij = eps_j (lower triangle only), dz/deps = L
        gm = gL = ge = None
        if self.needs_input_grad[0]:
            gm = unbroadcast(grad_out, self.shapes[0])
        if self.needs_input_grad[1]:
            outer = grad_out[..., :, None] * self.eps[..., None, :]  # (..., D, D)
            gL = unbroadcast(outer, self.shapes[1]) * self.mask
        if self.needs_input_grad[2]:
            back = (self.L.swapaxes(-1, -2) @ grad_out[..., None])[..., 0]  # L^T g
            ge = unbroadcast(back, self.shapes[2])
        return gm, gL, ge


class KLFullStd(Function):
    """KL(N(mu, L L^T) || N(0, I)) = 1/2 (tr L L^T + mu^T mu - D - 2 sum_d log L_dd)"""

    def forward(self, mu, L):
        _check_square("kl_full_std", L)
        if mu.shape != L.shape[:-1]:
            raise ValueError(f"kl_full_std: mu of shape {mu.shape} needs L of shape "
                             f"{mu.shape + mu.shape[-1:]}, got {L.shape}")
        _check_positive_diagonal("kl_full_std", L)
        xp = B.xp
        d = L.shape[-1]
        self.mask = _tril_mask(d, L.dtype)
        self.L, self.mu = L * self.mask, mu
        diag = _diagonal(self.L)
        self.inv_diag = 1.0 / diag
        trace = (self.L * self.L).sum(axis=(-2, -1))  # tr(L L^T) = sum of squared entries
        return 0.5 * (trace + (mu * mu).sum(axis=-1) - d - 2.0 * xp.log(diag).sum(axis=-1))

    def backward(self, grad_out):
        # dKL/dmu = mu, dKL/dL = L - diag(1 / L_dd) (lower triangle)
        gm = gL = None
        if self.needs_input_grad[0]:
            gm = grad_out[..., None] * self.mu
        if self.needs_input_grad[1]:
            d = self.L.shape[-1]
            idx = B.xp.arange(d)
            local = self.L.copy()
            local[..., idx, idx] -= self.inv_diag
            gL = grad_out[..., None, None] * local
        return gm, gL


class FullGaussianLogProb(Function):
    """log N(z | mu, L L^T) = -(D log 2pi)/2 - sum_d log L_dd - |u|^2 / 2 with u = L^-1 (z - mu)"""

    def forward(self, z, mu, L):
        _check_square("full_gaussian_log_prob", L)
        d = L.shape[-1]
        if z.shape[-1:] != (d,) or mu.shape[-1:] != (d,):
            raise ValueError(
                f"full_gaussian_log_prob: z {z.shape} and mu {mu.shape} must end in D = {d} "
                f"to match L {L.shape}"
            )
        _check_positive_diagonal("full_gaussian_log_prob", L)
        xp = B.xp
        r = z - mu  # (..., D)
        lead = _full("full_gaussian_log_prob", r.shape[:-1], L.shape[:-2])
        self.shapes = (z.shape, mu.shape, L.shape)
        self.mask = _tril_mask(d, L.dtype)
        Lt = L * self.mask
        self.L = xp.broadcast_to(Lt, lead + (d, d))
        r = xp.broadcast_to(r, lead + (d,))
        # a general solve keeps the code short; a triangular solve would be O(D^2) instead of O(D^3)
        self.u = xp.linalg.solve(self.L, r[..., None])[..., 0]  # L^-1 (z - mu)
        self.inv_diag = 1.0 / _diagonal(Lt)  # (L lead..., D)
        log_det_half = xp.log(_diagonal(Lt)).sum(axis=-1)  # log |L| = log det(Sigma) / 2
        return -0.5 * d * B.LOG_2PI - log_det_half - 0.5 * (self.u * self.u).sum(axis=-1)

    def backward(self, grad_out):
        # d/dz = -L^-T u = -d/dmu, d/dL = L^-T u u^T - diag(1 / L_dd) (lower triangle)
        xp = B.xp
        need = self.needs_input_grad
        gz = gm = gL = None
        w = xp.linalg.solve(self.L.swapaxes(-1, -2), self.u[..., None])[..., 0]  # L^-T u
        if need[0] or need[1]:
            gr = -grad_out[..., None] * w
            gz = unbroadcast(gr, self.shapes[0]) if need[0] else None
            gm = unbroadcast(-gr, self.shapes[1]) if need[1] else None
        if need[2]:
            d = self.L.shape[-1]
            idx = xp.arange(d)
            local = w[..., :, None] * self.u[..., None, :]  # (..., D, D)
            local[..., idx, idx] -= xp.broadcast_to(self.inv_diag, local.shape[:-1])
            gL = unbroadcast(grad_out[..., None, None] * local, self.shapes[2]) * self.mask
        return gz, gm, gL


# ----------------------------------------------------------------------------- functions


def reparameterize(mu, log_var, eps):
    """z = mu + sigma * eps with sigma = exp(log_var / 2); eps (B, D) or (L, B, D) for L samples."""
    return Reparameterize.apply(mu, log_var, eps)


def kl_normal_std(mu, log_var):
    """KL(N(mu, sigma^2) || N(0, I)) per example, summed over the last axis: (B, D) -> (B,)."""
    return KLNormalStd.apply(mu, log_var)


def kl_normal_normal(mu_q, log_var_q, mu_p, log_var_p):
    """KL(q || p) between diagonal Gaussians per example, summed over the last axis: (B,)."""
    return KLNormalNormal.apply(mu_q, log_var_q, mu_p, log_var_p)


def cholesky_factor(log_diag, offdiag):
    """L (B, D, D) lower-triangular with diagonal exp(log_diag) (B, D) and offdiag (B, D(D-1)/2)."""
    return CholeskyFactor.apply(log_diag, offdiag)


def reparameterize_full(mu, L, eps):
    """z = mu + L eps for mu (B, D), L (B, D, D), eps (B, D) or (S, B, D)."""
    return ReparameterizeFull.apply(mu, L, eps)


def kl_full_std(mu, L):
    """KL(N(mu, L L^T) || N(0, I)) per example: mu (B, D), L (B, D, D) -> (B,)."""
    return KLFullStd.apply(mu, L)


def full_gaussian_log_prob(z, mu, L):
    """log N(z | mu, L L^T), summed over the last axis: z (..., B, D) -> (..., B)."""
    return FullGaussianLogProb.apply(z, mu, L)
