"""Lesson 06: semi-supervised regression, a VAE that learns a continuous property from few labels.

Seed 004's semi-supervised VAE with a real-valued label (Kang & Cho 2019): y is a
property of the image, here the SLANT of a digit in degrees, measured from the image's
second moments. Only a few training images come with their y; the model
    p(x | y, z) p(z) p(y),   q(y | x) = N(μ_y(x), σ_y²(x)),   q(z | x, y)
learns from all of them with the labelled bound L(x, y) and the unlabelled bound
U(x) = E_q(y|x)[L(x, y)] + H(q(y|x)), and its regressor q(y | x) is scored against
the same network trained on the labelled images alone:

  1. the property: slant from image moments, on real digits        (Kang & Cho 2019: a
     property computed from x, here with no chemistry needed)
  2. the objective on one minibatch by hand: L(x, y), U(x) with a reparameterized
     y = μ_y + σ_y ε, and J, equal to the library's; why the reparameterization
     matters: without it U gives μ_y no gradient at all   (seed 004, "Overall training
                                                             objective"; seed 000, 
                                                             "Reparameterization Trick")
  3. few labels: test error of the semi-supervised regressor against the supervised-only
     one, for several numbers of labels; error during training; predicted against true
  4. conditional generation: encode a digit's style z, then decode it with the slant y
     swept from left to right, and measure the slant of what comes out
                                                 (seed 004, "What does conditional
                                                  generation look like?")

Seeds are the lecture notes in the shared seeds folder (see DESIGN.md); "seed 004,
For data points with labels" means that slide of file 004_*.txt.

Run (about 5 minutes on 2 idle cores, much longer on busy ones; --quick takes about 10 s):

    MINIVAE_DATA=<folder holding mnist/> python lessons/06_semi_supervised_regression.py [--quick]

Figures and summary.json go to runs/lessons/06_semi_supervised_regression/ (change
the root with --out), the checkpoint of the main model to its models/ subfolder.
Without the MNIST files (and without network) the lesson says so in one line and
uses the built-in Fashion-MNIST subset instead, whose garments have a slant too.
"""

# %% [markdown]
# # Setup
# Imports, the sizes of every part as named constants (pairs: full run, --quick),
# and helpers that move host images through a model in batches.

# %%

from __future__ import annotations

import math
import os
import sys
import time

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout

import minivae as mv
from lessons.common import Lesson, parse_args
from minivae import backend as B
from minivae import data as D
from minivae import ops, plots
from minivae.checkpoint import load_model, save_checkpoint
from minivae.models import ContinuousSemiSupervisedVAE
from minivae.optim import Adam

NAME = "06_semi_supervised_regression"

# The model: regressor x-128-(2 x 1), encoder [x, y]-128-(2 x 16), decoder [z, y]-128-x,
# softplus units as in Kingma et al. 2014's M2
HIDDEN = ((128,), (64,))
LATENT = 16
ACTIVATION = "softplus"
REGRESSION_WEIGHT = 10.0  # seed 004's β on ||y − E_q[y|x]||² per labelled example
LEARNING_RATE = 1e-3  # Adam, for the semi-supervised model and the baseline alike

# Training: each step sees an unlabelled batch (any training image) and a labelled batch
N_LABELS = ((100, 300, 1000), (20, 50))  # labelled training images; the first is the main model
STEPS = (1500, 80)  # optimizer steps, for every model
BATCH_UNLABELLED = (100, 64)
BATCH_LABELLED = (100, 50)  # at most this many of the N labelled images per step
LIMIT_TRAIN = (None, 2000)  # None: all training images are the unlabelled pool
N_TEST = (10000, 500)  # test images the errors are measured on
CURVE_EVERY = (100, 20)  # steps between two points of the learning curves
N_CURVE = (2000, 300)  # test images of the learning curves

# Part 2: the minibatch by hand
N_BY_HAND = 8

# Part 4: conditional generation
N_STYLES = 6  # test images whose style z is kept while y is swept
SWEEP = np.linspace(-2.5, 2.5, 9)  # y in standard deviations of the labelled slants

EVAL_BATCH = 1000


def pick(pair, quick: bool):
    """The --quick value of a (full, quick) pair when quick, else the full one."""
    return pair[1] if quick else pair[0]


def to_device(x):
    """A host array as a device array of the engine's default float dtype."""
    return B.from_numpy(np.ascontiguousarray(x), dtype=B.get_default_dtype())


@mv.no_grad()
def predict(model, x):
    """E_q[y | x] = μ_y(x) for host images (N, 784), in batches: host (N, k) float64."""
    parts = [B.to_numpy(model.predict(to_device(x[s : s + EVAL_BATCH])))
             for s in range(0, len(x), EVAL_BATCH)]  # fmt: skip
    return np.concatenate(parts).astype(np.float64)


def save_figure(fig: Figure, path: str) -> None:
    """A multi-panel figure that minivae.plots has no function for: Agg canvas, no pyplot."""
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100, bbox_inches="tight", pad_inches=0.1)


# %% [markdown]
# # Part 1: the property, slant from image moments
# Treat the ink I(r, c) of an image (row r downwards, column c) as a mass. Its
# centre is (r̄, c̄) and its second central moments are
#   μ_rr = Σ (r − r̄)² I / Σ I,   μ_rc = Σ (r − r̄)(c − c̄) I / Σ I.
# μ_rc / μ_rr is the shear: how many columns the ink moves per row going down (the
# number the classic "deskewing" of MNIST undoes). A digit leaning right ("/") has
# its top to the right, so going down it moves left; the slant angle, positive to
# the right, is
#   slant = atan(−μ_rc / μ_rr)   (in degrees, 0 = upright).
# It is a property computed from x, as Kang & Cho's molecular properties are, so
# every training image could be labelled; the lesson hides all but N labels and
# asks how much the unlabelled images help.
# The model's prior is p(y) = N(0, 1): y is the slant standardized with the mean and
# standard deviation of the N labelled images, the only slants the model may know.

# %%


def slant_degrees(images, image_shape=(28, 28)):
    """Slant of each image in degrees, positive when it leans right: (N, H*W) -> (N,)."""
    img = np.asarray(images, dtype=np.float64).reshape(-1, *image_shape)  # (N, H, W)
    r = np.arange(image_shape[0], dtype=np.float64)[None, :, None]  # rows, downwards
    c = np.arange(image_shape[1], dtype=np.float64)[None, None, :]  # columns, rightwards
    mass = img.sum(axis=(1, 2)) + 1e-12  # (N,)
    r_bar = (img * r).sum(axis=(1, 2)) / mass  # (N,) centre of the ink
    c_bar = (img * c).sum(axis=(1, 2)) / mass
    dr, dc = r - r_bar[:, None, None], c - c_bar[:, None, None]  # (N, H, W)
    mu_rc = (img * dr * dc).sum(axis=(1, 2)) / mass  # (N,) second central moments
    mu_rr = (img * dr * dr).sum(axis=(1, 2)) / mass + 1e-12
    return np.degrees(np.arctan(-mu_rc / mu_rr))


def part1_property(lesson: Lesson, train, test, slants_train, slants_test, labelled, quick):
    lesson.report("slant_train_mean_degrees", float(slants_train.mean()),
                  "slant of all training images: mean (degrees)")  # fmt: skip
    lesson.report("slant_train_std_degrees", float(slants_train.std()), "  ... standard deviation")
    lesson.report("slant_test_std_degrees", float(slants_test.std()),
                  "slant of the test images: standard deviation (the error of knowing nothing)")
    # ten columns from the most left-leaning to the most right-leaning test images
    order = np.argsort(slants_test, kind="stable")
    bins = np.array_split(order[int(0.02 * len(order)) : int(0.98 * len(order))], 10)
    rows = 3
    grid = np.stack([test.images[b[np.linspace(0, len(b) - 1, rows).round().astype(int)]]
                     for b in bins], axis=1).reshape(rows * 10, -1)  # fmt: skip  (rows x 10, 784)
    centres = [f"{np.median(slants_test[b]):+.0f}°" for b in bins]
    plots.image_grid(grid, lesson.path("1_slant_examples.png"),
                     f"Part 1 - test images of {test.name} ordered by their slant "
                     "atan(−μ_rc / μ_rr): a tenth of the images per column, its median slant "
                     "on top", ncols=10, col_labels=centres)  # fmt: skip
    n_main = pick(N_LABELS, quick)[0]
    plots.histogram_plot({"all training images": slants_train,
                          f"the {n_main} labelled ones": slants_train[labelled[:n_main]]},
                         lesson.path("1_slant_histogram.png"),
                         "Part 1 - the slant of the training images, and of the few whose "
                         "slant the model is told", "slant (degrees, > 0 leans right)",
                         bins=40)  # fmt: skip


# %% [markdown]
# # Part 2: the objective on one minibatch, by hand (seed 004)
# For a labelled pair (x, y) (seed 004, "For data points with labels"):
#   L(x, y) = E_q(z|x,y)[log p(x | y, z)] + log p(y) − KL(q(z | x, y) ‖ p(z))
# with one z = μ(x, y) + σ(x, y) ⊙ ε_z, the Bernoulli decoder's
#   log p(x | y, z) = Σ_pixels [x l − softplus(l)],  l = decoder logits at [z, y],
#   KL = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²),  log p(y) = −½ y² − ½ log 2π.
# For an unlabelled x (seed 004, "For data points without labels"), y is drawn from
# the regressor with the reparameterization trick (seed 000), y = μ_y + σ_y ε_y, and
#   U(x) = E_q(y|x)[L(x, y)] + H(q(y | x)),  H = ½ (log 2π + 1 + log σ_y²).
# The objective (seed 004, "Overall training objective", written as a quantity to
# maximize) is
#   J = Σ_labelled [L(x, y) − β ‖y − E_q[y|x]‖²] + Σ_unlabelled U(x).
# The model is untrained and in float64: the point is that each line of the slides
# is one line of code, and that the library computes exactly that.
# Why reparameterize? U depends on μ_y only through the sampled y. Draw y and treat
# it as a constant, and U's gradient with respect to μ_y is exactly zero: only the
# labelled squared error would ever train the mean, and the unlabelled images could
# teach the regressor nothing. M2 (lesson 05) sums over its ten classes instead; a
# continuous y cannot be summed over, so its samples must carry the gradient.

# %%


def part2_by_hand(lesson: Lesson, x_host, y_host, rng, quick):
    with mv.set_default_dtype("float64"):
        model = ContinuousSemiSupervisedVAE(hidden=pick(HIDDEN, quick), latent=LATENT,
                                            activation=ACTIVATION,
                                            regression_weight=REGRESSION_WEIGHT)  # fmt: skip
        x = mv.Tensor(B.from_numpy(x_host, dtype=np.float64))  # (B, 784), pixels in [0, 1]
        y = mv.Tensor(B.from_numpy(y_host, dtype=np.float64))  # (B, 1), standardized slants
        n = x.shape[0]
        eps_z = B.from_numpy(rng.standard_normal((n, LATENT)))  # (B, 16) ε_z ~ N(0, I)
        eps_y = B.from_numpy(rng.standard_normal((n, 1)))  # (B, 1) ε_y ~ N(0, I)

        def bound(x, y):
            """L(x, y) per example, (B,): the conditional VAE's bound on [x, y] plus log p(y)."""
            h = model.encoder(ops.concatenate([x, y], axis=1))  # (B, 32): q(z | x, y)
            mu, log_var = h[:, :LATENT], h[:, LATENT:]  # (B, 16) each
            z = mu + ops.exp(0.5 * log_var) * mv.Tensor(eps_z)  # (B, 16) z = μ + σ ε_z
            logits = model.decoder(ops.concatenate([z, y], axis=1))  # (B, 784)
            recon = (x * logits - ops.softplus(logits)).sum(axis=1)  # log p(x | y, z), (B,)
            kl = 0.5 * (mu * mu + ops.exp(log_var) - 1.0 - log_var).sum(axis=1)  # (B,)
            log_p_y = (-0.5 * (y * y) - 0.5 * B.LOG_2PI).sum(axis=1)  # log N(y | 0, 1), (B,)
            return recon - kl + log_p_y

        # labelled: L(x, y) and the squared error of the regressor's mean
        h_y = model.regressor(x)  # (B, 2): μ_y and log σ_y² of q(y | x)
        mu_y, log_var_y = h_y[:, :1], h_y[:, 1:]  # (B, 1) each
        L = bound(x, y)  # (B,)
        sq = ((y - mu_y) * (y - mu_y)).sum(axis=1)  # ||y − E_q[y|x]||², (B,)
        # unlabelled: y = μ_y + σ_y ε_y, then U = L(x, y) + H(q(y|x))
        y_sampled = mu_y + ops.exp(0.5 * log_var_y) * mv.Tensor(eps_y)  # (B, 1)
        entropy = (0.5 * (B.LOG_2PI + 1.0 + log_var_y)).sum(axis=1)  # (B,)
        U = bound(x, y_sampled) + entropy  # (B,)
        # J over the batch used twice, once with its labels and once without
        J = (L - REGRESSION_WEIGHT * sq).sum() + U.sum()
        loss_by_hand = -J / (2 * n)

        lib_L = model.elbo(x, y, eps=eps_z)["elbo"]
        lib_U = model.elbo(x, eps=eps_z, eps_y=eps_y)["elbo"]
        loss, _ = model.loss(x, x, y, eps_labelled=eps_z, eps_unlabelled=eps_z, eps_y=eps_y)
        for key, mine, theirs in (("L", L, lib_L), ("U", U, lib_U),
                                  ("loss", loss_by_hand, loss)):  # fmt: skip
            lesson.report(f"by_hand_minus_library_{key}",
                          float(np.max(np.abs(B.to_numpy(mine.data - theirs.data)))),
                          f"max |{key} by hand − the library's|")  # fmt: skip
        lesson.report("by_hand_L_mean", float(L.data.mean()),
                      "L(x, y) per example at random weights (nats)")  # fmt: skip
        lesson.report("by_hand_U_mean", float(U.data.mean()), "U(x) per example at random weights")

        # the gradient of U with respect to μ_y: through the reparameterized sample, and without
        mu_leaf = mv.Tensor(mu_y.data.copy(), requires_grad=True)  # (B, 1), a leaf to read
        y_r = mu_leaf + ops.exp(0.5 * mv.Tensor(log_var_y.data)) * mv.Tensor(eps_y)
        bound(x, y_r).sum().backward()
        reparam = float(np.abs(B.to_numpy(mu_leaf.grad)).max())
        y_const = mv.Tensor(y_r.data.copy())  # the same numbers, no path back to μ_y
        mu_leaf.grad = None
        (bound(x, y_const).sum() + 0.0 * mu_leaf.sum()).backward()
        detached = float(np.abs(B.to_numpy(mu_leaf.grad)).max())
        lesson.report("grad_mu_y_reparameterized", reparam,
                      "max |∂U/∂μ_y| with y = μ_y + σ_y ε (reparameterized)")  # fmt: skip
        lesson.report("grad_mu_y_detached", detached,
                      "  ... with the same y as a constant (no reparameterization)")  # fmt: skip


# %% [markdown]
# # Part 3: few labels, and what the unlabelled images add
# The semi-supervised model sees every training image: each step takes an unlabelled
# batch (for U) and a batch of the N labelled images (for L and the squared error),
# and minimizes −J per example (seed 004, "Overall training objective"). The
# baseline is the regressor network alone, started from the same weights and trained
# on the same labelled batches to minimize ||y − μ_y(x)||², for the same number of
# steps. Both are scored on test images by the root-mean-square error of the slant
# in degrees, and by R² = 1 − MSE / Var(slant): 0 is the error of predicting the
# average slant, 1 a perfect prediction.
# For the main N the lesson also follows both errors during training, and beside
# them how strongly the decoder follows y (Part 4's measure: decode six test images'
# styles z at swept values of y, measure the slant of the outputs, fit a slope).
# U(x) can only teach the regressor through a decoder that uses y: where the slope
# is 0, the unlabelled images say nothing about the slant.

# %%


def first_of_each_class(dataset, n_classes: int, limit: int):
    """Row indices of the first image of each of the first n_classes classes (among `limit`)."""
    return [int(np.flatnonzero(dataset.labels[:limit] == c)[0]) for c in range(n_classes)]


@mv.no_grad()
def sweep_styles(model, x_styles, scale):
    """Keep each image's style z = μ(x, E_q[y|x]) and decode it at every y of SWEEP.

    Returns (images (R S, 784) row-major, asked slants (S,) in degrees, measured slants
    (R, S) in degrees, their correlation, the slope of measured against asked).
    """
    mu_z, _ = model.encode(to_device(x_styles))  # (R, latent): y = the regressor's mean
    z = np.repeat(B.to_numpy(mu_z.data), len(SWEEP), axis=0)  # (R S, latent)
    y = np.tile(SWEEP, len(x_styles))[:, None]  # (R S, 1): row r, sweep value s
    images = B.to_numpy(model.decode(to_device(z), to_device(y)).data).astype(np.float64)
    asked = scale[0] + scale[1] * SWEEP  # degrees
    measured = slant_degrees(images).reshape(len(x_styles), len(SWEEP))  # (R, S)
    flat = np.tile(asked, len(x_styles))
    corr = float(np.corrcoef(flat, measured.reshape(-1))[0, 1])
    slope = float(np.polyfit(flat, measured.reshape(-1), 1)[0])
    return images, asked, measured, corr, slope


def new_model(lesson: Lesson, quick):
    mv.manual_seed(lesson.args.seed)  # the same initial weights for every model of the lesson
    return ContinuousSemiSupervisedVAE(hidden=pick(HIDDEN, quick), latent=LATENT,
                                       activation=ACTIVATION,
                                       regression_weight=REGRESSION_WEIGHT)  # fmt: skip


def scores(pred_std, slants, scale):
    """(RMSE in degrees, R²) of standardized predictions (N, 1) against true slants (N,)."""
    pred = scale[0] + scale[1] * pred_std[:, 0]  # back to degrees
    mse = float(np.mean((pred - slants) ** 2))
    return math.sqrt(mse), 1.0 - mse / float(slants.var())


def train_pair(lesson: Lesson, x_train, x_lab, y_lab, scale, quick, watch=None):
    """Train the semi-supervised model and the supervised-only regressor on the same batches.

    watch: None, or (x_curve, slants_curve, x_styles) to record learning curves.
    Returns (model, baseline, curves or None, seconds of each).
    """
    steps, every = pick(STEPS, quick), pick(CURVE_EVERY, quick)
    bu, bl = pick(BATCH_UNLABELLED, quick), min(pick(BATCH_LABELLED, quick), len(x_lab))
    model, baseline = new_model(lesson, quick), new_model(lesson, quick)  # the same weights
    opt = Adam(model.parameters(), lr=LEARNING_RATE)
    opt_base = Adam(baseline.regressor.parameters(), lr=LEARNING_RATE)
    rng = np.random.default_rng(lesson.args.seed + len(x_lab))
    curves = {"step": [], "ssvae": [], "baseline": [], "slope": []} if watch else None
    seconds = {"ssvae": 0.0, "baseline": 0.0}
    for step in range(1, steps + 1):
        xu = to_device(x_train[rng.integers(0, len(x_train), bu)])  # (B_u, 784) unlabelled
        li = rng.choice(len(x_lab), bl, replace=False)
        xl, yl = to_device(x_lab[li]), to_device(y_lab[li])  # (B_l, 784), (B_l, 1)
        t0 = time.perf_counter()
        loss, stats = model.loss(xu, xl, yl)  # −J / (B_u + B_l), seed 004's objective
        model.zero_grad()
        loss.backward()
        opt.step()
        t1 = time.perf_counter()
        diff = yl - baseline.label_posterior(xl).mu  # the baseline: the regressor alone
        base_loss = (diff * diff).sum(axis=1).mean()  # mean ||y − μ_y(x)||² over the batch
        baseline.regressor.zero_grad()
        base_loss.backward()
        opt_base.step()
        seconds["ssvae"] += t1 - t0
        seconds["baseline"] += time.perf_counter() - t1
        if not math.isfinite(stats["loss"]):
            raise FloatingPointError(f"the loss became {stats['loss']} at step {step}: {stats}")
        if watch and (step % every == 0 or step == 1):
            x_curve, s_curve, x_styles = watch
            curves["step"].append(step)
            curves["ssvae"].append(scores(predict(model, x_curve), s_curve, scale)[0])
            curves["baseline"].append(scores(predict(baseline, x_curve), s_curve, scale)[0])
            curves["slope"].append(sweep_styles(model, x_styles, scale)[4])
        if step % max(1, steps // 5) == 0 and not lesson.args.no_progress:
            print(f"    step {step}/{steps}: −J per example {stats['loss']:.1f}, labelled "
                  f"squared error {stats['regression_loss']:.3f}, H(q(y|x)) "
                  f"{stats['entropy_y']:.2f}")  # fmt: skip
    return model, baseline, curves, seconds


def part3_few_labels(lesson: Lesson, x_train, slants_train, labelled, x_test, s_test, x_styles,
                     quick):  # fmt: skip
    results = {}
    x_curve, s_curve = x_test[: pick(N_CURVE, quick)], s_test[: pick(N_CURVE, quick)]
    main_n = pick(N_LABELS, quick)[0]
    for n in pick(N_LABELS, quick):
        idx = labelled[:n]  # the first n of one fixed random order: the sets are nested
        mean, std = float(slants_train[idx].mean()), float(slants_train[idx].std())
        scale = (mean, std)
        y_lab = ((slants_train[idx] - mean) / std)[:, None]  # (n, 1) standardized: p(y) = N(0, 1)
        print(f"  N = {n} labelled images (slant {mean:+.1f} ± {std:.1f}°): training ...")
        watch = (x_curve, s_curve, x_styles) if n == main_n else None
        model, baseline, curves, seconds = train_pair(lesson, x_train, x_train[idx], y_lab,
                                                      scale, quick, watch)  # fmt: skip
        rmse_ss, r2_ss = scores(predict(model, x_test), s_test, scale)
        rmse_b, r2_b = scores(predict(baseline, x_test), s_test, scale)
        rmse_fit, _ = scores(predict(baseline, x_train[idx]), slants_train[idx], scale)
        rmse_mean = math.sqrt(float(np.mean((mean - s_test) ** 2)))
        k = f"n{n}"
        lesson.report(f"{k}_ssvae_rmse", rmse_ss, f"N = {n}: semi-supervised test RMSE (degrees)")
        lesson.report(f"{k}_ssvae_r2", r2_ss, "  ... R²")
        lesson.report(f"{k}_baseline_rmse", rmse_b, "  ... supervised-only test RMSE")
        lesson.report(f"{k}_baseline_r2", r2_b, "  ... R²")
        lesson.report(f"{k}_baseline_train_rmse", rmse_fit,
                      "  ... supervised-only RMSE on its own labelled images")  # fmt: skip
        lesson.report(f"{k}_mean_predictor_rmse", rmse_mean,
                      "  ... RMSE of predicting the labelled mean slant")  # fmt: skip
        lesson.report(f"{k}_label_mean", mean, "  ... mean slant of the labelled images")
        lesson.report(f"{k}_label_std", std, "  ... their standard deviation (y's unit)")
        lesson.report(f"{k}_ssvae_seconds", round(seconds["ssvae"], 1), "  ... seconds (model)")
        lesson.report(f"{k}_baseline_seconds", round(seconds["baseline"], 1),
                      "  ... seconds (baseline)")  # fmt: skip
        results[n] = {"model": model, "baseline": baseline, "scale": scale, "curves": curves,
                      "rmse": (rmse_ss, rmse_b, rmse_mean)}  # fmt: skip
    lesson.report("n_labels", list(results), "numbers of labelled images")
    ns = np.array(list(results), dtype=float)
    column = {who: np.array([r["rmse"][i] for r in results.values()])
              for i, who in enumerate(("ssvae", "baseline", "mean"))}  # fmt: skip
    plots.line_plot({"semi-supervised VAE, E_q[y|x]": (ns, column["ssvae"]),
                     "supervised only (the same network)": (ns, column["baseline"]),
                     "predicting the labelled mean": (ns, column["mean"])},
                    lesson.path("3_error_vs_labels.png"),
                    f"Part 3 - test RMSE of the predicted slant against the number of "
                    f"labelled images ({len(x_test)} test images)",
                    "labelled training images N (log scale)", "test RMSE (degrees)",
                    logx=True)  # fmt: skip
    curves = results[main_n]["curves"]
    lesson.report("curve_steps", curves["step"], f"N = {main_n}: steps of the learning curves")
    lesson.report("curve_ssvae_rmse", [round(v, 3) for v in curves["ssvae"]],
                  f"  ... semi-supervised RMSE on {len(x_curve)} test images")  # fmt: skip
    lesson.report("curve_baseline_rmse", [round(v, 3) for v in curves["baseline"]],
                  "  ... supervised-only RMSE")  # fmt: skip
    lesson.report("curve_generation_slope", [round(v, 4) for v in curves["slope"]],
                  "  ... the decoder's use of y: slope of decoded against asked slant")
    plot_learning_curves(lesson, curves, main_n, len(x_curve))
    plot_predictions(lesson, results[main_n], main_n, x_test, s_test)
    return results


def plot_learning_curves(lesson: Lesson, curves, n, n_images):
    """Test RMSE of both regressors, and the decoder's use of y, against the step."""
    fig = Figure(figsize=(10.0, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2, sharex=True)
    steps = np.array(curves["step"])
    left.plot(steps, curves["ssvae"], marker="o", markersize=3, label="semi-supervised VAE")
    left.plot(steps, curves["baseline"], marker="o", markersize=3, label="supervised only")
    left.set_ylabel(f"test RMSE (degrees, {n_images} images)")
    left.set_title("error of the predicted slant")
    right.plot(steps, curves["slope"], marker="o", markersize=3, color="tab:green",
               label="semi-supervised VAE")  # fmt: skip
    right.axhline(1.0, color="0.4", linewidth=1, linestyle="--", label="decoded = asked")
    right.axhline(0.0, color="0.4", linewidth=1, linestyle=":", label="y ignored")
    right.set_ylabel("decoded slant per asked degree (slope)")
    right.set_title("how much the decoder follows y (Part 4's measure)")
    for ax in (left, right):
        ax.set_xlabel("optimizer step")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=9)
    fig.suptitle(f"Part 3 - during training, N = {n} labels")
    save_figure(fig, lesson.path("3_learning_curves.png"))
def plot_predictions(lesson: Lesson, result, n, x_test, s_test):
    """Predicted against true slant for both regressors, one panel each."""
    fig = Figure(figsize=(10.0, 4.6), layout="constrained")
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    lo, hi = np.percentile(s_test, [0.5, 99.5])
    mean, std = result["scale"]
    for ax, key, title in ((axes[0], "model", "semi-supervised VAE"),
                           (axes[1], "baseline", "supervised only")):  # fmt: skip
        pred = mean + std * predict(result[key], x_test)[:, 0]
        rmse = math.sqrt(float(np.mean((pred - s_test) ** 2)))
        ax.scatter(s_test, pred, s=3, alpha=0.3, color="tab:blue", linewidths=0)
        ax.plot([lo, hi], [lo, hi], color="0.3", linewidth=1, label="predicted = true")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_title(f"{title}: RMSE {rmse:.2f}°")
        ax.set_xlabel("true slant (degrees)")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", fontsize=9)
    axes[0].set_ylabel("predicted slant E_q[y|x] (degrees)")
    fig.suptitle(f"Part 3 - predicted against true slant of {len(s_test)} test images, "
                 f"N = {n} labels")  # fmt: skip
    save_figure(fig, lesson.path("3_predicted_vs_true.png"))


# %% [markdown]
# # Part 4: conditional generation (seed 004, "What does conditional generation look like?")
# Encode a test image's style, z = μ(x, E_q[y|x]), keep it, and decode p(x | y, z)
# while y sweeps from −2.5 to +2.5 standard deviations of the labelled slants. If
# the decoder has learned what y means, the same digit leans from left to right.
# Measuring the slant of each decoded image (Part 1's formula) turns the picture
# into a number: the correlation and slope of measured against asked-for slant.
# The model comes back from its checkpoint first, so this part also checks that a
# saved model predicts exactly what the trained one did.

# %%


def class_name(dataset, index: int) -> str:
    label = int(dataset.labels[index])
    return dataset.class_names[label] if dataset.class_names else str(label)


def part4_generation(lesson: Lesson, result, n, test, x_test, styles):
    model = result["model"]
    path = save_checkpoint(lesson.path(os.path.join("models", f"ssvae_n{n}.npz")), model,
                           meta={"label_mean": result["scale"][0],
                                 "label_std": result["scale"][1],
                                 "property": "slant in degrees"})  # fmt: skip
    loaded, meta = load_model(path, expect_kind="ssvae-continuous")
    lesson.report("checkpoint_max_abs_diff",
                  float(np.max(np.abs(predict(loaded, x_test) - predict(model, x_test)))),
                  "max |E_q[y|x]| difference, reloaded checkpoint − trained model")  # fmt: skip
    scale = (meta["label_mean"], meta["label_std"])  # y's unit, saved with the model

    x = x_test[styles]  # (R, 784) one test image per class
    images, asked, measured, corr, slope = sweep_styles(loaded, x, scale)  # (R S, 784), ...
    grid = np.concatenate([x[:, None, :], images.reshape(len(x), len(SWEEP), -1)], axis=1)
    names = [class_name(test, i) for i in styles]
    plots.image_grid(grid.reshape(-1, x.shape[1]), lesson.path("4_conditional_generation.png"),
                     f"Part 4 - conditional generation: each row keeps the style z of the "
                     f"test image on the left and asks for the slant on top "
                     f"(N = {n} labels)", ncols=len(SWEEP) + 1,
                     col_labels=["input"] + [f"{a:+.0f}°" for a in asked],
                     row_labels=names)  # fmt: skip
    lesson.report("generation_asked_degrees", [round(float(a), 2) for a in asked],
                  "slants asked for (degrees)")  # fmt: skip
    lesson.report("generation_measured_mean_degrees",
                  [round(float(m), 2) for m in measured.mean(axis=0)],
                  "  ... measured on the decoded images, mean over the rows")  # fmt: skip
    lesson.report("generation_correlation", corr, "correlation of measured with asked-for slant")
    lesson.report("generation_slope", slope, "  ... slope (measured degrees per asked degree)")
    series = {name: (asked, measured[i]) for i, name in enumerate(names)}
    series["measured = asked"] = (asked, asked)
    plots.line_plot(series, lesson.path("4_generated_slant.png"),
                    f"Part 4 - slant measured on the decoded images against the slant asked "
                    f"for, one curve per style z (correlation {corr:.2f}, slope {slope:.2f})",
                    "slant asked for, y (degrees)", "slant of the decoded image (degrees)")


# %% [markdown]
# # Run everything

# %%


def main(argv=None):
    args = parse_args(argv, __doc__)
    lesson = Lesson(NAME, args)  # the output folder, the clock, the numbers; seeds minivae
    quick = args.quick
    train = D.load_for_lesson(args.dataset, "train")
    test = D.load_for_lesson(args.dataset, "test")
    lesson.report("dataset", train.name, "data set")
    limit = pick(LIMIT_TRAIN, quick)
    x_train = train.images if limit is None else train.images[:limit]  # (N, 784) in [0, 1]
    x_test = test.images[: pick(N_TEST, quick)]
    slants_train, slants_test = slant_degrees(x_train), slant_degrees(x_test)
    rng = np.random.default_rng(args.seed)
    labelled = rng.permutation(len(x_train))  # the first N of this order are labelled
    lesson.report("n_train", len(x_train), "training images (all of them unlabelled for U)")
    styles = first_of_each_class(test, N_STYLES, len(x_test))  # Parts 3 and 4

    print("Part 1: the slant of a digit, from its second moments")
    part1_property(lesson, train, test, slants_train, slants_test, labelled, quick)

    print("Part 2: L(x, y), U(x) and J on one minibatch, by hand (seed 004)")
    hand = labelled[:N_BY_HAND]
    y_hand = (slants_train[hand] - slants_train[hand].mean()) / slants_train[hand].std()
    part2_by_hand(lesson, x_train[hand].astype(np.float64), y_hand[:, None], rng, quick)

    print("Part 3: few labels, semi-supervised against supervised only")
    results = part3_few_labels(lesson, x_train, slants_train, labelled, x_test, slants_test,
                               x_test[styles], quick)  # fmt: skip

    print("Part 4: conditional generation, the slant swept at a fixed style")
    main_n = pick(N_LABELS, quick)[0]
    part4_generation(lesson, results[main_n], main_n, test, x_test, styles)

    n = lesson.numbers
    print("In short:")
    for k in results:
        print(f"  N = {k}: test RMSE {n[f'n{k}_ssvae_rmse']:.2f}° semi-supervised, "
              f"{n[f'n{k}_baseline_rmse']:.2f}° supervised only, "
              f"{n[f'n{k}_mean_predictor_rmse']:.2f}° knowing only the mean")  # fmt: skip
    print(f"  conditional generation: measured slant follows the asked one with correlation "
          f"{n['generation_correlation']:.2f} and slope {n['generation_slope']:.2f}")
    return lesson.finish()


if __name__ == "__main__":
    main()
