# %% [markdown]
# # Lesson 00: latent variable models, the ELBO and its gap
#
# Before any network is trained, this lesson computes the objects that a VAE approximates,
# exactly (by quadrature on a grid) or by plain Monte Carlo, so that each claim of the
# lecture (*Understanding Deep Learning*, ch. 17; the reparameterization trick of *PGM
# Lecture 30* and *Computational Intelligence Lab, Series 9*, Problem 1) is checked with
# numbers: 1. a mixture of Gaussians, 2. a nonlinear latent variable model, 3. Jensen's
# inequality, 4. the ELBO and its gap, 5. importance sampling of p(x), 6. two gradient
# estimators. Each part opens with the question it answers: make your guess before you run
# its cell.

# %%
"""Lesson 00: latent variable models, the ELBO and its gap, importance sampling, two gradients.

    python lessons/00_latent_variable_models.py [--quick] [--seed 0] [--phi 0.5]

Nothing is trained and no data set is loaded. In a notebook, edit the settings below instead
of passing options; MINIVAE_QUICK=1 turns QUICK on in both.
"""

QUICK = False  # True: small grids and few samples, seconds; the numbers only show the code runs
SEED = 0  # every random draw follows from it
DEVICE = "cpu"  # "gpu" runs Part 6 (the engine's backward) on CuPy; the quadratures stay NumPy
OUT = "runs/lessons"  # figures and summary.json go to OUT/00_latent_variable_models/
PHI = 0.5  # Part 6: the parameter φ of q_φ(x) = N(φ³, e^{2φ}) whose gradient is estimated

# %%
import math

import numpy as np
from matplotlib.figure import Figure

try:
    import common  # a script, or a notebook kernel started in lessons/
except ModuleNotFoundError:
    from lessons import common  # a kernel started in the repository root

import minivae as mv
from minivae import backend as B
from minivae import ops, plots
from minivae.gradcheck import gradcheck
from minivae.tensor import Function

lesson = common.setup("00_latent_variable_models", globals(), own=("PHI",))


def rng_of_part(part: int):
    """One NumPy generator per part: rerunning a cell, or resizing another part, keeps its draws."""
    return np.random.default_rng([SEED, part])


def log_normal(x, mean, std):
    """log N(x; mean, std²) = -½ log(2π std²) - (x - mean)² / (2 std²), elementwise."""
    return -0.5 * np.log(2.0 * np.pi * std**2) - 0.5 * ((x - mean) / std) ** 2


def trapezoid_weights(grid):
    """w with Σ_i w_i g(grid_i) ≈ ∫ g: the trapezoid rule on a sorted grid, (G,)."""
    w = np.zeros_like(grid)
    w[:-1] += np.diff(grid) / 2
    w[1:] += np.diff(grid) / 2
    return w


def integrate(values, grid):
    """∫ g over the grid, along the last axis of values (G values per integral)."""
    return values @ trapezoid_weights(grid)


def log_integrate(log_values, grid):
    """log ∫ exp(log g) over the grid, along the last axis, without underflow (log-sum-exp)."""
    a = log_values + np.log(trapezoid_weights(grid))
    top = a.max(axis=-1, keepdims=True)
    return np.log(np.exp(a - top).sum(axis=-1)) + top[..., 0]


# The grids of every integral. Sizes come in pairs (full run, QUICK).
x = np.linspace(-10.0, 10.0, common.pick((4001, 1201), QUICK))  # (X,) grid over x
z = np.linspace(-12.0, 12.0, common.pick((4001, 1201), QUICK))  # (Z,) wide enough for every q

# %% [markdown]
# ## Part 1: what is p(x) when a discrete latent variable picks the Gaussian?
# Understanding Deep Learning, ch. 17, eq. 17.3-17.4 and Fig. 17.1: z ∈ {1..N} with
# Pr(z = n) = λ_n picks a Gaussian, and x is drawn from it. Marginalizing z out is a
# finite sum. *Predict:* where does the marginal have its highest peak: under the
# heaviest component, or where components overlap?

# %%
MOG_WEIGHTS = np.array([0.15, 0.25, 0.35, 0.25])  # λ_n = Pr(z = n), they sum to 1
MOG_MEANS = np.array([-3.0, -1.0, 1.5, 3.5])  # μ_n
MOG_STDS = np.array([0.6, 0.8, 0.5, 1.0])  # σ_n

print("Part 1: mixture of Gaussians")
# eq. 17.3: Pr(z = n) = λ_n,  Pr(x | z = n) = Norm_x[μ_n, σ_n²]; the joint, (N, X)
joint = MOG_WEIGHTS[:, None] * np.exp(log_normal(x, MOG_MEANS[:, None], MOG_STDS[:, None]))
marginal = joint.sum(axis=0)  # eq. 17.4: Pr(x) = Σ_n λ_n Norm_x[μ_n, σ_n²], (X,)
lesson.report("mog_integral", integrate(marginal, x), "∫ p(x) dx of the mixture (≈ 1)", ".10f")

fig = Figure(figsize=(12.0, 4.2), layout="constrained")
ax, ax2 = fig.subplots(1, 2, width_ratios=(1.2, 1.0))
for n, (w, m, s) in enumerate(zip(MOG_WEIGHTS, MOG_MEANS, MOG_STDS)):
    sub = "₁₂₃₄₅₆₇₈₉"[n]
    ax.plot(x, joint[n], "--", linewidth=1.3, label=f"λ{sub} N(x; {m:g}, {s:g}²),  λ{sub} = {w:g}")
ax.plot(x, marginal, color="tab:cyan", linewidth=2.5, label="p(x) = Σₙ λₙ N(x; μₙ, σₙ²)")
ax.set(xlim=(-6.5, 7.5), xlabel="x", ylabel="density",
       title="a) weighted components (dashed) and their sum, the marginal p(x)")  # fmt: skip
ax.legend(fontsize=8, loc="upper left")
ax.grid(alpha=0.3)
shown = ax2.imshow(joint, aspect="auto", origin="lower", cmap="viridis", interpolation="nearest",
                   extent=(x[0], x[-1], 0.5, len(MOG_WEIGHTS) + 0.5))  # fmt: skip
ax2.set(xlim=(-6.5, 7.5), yticks=range(1, len(MOG_WEIGHTS) + 1), xlabel="x",
        ylabel="latent z = n", title="b) the joint p(x, z = n); p(x) sums each column")  # fmt: skip
fig.colorbar(shown, ax=ax2, label="p(x, z = n)")
fig.suptitle("Part 1 - mixture of Gaussians (Understanding Deep Learning, Fig. 17.1): "
             "a discrete latent variable")  # fmt: skip
common.save_figure(fig, lesson.path("1_mixture_of_gaussians.png"))

# %% [markdown]
# ## Part 2: do ancestral samples follow a p(x) that has no closed form?
# Understanding Deep Learning, ch. 17, eq. 17.7 and Fig. 17.2-17.3: z ~ N(0, 1) and
# x | z ~ N(f(z), σ²) with a nonlinear f. p(x) is an "infinite mixture" of Gaussians
# N(f(z), σ²) weighted by p(z): an integral over z, done here on the grid. Ancestral
# sampling (z* ~ p(z), then x* ~ p(x|z*)) must reproduce it; the largest gap between
# the two CDFs (the Kolmogorov-Smirnov distance D) measures how well.
# *Predict:* does the density pile up where f is steep, or where it is flat?

# %%
SIGMA_X = 0.3  # σ of the likelihood p(x|z) = N(f(z), σ²)
N_ANCESTRAL = common.pick((200_000, 5_000), QUICK)  # samples z* ~ p(z), x* ~ p(x|z*)
KS_CRITICAL_95 = 1.358  # the 95 % point of sqrt(n) max|F_n - F| (Kolmogorov's distribution)


def f_nonlinear(z):
    """The mean of p(x|z): f(z) = 1.5 z + sin(2 z), a stand-in for the decoder f[z, φ]."""
    return 1.5 * z + np.sin(2.0 * z)


def log_joint_nonlinear(x, z):
    """log p(x, z) = log N(x; f(z), σ²) + log N(z; 0, 1), the integrand of eq. 17.7."""
    return log_normal(x, f_nonlinear(z), SIGMA_X) + log_normal(z, 0.0, 1.0)


print("Part 2: nonlinear latent variable model")
# eq. 17.7: Pr(x) = ∫ Norm_x[f(z), σ²] Norm_z[0, 1] dz, one integral per x on the grid
px = np.exp(log_integrate(log_joint_nonlinear(x[:, None], z[None, :]), z))  # (X,)
lesson.report("nonlinear_integral", integrate(px, x),
              "∫ p(x) dx of the nonlinear model (≈ 1)", ".10f")  # fmt: skip

rng = rng_of_part(2)
z_star = rng.standard_normal(N_ANCESTRAL)  # (n,) Fig. 17.3a: z* ~ Pr(z)
x_star = f_nonlinear(z_star) + SIGMA_X * rng.standard_normal(N_ANCESTRAL)  # (n,) x* ~ Pr(x|z*)

# D = max_x |F_n(x) - F(x)|: F by the trapezoid rule on the grid, F_n from the sorted samples
cdf = np.concatenate([[0.0], np.cumsum((px[1:] + px[:-1]) / 2 * np.diff(x))])  # (X,)
cdf_at = np.interp(np.sort(x_star), x, cdf)  # (n,)
steps = np.arange(1, N_ANCESTRAL + 1) / N_ANCESTRAL
ks = float(max(np.max(steps - cdf_at), np.max(cdf_at - (steps - 1.0 / N_ANCESTRAL))))
lesson.report("nonlinear_samples", N_ANCESTRAL, "ancestral samples drawn")
lesson.report("nonlinear_ks", ks, "max |CDF of samples - CDF of p(x)| (Kolmogorov-Smirnov D)")
lesson.report("nonlinear_ks_critical_95", KS_CRITICAL_95 / math.sqrt(N_ANCESTRAL),
              "  ... 95 % threshold for that D if samples and p(x) agree")  # fmt: skip

fig = Figure(figsize=(12.0, 4.4), layout="constrained")
ax, ax2 = fig.subplots(1, 2)
zs, xs = np.linspace(-3, 3, 301), np.linspace(-6, 6, 301)
ax.imshow(np.exp(log_joint_nonlinear(xs[:, None], zs[None, :])), aspect="auto", origin="lower",
          cmap="Greys", extent=(zs[0], zs[-1], xs[0], xs[-1]))  # fmt: skip
ax.plot(zs, f_nonlinear(zs), color="tab:red", linewidth=1.5, label="f(z) = 1.5 z + sin 2z")
ax.plot(z_star[:300], x_star[:300], ".", color="tab:blue", markersize=3,
        label="300 ancestral samples (z*, x*)")  # fmt: skip
ax.set(xlim=(zs[0], zs[-1]), xlabel="latent z", ylabel="observed x",
       title=f"a) joint p(x, z) = N(x; f(z), {SIGMA_X}²) N(z; 0, 1)")  # fmt: skip
ax.legend(fontsize=8, loc="upper left")
ax2.hist(x_star, bins=60 if QUICK else 120, range=(-6, 6), density=True, histtype="stepfilled",
         alpha=0.4, label=f"histogram of {N_ANCESTRAL:,} samples x*")  # fmt: skip
ax2.plot(x, px, color="black", linewidth=1.5, label="p(x) by quadrature over z")
ax2.set(xlim=(-6, 6), xlabel="x", ylabel="density",
        title=f"b) p(x) and ancestral samples (KS distance D = {ks:.4f})")  # fmt: skip
ax2.legend(fontsize=8, loc="upper left")
ax2.grid(alpha=0.3)
fig.suptitle("Part 2 - nonlinear latent variable model (Understanding Deep Learning, "
             "Fig. 17.2-17.3): an infinite mixture of Gaussians")  # fmt: skip
common.save_figure(fig, lesson.path("2_nonlinear_latent_variable_model.png"))

# %% [markdown]
# ## Part 3: how far apart are log E[y] and E[log y]?
# Understanding Deep Learning, ch. 17, eq. 17.12-17.13 ("Jensen's inequality"): log is
# concave, so the log of a mean is at least the mean of the logs. First the lecture's
# picture (two point masses of probability ½), then a continuous y = e^u,
# u ~ N(μ, s²), where both sides are known exactly: log E[y] = μ + s²/2, E[log y] = μ.
# *Predict:* the sign of the gap, and its size for μ = 0.5, s = 0.8.

# %%
JENSEN_POINTS = np.array([0.5, 4.0])  # the lecture's two point masses
LOGNORMAL_MU, LOGNORMAL_S = 0.5, 0.8  # y = exp(u), u ~ N(0.5, 0.8²)
N_JENSEN = common.pick((200_000, 20_000), QUICK)

print("Part 3: Jensen's inequality")
# eq. 17.12 with two point masses: log[Σ Pr(y) y] ≥ Σ Pr(y) log y
pts = JENSEN_POINTS
two_log_mean, two_mean_log = float(np.log(pts.mean())), float(np.log(pts).mean())
lesson.report("jensen_two_points_log_E_y", two_log_mean, "two point masses: log E[y]")
lesson.report("jensen_two_points_E_log_y", two_mean_log, "two point masses: E[log y]")
y = np.exp(LOGNORMAL_MU + LOGNORMAL_S * rng_of_part(3).standard_normal(N_JENSEN))  # (n,) y = e^u
log_mean, mean_log = float(np.log(y.mean())), float(np.log(y).mean())  # both by Monte Carlo
lesson.report("jensen_log_E_y", log_mean, "y = e^u, u ~ N(0.5, 0.8²): log E[y] (MC)")
lesson.report("jensen_E_log_y", mean_log, "  ... E[log y] (MC)")
lesson.report("jensen_gap_exact", LOGNORMAL_S**2 / 2, "  ... exact gap log E[y] - E[log y] = s²/2")

fig = Figure(figsize=(12.0, 4.6), layout="constrained")
ax, ax2 = fig.subplots(1, 2)
ys = np.linspace(0.05, 8.0, 400)
for a in (ax, ax2):
    a.plot(ys, np.log(ys), color="black", linewidth=1.5, label="log y (concave)")
    a.grid(alpha=0.3)
    a.set(xlabel="y", ylabel="log y", xlim=(0, 8.0), ylim=(-2.5, 3.2))
ax.plot(pts, np.log(pts), "o-", color="tab:green", markersize=8, label="(y, log y), Pr = ½ each")
ax.plot([pts.mean()], [two_log_mean], "o", color="tab:red", markersize=9,
        label=f"log E[y] = {two_log_mean:.3f}")  # fmt: skip
ax.plot([pts.mean()], [two_mean_log], "o", color="tab:blue", markersize=9,
        label=f"E[log y] = {two_mean_log:.3f}")  # fmt: skip
ax.set_title("a) the lecture's picture: two point masses")
ax.legend(fontsize=8, loc="upper left")
density = np.exp(log_normal(np.log(ys), LOGNORMAL_MU, LOGNORMAL_S)) / ys  # p(y), log-normal
ax2.fill_between(ys, -2.5, -2.5 + 2.0 * density, color="tab:orange", alpha=0.35,
                 label="p(y) (scaled, drawn on the floor)")  # fmt: skip
ax2.plot([y.mean()], [log_mean], "o", color="tab:red", markersize=9,
         label=f"log E[y] = {log_mean:.3f}  (exact μ + s²/2 = "
               f"{LOGNORMAL_MU + LOGNORMAL_S**2 / 2:.3f})")  # fmt: skip
ax2.plot([y.mean()], [mean_log], "o", color="tab:blue", markersize=9,
         label=f"E[log y] = {mean_log:.3f}  (exact μ = {LOGNORMAL_MU:.3f})")  # fmt: skip
ax2.axvline(y.mean(), color="0.5", linestyle=":", linewidth=1, label=f"E[y] = {y.mean():.3f}")
ax2.set_title(f"b) continuous y = exp(u), u ~ N({LOGNORMAL_MU}, {LOGNORMAL_S}²), "
              f"{N_JENSEN:,} samples")  # fmt: skip
ax2.legend(fontsize=8, loc="upper left")
fig.suptitle("Part 3 - Jensen's inequality (Understanding Deep Learning, eq. 17.12): "
             "log E[y] ≥ E[log y]")  # fmt: skip
common.save_figure(fig, lesson.path("3_jensen_inequality.png"))

# %% [markdown]
# ## Part 4: how close can a Gaussian q(z) get to log p(x)?
# Understanding Deep Learning, ch. 17, eq. 17.14-17.18 and Fig. 17.6. For one observed
# x the true posterior p(z|x) = p(x, z) / p(x) is known on the z grid. For every
# Gaussian q(z) = N(m, s²) of a grid over (m, s), by quadrature:
#
#     ELBO(q) = ∫ q(z) log[p(x, z) / q(z)] dz                            (eq. 17.16)
#     ELBO(q) = ∫ q(z) log p(x|z) dz - KL(q ‖ p(z)), the KL closed-form  (eq. 17.18)
#     KL(q ‖ p(z|x)) = ∫ q(z) log[q(z) / p(z|x)] dz, computed on its own
#
# and eq. 17.17 says log p(x) - ELBO = KL(q ‖ p(z|x)) ≥ 0. *Predict:* does the best
# Gaussian reach log p(x)? Is it the Gaussian with the posterior's own mean and std?
# Then a linear-Gaussian model, whose posterior is Gaussian.

# %%
X_OBS = 2.5  # the observed x; its posterior p(z|x) is skewed, with a shoulder: not Gaussian
Q_MEAN_RANGE = (-1.0, 3.5)  # the means m searched
Q_STD_RANGE = (0.05, 1.2)  # the stds s searched (log-spaced); m + 7 s stays on the z grid
N_Q_GRID = common.pick((60, 24), QUICK)  # s values (and 4x as many m) per search round
Q_STDS_SHOWN = (0.1, 0.2, 0.3, 0.6)  # the curves ELBO(m) drawn for these s
LIN_A, LIN_B, LIN_SIGMA = 1.5, 0.0, 0.5  # linear-Gaussian model x|z ~ N(a z + b, σ²): exact
FIG_17_6_A = (0.6, 2.0)  # Fig. 17.6: the ELBO of q fixed at the posterior for these a, over a


def kl_normal_std_normal(m, s):
    """KL(N(m, s²) ‖ N(0, 1)) = ½ (m² + s² - 1 - log s²)  (Computational Intelligence Lab,
    Series 9, Problem 1.7)."""
    return 0.5 * (m**2 + s**2 - 1.0 - np.log(s**2))


def gaussian_q_terms(log_lik, log_px, m, s):
    """ELBO by eq. 17.16 and eq. 17.18, and KL(q ‖ p(z|x)), for q = N(m, s²) on the z grid;
    log_lik: log p(x|z) on the grid, (Z,); m, s: arrays of one shape."""
    m, s = np.broadcast_arrays(np.asarray(m, float), np.asarray(s, float))
    log_q = log_normal(z, m[..., None], s[..., None])  # (..., Z)
    q = np.exp(log_q)
    log_joint = log_lik + log_normal(z, 0.0, 1.0)  # (Z,) log p(x, z) = log p(x|z) + log p(z)
    elbo = integrate(q * (log_joint - log_q), z)  # eq. 17.16
    elbo_1718 = integrate(q * log_lik, z) - kl_normal_std_normal(m, s)  # eq. 17.18
    kl_post = integrate(q * (log_q - (log_joint - log_px)), z)  # p(z|x) by Bayes' rule
    return elbo, elbo_1718, kl_post


def best_gaussian(log_lik, log_px, n_grid):
    """(m, s, ELBO) of the Gaussian q with the largest ELBO: a grid search, then a zoomed one."""
    m_lo, m_hi = Q_MEAN_RANGE
    ls_lo, ls_hi = np.log(Q_STD_RANGE[0]), np.log(Q_STD_RANGE[1])
    for _ in range(2):
        ms, log_ss = np.linspace(m_lo, m_hi, n_grid), np.linspace(ls_lo, ls_hi, n_grid)
        mm, ss = np.meshgrid(ms, np.exp(log_ss))  # (S, M)
        elbo = gaussian_q_terms(log_lik, log_px, mm, ss)[0]
        i, j = np.unravel_index(np.argmax(elbo), elbo.shape)
        dm, dls = ms[1] - ms[0], log_ss[1] - log_ss[0]  # zoom in to ±2 grid steps
        m_lo, m_hi = ms[j] - 2 * dm, ms[j] + 2 * dm
        ls_lo, ls_hi = log_ss[i] - 2 * dls, log_ss[i] + 2 * dls
    return float(mm[i, j]), float(ss[i, j]), float(elbo[i, j])


print("Part 4: ELBO = log p(x) - KL(q ‖ p(z|x))")
log_lik = log_normal(X_OBS, f_nonlinear(z), SIGMA_X)  # (Z,) log p(x|z) of Part 2's model
log_px = float(log_integrate(log_lik + log_normal(z, 0.0, 1.0), z))  # log ∫ p(x|z) p(z) dz
post = np.exp(log_lik + log_normal(z, 0.0, 1.0) - log_px)  # (Z,) p(z|x), Bayes' rule
post_mean = float(integrate(z * post, z))
post_std = float(np.sqrt(integrate((z - post_mean) ** 2 * post, z)))
lesson.report("x_obs", X_OBS, "observed x")
lesson.report("log_px", log_px, "log p(x) by quadrature")
lesson.report("posterior_integral", integrate(post, z), "∫ p(z|x) dz (≈ 1)", ".10f")

means = np.linspace(*Q_MEAN_RANGE, 4 * N_Q_GRID)
stds = np.exp(np.linspace(np.log(Q_STD_RANGE[0]), np.log(Q_STD_RANGE[1]), N_Q_GRID))
mm, ss = np.meshgrid(means, np.concatenate([stds, Q_STDS_SHOWN]))  # (S, M): every q tried
elbo, elbo_1718, kl_post = gaussian_q_terms(log_lik, log_px, mm, ss)
# eq. 17.17: ELBO = log Pr(x) - D_KL[q(z) ‖ Pr(z|x)]. Both sides are sums over the same grid,
# so they agree to rounding: this checks the code of each side. Eq. 17.18, with its closed-form
# KL, is the more independent check of the ELBO itself.
lesson.report("n_gaussians", int(elbo.size), "Gaussians q = N(m, s²) evaluated")
lesson.report("max_elbo_minus_log_px", float(np.max(elbo - log_px)),
              "max over q of ELBO - log p(x) (< 0: the ELBO is a lower bound)")  # fmt: skip
lesson.report("max_gap_minus_kl", np.max(np.abs(log_px - elbo - kl_post)),
              "max over q of |(log p(x) - ELBO) - KL(q ‖ p(z|x))| (eq. 17.17)", ".2e")  # fmt: skip
lesson.report("max_elbo_1716_minus_1718", np.max(np.abs(elbo - elbo_1718)),
              "max over q of |ELBO by eq. 17.16 - ELBO by eq. 17.18|", ".2e")  # fmt: skip

m_best, s_best, elbo_best = best_gaussian(log_lik, log_px, N_Q_GRID)
elbo_mm = float(gaussian_q_terms(log_lik, log_px, post_mean, post_std)[0])
lesson.report("best_q_mean", m_best, "best Gaussian q: m")
lesson.report("best_q_std", s_best, "best Gaussian q: s")
lesson.report("best_q_gap", log_px - elbo_best,
              "best Gaussian q: log p(x) - ELBO = KL(q ‖ p(z|x)) (> 0, small)")  # fmt: skip
lesson.report("posterior_mean", post_mean, "p(z|x): mean")
lesson.report("posterior_std", post_std, "p(z|x): std")
lesson.report("moment_matched_q_gap", log_px - elbo_mm,
              "q with the posterior's mean and std: log p(x) - ELBO (larger)")  # fmt: skip


def linear_exact(a):
    """Linear-Gaussian x|z ~ N(a z + b, σ²), z ~ N(0, 1): log p(x) = log N(x; b, a² + σ²) and
    the posterior N(μ, v), v = 1 / (1 + a²/σ²), μ = v a (x - b) / σ²; returns (log p(x), μ, √v)."""
    v = 1.0 / (1.0 + a**2 / LIN_SIGMA**2)
    log_px_a = log_normal(X_OBS, LIN_B, np.sqrt(a**2 + LIN_SIGMA**2))
    return log_px_a, v * a * (X_OBS - LIN_B) / LIN_SIGMA**2, np.sqrt(v)


lin_log_lik = log_normal(X_OBS, LIN_A * z + LIN_B, LIN_SIGMA)  # (Z,)
lin_log_px = float(log_integrate(lin_log_lik + log_normal(z, 0.0, 1.0), z))
lin_exact_log_px, lin_m, lin_s = linear_exact(LIN_A)
lin_elbo, _, lin_kl = gaussian_q_terms(lin_log_lik, lin_log_px, lin_m, lin_s)
lin_gap = float(lin_log_px - lin_elbo)
lesson.report("linear_log_px_error", abs(lin_log_px - float(lin_exact_log_px)),
              "linear-Gaussian: |log p(x) by quadrature - exact|", ".2e")  # fmt: skip
lesson.report("linear_gap_at_posterior", lin_gap,
              "linear-Gaussian, q = posterior: log p(x) - ELBO (0: tight)", ".2e")  # fmt: skip
lesson.report("linear_kl_at_posterior", float(lin_kl), "  ... and KL(q ‖ p(z|x))", ".2e")

# The figure: four panels. Nothing lies above the black log p(x) lines: the band above holds
# the legends.
fig = Figure(figsize=(13.0, 9.5), layout="constrained")
(a, b), (c, d) = fig.subplots(2, 2)
a.plot(z, post, color="black", linewidth=2, label=f"posterior p(z | x = {X_OBS})")
a.plot(z, np.exp(log_normal(z, m_best, s_best)), color="tab:blue",
       label=f"best Gaussian q = N({m_best:.2f}, {s_best:.2f}²): "
             f"gap {log_px - elbo_best:.3f}")  # fmt: skip
a.plot(z, np.exp(log_normal(z, post_mean, post_std)), "--", color="tab:orange",
       label=f"posterior's mean and std, N({post_mean:.2f}, {post_std:.2f}²): "
             f"gap {log_px - elbo_mm:.3f}")  # fmt: skip
a.set(xlim=(-0.5, 3.5), ylim=(0, 1.65), xlabel="z", ylabel="density",
      title="a) nonlinear model: p(z|x) is not Gaussian")  # fmt: skip
a.legend(fontsize=8, loc="upper right")
for r in len(stds) + np.arange(len(Q_STDS_SHOWN)):  # the rows of the grid with the shown s
    b.plot(means, elbo[r], label=f"ELBO of N(m, {ss[r, 0]:g}²)")
b.axhline(log_px, color="black", linewidth=2, label=f"log p(x) = {log_px:.3f}")
b.plot([m_best], [elbo_best], "*", color="tab:red", markersize=12,
       label=f"best Gaussian: ELBO = {elbo_best:.3f}")  # fmt: skip
b.set(xlim=(0.0, 3.0), ylim=(log_px - 6, log_px + 2.2), xlabel="mean m of q", ylabel="nats",
      title="b) nonlinear model: ELBO(q) ≤ log p(x); the gap is KL(q ‖ p(z|x))")  # fmt: skip
lin_means = np.linspace(lin_m - 2.0, lin_m + 2.0, 201)
for s_q in (lin_s / 2, lin_s, 2 * lin_s):
    tag = " = posterior's" if s_q == lin_s else ""
    c.plot(lin_means, gaussian_q_terms(lin_log_lik, lin_log_px, lin_means, s_q)[0],
           label=f"ELBO of N(m, {s_q:.3f}²){tag}")  # fmt: skip
c.axhline(lin_log_px, color="black", linewidth=2, label=f"log p(x) = {lin_log_px:.3f}")
c.plot([lin_m], [lin_elbo], "*", color="tab:red", markersize=12,
       label=f"q = p(z|x) = N({lin_m:.2f}, {lin_s:.3f}²): gap {lin_gap:.1e}")  # fmt: skip
c.set(xlim=(0.0, 3.0), ylim=(lin_log_px - 6, lin_log_px + 2.2), xlabel="mean m of q",
      ylabel="nats",
      title=f"c) linear-Gaussian x|z ~ N({LIN_A} z, {LIN_SIGMA}²): the posterior closes the gap")
# Fig. 17.6: over the model parameter (here a), log p(x|a) and the ELBO of a fixed q;
# eq. 17.18 in closed form: E_q[log N(x; a z + b, σ²)] - KL(q ‖ N(0, 1))
a_vals = np.linspace(0.05, 3.5, 300)
d.plot(a_vals, linear_exact(a_vals)[0], color="black", linewidth=2, label="log p(x | a)")
for a_fix, colour in zip(FIG_17_6_A, ("tab:green", "tab:purple")):
    _, m_q, s_q = linear_exact(a_fix)
    d.plot(a_vals, log_normal(X_OBS, a_vals * m_q + LIN_B, LIN_SIGMA)
           - a_vals**2 * s_q**2 / (2 * LIN_SIGMA**2) - kl_normal_std_normal(m_q, s_q),
           color=colour, label=f"ELBO with q fixed at p(z | x, a = {a_fix:g})")  # fmt: skip
    d.plot([a_fix], [linear_exact(a_fix)[0]], "o", color=colour)
d.set(ylim=(-9, 0.5), xlabel="model parameter a (the φ of Fig. 17.6)", ylabel="nats",
      title="d) Fig. 17.6: each ELBO touches log p(x|a) where its q is the posterior")  # fmt: skip
for panel in (a, b, c, d):
    panel.grid(alpha=0.3)
for panel in (b, c, d):
    panel.legend(fontsize=8, loc="upper center", ncols=2)
fig.suptitle("Part 4 - ELBO = log p(x) - KL(q ‖ p(z|x)) (Understanding Deep Learning, "
             "eq. 17.17): tight only when q is the posterior")  # fmt: skip
common.save_figure(fig, lesson.path("4_elbo_and_kl_gap.png"))

# %% [markdown]
# ## Part 5: which proposal q estimates p(x) best by importance sampling?
# Understanding Deep Learning, ch. 17, "Applications": p(x) = ∫ p(x|z) p(z) dz =
# E_{z~q}[p(x|z) p(z) / q(z)] for any q that is positive where p(z|x) is. The mean of
# K weights w_k = p(x|z_k) p(z_k) / q(z_k) is unbiased for every such q, but its error
# depends on q. Three proposals at x = X_OBS: the prior N(0, 1), a Gaussian at the
# posterior's mean four times narrower than it, and one a little wider than it.
# *Predict:* the order of their errors at K = 1000.

# %%
IS_KS = (1, 3, 10, 30, 100, 300, 1000, 3000, 10000)  # samples per estimate (up to 1000 QUICK)
IS_REPEATS = common.pick((256, 64), QUICK)  # independent estimates per K, to measure their error
K_REPORT = 1000  # the K at which the relative errors are reported
NARROW_FACTOR = 0.25  # "too narrow": the posterior's std times this
GOOD_WIDEN = 1.2  # "good": the posterior's mean and std, widened a little (heavier tails)

print("Part 5: importance sampling of p(x)")
ks_is = np.array([k for k in IS_KS if not QUICK or k <= K_REPORT])
rng = rng_of_part(5)
proposals = {
    "is_prior": ("prior N(0, 1)", 0.0, 1.0),
    "is_narrow": (f"too narrow N({post_mean:.2f}, {NARROW_FACTOR * post_std:.2f}²)",
                  post_mean, NARROW_FACTOR * post_std),
    "is_good": (f"good N({post_mean:.2f}, {GOOD_WIDEN * post_std:.2f}²)",
                post_mean, GOOD_WIDEN * post_std),
}  # fmt: skip
near = (z > -3.0) & (z < 4.0)  # the part of the z grid drawn
errors, densities = {}, {f"posterior p(z | x = {X_OBS})": (z[near], post[near])}
for key, (label, m_q, s_q) in proposals.items():
    zk = m_q + s_q * rng.standard_normal((IS_REPEATS, ks_is[-1]))  # (R, K_max) z_k ~ q
    # "Applications": Pr(x) = E_q[Pr(x|z) Pr(z) / q(z)], one weight per sample
    log_w = log_joint_nonlinear(X_OBS, zk) - log_normal(zk, m_q, s_q)  # (R, K_max)
    running = np.cumsum(np.exp(log_w), axis=1) / np.arange(1, ks_is[-1] + 1)  # p̂ of the first K
    estimates = running[:, ks_is - 1]  # (R, len(ks)): R independent estimates per K
    rel_rmse = np.sqrt(np.mean((estimates - math.exp(log_px)) ** 2, axis=0)) / math.exp(log_px)
    errors[label] = (ks_is, rel_rmse)
    densities[label] = (z[near], np.exp(log_normal(z[near], m_q, s_q)))
    at_k = ks_is == K_REPORT
    lesson.report(f"{key}_rel_error_K{K_REPORT}", float(rel_rmse[at_k][0]),
                  f"IS with {label}: relative RMS error at K = {K_REPORT}")  # fmt: skip
    lesson.report(f"{key}_median_ratio_K{K_REPORT}",
                  float(np.median(estimates[:, at_k]) / math.exp(log_px)),
                  "  ... median of p̂(x) / p(x) over repeats (< 1: mass missed)")  # fmt: skip
    # the same error predicted by one integral: Var(w) / p(x)² = ∫ p(x,z)²/q dz / p(x)² - 1;
    # for the too-narrow q it is astronomic: rare huge weights that K samples seldom meet
    log_second = log_integrate(2 * log_joint_nonlinear(X_OBS, z) - log_normal(z, m_q, s_q), z)
    rel_var1 = math.expm1(min(float(log_second) - 2 * log_px, 700.0))
    lesson.report(f"{key}_predicted_rel_error_K{K_REPORT}",
                  float(f"{math.sqrt(rel_var1 / K_REPORT):.4g}"),
                  "  ... predicted by quadrature, sqrt(Var(w) / K) / p(x)")  # fmt: skip
good_at_1 = errors[proposals["is_good"][0]][1][0]
errors["slope 1/√K, through the good q at K = 1"] = (ks_is, good_at_1 / np.sqrt(ks_is))
common.show(plots.line_plot(
    errors, lesson.path("5_importance_sampling.png"),
    f"Part 5 - importance sampling of p(x = {X_OBS}) (Understanding Deep Learning, "
    f"Applications): relative RMS error of the K-sample estimate over {IS_REPEATS} repeats",
    "K, samples per estimate", "relative RMS error of p̂(x)", logx=True, logy=True))
common.show(plots.line_plot(
    densities, lesson.path("5_importance_proposals.png"),
    f"Part 5 - the three proposals q(z) beside the posterior p(z | x = {X_OBS})", "z", "density"))

# %% [markdown]
# ## Part 6: how much do two unbiased gradient estimators differ?
# Toy problem: x ~ q_φ = N(φ³, e^{2φ}) and f(x) = x² + sin x; we want d/dφ E_q[f(x)].
# Exactly: E[x²] = φ⁶ + e^{2φ} and E[sin x] = sin(φ³) exp(-e^{2φ}/2).
#
# (a) Reparameterization (PGM Lecture 30, "Reparameterization Trick"; Computational
#     Intelligence Lab, Series 9, Problem 1.5; Understanding Deep Learning, eq. 17.25):
#     x = μ_φ + σ_φ ε with ε ~ N(0, 1), so d f(x)/dφ = f'(x) (∂μ_φ/∂φ + ε ∂σ_φ/∂φ); the
#     engine's backward computes it. The engine has no sin, so this lesson adds a Sin op
#     (forward beside backward, like every op in minivae/ops/) and checks it with gradcheck.
# (b) Score function (REINFORCE): d/dφ E_q[f] = E_q[f(x) ∂ log q(x; φ)/∂φ], the sample x
#     held fixed; the engine differentiates log q(x; φ).
#
# Both average N single-sample gradients (Problem 1.5 writes 1/N in front of a sum over
# L samples; it means 1/L). *Predict:* which one has the smaller variance, and by how much?

# %%
n = common.pick((262_144, 16_384), QUICK)  # N: single-sample gradients drawn per estimator
GRAD_NS = (1, 4, 16, 64, 256, 1024)  # samples averaged per estimate, for the variance plot


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
    wiggle = 3 * phi**2 * np.cos(phi**3) - e2 * np.sin(phi**3)
    return 6 * phi**5 + 2 * e2 + np.exp(-e2 / 2) * wiggle


print("Part 6: reparameterization vs score-function gradients")
exact = float(exact_gradient(PHI))
central = float((expected_f(PHI + 1e-5) - expected_f(PHI - 1e-5)) / 2e-5)  # checks the algebra
lesson.report("grad_exact", exact, f"exact d/dφ E[f(x)] at φ = {PHI}")
lesson.report("grad_exact_vs_central_difference", abs(exact - central),
              "  ... |exact - central difference of E[f]| (checks the algebra)", ".2e")  # fmt: skip
check = gradcheck(lambda t: Sin.apply(t), [mv.Tensor(B.from_numpy(np.linspace(-3.0, 3.0, 13)))])
lesson.report("sin_gradcheck_ok", bool(check.ok), "the lesson's Sin op passes gradcheck")

eps = B.from_numpy(rng_of_part(6).standard_normal(n))  # (N,) ε ~ N(0, 1), on the chosen device
with mv.set_default_dtype("float64"):
    # (a) φ is copied once per sample, so that after backward of the sum, φ.grad[i] is the
    # single-sample gradient d f(x_i)/dφ: N estimates in one pass
    phi = mv.Tensor(B.xp.full(n, PHI), requires_grad=True)  # (N,)
    x_q = phi**3 + ops.exp(phi) * eps  # (N,) x = μ_φ + ε σ_φ, μ_φ = φ³, σ_φ = e^φ
    fx = x_q * x_q + Sin.apply(x_q)  # (N,) f(x) = x² + sin x
    fx.sum().backward()
    g_rep = B.to_numpy(phi.grad)  # (N,) d f(x_i)/dφ = f'(x_i) (3φ² + e^φ ε_i)

    # (b) f(x) ∂/∂φ log q(x; φ), with the same samples x held constant
    phi2 = mv.Tensor(B.xp.full(n, PHI), requires_grad=True)  # (N,)
    x_fixed = mv.Tensor(x_q.data)  # no graph: the sample itself is not differentiated
    # log q(x; φ) = -½ log 2π - φ - ½ ((x - φ³) e^{-φ})²
    log_q = -0.5 * math.log(2 * math.pi) - phi2 - 0.5 * ((x_fixed - phi2**3) * ops.exp(-phi2)) ** 2
    log_q.sum().backward()
    g_score = B.to_numpy(fx.data) * B.to_numpy(phi2.grad)  # (N,) f(x_i) ∂ log q(x_i; φ)/∂φ

counts = np.unique(np.geomspace(16, n, 40).astype(int))  # sample sizes for the running mean
running = {}
for key, g, label in (("grad_reparam", g_rep, "reparameterization"),
                      ("grad_score", g_score, "score function")):  # fmt: skip
    mean, se = float(g.mean()), float(g.std(ddof=1) / math.sqrt(n))
    running[f"{label}: mean of N samples ± 2 s.e."] = (
        counts, np.cumsum(g)[counts - 1] / counts, 2 * g.std(ddof=1) / np.sqrt(counts))
    lesson.report(f"{key}_mean", mean, f"{label}: mean of {n:,} single-sample gradients")
    lesson.report(f"{key}_se", se, "  ... its standard error")
    lesson.report(f"{key}_z", (mean - exact) / se, "  ... (mean - exact) / standard error")
    lesson.report(f"{key}_var", float(g.var(ddof=1)), "  ... variance of one sample")
ratio = float(g_score.var(ddof=1) / g_rep.var(ddof=1))
lesson.report("grad_variance_ratio", ratio, "variance ratio score function / reparameterization")
running[f"exact gradient {exact:.4f}"] = (counts, np.full(len(counts), exact))
common.show(plots.line_plot(
    running, lesson.path("6_gradient_running_means.png"),
    f"Part 6 - both estimators of d/dφ E[x² + sin x] converge to the exact value; "
    f"the score function's band is {math.sqrt(ratio):.1f}x wider",
    "N, samples averaged", "gradient estimate", logx=True))

variances = {}  # the variance of an N-sample average, over n/N disjoint groups of samples
for g, label in ((g_score, "score function (REINFORCE)"), (g_rep, "reparameterization")):
    group_sizes = np.array([k for k in GRAD_NS if n // k >= 16])
    variances[label] = (group_sizes, np.array(
        [g[: (n // k) * k].reshape(-1, k).mean(axis=1).var(ddof=1) for k in group_sizes]))
common.show(plots.line_plot(
    variances, lesson.path("6_gradient_estimators.png"),
    f"Part 6 - gradient of E[x² + sin x], x ~ N(φ³, e^(2φ)), φ = {PHI}: both estimators "
    f"unbiased, variance ratio {ratio:.0f} (both fall as 1/N)",
    "N, samples averaged per gradient estimate", "variance of the estimate",
    logx=True, logy=True))

# %% [markdown]
# ## What the numbers say
# Each claim of the lecture, checked against this run's numbers (a QUICK run records
# them in summary.json but does not print them: its sizes are too small to decide).

# %%
N = lesson.numbers
errors_at_k = [N[f"is_{k}_rel_error_K{K_REPORT}"] for k in ("good", "prior", "narrow")]
worst_integral = max(abs(N["mog_integral"] - 1), abs(N["nonlinear_integral"] - 1))
lesson.verdict("p_x_integrates_to_one", worst_integral < 1e-6, "p(x) integrates to 1")
lesson.verdict("ancestral_samples_follow_p_x", ks < N["nonlinear_ks_critical_95"],
               "ancestral samples follow p(x): KS distance below its 95 % threshold")
lesson.verdict("jensen_holds", log_mean > mean_log and two_log_mean > two_mean_log,
               "Jensen: log E[y] ≥ E[log y]")  # fmt: skip
bound_holds = N["max_elbo_minus_log_px"] < 0 and N["max_gap_minus_kl"] < 1e-6
lesson.verdict("elbo_gap_is_the_kl", bound_holds,
               "ELBO < log p(x) for every Gaussian q, and log p(x) - ELBO = KL(q ‖ p(z|x))")
lesson.verdict("only_the_posterior_closes_the_gap",
               0 < N["best_q_gap"] < N["moment_matched_q_gap"] and abs(lin_gap) < 1e-6,
               "the best Gaussian leaves a gap; the exact posterior (linear model) closes it")
lesson.verdict("importance_sampling_order", errors_at_k[0] < errors_at_k[1] < errors_at_k[2],
               f"importance sampling at K = {K_REPORT}: good q < prior < too narrow q")
lesson.verdict("gradients_unbiased", max(abs(N["grad_reparam_z"]), abs(N["grad_score_z"])) < 4,
               "both gradient estimators unbiased (within 4 standard errors of exact)")
lesson.verdict("reparameterization_has_lower_variance", ratio > 1,
               f"reparameterization has the lower variance (score function {ratio:.1f}x)")
summary = lesson.finish()
