"""Lesson 00: latent variable models, the ELBO and its gap, importance sampling, two gradients.

Before any network is trained, this lesson computes exactly (by quadrature on a
grid) or by plain Monte Carlo the objects that a VAE approximates, so that each
claim of the lecture can be checked with numbers:

  1. a 1-D mixture of Gaussians, p(x) = Σ λ_n N(x; μ_n, σ_n²)     (seed 003, Fig. 17.1)
  2. a nonlinear latent variable model z ~ N(0, 1), x|z ~ N(f(z), σ²): p(x) by
     integrating over z, and ancestral samples that agree with it (seed 003, Fig. 17.2-17.3)
  3. Jensen's inequality, log E[y] ≥ E[log y]                     (seed 003, eq. 17.12-17.13)
  4. the ELBO of Gaussian q(z) = N(m, s²) against log p(x): the gap is exactly
     KL(q ‖ p(z|x)), the best Gaussian comes close, only the posterior closes it
                                                                  (seed 003, eq. 17.17, Fig. 17.6)
  5. importance sampling of p(x) with three proposals              (seed 003, "Applications")
  6. reparameterization vs score-function gradients of E_q[f(x)]  (seed 000 and 001,
     "Reparameterization trick"), the first one through the minivae engine's backward

Nothing is trained. Seeds are the lecture notes in the shared seeds folder
(see DESIGN.md); "seed 003, eq. 17.17" means equation 17.17 of file 003_*.txt.

Run (15-20 s on 2 busy cores; --quick takes about 5 s):

    python lessons/00_latent_variable_models.py [--quick]

Figures (one or two PNGs per part) and summary.json go to
runs/lessons/00_latent_variable_models/ (change the root with --out).
--dataset is accepted like in every lesson but not used: all data here is synthetic.
--device gpu runs the engine part (part 6) on CuPy; the quadratures stay in NumPy.
"""

# %% [markdown]
# # Setup
# Imports, the hyperparameters of every part as named constants, and small
# numerical helpers (Gaussian log-density, trapezoid quadrature on a grid, a
# log-domain integral that does not underflow).

# %%

from __future__ import annotations

import math
import os
import sys

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout

import minivae as mv
from lessons.common import Lesson, parse_args
from minivae import backend as B
from minivae import ops, plots
from minivae.gradcheck import gradcheck
from minivae.tensor import Function

NAME = "00_latent_variable_models"

# Sizes come in pairs (full run, --quick).
X_RANGE = (-10.0, 10.0)  # the x grid of every integral over x
N_X_GRID = (4001, 1201)
Z_RANGE = (-12.0, 12.0)  # the z grid of every integral over z: wide enough for every q used
N_Z_GRID = (4001, 1201)

# Part 1: a mixture of four Gaussians (seed 003, eq. 17.3-17.4)
MOG_WEIGHTS = (0.15, 0.25, 0.35, 0.25)  # λ_n = Pr(z = n), they sum to 1
MOG_MEANS = (-3.0, -1.0, 1.5, 3.5)  # μ_n
MOG_STDS = (0.6, 0.8, 0.5, 1.0)  # σ_n

# Part 2: the nonlinear latent variable model (seed 003, eq. 17.7), x and z both 1-D
F_SLOPE, F_WIGGLE, F_FREQ = 1.5, 1.0, 2.0  # f(z) = 1.5 z + sin(2 z), a stand-in for f[z, φ]
SIGMA_X = 0.3  # σ of the likelihood p(x|z) = N(f(z), σ²)
N_ANCESTRAL = (200_000, 5_000)  # ancestral samples z* ~ p(z), x* ~ p(x|z*) (Fig. 17.3)
KS_CRITICAL_95 = 1.358  # the 95 % point of sqrt(n) * max|F_n - F| (Kolmogorov's distribution)

# Part 3: Jensen's inequality (seed 003, eq. 17.12)
JENSEN_POINTS = (0.5, 4.0)  # the lecture's picture: two point masses of probability 1/2 each
LOGNORMAL_MU, LOGNORMAL_S = 0.5, 0.8  # a continuous y = exp(u), u ~ N(0.5, 0.8²)
N_JENSEN = (200_000, 20_000)

# Part 4: the ELBO for Gaussian q(z) = N(m, s²) at one observed x (seed 003, eq. 17.16-17.18)
X_OBS = 2.5  # the observed x; its posterior p(z|x) is skewed, with a shoulder: not Gaussian
Q_MEAN_RANGE = (-1.0, 3.5)  # the range of m searched
Q_STD_RANGE = (0.05, 1.2)  # the range of s searched (log-spaced); m + 7 s stays on the z grid
N_Q_GRID = (60, 24)  # m values and s values per search round (two rounds, the second zoomed)
Q_STDS_SHOWN = (0.1, 0.2, 0.3, 0.6)  # the curves ELBO(m) drawn for these s
LIN_A, LIN_B, LIN_SIGMA = 1.5, 0.0, 0.5  # linear-Gaussian model x|z ~ N(a z + b, σ²): exact
FIG_17_6_A = (0.6, 2.0)  # Fig. 17.6: the ELBO of q fixed at the posterior for these a, over a

# Part 5: importance sampling of p(x) at X_OBS (seed 003, "Applications")
IS_KS = (1, 3, 10, 30, 100, 300, 1000, 3000, 10000)  # samples per estimate (cut at 1000 quick)
IS_REPEATS = (256, 64)  # independent estimates per K, to measure their error
IS_K_REPORT = 1000  # the K at which the relative errors are reported
NARROW_FACTOR = 0.25  # "too narrow": the posterior's std times this
GOOD_WIDEN = 1.2  # "good": the posterior's mean and std, std widened a little (heavier tails)

# Part 6: gradients of E_{x~N(φ³, e^{2φ})}[x² + sin x] with respect to φ (seed 000, 001)
PHI = 0.5
N_GRAD_SAMPLES = (262_144, 16_384)  # single-sample gradient estimates drawn per estimator
GRAD_NS = (1, 4, 16, 64, 256, 1024)  # samples averaged per estimate, for the variance plot


def pick(pair, quick: bool):
    """The --quick value of a (full, quick) pair when quick, else the full one."""
    return pair[1] if quick else pair[0]


def log_normal(x, mean, std):
    """log N(x; mean, std²) = -½ log(2π std²) - (x - mean)² / (2 std²), elementwise."""
    return -0.5 * np.log(2.0 * np.pi * std**2) - 0.5 * ((x - mean) / std) ** 2


def trapezoid_weights(grid):
    """w with Σ_i w_i g(grid_i) ≈ ∫ g: the trapezoid rule on a sorted grid, (G,)."""
    dx = np.diff(grid)
    w = np.zeros_like(grid)
    w[:-1] += dx / 2
    w[1:] += dx / 2
    return w


def integrate(values, grid):
    """∫ g over the grid, along the last axis of values (G values per integral)."""
    return values @ trapezoid_weights(grid)


def log_integrate(log_values, grid):
    """log ∫ exp(log g) over the grid, along the last axis, without underflow (log-sum-exp)."""
    a = log_values + np.log(trapezoid_weights(grid))
    top = a.max(axis=-1, keepdims=True)
    return np.log(np.exp(a - top).sum(axis=-1)) + top[..., 0]


def cumulative_integral(values, grid):
    """F(grid_i) = ∫_{grid_0}^{grid_i} g, by the trapezoid rule, (G,)."""
    return np.concatenate([[0.0], np.cumsum((values[1:] + values[:-1]) / 2 * np.diff(grid))])


def report_precise(lesson: Lesson, key: str, value: float, text: str, fmt: str = ".2e") -> None:
    """Lesson.report without its rounding to 4 decimals: for numbers whose size is the point
    (an error of 1e-13 would print as 0.0), written in full to summary.json."""
    lesson.numbers[key] = float(value)
    print(f"  {text}: {value:{fmt}}")


def save_figure(fig: Figure, path: str) -> None:
    """A multi-panel figure that minivae.plots has no function for: Agg canvas, no pyplot."""
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100, bbox_inches="tight", pad_inches=0.1)


# %% [markdown]
# # Part 1: the 1-D mixture of Gaussians (seed 003, eq. 17.3-17.4, Fig. 17.1)
# A discrete latent z ∈ {1..N} with Pr(z = n) = λ_n picks a Gaussian; x is drawn
# from it. Marginalizing z out is a finite sum, and the marginal is a proper
# density: its integral over x is 1.

# %%


def part1_mixture(lesson: Lesson, x):
    weights, means, stds = (np.array(v) for v in (MOG_WEIGHTS, MOG_MEANS, MOG_STDS))
    # seed 003, eq. 17.3: Pr(z = n) = λ_n,  Pr(x | z = n) = Norm_x[μ_n, σ_n²]
    joint = weights[:, None] * np.exp(log_normal(x[None, :], means[:, None], stds[:, None]))
    # seed 003, eq. 17.4: Pr(x) = Σ_n Pr(x | z = n) Pr(z = n) = Σ_n λ_n Norm_x[μ_n, σ_n²]
    marginal = joint.sum(axis=0)  # (X,)
    report_precise(lesson, "mog_integral", integrate(marginal, x), "∫ p(x) dx of the mixture (≈ 1)",
                   ".10f")  # fmt: skip

    fig = Figure(figsize=(12.0, 4.2), layout="constrained")
    ax, ax2 = fig.subplots(1, 2, width_ratios=(1.2, 1.0))
    for n in range(len(weights)):
        sub = "₁₂₃₄₅₆₇₈₉"[n]
        label = f"λ{sub} N(x; {means[n]:g}, {stds[n]:g}²),  λ{sub} = {weights[n]:g}"
        ax.plot(x, joint[n], "--", linewidth=1.3, label=label)
    ax.plot(x, marginal, color="tab:cyan", linewidth=2.5, label="p(x) = Σₙ λₙ N(x; μₙ, σₙ²)")
    ax.set(xlim=(-6.5, 7.5), xlabel="x", ylabel="density",
           title="a) weighted components (dashed) and their sum, the marginal p(x)")  # fmt: skip
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    shown = ax2.imshow(joint, aspect="auto", origin="lower", cmap="viridis",
                       interpolation="nearest",
                       extent=(x[0], x[-1], 0.5, len(weights) + 0.5))  # fmt: skip
    ax2.set(xlim=(-6.5, 7.5), yticks=range(1, len(weights) + 1), xlabel="x", ylabel="latent z = n",
            title="b) the joint p(x, z = n); p(x) sums each column")  # fmt: skip
    fig.colorbar(shown, ax=ax2, label="p(x, z = n)")
    fig.suptitle("Part 1 - mixture of Gaussians (seed 003, Fig. 17.1): a discrete latent variable")
    save_figure(fig, lesson.path("1_mixture_of_gaussians.png"))


# %% [markdown]
# # Part 2: a nonlinear latent variable model (seed 003, eq. 17.7, Fig. 17.2-17.3)
# z ~ N(0, 1) and x | z ~ N(f(z), σ²) with a nonlinear f. p(x) is an "infinite
# mixture" of Gaussians N(f(z), σ²) weighted by p(z): an integral over z, done
# here on a grid. Density piles up where f is flat (many z map to the same x).
# Ancestral sampling (Fig. 17.3: z* ~ p(z), then x* ~ p(x|z*)) must reproduce p(x);
# we measure the agreement by the largest gap between the two CDFs (the
# Kolmogorov-Smirnov statistic).

# %%


def f_nonlinear(z):
    """The mean of p(x|z): f(z) = 1.5 z + sin(2 z), a stand-in for the decoder f[z, φ]."""
    return F_SLOPE * z + F_WIGGLE * np.sin(F_FREQ * z)


def log_joint_nonlinear(x, z):
    """log p(x, z) = log N(x; f(z), σ²) + log N(z; 0, 1)  (the integrand of seed 003, eq. 17.7)."""
    return log_normal(x, f_nonlinear(z), SIGMA_X) + log_normal(z, 0.0, 1.0)


def part2_nonlinear(lesson: Lesson, x, z, rng, quick):
    # seed 003, eq. 17.7: Pr(x) = ∫ Norm_x[f(z), σ²] Norm_z[0, 1] dz; one integral per x
    px = np.exp(log_integrate(log_joint_nonlinear(x[:, None], z[None, :]), z))  # (X,)
    report_precise(lesson, "nonlinear_integral", integrate(px, x),
                   "∫ p(x) dx of the nonlinear model (≈ 1)", ".10f")  # fmt: skip

    # seed 003, Fig. 17.3: ancestral sampling, z* ~ Pr(z), then x* ~ Pr(x | z*)
    n = pick(N_ANCESTRAL, quick)
    z_star = rng.standard_normal(n)  # (n,)
    x_star = f_nonlinear(z_star) + SIGMA_X * rng.standard_normal(n)  # (n,)

    # Kolmogorov-Smirnov: D = max_x |F_n(x) - F(x)|, F from the quadrature, F_n from the samples
    cdf = cumulative_integral(px, x)
    cdf_at = np.interp(np.sort(x_star), x, cdf)
    steps = np.arange(1, n + 1) / n
    ks = float(max(np.max(steps - cdf_at), np.max(cdf_at - (steps - 1.0 / n))))
    lesson.report("nonlinear_samples", n, "ancestral samples drawn")
    lesson.report("nonlinear_ks", ks, "max |CDF of samples - CDF of p(x)| (Kolmogorov-Smirnov D)")
    lesson.report("nonlinear_ks_critical_95", KS_CRITICAL_95 / math.sqrt(n),
                  "  ... 95 % threshold for that D if samples and p(x) agree")  # fmt: skip

    fig = Figure(figsize=(12.0, 4.4), layout="constrained")
    ax, ax2 = fig.subplots(1, 2)
    zs, xs = np.linspace(-3, 3, 301), np.linspace(-6, 6, 301)
    joint = np.exp(log_joint_nonlinear(xs[:, None], zs[None, :]))  # (301 x, 301 z)
    ax.imshow(joint, aspect="auto", origin="lower", cmap="Greys",
              extent=(zs[0], zs[-1], xs[0], xs[-1]))  # fmt: skip
    ax.plot(zs, f_nonlinear(zs), color="tab:red", linewidth=1.5, label="f(z) = 1.5 z + sin 2z")
    ax.plot(z_star[:300], x_star[:300], ".", color="tab:blue", markersize=3,
            label="300 ancestral samples (z*, x*)")  # fmt: skip
    ax.set(xlim=(zs[0], zs[-1]), xlabel="latent z", ylabel="observed x",
           title=f"a) joint p(x, z) = N(x; f(z), {SIGMA_X}²) N(z; 0, 1)")  # fmt: skip
    ax.legend(fontsize=8, loc="upper left")
    ax2.hist(x_star, bins=60 if quick else 120, range=(-6, 6), density=True,
             histtype="stepfilled", alpha=0.4, label=f"histogram of {n:,} samples x*")  # fmt: skip
    ax2.plot(x, px, color="black", linewidth=1.5, label="p(x) by quadrature over z")
    ax2.set(xlim=(-6, 6), xlabel="x", ylabel="density",
            title=f"b) p(x) and ancestral samples (KS distance D = {ks:.4f})")  # fmt: skip
    ax2.legend(fontsize=8, loc="upper left")
    ax2.grid(alpha=0.3)
    fig.suptitle("Part 2 - nonlinear latent variable model (seed 003, Fig. 17.2-17.3): "
                 "an infinite mixture of Gaussians")  # fmt: skip
    save_figure(fig, lesson.path("2_nonlinear_latent_variable_model.png"))
    return px


# %% [markdown]
# # Part 3: Jensen's inequality (seed 003, eq. 17.12-17.13)
# log is concave, so the log of a mean is at least the mean of the logs:
# log E[y] ≥ E[log y]. First the lecture's picture (two point masses), then a
# continuous y = e^u, u ~ N(μ, s²), where both sides are known exactly:
# log E[y] = μ + s²/2 and E[log y] = μ, so the gap is s²/2.

# %%


def part3_jensen(lesson: Lesson, rng, quick):
    pts = np.array(JENSEN_POINTS)
    # seed 003, eq. 17.12 with two point masses of probability 1/2
    two_log_mean, two_mean_log = float(np.log(pts.mean())), float(np.log(pts).mean())
    lesson.report("jensen_two_points_log_E_y", two_log_mean, "two point masses: log E[y]")
    lesson.report("jensen_two_points_E_log_y", two_mean_log, "two point masses: E[log y]")

    n = pick(N_JENSEN, quick)
    y = np.exp(LOGNORMAL_MU + LOGNORMAL_S * rng.standard_normal(n))  # (n,) y = e^u
    log_mean, mean_log = float(np.log(y.mean())), float(np.log(y).mean())  # Monte Carlo
    lesson.report("jensen_log_E_y", log_mean, "y = e^u, u ~ N(0.5, 0.8²): log E[y] (MC)")
    lesson.report("jensen_E_log_y", mean_log, "  ... E[log y] (MC)")
    lesson.report(
        "jensen_gap_exact", LOGNORMAL_S**2 / 2, "  ... exact gap log E[y] - E[log y] = s²/2"
    )

    fig = Figure(figsize=(12.0, 4.6), layout="constrained")
    ax, ax2 = fig.subplots(1, 2)
    ys = np.linspace(0.05, 8.0, 400)
    for a in (ax, ax2):
        a.plot(ys, np.log(ys), color="black", linewidth=1.5, label="log y (concave)")
        a.grid(alpha=0.3)
        a.set(xlabel="y", ylabel="log y", xlim=(0, 8.0), ylim=(-2.5, 3.2))
    ax.plot(pts, np.log(pts), "o", color="tab:green", markersize=8, label="(y, log y), Pr = ½ each")
    ax.plot(pts, np.log(pts), color="tab:green", linewidth=1, alpha=0.6)
    ax.plot([pts.mean()], [two_log_mean], "o", color="tab:red", markersize=9,
            label=f"log E[y] = {two_log_mean:.3f}")  # fmt: skip
    ax.plot([pts.mean()], [two_mean_log], "o", color="tab:blue", markersize=9,
            label=f"E[log y] = {two_mean_log:.3f}")  # fmt: skip
    ax.set_title("a) the lecture's picture: two point masses")
    ax.legend(fontsize=8, loc="upper left")

    dens = np.exp(log_normal(np.log(ys), LOGNORMAL_MU, LOGNORMAL_S)) / ys  # p(y), log-normal
    ax2.fill_between(ys, -2.5, -2.5 + 2.0 * dens, color="tab:orange", alpha=0.35,
                     label="p(y) (scaled, drawn on the floor)")  # fmt: skip
    exact_log_mean = LOGNORMAL_MU + LOGNORMAL_S**2 / 2
    ax2.plot([y.mean()], [log_mean], "o", color="tab:red", markersize=9,
             label=f"log E[y] = {log_mean:.3f}  (exact μ + s²/2 = {exact_log_mean:.3f})",
             )  # fmt: skip
    ax2.plot([y.mean()], [mean_log], "o", color="tab:blue", markersize=9,
             label=f"E[log y] = {mean_log:.3f}  (exact μ = {LOGNORMAL_MU:.3f})")  # fmt: skip
    ax2.axvline(y.mean(), color="0.5", linestyle=":", linewidth=1, label=f"E[y] = {y.mean():.3f}")
    ax2.set_title(f"b) continuous y = exp(u), u ~ N({LOGNORMAL_MU}, {LOGNORMAL_S}²), {n:,} samples")
    ax2.legend(fontsize=8, loc="upper left")
    fig.suptitle("Part 3 - Jensen's inequality (seed 003, eq. 17.12): log E[y] ≥ E[log y]")
    save_figure(fig, lesson.path("3_jensen_inequality.png"))


# %% [markdown]
# # Part 4: the ELBO and its gap (seed 003, eq. 17.14-17.18, Fig. 17.6)
# For one observed x we know the true posterior p(z|x) = p(x, z) / p(x) on the z
# grid. For every Gaussian q(z) = N(m, s²) we compute, by quadrature:
#   ELBO(q) = ∫ q(z) log[p(x, z) / q(z)] dz                         (eq. 17.16)
#   the same ELBO as  E_q[log p(x|z)] - KL(q ‖ p(z)), KL closed-form  (eq. 17.18)
#   KL(q ‖ p(z|x)) = ∫ q(z) log[q(z) / p(z|x)] dz                   (computed on its own)
# and check eq. 17.17: log p(x) - ELBO = KL(q ‖ p(z|x)) ≥ 0. The best Gaussian
# comes close to log p(x) but cannot reach it, since p(z|x) is not Gaussian; in
# a linear-Gaussian model the posterior is Gaussian and the gap closes exactly.

# %%


def kl_normal_std_normal(m, s):
    """KL(N(m, s²) ‖ N(0, 1)) = ½ (m² + s² - 1 - log s²)  (seed 001, Problem 1.7)."""
    return 0.5 * (m**2 + s**2 - 1.0 - np.log(s**2))


def gaussian_q_terms(log_lik, log_prior, log_px, z, m, s):
    """ELBO (eq. 17.16 and 17.18) and KL(q ‖ p(z|x)) for q = N(m, s²), by quadrature over z.

    log_lik, log_prior: log p(x|z), log p(z) on the z grid, (Z,); m, s: arrays of one shape.
    """
    m, s = np.broadcast_arrays(np.asarray(m, float), np.asarray(s, float))
    log_q = log_normal(z, m[..., None], s[..., None])  # (..., Z)
    q = np.exp(log_q)
    log_joint = log_lik + log_prior  # (Z,) log p(x, z)
    # seed 003, eq. 17.16: ELBO = ∫ q(z) log[Pr(x, z) / q(z)] dz
    elbo = integrate(q * (log_joint - log_q), z)
    # seed 003, eq. 17.18: ELBO = ∫ q(z) log Pr(x|z) dz - D_KL[q(z) ‖ Pr(z)]
    elbo_1718 = integrate(q * log_lik, z) - kl_normal_std_normal(m, s)
    # D_KL[q(z) ‖ Pr(z|x)] with the posterior Pr(z|x) = Pr(x, z) / Pr(x) (Bayes' rule)
    log_post = log_joint - log_px
    kl_post = integrate(q * (log_q - log_post), z)
    return elbo, elbo_1718, kl_post


def best_gaussian(log_lik, log_prior, log_px, z, n_grid):
    """The (m, s) of the Gaussian q with the largest ELBO: a grid search, then a zoomed one."""
    m_lo, m_hi = Q_MEAN_RANGE
    ls_lo, ls_hi = np.log(Q_STD_RANGE[0]), np.log(Q_STD_RANGE[1])
    for _ in range(2):
        ms, log_ss = np.linspace(m_lo, m_hi, n_grid), np.linspace(ls_lo, ls_hi, n_grid)
        mm, ss = np.meshgrid(ms, np.exp(log_ss))  # (S, M)
        elbo = gaussian_q_terms(log_lik, log_prior, log_px, z, mm, ss)[0]
        i, j = np.unravel_index(np.argmax(elbo), elbo.shape)
        dm, dls = ms[1] - ms[0], log_ss[1] - log_ss[0]  # zoom in to ±2 grid steps
        m_lo, m_hi = ms[j] - 2 * dm, ms[j] + 2 * dm
        ls_lo, ls_hi = log_ss[i] - 2 * dls, log_ss[i] + 2 * dls
    return float(mm[i, j]), float(ss[i, j]), float(elbo[i, j])


def part4_elbo(lesson: Lesson, z, quick):
    # --- the nonlinear model of part 2, observed x = X_OBS
    log_lik = log_normal(X_OBS, f_nonlinear(z), SIGMA_X)  # (Z,) log p(x|z)
    log_prior = log_normal(z, 0.0, 1.0)  # (Z,) log p(z)
    log_px = float(log_integrate(log_lik + log_prior, z))  # log p(x) = log ∫ p(x|z) p(z) dz
    post = np.exp(log_lik + log_prior - log_px)  # (Z,) p(z|x), Bayes' rule
    post_mean = float(integrate(z * post, z))
    post_std = float(np.sqrt(integrate((z - post_mean) ** 2 * post, z)))
    lesson.report("x_obs", X_OBS, "observed x")
    lesson.report("log_px", log_px, "log p(x) by quadrature")
    report_precise(lesson, "posterior_integral", integrate(post, z), "∫ p(z|x) dz (≈ 1)", ".10f")

    # every q of a grid over (m, s): the family of Gaussians, and the curves drawn
    n_grid = pick(N_Q_GRID, quick)
    means = np.linspace(*Q_MEAN_RANGE, 4 * n_grid)
    stds = np.exp(np.linspace(np.log(Q_STD_RANGE[0]), np.log(Q_STD_RANGE[1]), n_grid))
    mm, ss = np.meshgrid(means, np.concatenate([stds, Q_STDS_SHOWN]))  # (S, M)
    elbo, elbo_1718, kl_post = gaussian_q_terms(log_lik, log_prior, log_px, z, mm, ss)
    gap = log_px - elbo
    # seed 003, eq. 17.17: ELBO = log Pr(x) - D_KL[q(z) ‖ Pr(z|x)]. On a grid both sides are
    # sums over the same points, so they agree up to rounding and ∫q dz ≠ 1 by a hair: this
    # checks that the code for each side is right. Eq. 17.18 with its closed-form KL is the
    # more independent check of the ELBO itself.
    lesson.report("n_gaussians", int(elbo.size), "Gaussians q = N(m, s²) evaluated")
    lesson.report("max_elbo_minus_log_px", float(np.max(elbo - log_px)),
                  "max over q of ELBO - log p(x) (< 0: the ELBO is a lower bound)")  # fmt: skip
    report_precise(lesson, "max_gap_minus_kl", np.max(np.abs(gap - kl_post)),
                   "max over q of |(log p(x) - ELBO) - KL(q ‖ p(z|x))| (eq. 17.17)")  # fmt: skip
    report_precise(lesson, "max_elbo_1716_minus_1718", np.max(np.abs(elbo - elbo_1718)),
                   "max over q of |ELBO by eq. 17.16 - ELBO by eq. 17.18|")  # fmt: skip

    m_best, s_best, elbo_best = best_gaussian(log_lik, log_prior, log_px, z, n_grid)
    lesson.report("best_q_mean", m_best, "best Gaussian q: m")
    lesson.report("best_q_std", s_best, "best Gaussian q: s")
    lesson.report("best_q_gap", log_px - elbo_best,
                  "best Gaussian q: log p(x) - ELBO = KL(q ‖ p(z|x)) (> 0, small)")  # fmt: skip
    mm_elbo = float(gaussian_q_terms(log_lik, log_prior, log_px, z, post_mean, post_std)[0])
    lesson.report("posterior_mean", post_mean, "p(z|x): mean")
    lesson.report("posterior_std", post_std, "p(z|x): std")
    lesson.report("moment_matched_q_gap", log_px - mm_elbo,
                  "q with the posterior's mean and std: log p(x) - ELBO (larger)")  # fmt: skip

    # --- a linear-Gaussian model: x|z ~ N(a z + b, σ²), z ~ N(0, 1); everything is Gaussian
    def linear_exact(a):
        """log p(x) = log N(x; b, a² + σ²) and the posterior N(μ, v): v = 1 / (1 + a²/σ²),
        μ = v a (x - b) / σ²; returns (log p(x), μ, sqrt(v))."""
        v = 1.0 / (1.0 + a**2 / LIN_SIGMA**2)
        log_px_a = log_normal(X_OBS, LIN_B, np.sqrt(a**2 + LIN_SIGMA**2))
        return log_px_a, v * a * (X_OBS - LIN_B) / LIN_SIGMA**2, np.sqrt(v)

    lin_log_lik = log_normal(X_OBS, LIN_A * z + LIN_B, LIN_SIGMA)  # (Z,)
    lin_log_px = float(log_integrate(lin_log_lik + log_prior, z))
    lin_exact_log_px, lin_m, lin_s = linear_exact(LIN_A)
    lin_elbo, _, lin_kl = gaussian_q_terms(lin_log_lik, log_prior, lin_log_px, z, lin_m, lin_s)
    lin_gap = float(lin_log_px - lin_elbo)
    report_precise(lesson, "linear_log_px_error", abs(lin_log_px - float(lin_exact_log_px)),
                   "linear-Gaussian: |log p(x) by quadrature - exact|")  # fmt: skip
    report_precise(lesson, "linear_gap_at_posterior", lin_gap,
                   "linear-Gaussian, q = exact posterior: log p(x) - ELBO (0: tight)")  # fmt: skip
    report_precise(lesson, "linear_kl_at_posterior", float(lin_kl), "  ... and KL(q ‖ p(z|x))")

    # --- the figure: four panels. Nothing can lie above the black log p(x) lines: the empty
    # band above them holds the legends.
    fig = Figure(figsize=(13.0, 9.5), layout="constrained")
    (a, b), (c, d) = fig.subplots(2, 2)
    q_best = np.exp(log_normal(z, m_best, s_best))
    q_mm = np.exp(log_normal(z, post_mean, post_std))
    a.plot(z, post, color="black", linewidth=2, label=f"posterior p(z | x = {X_OBS})")
    a.plot(z, q_best, color="tab:blue",
           label=f"best Gaussian q = N({m_best:.2f}, {s_best:.2f}²): "
                 f"gap {log_px - elbo_best:.3f}")  # fmt: skip
    a.plot(z, q_mm, "--", color="tab:orange",
           label=f"posterior's mean and std, N({post_mean:.2f}, {post_std:.2f}²): "
                 f"gap {log_px - mm_elbo:.3f}")  # fmt: skip
    a.set(xlim=(-0.5, 3.5), ylim=(0, 1.65), xlabel="z", ylabel="density",
          title="a) nonlinear model: p(z|x) is not Gaussian")  # fmt: skip
    a.legend(fontsize=8, loc="upper right")
    a.grid(alpha=0.3)

    rows = len(stds) + np.arange(len(Q_STDS_SHOWN))  # the rows of the grid with the shown s
    for r in rows:
        b.plot(means, elbo[r], label=f"ELBO of N(m, {ss[r, 0]:g}²)")
    b.axhline(log_px, color="black", linewidth=2, label=f"log p(x) = {log_px:.3f}")
    b.plot([m_best], [elbo_best], "*", color="tab:red", markersize=12,
           label=f"best Gaussian: ELBO = {elbo_best:.3f}")  # fmt: skip
    b.set(xlim=(0.0, 3.0), ylim=(log_px - 6, log_px + 2.2), xlabel="mean m of q", ylabel="nats",
          title="b) nonlinear model: ELBO(q) ≤ log p(x); the gap is KL(q ‖ p(z|x))")  # fmt: skip
    b.legend(fontsize=8, loc="upper center", ncols=2)
    b.grid(alpha=0.3)

    lin_means = np.linspace(lin_m - 2.0, lin_m + 2.0, 201)
    for s_q in (lin_s / 2, lin_s, 2 * lin_s):
        e = gaussian_q_terms(lin_log_lik, log_prior, lin_log_px, z, lin_means, s_q)[0]
        tag = " = posterior's" if s_q == lin_s else ""
        c.plot(lin_means, e, label=f"ELBO of N(m, {s_q:.3f}²){tag}")
    c.axhline(lin_log_px, color="black", linewidth=2, label=f"log p(x) = {lin_log_px:.3f}")
    c.plot([lin_m], [lin_elbo], "*", color="tab:red", markersize=12,
           label=f"q = p(z|x) = N({lin_m:.2f}, {lin_s:.3f}²): gap {lin_gap:.1e}")  # fmt: skip
    c.set(xlim=(0.0, 3.0), ylim=(lin_log_px - 6, lin_log_px + 2.2), xlabel="mean m of q",
          ylabel="nats",
          title=f"c) linear-Gaussian x|z ~ N({LIN_A} z, {LIN_SIGMA}²): "
                "the posterior closes the gap")  # fmt: skip
    c.legend(fontsize=8, loc="upper center", ncols=2)
    c.grid(alpha=0.3)

    # seed 003, Fig. 17.6: over the model parameter (here a), log p(x|a) and the ELBO of a
    # fixed q; eq. 17.18 in closed form: E_q[log N(x; a z + b, σ²)] - KL(q ‖ N(0, 1))
    a_vals = np.linspace(0.05, 3.5, 300)
    d.plot(a_vals, linear_exact(a_vals)[0], color="black", linewidth=2, label="log p(x | a)")
    for a_fix, colour in zip(FIG_17_6_A, ("tab:green", "tab:purple")):
        _, m_q, s_q = linear_exact(a_fix)
        e = (log_normal(X_OBS, a_vals * m_q + LIN_B, LIN_SIGMA)
             - a_vals**2 * s_q**2 / (2 * LIN_SIGMA**2)
             - kl_normal_std_normal(m_q, s_q))  # fmt: skip
        d.plot(a_vals, e, color=colour, label=f"ELBO with q fixed at p(z | x, a = {a_fix:g})")
        d.plot([a_fix], [linear_exact(a_fix)[0]], "o", color=colour)
    d.set(ylim=(-9, 0.5), xlabel="model parameter a (the φ of Fig. 17.6)", ylabel="nats",
          title="d) Fig. 17.6: each ELBO touches log p(x|a) where its q is the posterior",
          )  # fmt: skip
    d.legend(fontsize=8, loc="upper center", ncols=2)
    d.grid(alpha=0.3)
    fig.suptitle("Part 4 - ELBO = log p(x) - KL(q ‖ p(z|x)) (seed 003, eq. 17.17): "
                 "tight only when q is the posterior")  # fmt: skip
    save_figure(fig, lesson.path("4_elbo_and_kl_gap.png"))
    return log_px, post, post_mean, post_std


# %% [markdown]
# # Part 5: importance sampling of p(x) (seed 003, "Applications")
# p(x) = ∫ p(x|z) p(z) dz = E_{z~q}[p(x|z) p(z) / q(z)] for any q that is positive
# where p(z|x) is. Averaging K weights w_k = p(x|z_k) p(z_k) / q(z_k) is unbiased
# for every q, but its error depends on q: it is smallest when q is close to the
# posterior with tails at least as heavy; a q that is too narrow misses posterior
# mass and the weights become heavy-tailed (the error barely falls with K).

# %%


def part5_importance(lesson: Lesson, z, log_px, post, post_mean, post_std, rng, quick):
    ks = np.array([k for k in IS_KS if not quick or k <= IS_K_REPORT])
    repeats = pick(IS_REPEATS, quick)
    px = math.exp(log_px)
    proposals = {
        "prior N(0, 1)": (0.0, 1.0),
        f"too narrow N({post_mean:.2f}, {NARROW_FACTOR * post_std:.2f}²)":
            (post_mean, NARROW_FACTOR * post_std),
        f"good N({post_mean:.2f}, {GOOD_WIDEN * post_std:.2f}²)":
            (post_mean, GOOD_WIDEN * post_std),
    }  # fmt: skip
    keys = ("is_prior", "is_narrow", "is_good")
    near = (z > -3.0) & (z < 4.0)  # the part of the z grid drawn
    curves, densities = {}, {f"posterior p(z | x = {X_OBS})": (z[near], post[near])}
    for key, (label, (m_q, s_q)) in zip(keys, proposals.items()):
        zs = m_q + s_q * rng.standard_normal((repeats, ks[-1]))  # (R, K_max) z_k ~ q
        # seed 003, "Applications": Pr(x) = E_q[Pr(x|z) Pr(z) / q(z)], one weight per sample
        log_w = log_joint_nonlinear(X_OBS, zs) - log_normal(zs, m_q, s_q)  # (R, K_max)
        running = np.cumsum(np.exp(log_w), axis=1) / np.arange(1, ks[-1] + 1)  # p̂ from first K
        estimates = running[:, ks - 1]  # (R, len(ks)): R independent estimates per K
        rel_rmse = np.sqrt(np.mean((estimates - px) ** 2, axis=0)) / px
        curves[label] = (ks, rel_rmse)
        densities[label] = (z[near], np.exp(log_normal(z[near], m_q, s_q)))
        at_k = ks == IS_K_REPORT
        lesson.report(f"{key}_rel_error_K{IS_K_REPORT}", float(rel_rmse[at_k][0]),
                      f"IS with {label}: relative RMS error at K = {IS_K_REPORT}")  # fmt: skip
        lesson.report(f"{key}_median_ratio_K{IS_K_REPORT}",
                      float(np.median(estimates[:, at_k]) / px),
                      "  ... median of p̂(x) / p(x) over repeats (< 1: mass missed)")  # fmt: skip
        # the same error predicted from one integral: Var(w)/p(x)² = ∫ p(x,z)²/q dz / p(x)² - 1
        log_second = log_integrate(2 * log_joint_nonlinear(X_OBS, z) - log_normal(z, m_q, s_q), z)
        # (for the too-narrow q it is astronomic: rare huge weights that K samples seldom meet)
        rel_var1 = math.expm1(min(float(log_second) - 2 * log_px, 700.0))
        lesson.report(f"{key}_predicted_rel_error_K{IS_K_REPORT}",
                      float(f"{math.sqrt(rel_var1 / IS_K_REPORT):.4g}"),
                      "  ... predicted by quadrature, sqrt(Var(w) / K) / p(x)")  # fmt: skip
    good = curves[list(proposals)[2]][1][0]
    curves["slope 1/√K, through the good q at K = 1"] = (ks, good / np.sqrt(ks))
    plots.line_plot(curves, lesson.path("5_importance_sampling.png"),
                    f"Part 5 - importance sampling of p(x = {X_OBS}) (seed 003, Applications): "
                    f"relative RMS error of the K-sample estimate over {repeats} repeats",
                    "K, samples per estimate", "relative RMS error of p̂(x)",
                    logx=True, logy=True)  # fmt: skip
    plots.line_plot(densities, lesson.path("5_importance_proposals.png"),
                    f"Part 5 - the three proposals q(z) beside the posterior p(z | x = {X_OBS})",
                    "z", "density")  # fmt: skip


# %% [markdown]
# # Part 6: reparameterization vs score-function gradients (seed 000, 001, 003)
# Toy problem: x ~ q_φ = N(φ³, e^{2φ}) and f(x) = x² + sin x. We want
# d/dφ E_q[f(x)]. Exact: E[x²] = φ⁶ + e^{2φ}, E[sin x] = sin(φ³) exp(-e^{2φ}/2).
# (a) Reparameterization (seed 000, "Reparameterization trick"; seed 001, part 5):
#     x = φ³ + e^φ ε with ε ~ N(0, 1), so d f(x)/dφ = f'(x) (3φ² + e^φ ε); the
#     engine's backward computes it. The engine has no sin, so this lesson adds a
#     Sin op (forward beside backward, like every op in minivae/ops/) and checks it
#     with gradcheck: then backward carries the whole chain and nothing is by hand.
# (b) Score function (REINFORCE): d/dφ E_q[f] = E_q[f(x) ∂ log q(x; φ)/∂φ], the
#     sample x held fixed; the engine differentiates log q(x; φ) for us.
# Both are unbiased; the reparameterized one has far smaller variance.

# %%


class Sin(Function):
    """y = sin x  (added here for this lesson; the engine itself needs no sin)"""

    def forward(self, x):
        self.x = x
        return B.xp.sin(x)

    def backward(self, grad_out):
        # dy/dx = cos x
        return (grad_out * B.xp.cos(self.x),)


def expected_f(phi):
    """E[x² + sin x] for x ~ N(φ³, e^{2φ}) = φ⁶ + e^{2φ} + sin(φ³) exp(-e^{2φ}/2)."""
    return phi**6 + np.exp(2 * phi) + np.sin(phi**3) * np.exp(-np.exp(2 * phi) / 2)


def exact_gradient(phi):
    """d/dφ E[f] = 6φ⁵ + 2e^{2φ} + exp(-e^{2φ}/2) (3φ² cos φ³ - e^{2φ} sin φ³)."""
    e2 = np.exp(2 * phi)
    return (
        6 * phi**5 + 2 * e2 + np.exp(-e2 / 2) * (3 * phi**2 * np.cos(phi**3) - e2 * np.sin(phi**3))
    )


def part6_gradients(lesson: Lesson, rng, quick):
    n = pick(N_GRAD_SAMPLES, quick)
    exact = float(exact_gradient(PHI))
    fd = float((expected_f(PHI + 1e-5) - expected_f(PHI - 1e-5)) / 2e-5)  # check the algebra
    lesson.report("grad_exact", exact, f"exact d/dφ E[f(x)] at φ = {PHI}")
    report_precise(lesson, "grad_exact_vs_central_difference", abs(exact - fd),
                   "  ... |exact - central difference of E[f]| (checks the algebra)")  # fmt: skip
    check = gradcheck(lambda t: Sin.apply(t), [mv.Tensor(B.from_numpy(np.linspace(-3.0, 3.0, 13)))])
    lesson.report("sin_gradcheck_ok", bool(check.ok), "the lesson's Sin op passes gradcheck")

    eps = B.from_numpy(rng.standard_normal(n))  # (N,) ε ~ N(0, 1), on the chosen device
    with mv.set_default_dtype("float64"):
        # (a) reparameterization. φ is copied once per sample, so that after backward of the
        # sum, φ.grad[i] is the single-sample gradient d f(x_i)/dφ: N estimates in one pass.
        phi = mv.Tensor(B.xp.full(n, PHI), requires_grad=True)  # (N,)
        # seed 000: z = μ_φ + ε σ_φ with μ_φ = φ³, σ_φ = e^φ (seed 003, eq. 17.25)
        x = phi**3 + ops.exp(phi) * eps  # (N,)
        fx = x * x + Sin.apply(x)  # (N,) f(x) = x² + sin x
        fx.sum().backward()
        g_rep = B.to_numpy(phi.grad)  # (N,) d f(x_i)/dφ = f'(x_i) (3φ² + e^φ ε_i)

        # (b) score function: f(x) ∂/∂φ log q(x; φ), x the same samples, held constant
        phi2 = mv.Tensor(B.xp.full(n, PHI), requires_grad=True)  # (N,)
        x_fixed = mv.Tensor(x.data)  # no graph: the sample itself is not differentiated
        # log q(x; φ) = -½ log 2π - φ - ½ ((x - φ³) e^{-φ})²
        log_q = (
            -0.5 * math.log(2 * math.pi) - phi2 - 0.5 * ((x_fixed - phi2**3) * ops.exp(-phi2)) ** 2
        )
        log_q.sum().backward()
        g_score = B.to_numpy(fx.data) * B.to_numpy(phi2.grad)  # (N,) f(x_i) ∂ log q(x_i; φ)/∂φ

    counts = np.unique(np.geomspace(16, n, 40).astype(int))  # sample sizes for the running mean
    running = {}
    for key, g, label in (("grad_reparam", g_rep, "reparameterization"),
                          ("grad_score", g_score, "score function")):  # fmt: skip
        mean, se = float(g.mean()), float(g.std(ddof=1) / math.sqrt(n))
        running[f"{label}: mean of N samples ± 2 s.e."] = (
            counts,
            np.cumsum(g)[counts - 1] / counts,
            2 * g.std(ddof=1) / np.sqrt(counts),
        )
        lesson.report(f"{key}_mean", mean, f"{label}: mean of {n:,} single-sample gradients")
        lesson.report(f"{key}_se", se, "  ... its standard error")
        lesson.report(f"{key}_z", (mean - exact) / se, "  ... (mean - exact) / standard error")
        lesson.report(f"{key}_var", float(g.var(ddof=1)), "  ... variance of one sample")
    ratio = float(g_score.var(ddof=1) / g_rep.var(ddof=1))
    lesson.report(
        "grad_variance_ratio", ratio, "variance ratio score function / reparameterization"
    )
    running[f"exact gradient {exact:.4f}"] = (counts, np.full(len(counts), exact))
    plots.line_plot(running, lesson.path("6_gradient_running_means.png"),
                    f"Part 6 - both estimators of d/dφ E[x² + sin x] converge to the exact value; "
                    f"the score function's band is {math.sqrt(ratio):.1f}x wider",
                    "N, samples averaged", "gradient estimate", logx=True)  # fmt: skip

    # the variance of an N-sample average, measured over n/N disjoint groups of samples
    curves = {}
    for g, label in ((g_score, "score function (REINFORCE)"), (g_rep, "reparameterization")):
        ns = np.array([k for k in GRAD_NS if n // k >= 16])
        var = [g[: (n // k) * k].reshape(-1, k).mean(axis=1).var(ddof=1) for k in ns]
        curves[label] = (ns, np.array(var))
    plots.line_plot(curves, lesson.path("6_gradient_estimators.png"),
                    f"Part 6 - gradient of E[x² + sin x], x ~ N(φ³, e^(2φ)), φ = {PHI}: both "
                    f"estimators unbiased, variance ratio {ratio:.0f} (both fall as 1/N)",
                    "N, samples averaged per gradient estimate",
                    "variance of the estimate", logx=True, logy=True)  # fmt: skip


# %% [markdown]
# # Run everything

# %%


def main(argv=None):
    args = parse_args(argv, __doc__)
    lesson = Lesson(NAME, args)  # the output folder, the clock, the numbers; seeds minivae
    quick = args.quick
    # one NumPy generator per part, so that changing one part's sizes leaves the others' draws
    rngs = [np.random.default_rng([args.seed, part]) for part in range(7)]
    x = np.linspace(*X_RANGE, pick(N_X_GRID, quick))  # (X,) grid for integrals over x
    z = np.linspace(*Z_RANGE, pick(N_Z_GRID, quick))  # (Z,) grid for integrals over z

    print("Part 1: mixture of Gaussians (seed 003, Fig. 17.1)")
    part1_mixture(lesson, x)
    print("Part 2: nonlinear latent variable model (seed 003, Fig. 17.2-17.3)")
    part2_nonlinear(lesson, x, z, rngs[2], quick)
    print("Part 3: Jensen's inequality (seed 003, eq. 17.12)")
    part3_jensen(lesson, rngs[3], quick)
    print("Part 4: ELBO = log p(x) - KL(q ‖ p(z|x)) (seed 003, eq. 17.17)")
    log_px, post, post_mean, post_std = part4_elbo(lesson, z, quick)
    print("Part 5: importance sampling of p(x) (seed 003, Applications)")
    part5_importance(lesson, z, log_px, post, post_mean, post_std, rngs[5], quick)
    print("Part 6: reparameterization vs score-function gradients (seed 000, 003)")
    part6_gradients(lesson, rngs[6], quick)

    n = lesson.numbers
    print("In short:")
    print(f"  p(x) integrates to 1 (mixture {n['mog_integral']:.6f}, nonlinear "
          f"{n['nonlinear_integral']:.6f}); ancestral samples agree (KS D {n['nonlinear_ks']:.4f} "
          f"< {n['nonlinear_ks_critical_95']:.4f})")  # fmt: skip
    print(f"  Jensen: log E[y] = {n['jensen_log_E_y']:.3f} ≥ E[log y] = {n['jensen_E_log_y']:.3f}")
    print(f"  ELBO ≤ log p(x) for all {n['n_gaussians']} Gaussians q, and log p(x) - ELBO = "
          f"KL(q ‖ p(z|x)) to {n['max_gap_minus_kl']:.1e}; the best Gaussian leaves a gap of "
          f"{n['best_q_gap']:.3f} nats, the exact posterior (linear-Gaussian model) "
          f"{n['linear_gap_at_posterior']:.1e}")  # fmt: skip
    errors = [n[f"is_{k}_rel_error_K{IS_K_REPORT}"] for k in ("good", "prior", "narrow")]
    print(f"  importance sampling, relative error at K = {IS_K_REPORT}: good q {errors[0]:.3f}, "
          f"prior {errors[1]:.3f}, too narrow {errors[2]:.3f}")  # fmt: skip
    print(f"  gradients: both unbiased (z = {n['grad_reparam_z']:.2f} and {n['grad_score_z']:.2f} "
          f"standard errors from exact); score-function variance {n['grad_variance_ratio']:.1f}x "
          "the reparameterized one")  # fmt: skip
    return lesson.finish()


if __name__ == "__main__":
    main()
