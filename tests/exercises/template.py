"""Your answers to the exercises: copy this file and fill in one function at a time.

Copy it anywhere (say my_answers.py) and check it from the root of the minivae checkout:

    python -m pytest tests/exercises --answers my_answers.py -v
    python -m pytest tests/exercises --answers my_answers.py --exercise kl_diag   # one exercise

The functions follow the lessons (lessons/00_... to lessons/08_...). Three kinds:

- <name>_backward(grad_out, *inputs): the backward pass of a given forward. grad_out is
  dL/d(output) of some loss L, shaped like the forward's output; the inputs are the
  forward's, in order (read-only NumPy float64 arrays). Return a tuple with dL/d(input)
  for the inputs named under "returns", in that order, each shaped like its input (a
  single gradient may be returned bare): the chain rule applied to grad_out, never the
  whole Jacobian. The forward is written out under "forward" (tests/exercises/gradients.py).
- <name>(*inputs): a quantity of the lectures, computed in NumPy in float64. Return the
  outputs named under "returns", in that order. minivae computes the same quantity on
  the same inputs and the numbers must agree.
- topological_order(root) and backward_walk(root, grad_out): minivae's backward graph
  walk, checked on small graphs against Tensor.backward. A Tensor t made by an op has
  t._ctx, that op's Function: t._ctx.parents are its input Tensors, and
  t._ctx.backward(g) returns one gradient per parent (None where a parent needs none).
  A leaf has t._ctx None. t.requires_grad says whether a gradient flows into t, and a
  leaf keeps its gradient in t.grad.

A function that still raises NotImplementedError (or is missing) is reported as
skipped, "not attempted". tests/exercises/README.md explains the checks and their
messages; DERIVATIONS.md holds the problems to do on paper first.
"""

import math  # noqa: F401 (for your answers)

import numpy as np  # noqa: F401 (for your answers)

# ---------------------------------------- lesson 00: latent variable models
# lessons/00_latent_variable_models.py


def logsumexp_backward(grad_out, x):
    """Log-sum-exp: dL/dx.

    forward: y_b = log sum_k exp(x_bk), over axis 1
    shapes:  x (B, K) = (3, 5); y and grad_out (B,) = (3,)
    lecture: Understanding Deep Learning, ch. 17, 'VAE applications [1]': importance sampling,
             log p(x) ~ logsumexp_k(log w_k) - log K
    hint:    dy_b/dx_bk is a famous normalized function of x; compute it stably (subtract the
             row max, or use y itself).
    returns: (d_x,)
    """
    raise NotImplementedError


def importance_weights_backward(grad_out, log_w):
    """Normalized importance weights: dL/dlog_w.

    forward: w_bk = exp(log_w_bk) / sum_j exp(log_w_bj) = softmax(log_w) over axis 1
    shapes:  log_w, w, grad_out (B, K) = (2, 5)
    lecture: Understanding Deep Learning, ch. 17, 'VAE applications [1]': importance sampling
             weights the samples
    hint:    derive dw_i/dlog_w_j in two cases (i = j and i != j), write it with w alone, then
             apply it to grad_out along each row without building the (K, K) matrix.
    returns: (d_log_w,)
    """
    raise NotImplementedError


def iwae_toy(x, sigma_x, q_mean, q_std, eps):
    """The IWAE bound on a toy with an exact log p(x), and how it rises with K.

    formula: z ~ N(0, 1), x | z ~ N(z, sigma_x^2), q(z) = N(q_mean, q_std^2): bound = log (1/K)
             sum_k p(x, z_k) / q(z_k), z_k = q_mean + q_std eps_k, one per row of eps
    shapes:  x, sigma_x, q_mean, q_std floats; eps (R, K) = (4000, K) for K = 1, 2, 5, 20, 100;
             bounds (R,): one estimate per row
    lecture: Understanding Deep Learning, ch. 17, eq. 17.15 and 17.17 (Jensen's inequality; ELBO
             = log p(x) - KL(q || p(z|x))); Burda et al. 2015, Theorem 1 (the bound rises with K
             and tends to log p(x))
    hint:    log w = log N(x; z, sigma_x^2) + log N(z; 0, 1) - log N(z; q_mean, q_std^2), then
             the stable log-mean-exp over axis 1. The check then averages your R estimates for
             each K.
    returns: bounds
    """
    raise NotImplementedError


def score_function(phi, eps):
    """Score-function (REINFORCE) against reparameterized gradients on lesson 00's toy.

    formula: x = phi^3 + e^phi eps ~ q_phi = N(phi^3, e^(2 phi)), f(x) = x^2 + sin x; per
             sample: g_score = f(x) d/dphi log q_phi(x) (x held fixed), g_reparam = f'(x)
             dx/dphi
    shapes:  phi a float; eps (N,) = (8,), then (200000,); g_score, g_reparam (N,): one estimate
             per sample
    lecture: PGM Lecture 30, 'Reparameterization Trick' (dz/dphi = dmu/dphi + eps dsigma/dphi);
             Computational Intelligence Lab, Series 9, Problem 1.4 and 1.5; the score function
             estimator of Williams 1992
    hint:    log q_phi(x) = -1/2 log 2pi - phi - (x - phi^3)^2 e^(-2 phi) / 2; differentiate it
             by phi with x fixed, then write the result with eps = (x - phi^3) e^(-phi). For the
             other one, the chain rule through x(phi).
    returns: g_score, g_reparam
    """
    raise NotImplementedError


# ---------------------------------------- lesson 01: the autoencoder
# lessons/01_autoencoder.py


def dense_backward(grad_out, x, W, b):
    """Dense layer: dL/dx, dL/dW, dL/db.

    forward: y = x W + b
    shapes:  x (B, n_in) = (3, 4), W (n_in, n_out) = (4, 2), b (n_out,) = (2,); y and grad_out
             (B, n_out) = (3, 2)
    lecture: PGM Lecture 30, slides 'Autoencoders' and 'VAE Cost function': the networks z =
             f_phi(x), y = g_theta(z); Understanding Deep Learning, ch. 17, 'Nonlinear latent
             variable model [1]'
    hint:    write y_bj = sum_i x_bi W_ij + b_j and differentiate one entry; each gradient must
             have its input's shape, which tells you where the transposes go. b is added to
             every row, so its gradient sums over the batch.
    returns: (d_x, d_W, d_b)
    """
    raise NotImplementedError


def relu_backward(grad_out, x):
    """ReLU: dL/dx.

    forward: y = max(x, 0), elementwise
    shapes:  x, y, grad_out (3, 4); the check keeps |x| >= 0.1, away from the kink
    lecture: PGM Lecture 30, slides 'Autoencoders' and 'VAE Cost function': the networks z =
             f_phi(x), y = g_theta(z); Understanding Deep Learning, ch. 17, 'Nonlinear latent
             variable model [1]'
    hint:    dy/dx is 1 where x > 0 and 0 elsewhere; an elementwise op's backward is grad_out
             times the local derivative.
    returns: (d_x,)
    """
    raise NotImplementedError


def softplus_backward(grad_out, x):
    """Softplus: dL/dx.

    forward: y = log(1 + e^x), elementwise
    shapes:  x, y, grad_out (3, 4)
    lecture: PGM Lecture 30, slides 'Autoencoders' and 'VAE Cost function': the networks z =
             f_phi(x), y = g_theta(z); Understanding Deep Learning, ch. 17, 'Nonlinear latent
             variable model [1]'; it is the log-normalizer of the Bernoulli (exercise
             bernoulli_log_prob)
    hint:    differentiate log(1 + e^x) and simplify: the result is a function you know. Compute
             it in a form that does not overflow for large |x|.
    returns: (d_x,)
    """
    raise NotImplementedError


def sigmoid_backward(grad_out, x):
    """Sigmoid: dL/dx.

    forward: y = 1 / (1 + e^-x), elementwise
    shapes:  x, y, grad_out (3, 4)
    lecture: PGM Lecture 30, slides 'Autoencoders' and 'VAE Cost function': the networks z =
             f_phi(x), y = g_theta(z); Understanding Deep Learning, ch. 17, 'Nonlinear latent
             variable model [1]'; the mean of a Bernoulli decoder is sigmoid(logits)
    hint:    write dy/dx in terms of y itself.
    returns: (d_x,)
    """
    raise NotImplementedError


def broadcast_add_backward(grad_out, a, b):
    """Broadcasting add: dL/da, dL/db.

    forward: y = a + b with a (B, D) and b (D,) (b is added to every row)
    shapes:  a (3, 4), b (4,), y and grad_out (3, 4)
    lecture: PGM Lecture 30, slides 'Autoencoders' and 'VAE Cost function': the networks z =
             f_phi(x), y = g_theta(z); Understanding Deep Learning, ch. 17, 'Nonlinear latent
             variable model [1]'; the bias of every layer is added this way
    hint:    broadcasting copies b into every row; the adjoint of a copy is a sum. The gradient
             of b has b's shape (4,), not (3, 4).
    returns: (d_a, d_b)
    """
    raise NotImplementedError


def sum_axis_backward(grad_out, x):
    """Sum over an axis: dL/dx.

    forward: y = x.sum(axis=1), for x (B, K, D)
    shapes:  x (B, K, D) = (2, 3, 4); y and grad_out (B, D) = (2, 4)
    lecture: Computational Intelligence Lab, Series 9, Problem 1.7: the sum over latent
             dimensions j = 1..J; losses are sums over dimensions per example
    hint:    every x[b, k, d] adds into y[b, d] with weight 1: put the summed axis back
             (np.expand_dims) and copy grad_out along it (np.broadcast_to or np.repeat).
    returns: (d_x,)
    """
    raise NotImplementedError


def topological_order(root):
    """The order of the backward walk: a topological sort of the graph.

    task:    every tensor that requires a gradient, reachable from root through
             node._ctx.parents; root first, and each tensor after every tensor that uses it
    shapes:  seven small graphs of minivae ops (float64): a chain, x * x (fan-out), a diamond, a
             shared weight, constants, 3000 ops in a row, a non-scalar root
    lecture: PGM Lecture 30, 'How to compute derivatives?' (how to compute dC/dtheta and
             dC/dphi: backpropagation through the whole cost)
    hint:    a depth-first search that appends a node once all its parents are done gives leaves
             first; reverse that list. Use an explicit stack (no recursion: one graph is 3000
             ops deep), a set of id(node) for the visited ones, and skip parents with
             requires_grad False.
    returns: a list of Tensors, root first
    """
    raise NotImplementedError


def backward_walk(root, grad_out):
    """The backward walk: gradients from the root to the leaves, added on fan-out.

    task:    grads[root] = grad_out; for each node in topological order: g_k =
             node._ctx.backward(grads[node])[k] is added into grads[parent_k]; at a leaf,
             leaf.grad += grads[leaf]
    shapes:  seven small graphs of minivae ops (float64): a chain, x * x (fan-out), a diamond, a
             shared weight, constants, 3000 ops in a row, a non-scalar root; grad_out has the
             root's shape
    lecture: PGM Lecture 30, 'How to compute derivatives?' (how to compute dC/dtheta and
             dC/dphi: backpropagation through the whole cost)
    hint:    walk your topological_order; keep the gradients of non-leaves in a dict keyed by
             id(tensor); ctx.backward(g) returns a tuple with one entry per parent (None: no
             gradient) and must run once per node, after all the node's users; a parent listed
             twice (x * x) receives two gradients.
    returns: None (the leaves' .grad hold the gradients)
    """
    raise NotImplementedError


# ---------------------------------------- lesson 02: the VAE
# lessons/02_vae.py


def bernoulli_log_prob_backward(grad_out, logits, x):
    """Bernoulli log-likelihood from logits: dL/dlogits.

    forward: log p(x | l) = x * l - softplus(l), elementwise, x in [0, 1]
    shapes:  logits, x, output, grad_out (3, 4); x is data and gets no gradient
    lecture: Computational Intelligence Lab, Series 9, Problem 1: the reconstruction term
             E_z[log p_theta(x | z)] of the ELBO, for a Bernoulli decoder
    hint:    use your softplus derivative; the answer is a difference of two terms with a
             meaning (data minus prediction).
    returns: (d_logits,)
    """
    raise NotImplementedError


def gaussian_log_prob_backward(grad_out, x, mean, log_var):
    """Gaussian log-likelihood: dL/dmean, dL/dlog_var.

    forward: log N(x | m, e^v) = -(log 2pi + v + (x - m)^2 e^(-v)) / 2, elementwise (v = log
             variance)
    shapes:  x, mean, log_var, output, grad_out (3, 4); x is data and gets no gradient
    lecture: PGM Lecture 30, 'Variational Inference View': x ~ N(g_theta(z), sigma_y^2 I);
             Understanding Deep Learning, ch. 17, eq. 17.7
    hint:    treat v as the variable (not sigma): d/dv e^(-v) = -e^(-v). Check the sign of d/dm
             (x - m)^2.
    returns: (d_mean, d_log_var)
    """
    raise NotImplementedError


def gaussian_decoder_alpha(sigma, d):
    """The weight alpha of the squared error for a Gaussian decoder.

    formula: -log N(x | g(z), sigma^2 I) = alpha |x - g(z)|^2 + const for x of D pixels: return
             alpha and const
    shapes:  sigma a positive float, d an int (the number of pixels); alpha and const floats
    lecture: PGM Lecture 30, 'VAE Cost function' (C = sum_i alpha |g(z) - x_i|^2 + KL) and
             'Variational Inference View' (p(x|z) = N(x; g(z), sigma_g^2 I)); Understanding Deep
             Learning, ch. 17, eq. 17.7
    hint:    write the D-dimensional density with covariance sigma^2 I: its normaliser is (2 pi
             sigma^2)^(-D/2), and its exponent -|x - g|^2 / (2 sigma^2). Take -log.
    returns: alpha, const
    """
    raise NotImplementedError


def reparameterize_backward(grad_out, mu, log_var, eps):
    """Reparameterization trick: dL/dmu, dL/dlog_var.

    forward: z = mu + exp(log_var / 2) * eps, elementwise (eps ~ N(0, I) is fixed noise)
    shapes:  mu, log_var, eps, z, grad_out (3, 4); eps is noise and gets no gradient
    lecture: PGM Lecture 30, 'Reparameterization Trick': dz/dphi = dmu/dphi + eps dsigma/dphi,
             with sigma = exp(log sigma^2 / 2)
    hint:    dz/dmu = 1; for log_var use the chain rule through sigma = exp(log_var / 2).
    returns: (d_mu, d_log_var)
    """
    raise NotImplementedError


def kl_normal_std_backward(grad_out, mu, log_var):
    """Analytic KL to N(0, I): dKL/dmu, dKL/dlog_var.

    forward: KL = 1/2 sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2), sigma^2 = exp(log_var),
             summed over the latent axis
    shapes:  mu, log_var (B, L) = (3, 4); KL and grad_out (B,) = (3,)
    lecture: Computational Intelligence Lab, Series 9, Problem 1.7: -D_KL = 1/2 sum_j (1 + log
             sigma_j^2 - mu_j^2 - sigma_j^2)
    hint:    differentiate with respect to log_var, not sigma (sigma^2 = e^log_var). grad_out
             has one entry per example: give it back its latent axis before multiplying.
    returns: (d_mu, d_log_var)
    """
    raise NotImplementedError


def kl_diag(mu_q, log_var_q, mu_p, log_var_p):
    """The KL between two diagonal Gaussians, in closed form.

    formula: KL(N(m_q, e^v_q) || N(m_p, e^v_p)) = 1/2 sum_j (v_p - v_q + (e^v_q + (m_q - m_p)^2)
             e^(-v_p) - 1), v = log sigma^2, per example
    shapes:  mu_q, log_var_q, mu_p, log_var_p (B, J) = (3, 4); kl (B,) = (3,)
    lecture: Computational Intelligence Lab, Series 9, Problem 1.7 (the same two integrals with
             a prior N(m_p, e^v_p) in place of N(0, I)); the blog post 'Variational
             Autoencoders' (2018): 'the KL divergence between two Gaussians' has a closed form
    hint:    KL(q || p) = E_q[log q(z)] - E_q[log p(z)], one latent unit at a time: E_q[(z -
             m_p)^2] = sigma_q^2 + (m_q - m_p)^2. Then sum over units.
    returns: kl
    """
    raise NotImplementedError


def kl_diag_backward(grad_out, mu_q, log_var_q, mu_p, log_var_p):
    """KL between two diagonal Gaussians: dKL/d of all four parameters.

    forward: KL(q || p) = 1/2 sum_j (v_p - v_q + (e^v_q + (m_q - m_p)^2) e^(-v_p) - 1), with v =
             log sigma^2, summed over the latent axis
    shapes:  mu_q, log_var_q, mu_p, log_var_p (B, J) = (3, 2); KL and grad_out (B,) = (3,)
    lecture: Computational Intelligence Lab, Series 9, Problem 1.7 (the same two integrals with
             a prior N(m_p, e^v_p) in place of N(0, I)); the blog post 'Variational
             Autoencoders' (2018): 'the KL divergence between two Gaussians' has a closed form
    hint:    differentiate one term of the sum; d/dv e^(-v) = -e^(-v). The two means enter only
             through their difference, so their gradients are opposite. With m_p = 0 and v_p = 0
             you must get back exercise kl_normal_std.
    returns: (d_mu_q, d_log_var_q, d_mu_p, d_log_var_p)
    """
    raise NotImplementedError


def elbo_bernoulli(x, mu, log_var, eps, W, b):
    """The single-sample ELBO of a Bernoulli VAE.

    formula: z = mu + exp(log_var / 2) eps, logits = z W + b, ELBO = sum_d [x_d l_d -
             softplus(l_d)] - 1/2 sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2), per example
    shapes:  x (B, D) = (3, 6) in {0, 1}; mu, log_var, eps (B, J) = (3, 2); W (J, D) = (2, 6), b
             (D,) = (6,); elbo (B,) = (3,)
    lecture: Understanding Deep Learning, ch. 17, eq. 17.23 (the ELBO with one sample z*); PGM
             Lecture 30, 'Variational Inference View' (E_q[log p(x|z)] - KL(q(z|x) || p(z)), one
             sample approximation); Computational Intelligence Lab, Series 9, Problem 1.7 (the
             KL)
    hint:    three steps: the reparameterized z, the decoder's logits and the Bernoulli
             log-likelihood from logits (exercise bernoulli_log_prob; np.logaddexp(0, l) is a
             stable softplus), the closed-form KL (exercise kl_normal_std). Sum over pixels and
             over latent units, one number per example.
    returns: elbo
    """
    raise NotImplementedError


# ---------------------------------------- lesson 03: the VAE's estimators and likelihood
# lessons/03_vae_estimators_and_likelihood.py


def elbo_samples(x, mu, log_var, eps, W, b):
    """The L-sample ELBO estimate, all terms by Monte Carlo.

    formula: z_l = mu + sigma eps_l, ELBO ~ 1/L sum_l [log p(x | z_l) + log p(z_l) - log q(z_l |
             x)], p(z) = N(0, I), q(z|x) = N(mu, diag sigma^2), per example
    shapes:  x (B, D) = (3, 6); mu, log_var (B, J) = (3, 2); eps (L, B, J) = (4, 3, 2); W (J,
             D), b (D,) as in elbo_bernoulli; elbo (B,) = (3,)
    lecture: Computational Intelligence Lab, Series 9, Problem 1.4 (ELBO ~ 1/L sum_l [log p(x,
             z^(l)) - log q(z^(l) | x)])
    hint:    mu (B, J) broadcasts against eps (L, B, J); z (L, B, J) @ W gives logits (L, B, D).
             A diagonal Gaussian's log-density is a sum over its units of -1/2 (log 2pi + log
             sigma^2 + (z - mu)^2 / sigma^2). Average over axis 0 last.
    returns: elbo
    """
    raise NotImplementedError


def log_px_importance(x, mu, log_var, eps, W, b):
    """The importance-sampled log p(x) with K samples, computed stably.

    formula: log p(x) ~ log (1/K) sum_k w_k, log w_k = log p(x | z_k) + log p(z_k) - log q(z_k |
             x), z_k = mu + sigma eps_k, per example
    shapes:  x (B, D) = (3, 1000); mu, log_var (B, J) = (3, 2); eps (K, B, J) = (8, 3, 2); W (J,
             D), b (D,); log_px (B,) = (3,)
    lecture: Understanding Deep Learning, ch. 17, 'VAE applications [1]' (approximating sample
             probability by importance sampling); Burda et al. 2015 (the same average is the
             IWAE bound)
    hint:    first the log-weights (K, B), as in elbo_samples, then log-mean-exp over the K
             samples: take out the largest log-weight m, log mean_k e^(a_k) = m + log mean_k
             e^(a_k - m).
    returns: log_px
    """
    raise NotImplementedError


def iwae_weights(log_w):
    """The IWAE bound's gradient weights w~_k.

    formula: grad log (1/K) sum_k w_k = sum_k w~_k grad log w_k with w~_k = w_k / sum_j w_j:
             return w~ from the log-weights
    shapes:  log_w (K, B) = (6, 3): samples on axis 0, examples on axis 1; weights (K, B), each
             column sums to 1
    lecture: Burda et al. 2015, eq. 14 (the IWAE gradient); Understanding Deep Learning, ch. 17,
             'VAE applications [1]' (importance sampling weights the samples)
    hint:    differentiate log (1/K) sum_k e^(log w_k) by log w_k: the 1/K cancels. Compute it
             without ever forming e^(log w) itself.
    returns: weights
    """
    raise NotImplementedError


# ---------------------------------------- lesson 06: the semi-supervised VAE (M2)
# lessons/06_semi_supervised_vae.py


def cross_entropy_backward(grad_out, logits, labels):
    """Softmax cross-entropy from logits: dL/dlogits.

    forward: loss_b = -log softmax(logits_b)[y_b] = logsumexp(logits_b) - logits_b[y_b]
    shapes:  logits (B, C) = (4, 3), integer labels (B,) = (4,); loss and grad_out (B,)
    lecture: VAE Extensions slides, 'Overall training objective': the classification term that
             trains q_phi(y|x) on labelled data (Kingma et al. 2014 use -log q(y|x); the slide
             writes it as a squared error)
    hint:    use your logsumexp derivative for the first term; the second term picks one entry
             per row (a one-hot).
    returns: (d_logits,)
    """
    raise NotImplementedError


def entropy_backward(grad_out, logits):
    """Entropy of q(y|x) in the M2 unlabelled bound: dH/dlogits.

    forward: H_b = -sum_y q_by log q_by with q = softmax(logits) over axis 1
    shapes:  logits (B, C) = (3, 4); H and grad_out (B,) = (3,)
    lecture: VAE Extensions slides, 'What does the training objective look like?'
             (semi-supervised VAE): U(x) = sum_y q(y|x) L(x, y) + H(q(y|x)); the slide's
             -D_KL(q(y|x) || p(y)) is H(q) - log C for a uniform p(y)
    hint:    first dH/dq_y = -(log q_y + 1), then the softmax Jacobian (exercise
             importance_weights); the constant 1 drops out because sum_y q_y = 1.
    returns: (d_logits,)
    """
    raise NotImplementedError


def m2_unlabelled_bound(logits, bounds):
    """M2's unlabelled bound U(x) from the classifier's logits and the bounds L(x, y).

    formula: U(x) = sum_y q(y|x) L(x, y) + H(q(y|x)), q = softmax(logits); here (as in minivae)
             L(x, y) and U(x) are bounds to MAXIMISE
    shapes:  logits (B, C) = (3, 4), the classifier's; bounds (B, C) = (3, 4), L(x, y) for every
             class y (nats, near -100); U (B,) = (3,)
    lecture: VAE Extensions slides, 'What does the training objective look like?'
             (semi-supervised VAE, the bound for data points without labels); Kingma et al.
             2014, eq. 7, which names the negatives: -U(x) = sum_y q(y|x)(-L(x, y)) + H(q(y|x))
    hint:    y is a latent variable with q(y|x): the bound's expectation over y is a q-weighted
             sum, and -E_q[log q(y|x)] adds the entropy. log q = logits - logsumexp(logits) is
             stable.
    returns: U
    """
    raise NotImplementedError


def m2_unlabelled_bound_backward(grad_out, logits, bounds):
    """M2's unlabelled bound U(x): dU/dlogits, dU/dbounds.

    forward: U_b = sum_y q_by L_by + H(q_b), q = softmax(logits) over axis 1, H(q_b) = -sum_y
             q_by log q_by; L(x, y) is the labelled bound of each class (a bound to maximise, as
             in minivae)
    shapes:  logits, bounds (B, C) = (3, 4); U and grad_out (B,) = (3,)
    lecture: VAE Extensions slides, 'What does the training objective look like?'
             (semi-supervised VAE, the unlabelled bound); Kingma et al. 2014, eq. 7 (which
             writes the negatives: -U(x) = sum_y q(y|x)(-L(x, y)) + H(q(y|x)))
    hint:    dU/dbounds is q itself. For the logits, first dU/dq_y = L_y - log q_y - 1, then the
             softmax Jacobian (exercises importance_weights and entropy); the constant drops out
             because sum_y q_y = 1.
    returns: (d_logits, d_bounds)
    """
    raise NotImplementedError


def m2_optimal_q(bounds):
    """The q(y|x) that maximises U(x), and U's value there.

    formula: q* = argmax over distributions q of sum_y q_y L(x, y) + H(q); return q* and U_max =
             U at q*; L(x, y) is a bound (softmax(-L) in the loss convention)
    shapes:  bounds (B, C) = (3, 4), L(x, y) for every class; q (B, C), rows summing to 1; U_max
             (B,) = (3,)
    lecture: VAE Extensions slides, 'What does the training objective look like?'
             (semi-supervised VAE); Kingma et al. 2014, eq. 7
    hint:    maximise sum_y q_y (L_y - log q_y) with a Lagrange multiplier for sum_y q_y = 1
             (DERIVATIONS.md, problem 4); then put q* back into U.
    returns: q, U_max
    """
    raise NotImplementedError


# ---------------------------------------- lesson 07: semi-supervised regression
# lessons/07_semi_supervised_regression.py


def entropy_diag(mu, log_var):
    """The entropy of a diagonal Gaussian.

    formula: H(N(mu, diag sigma^2)) = -E_q[log q(z)] = 1/2 sum_j (log 2pi + 1 + log sigma_j^2),
             per example
    shapes:  mu, log_var (B, J) = (3, 4); entropy (B,) = (3,)
    lecture: Computational Intelligence Lab, Series 9, Problem 1.7 (the first integral, int q
             log q = -J/2 log 2pi - 1/2 sum_j (log sigma_j^2 + 1)); lesson 07 adds H(q(y|x)) to
             its unlabelled bound
    hint:    -log q(z) = 1/2 (log 2pi + log sigma^2 + (z - mu)^2 / sigma^2) per unit; take its
             expectation under q: E[(z - mu)^2] = sigma^2.
    returns: entropy
    """
    raise NotImplementedError


def entropy_diag_backward(grad_out, mu, log_var):
    """Entropy of a diagonal Gaussian: dH/dmu, dH/dlog_var.

    forward: H(N(mu, diag e^v)) = 1/2 sum_j (log 2pi + 1 + v_j), v = log sigma^2, summed over
             the last axis
    shapes:  mu, log_var (B, J) = (3, 2); H and grad_out (B,) = (3,)
    lecture: Computational Intelligence Lab, Series 9, Problem 1.7 (the integral int q log q =
             -J/2 log 2pi - 1/2 sum_j (log sigma_j^2 + 1)); lesson 07 adds H(q(y|x)) to the
             unlabelled bound U(x)
    hint:    look at which parameters H depends on at all; a gradient that is zero is still an
             array of its input's shape.
    returns: (d_mu, d_log_var)
    """
    raise NotImplementedError


# ---------------------------------------- lesson 08: full covariance and amortization
# lessons/08_full_covariance_and_amortization.py


def reparameterize_full_backward(grad_out, mu, L, eps):
    """Full-covariance reparameterization z = mu + L eps: dL/dmu, dL/dL.

    forward: z_b = mu_b + L_b eps_b with L_b lower-triangular (Sigma = L L^T); only the lower
             triangle of L is read (NumPy: mu + (np.tril(L) @ eps[:, :, None])[:, :, 0])
    shapes:  mu, eps, z, grad_out (B, D) = (2, 3); L (B, D, D) = (2, 3, 3), zeros above the
             diagonal; eps is noise and gets no gradient
    lecture: the blog post 'Variational Autoencoders' (2018), the reparameterization trick: z =
             mu + L eps with Sigma = L L^T; Understanding Deep Learning, ch. 17, eq. 17.25 (z =
             mu + Sigma^(1/2) eps); Computational Intelligence Lab, Series 9, Problem 2.4 (a
             full covariance costs O(D^2) parameters)
    hint:    write z_bi = mu_bi + sum_j L_bij eps_bj and differentiate by L_bij: an outer
             product of grad_out and eps per example. The forward never reads the entries above
             the diagonal, so their gradient is 0 (np.tril).
    returns: (d_mu, d_L)
    """
    raise NotImplementedError


def kl_full(mu, L):
    """The KL of a full-covariance Gaussian N(mu, L L^T) to N(0, I).

    formula: KL = 1/2 (tr(Sigma) + mu^T mu - D - log det Sigma), Sigma = L L^T, L
             lower-triangular with a positive diagonal, per example
    shapes:  mu (B, D) = (2, 3); L (B, D, D) = (2, 3, 3), zeros above the diagonal; kl (B,) =
             (2,)
    lecture: Computational Intelligence Lab, Series 9, Problem 1.7 (the derivation starts from
             N(z; mu, Sigma) with a general Sigma); the blog post 'Variational Autoencoders'
             (2018): z = mu + L eps with Sigma = L L^T
    hint:    no matrix inverse or determinant routine is needed: tr(L L^T) is the sum of the
             squares of L's entries, and the determinant of a triangular matrix is the product
             of its diagonal.
    returns: kl
    """
    raise NotImplementedError


def kl_full_backward(grad_out, mu, L):
    """KL of N(mu, L L^T) to N(0, I): dKL/dmu, dKL/dL.

    forward: KL = 1/2 (tr(L L^T) + mu^T mu - D - log det(L L^T)), log det(L L^T) = 2 sum_d log
             L_dd for a triangular L; only the lower triangle of L is read
    shapes:  mu (B, D) = (2, 3), L (B, D, D) = (2, 3, 3) with a positive diagonal and zeros
             above it; KL and grad_out (B,) = (2,)
    lecture: Computational Intelligence Lab, Series 9, Problem 1.7 (its derivation starts from
             N(z; mu, Sigma) with a general Sigma); the blog post 'Variational Autoencoders'
             (2018): Sigma = L L^T
    hint:    tr(L L^T) is the sum of the squares of L's entries; only the diagonal entries
             appear in the log-determinant. Entries above the diagonal get gradient 0.
    returns: (d_mu, d_L)
    """
    raise NotImplementedError
