"""Your answers to the gradient-check exercises: write the backward passes.

Copy this file anywhere (say my_answers.py), fill in one function at a time,
and check it from the root of the minivae checkout:

    python -m pytest tests/exercises --answers my_answers.py -v

Every function gets
    grad_out   dL/d(output) of some loss L, shaped like the forward's output;
    *inputs    the forward's inputs, in order (read-only NumPy float64 arrays);
and returns a tuple with dL/d(input) for the inputs named under "returns", in
that order, each shaped like its input, in float64 (a single gradient may also
be returned bare). This is the vector-Jacobian product: the chain rule applied
to grad_out, never the whole Jacobian.

A function that still raises NotImplementedError (or is missing) is reported as
skipped, "not attempted". The forwards are written out in
tests/exercises/registry.py; tests/exercises/README.md explains the output.
Seed files are the lecture notes the course follows (000: Lecture 30 slides,
001: Series 9 solutions, 003: Understanding Deep Learning ch. 17, 004: slides
on VAEs and their extensions).
"""

import numpy as np  # noqa: F401 (for your answers)

# ----------------------------------------------------------------------------- layers


def dense_backward(grad_out, x, W, b):
    """Dense layer: dL/dx, dL/dW, dL/db.

    forward: y = x W + b                         (NumPy: x @ W + b)
    shapes:  x (B, n_in) = (3, 4), W (n_in, n_out) = (4, 2), b (n_out,) = (2,);
             y and grad_out (B, n_out) = (3, 2)
    lecture: seed 000, slides "Autoencoders" and "VAE Cost function" (the networks
             z = f_phi(x), y = g_theta(z)); seed 003, "Nonlinear latent variable model [1]"
    hint:    write y_bj = sum_i x_bi W_ij + b_j and differentiate one entry. Each gradient
             has its input's shape, which tells you where the transposes go. b is added to
             every row, so its gradient sums over the batch.
    returns: (d_x, d_W, d_b)
    """
    raise NotImplementedError


def relu_backward(grad_out, x):
    """ReLU: dL/dx.

    forward: y = max(x, 0), elementwise         (NumPy: np.maximum(x, 0.0))
    shapes:  x, y, grad_out (3, 4); the check keeps |x| >= 0.1, away from the kink
    lecture: seed 000, slides "Autoencoders" and "VAE Cost function" (the networks)
    hint:    dy/dx is 1 where x > 0 and 0 elsewhere; an elementwise op's backward is
             grad_out times the local derivative.
    returns: (d_x,)
    """
    raise NotImplementedError


def softplus_backward(grad_out, x):
    """Softplus: dL/dx.

    forward: y = log(1 + e^x), elementwise      (NumPy: np.logaddexp(0.0, x))
    shapes:  x, y, grad_out (3, 4)
    lecture: seed 000, slides "Autoencoders" and "VAE Cost function" (the networks);
             softplus is also the log-normalizer of the Bernoulli (exercise bernoulli_log_prob)
    hint:    differentiate log(1 + e^x) and simplify: the result is a function you know.
             Compute it in a form that does not overflow for large |x|.
    returns: (d_x,)
    """
    raise NotImplementedError


def sigmoid_backward(grad_out, x):
    """Sigmoid: dL/dx.

    forward: y = 1 / (1 + e^-x), elementwise    (NumPy: 0.5 + 0.5 * np.tanh(0.5 * x))
    shapes:  x, y, grad_out (3, 4)
    lecture: seed 000, slides "Autoencoders" and "VAE Cost function" (the networks);
             the mean of a Bernoulli decoder is sigmoid(logits)
    hint:    write dy/dx in terms of y itself.
    returns: (d_x,)
    """
    raise NotImplementedError


# ----------------------------------------------------------------------------- broadcasting, reductions


def broadcast_add_backward(grad_out, a, b):
    """Broadcasting add: dL/da, dL/db.

    forward: y = a + b with a (B, D) and b (D,): b is added to every row
    shapes:  a (3, 4), b (4,), y and grad_out (3, 4)
    lecture: seed 000, slides "Autoencoders" and "VAE Cost function" (the bias of every layer)
    hint:    broadcasting copies b into every row; the adjoint of a copy is a sum.
             The gradient of b has b's shape (4,), not (3, 4).
    returns: (d_a, d_b)
    """
    raise NotImplementedError


def sum_axis_backward(grad_out, x):
    """Sum over an axis: dL/dx.

    forward: y = x.sum(axis=1), for x (B, K, D)
    shapes:  x (B, K, D) = (2, 3, 4); y and grad_out (B, D) = (2, 4)
    lecture: seed 001, Problem 1.7 (the sum over latent dimensions j = 1..J); every loss
             term is a sum over dimensions per example
    hint:    every x[b, k, d] adds into y[b, d] with weight 1: put the summed axis back
             (np.expand_dims) and copy grad_out along it (np.broadcast_to, or np.repeat).
    returns: (d_x,)
    """
    raise NotImplementedError


# ----------------------------------------------------------------------------- log-likelihoods


def bernoulli_log_prob_backward(grad_out, logits, x):
    """Bernoulli log-likelihood from logits: dL/dlogits.

    forward: log p(x | l) = x * l - softplus(l), elementwise, x in [0, 1]
             (NumPy: x * logits - np.logaddexp(0.0, logits))
    shapes:  logits, x, output, grad_out (3, 4); x is data and gets no gradient
    lecture: seed 001, Problem 1 (the reconstruction term E_z[log p_theta(x | z)] of the
             ELBO), for a Bernoulli decoder
    hint:    use your softplus derivative; the answer is "data minus prediction".
    returns: (d_logits,)
    """
    raise NotImplementedError


def gaussian_log_prob_backward(grad_out, x, mean, log_var):
    """Gaussian log-likelihood: dL/dmean, dL/dlog_var.

    forward: log N(x | m, e^v) = -(log 2pi + v + (x - m)^2 e^(-v)) / 2, elementwise,
             with v = log_var the log-variance
    shapes:  x, mean, log_var, output, grad_out (3, 4); x is data and gets no gradient
    lecture: seed 000, slide "Variational Inference View" (x ~ N(g_theta(z), sigma_y^2 I));
             seed 003, "Nonlinear latent variable model [1]"
    hint:    treat v as the variable, not sigma: d/dv e^(-v) = -e^(-v). Check the sign of
             d/dm (x - m)^2.
    returns: (d_mean, d_log_var)
    """
    raise NotImplementedError


# ----------------------------------------------------------------------------- the VAE's Gaussian latent


def reparameterize_backward(grad_out, mu, log_var, eps):
    """Reparameterization trick: dL/dmu, dL/dlog_var.

    forward: z = mu + exp(log_var / 2) * eps, elementwise; eps ~ N(0, I) is fixed noise
    shapes:  mu, log_var, eps, z, grad_out (3, 4); eps is noise and gets no gradient
    lecture: seed 000, slide "Reparameterization Trick": dz/dphi = dmu/dphi + eps dsigma/dphi,
             here with sigma = exp(log sigma^2 / 2)
    hint:    dz/dmu = 1; for log_var, use the chain rule through sigma = exp(log_var / 2).
    returns: (d_mu, d_log_var)
    """
    raise NotImplementedError


def kl_normal_std_backward(grad_out, mu, log_var):
    """Analytic KL(N(mu, sigma^2) || N(0, I)): dKL/dmu, dKL/dlog_var.

    forward: KL_b = 1/2 sum_j (mu_bj^2 + sigma_bj^2 - 1 - log sigma_bj^2), sigma^2 = e^log_var,
             summed over the latent axis
    shapes:  mu, log_var (B, L) = (3, 4); KL and grad_out (B,) = (3,)
    lecture: seed 001, Problem 1.7: -D_KL = 1/2 sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2)
    hint:    differentiate with respect to log_var, not sigma (sigma^2 = e^log_var).
             grad_out has one entry per example: give it back its latent axis before
             multiplying (grad_out[:, None]).
    returns: (d_mu, d_log_var)
    """
    raise NotImplementedError


# ----------------------------------------------------------------------------- importance sampling


def logsumexp_backward(grad_out, x):
    """Log-sum-exp: dL/dx.

    forward: y_b = log sum_k exp(x_bk), over axis 1
    shapes:  x (B, K) = (3, 5); y and grad_out (B,) = (3,)
    lecture: seed 003, "VAE applications [1]" (importance sampling:
             log p(x) ~ logsumexp_k(log w_k) - log K)
    hint:    dy_b/dx_bk is a well-known normalized function of x. Compute it stably
             (subtract the row max first, or use y itself).
    returns: (d_x,)
    """
    raise NotImplementedError


def importance_weights_backward(grad_out, log_w):
    """Normalized importance weights: dL/dlog_w.

    forward: w_bk = exp(log_w_bk) / sum_j exp(log_w_bj), i.e. softmax(log_w) over axis 1
    shapes:  log_w, w, grad_out (B, K) = (2, 5)
    lecture: seed 003, "VAE applications [1]" (importance sampling weights the samples)
    hint:    derive dw_i/dlog_w_j in two cases (i = j and i != j) and write it with w alone;
             then apply it to grad_out along each row without building the (K, K) matrix.
    returns: (d_log_w,)
    """
    raise NotImplementedError


# ----------------------------------------------------------------------------- the M2 classifier q(y|x)


def cross_entropy_backward(grad_out, logits, labels):
    """Softmax cross-entropy from logits: dL/dlogits.

    forward: loss_b = -log softmax(logits_b)[y_b] = logsumexp(logits_b) - logits_b[y_b]
    shapes:  logits (B, C) = (4, 3), integer labels (B,) = (4,); loss and grad_out (B,);
             labels get no gradient
    lecture: seed 004, "Overall training objective" (the classification term that trains
             q_phi(y|x) on labelled data; Kingma et al. 2014 use -log q(y|x), the slide writes
             a squared error)
    hint:    use your logsumexp derivative for the first term; the second picks one entry per
             row (a one-hot: np.arange(B), labels).
    returns: (d_logits,)
    """
    raise NotImplementedError


def entropy_backward(grad_out, logits):
    """Entropy of q(y|x) in the M2 unlabelled bound: dH/dlogits.

    forward: H_b = -sum_y q_by log q_by, with q = softmax(logits) over axis 1
    shapes:  logits (B, C) = (3, 4); H and grad_out (B,) = (3,)
    lecture: seed 004, "What does the training objective look like?" (semi-supervised VAE):
             U(x) = sum_y q(y|x) L(x, y) + H(q(y|x)); the slide's -D_KL(q(y|x) || p(y)) is
             H(q) - log C for a uniform p(y)
    hint:    first dH/dq_y = -(log q_y + 1), then the softmax Jacobian (exercise
             importance_weights); the constant 1 drops out because sum_y q_y = 1.
    returns: (d_logits,)
    """
    raise NotImplementedError
