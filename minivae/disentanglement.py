"""Disentanglement scores for representations of data with known generative factors.

Two measures, both on the host (NumPy arrays in, Python floats out; no engine):

* ``mutual_information_gap`` — MIG, Chen et al. 2018, "Isolating Sources of
  Disentanglement in VAEs", eq. (6):

      MIG = 1/K Σ_k  ( I(z_{j(1)}; v_k) − I(z_{j(2)}; v_k) ) / H(v_k)

  where j(1), j(2) are the latents with the largest and second-largest mutual
  information with factor v_k. A factor captured by exactly one latent scores 1;
  a factor spread over (or copied into) two latents, or captured by none, scores 0.
  Here I(z_j; v_k) is estimated by discretizing z_j into equal-width histogram bins
  and computing the discrete mutual information of the (bin, factor) table.

* ``beta_vae_metric`` — Higgins et al. 2017, "β-VAE", Sec. 3: fix one factor k,
  draw L pairs of examples that share the value of v_k (all other factors random),
  average |z1 − z2| over the pairs; a low-capacity linear classifier must tell k
  from that vector. Score = accuracy on held-out points. If the factor k lives in
  its own coordinates, those coordinates of |z1 − z2| are near 0 and k is easy to read.

Both need only a representation: ``codes`` (N, D) for MIG, and for the β-VAE metric
a function ``represent(factors (N, K) ints) -> codes (N, D)``: an identity or rotation
map in the tests, render -> encoder mean μ(x) for a trained VAE in lesson 04.
"""

from __future__ import annotations

from minivae.backend import np

__all__ = [
    "beta_vae_metric",
    "discretize",
    "entropy",
    "mig_from_mi",
    "mutual_information",
    "mutual_information_gap",
    "softmax_regression",
]


# ----------------------------------------------------------------------------- discrete MI


def discretize(codes, n_bins: int = 20):
    """Each column of codes (N, D) -> bin indices 0..n_bins−1 of equal-width bins over its range.

    A constant column falls entirely into bin 0 (it carries no information).
    """
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2:
        raise ValueError(f"discretize: codes must be (N, D), got shape {codes.shape}")
    if not isinstance(n_bins, int) or n_bins < 2:
        raise ValueError(f"discretize: n_bins must be an int >= 2, got {n_bins!r}")
    if not np.all(np.isfinite(codes)):
        raise ValueError("discretize: codes contain NaN or inf")
    lo, hi = codes.min(axis=0), codes.max(axis=0)  # (D,)
    width = np.where(hi > lo, (hi - lo) / n_bins, 1.0)  # (D,); constant columns: any width
    bins = np.floor((codes - lo) / width).astype(np.int64)  # (N, D)
    return np.clip(bins, 0, n_bins - 1)  # the maximum lands on the right edge: last bin


def _as_labels(values):
    """Any 1-D discrete values -> integer labels 0..m−1 and m."""
    labels, inverse = np.unique(np.asarray(values), return_inverse=True)
    return inverse.reshape(-1).astype(np.int64), len(labels)


def entropy(values) -> float:
    """H(v) = −Σ_a p(a) log p(a) in nats, of the empirical distribution of discrete values (N,)."""
    labels, m = _as_labels(values)
    p = np.bincount(labels, minlength=m) / len(labels)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def mutual_information(a, b) -> float:
    """I(a; b) = Σ p(a, b) log p(a, b) / (p(a) p(b)) in nats, of two discrete sequences (N,)."""
    a, ma = _as_labels(a)
    b, mb = _as_labels(b)
    if len(a) != len(b):
        raise ValueError(f"mutual_information: {len(a)} values of a but {len(b)} of b")
    joint = np.bincount(a * mb + b, minlength=ma * mb).reshape(ma, mb) / len(a)  # (ma, mb)
    pa, pb = joint.sum(axis=1, keepdims=True), joint.sum(axis=0, keepdims=True)
    nz = joint > 0
    mi = float((joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])).sum())
    return max(mi, 0.0)  # the sum is >= 0 in exact arithmetic; drop a -1e-17


def mig_from_mi(mi, factor_entropies):
    """(MIG, per-factor normalized gaps (K,)) from an MI matrix (D, K) and H(v_k) (K,).

    With a single latent (D = 1) the second-largest MI is taken as 0.
    """
    mi = np.asarray(mi, dtype=np.float64)
    h = np.asarray(factor_entropies, dtype=np.float64)
    if mi.ndim != 2 or h.shape != (mi.shape[1],):
        raise ValueError(f"mig_from_mi: mi (D, K) and entropies (K,) needed, got {mi.shape}, {h.shape}")
    if np.any(h <= 0):
        raise ValueError("mig_from_mi: every factor must vary (entropy > 0): a constant factor "
                         "has no gap to normalize")  # fmt: skip
    top = -np.sort(-mi, axis=0)  # (D, K), each column descending
    second = top[1] if len(top) > 1 else np.zeros(mi.shape[1])
    gaps = (top[0] - second) / h  # (K,)
    return float(gaps.mean()), gaps


def mutual_information_gap(codes, factors, n_bins: int = 20):
    """MIG of codes (N, D) against discrete factors (N, K); returns (score, mi (D, K) in nats).

    Chen et al. 2018, eq. (6), with I(z_j; v_k) estimated from a histogram of z_j
    (``n_bins`` equal-width bins). The per-factor gaps are ``mig_from_mi(mi, H)[1]``.
    Factors must vary (each H(v_k) > 0); pass the entropies' factors only.
    The plug-in estimate is biased up by about (n_bins − 1)(levels − 1) / (2N) nats,
    so use thousands of examples: with 10,000 it is below 0.01 nats for these sizes.
    """
    codes = np.asarray(codes, dtype=np.float64)
    factors = np.asarray(factors)
    if codes.ndim != 2 or factors.ndim != 2 or len(codes) != len(factors):
        raise ValueError(f"mutual_information_gap: codes (N, D) and factors (N, K) with the same "
                         f"N needed, got {codes.shape} and {factors.shape}")  # fmt: skip
    bins = discretize(codes, n_bins)  # (N, D)
    d, k = codes.shape[1], factors.shape[1]
    mi = np.array([[mutual_information(bins[:, j], factors[:, f]) for f in range(k)]
                   for j in range(d)])  # fmt: skip  # (D, K)
    h = np.array([entropy(factors[:, f]) for f in range(k)])  # (K,)
    score, _ = mig_from_mi(mi, h)
    return score, mi


# ----------------------------------------------------------------------------- β-VAE metric


def _standardize(x, mean, std):
    return (x - mean) / std


def softmax_regression(x, y, n_classes: int, steps: int = 500, l2: float = 1e-4):
    """Multinomial logistic regression by full-batch gradient descent; returns a predict function.

    x (N, D) features (standardized inside with the training mean and std; constant
    columns stay 0), y (N,) ints in 0..n_classes−1. Loss: mean cross-entropy
    + l2/2 ||W||². The step is 1/L, L = ½ λ_max(X̃ᵀX̃/N) + l2 with X̃ = [x, 1], a bound on
    the curvature of softmax cross-entropy, so descent is monotone without tuning.
    Predictions are argmax of the logits, ties to the lowest class index (np.argmax).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    mean, std = x.mean(axis=0), x.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)  # constant features stay 0 after centring
    xs = _standardize(x, mean, std)
    xt = np.concatenate([xs, np.ones((len(xs), 1))], axis=1)  # (N, D+1), bias column
    n = len(xt)
    onehot = np.zeros((n, n_classes))
    onehot[np.arange(n), y] = 1.0
    curvature = 0.5 * float(np.linalg.eigvalsh(xt.T @ xt / n)[-1]) + l2
    lr = 1.0 / curvature
    w = np.zeros((xt.shape[1], n_classes))  # (D+1, C)
    for _ in range(steps):
        logits = xt @ w  # (N, C)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        grad = xt.T @ (p - onehot) / n  # (D+1, C) d mean CE / dW
        grad[:-1] += l2 * w[:-1]  # the bias is not penalized
        w -= lr * grad

    def predict(x_new):
        xn = np.concatenate([_standardize(np.asarray(x_new, dtype=np.float64), mean, std),
                             np.ones((len(x_new), 1))], axis=1)  # fmt: skip
        return np.argmax(xn @ w, axis=1)

    return predict


def _balanced_factor_choice(n: int, k: int, rng):
    """n factor indices with each of 0..k−1 exactly n/k times (n a multiple of k), shuffled."""
    return rng.permutation(np.arange(n) % k)


def _difference_points(represent, factor_sizes, chosen, batch: int, rng):
    """One z_diff per chosen factor: mean over ``batch`` pairs sharing that factor of |z1 − z2|."""
    sizes = np.asarray(factor_sizes, dtype=np.int64)
    n, k = len(chosen), len(sizes)
    v1 = rng.integers(0, sizes, size=(n, batch, k))  # (n, L, K) random factors
    v2 = rng.integers(0, sizes, size=(n, batch, k))
    fixed = np.broadcast_to(np.arange(k) == chosen[:, None, None], v1.shape)  # (n, L, K)
    v2 = np.where(fixed, v1, v2)  # the pair shares factor k, the rest are independent
    z1 = np.asarray(represent(v1.reshape(n * batch, k)), dtype=np.float64)  # (n L, D)
    z2 = np.asarray(represent(v2.reshape(n * batch, k)), dtype=np.float64)
    if z1.ndim != 2 or len(z1) != n * batch or z2.shape != z1.shape:
        raise ValueError(f"beta_vae_metric: represent must map (N, {k}) factors to (N, D) codes; "
                         f"got {z1.shape} for N = {n * batch}")  # fmt: skip
    return np.abs(z1 - z2).reshape(n, batch, -1).mean(axis=1)  # (n, D)


def beta_vae_metric(represent, factor_sizes, seed=0, n_train: int = 1000, n_test: int = 500,
                    batch: int = 64, steps: int = 500):  # fmt: skip
    """Higgins et al. 2017 disentanglement metric; returns (test accuracy, details dict).

    represent: factors (N, K) int indices -> codes (N, D), e.g. render then encoder mean.
    factor_sizes: (K,) number of values of each factor; factors are drawn uniformly.
    seed: an int or a numpy Generator. batch: L, pairs averaged per point.
    n_train, n_test: points for the classifier, rounded down to multiples of K; each
    factor is the fixed one exactly n/K times (balanced), so a representation that
    carries no information (e.g. constant codes) scores exactly 1/K, chance: its
    features are identical for every point, the classifier predicts one class for all,
    and that class is right on exactly n_test/K points.
    details: "train_accuracy", "confusion" (K, K) counts of test points (true row,
    predicted column), "chance" = 1/K.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    k = len(factor_sizes)
    if k < 2:
        raise ValueError("beta_vae_metric: needs at least 2 factors")
    if min(factor_sizes) < 2:
        raise ValueError(f"beta_vae_metric: every factor needs >= 2 values, got {factor_sizes}")
    n_train, n_test = (n_train // k) * k, (n_test // k) * k
    if n_train < k or n_test < k or batch < 1:
        raise ValueError(f"beta_vae_metric: n_train, n_test must be >= K = {k}, batch >= 1")
    y_train = _balanced_factor_choice(n_train, k, rng)
    y_test = _balanced_factor_choice(n_test, k, rng)
    x_train = _difference_points(represent, factor_sizes, y_train, batch, rng)  # (n_train, D)
    x_test = _difference_points(represent, factor_sizes, y_test, batch, rng)
    predict = softmax_regression(x_train, y_train, k, steps=steps)
    pred_test = predict(x_test)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y_test, pred_test), 1)
    details = {
        "train_accuracy": float(np.mean(predict(x_train) == y_train)),
        "confusion": confusion,
        "chance": 1.0 / k,
    }
    return float(np.mean(pred_test == y_test)), details
