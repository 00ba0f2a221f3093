"""Lesson 07: semi-supervised regression, a VAE that learns a continuous property from few labels.

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
     one for N = 100, 300, 1000 labels, on two random labelled sets each; seed 004's J
     as written (β_z = 1), and with the KL of z weighted β_z = 3 so that the slant moves
     from z into y; the error during training beside how strongly the decoder follows y
  4. conditional generation: encode a digit's style z, then decode it with the slant y
     swept from left to right, and measure the slant of what comes out
                                                 (seed 004, "What does conditional
                                                  generation look like?")

Seeds are the lecture notes in the shared seeds folder (see DESIGN.md); "seed 004,
For data points with labels" means that slide of file 004_*.txt.

Run (about 4 minutes of computing, 7.5 minutes on 2 shared cores; --quick takes about 10 s):

    MINIVAE_DATA=<folder holding mnist/> python lessons/07_semi_supervised_regression.py [--quick]

Figures and summary.json go to runs/lessons/07_semi_supervised_regression/ (change
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

NAME = "07_semi_supervised_regression"

# The model: regressor x-128-(2 x 1), encoder [x, y]-128-(2 x 16), decoder [z, y]-128-x,
# softplus units as in Kingma et al. 2014's M2
HIDDEN = ((128,), (64,))
LATENT = 16
ACTIVATION = "softplus"
REGRESSION_WEIGHT = 10.0  # seed 004's β on ||y − E_q[y|x]||² per labelled example
LEARNING_RATE = 1e-3  # Adam, for the semi-supervised model and the baseline alike

# Training: each step sees an unlabelled batch (any training image) and a labelled batch
N_LABELS = ((100, 300, 1000), (20, 50))  # labelled training images; the first is the main model
REPEATS = (2, 1)  # random labelled sets per N
BETAS_Z = ((1.0, 3.0), (1.0, 3.0))  # KL weight of z when training; 1 is seed 004's J exactly
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


@mv.no_grad()
def predict(model, x):
    """E_q[y | x] = μ_y(x) for host images (N, 784), in batches: host (N, k) float64."""
    parts = [B.to_numpy(model.predict(D.to_device(x[s : s + EVAL_BATCH])))
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


# The formula above is minivae.data.slant_degrees: the training loop gives the
# continuous-label model (`minivae train ssvae-continuous`) the same label.
slant_degrees = D.slant_degrees


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
# teach the regressor nothing. M2 (lesson 06) sums over its ten classes instead; a
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
        batch = D.Batch(x, x_labelled=x, y_labelled=y)  # the minibatch used twice
        loss, _ = model.loss(batch, eps_labelled=eps_z, eps_unlabelled=eps_z, eps_y=eps_y)
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
# average slant, 1 a perfect prediction. Every N is repeated on REPEATS different
# random labelled sets (the spread between them is large when N is small).
#
# U(x) can teach the regressor only through a decoder that uses y: if z carries the
# slant as well, the decoder can ignore y, and the unlabelled images then pull
# q(y|x) towards the prior p(y) instead (the posterior of y is its prior when
# p(x|y,z) does not depend on y). Nothing in J prefers y to z for the slant: on
# unlabelled images a nat of slant costs the same KL in either. So the lesson trains
# the model twice: with J exactly as seed 004 writes it (β_z = 1), and with the KL of
# z weighted β_z = 3 (the β-VAE's knob, lesson 04), which makes information in z
# three times dearer than in y, so the slant moves into y. The reported bounds stay
# the true ones (β_z = 1); only the training objective changes.
# For the main N the lesson follows the errors during training, and beside them how
# strongly the decoder follows y (Part 4's measure: decode six test images' styles z
# at swept values of y, measure the slant of the outputs, fit a slope: 1 means the
# decoder draws the slant it is asked for, 0 that it ignores y).

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
    mu_z, _ = model.encode(D.to_device(x_styles))  # (R, latent): y = the regressor's mean
    z = np.repeat(B.to_numpy(mu_z.data), len(SWEEP), axis=0)  # (R S, latent)
    y = np.tile(SWEEP, len(x_styles))[:, None]  # (R S, 1): row r, sweep value s
    images = B.to_numpy(model.decode(D.to_device(z), D.to_device(y)).data).astype(np.float64)
    asked = scale[0] + scale[1] * SWEEP  # degrees
    measured = slant_degrees(images).reshape(len(x_styles), len(SWEEP))  # (R, S)
    flat = np.tile(asked, len(x_styles))
    corr = float(np.corrcoef(flat, measured.reshape(-1))[0, 1])
    slope = float(np.polyfit(flat, measured.reshape(-1), 1)[0])
    return images, asked, measured, corr, slope


def new_model(lesson: Lesson, quick, beta_z: float = 1.0):
    mv.manual_seed(lesson.args.seed)  # the same initial weights for every model of the lesson
    return ContinuousSemiSupervisedVAE(hidden=pick(HIDDEN, quick), latent=LATENT,
                                       activation=ACTIVATION, beta=beta_z,
                                       regression_weight=REGRESSION_WEIGHT)  # fmt: skip


def scores(pred_std, slants, scale):
    """(RMSE in degrees, R²) of standardized predictions (N, 1) against true slants (N,)."""
    pred = scale[0] + scale[1] * pred_std[:, 0]  # back to degrees
    mse = float(np.mean((pred - slants) ** 2))
    return math.sqrt(mse), 1.0 - mse / float(slants.var())


def train(lesson: Lesson, x_train, x_lab, y_lab, scale, quick, beta_z=None, watch=None):
    """Train the semi-supervised model (beta_z given) or the supervised-only baseline (None).

    Both draw the same labelled batches (the generator of labelled indices has the same
    seed); watch: None, or (x_curve, slants_curve, x_styles) to record learning curves.
    Returns (model, curves or None, seconds).
    """
    steps, every = pick(STEPS, quick), pick(CURVE_EVERY, quick)
    bu, bl = pick(BATCH_UNLABELLED, quick), min(pick(BATCH_LABELLED, quick), len(x_lab))
    supervised_only = beta_z is None
    model = new_model(lesson, quick, 1.0 if supervised_only else beta_z)  # the same weights
    params = model.regressor.parameters() if supervised_only else model.parameters()
    opt = Adam(params, lr=LEARNING_RATE)
    rng_l = np.random.default_rng([lesson.args.seed, len(x_lab), 1])  # labelled batches
    rng_u = np.random.default_rng([lesson.args.seed, len(x_lab), 2])  # unlabelled batches
    curves = {"step": [], "rmse": [], "slope": []} if watch else None
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        li = rng_l.choice(len(x_lab), bl, replace=False)
        xl, yl = D.to_device(x_lab[li]), D.to_device(y_lab[li])  # (B_l, 784), (B_l, 1)
        if supervised_only:  # the regressor alone: mean ||y − μ_y(x)||² over the batch
            diff = yl - model.label_posterior(xl).mu  # (B_l, 1)
            loss = (diff * diff).sum(axis=1).mean()
            stats = {"loss": float(loss.data)}
        else:
            xu = D.to_device(x_train[rng_u.integers(0, len(x_train), bu)])  # (B_u, 784)
            batch = D.Batch(xu, x_labelled=xl, y_labelled=yl)  # unlabelled and labelled parts
            loss, stats = model.loss(batch)  # −J / (B_u + B_l), the VAE Extensions slides' J
        model.zero_grad()
        loss.backward()
        opt.step()
        if not math.isfinite(stats["loss"]):
            raise FloatingPointError(f"the loss became {stats['loss']} at step {step}: {stats}")
        if watch and step % every == 0:
            x_curve, s_curve, x_styles = watch
            curves["step"].append(step)
            curves["rmse"].append(scores(predict(model, x_curve), s_curve, scale)[0])
            if not supervised_only:  # the baseline's decoder is never trained
                curves["slope"].append(sweep_styles(model, x_styles, scale)[4])
        if not supervised_only and step % max(1, steps // 3) == 0 and not lesson.args.no_progress:
            print(f"      step {step}/{steps}: −J per example {stats['loss']:.1f}, labelled "
                  f"squared error {stats['regression_loss']:.3f}, H(q(y|x)) "
                  f"{stats['entropy_y']:.2f}")  # fmt: skip
    return model, curves, time.perf_counter() - t0


def tag(beta_z) -> str:
    """The summary's name of a model: "baseline", or "ssvae_betaz1", "ssvae_betaz3"."""
    return "baseline" if beta_z is None else f"ssvae_betaz{beta_z:g}"


def part3_few_labels(lesson: Lesson, x_train, slants_train, orders, x_test, s_test, x_styles,
                     quick):  # fmt: skip
    """Train every model for every N and labelled set; returns the models of labelled set 0."""
    x_curve, s_curve = x_test[: pick(N_CURVE, quick)], s_test[: pick(N_CURVE, quick)]
    main_n = pick(N_LABELS, quick)[0]
    kinds = [None, *pick(BETAS_Z, quick)]  # the baseline first
    kept, curves, table = {}, {}, {}
    for n in pick(N_LABELS, quick):
        each = {tag(b): {"rmse": [], "r2": []} for b in kinds}
        fit, mean_rmse, seconds = [], [], {tag(b): 0.0 for b in kinds}
        for r, order in enumerate(orders):
            idx = order[:n]  # the first n of labelled set r's random order: nested in n
            mean, std = float(slants_train[idx].mean()), float(slants_train[idx].std())
            scale = (mean, std)
            y_lab = ((slants_train[idx] - mean) / std)[:, None]  # (n, 1): p(y) = N(0, 1)
            print(f"  N = {n}, labelled set {r} (slant {mean:+.1f} ± {std:.1f}°)")
            mean_rmse.append(math.sqrt(float(np.mean((mean - s_test) ** 2))))
            for b in kinds:
                watch = (x_curve, s_curve, x_styles) if (n == main_n and r == 0) else None
                model, c, sec = train(lesson, x_train, x_train[idx], y_lab, scale, quick, b, watch)
                rmse, r2 = scores(predict(model, x_test), s_test, scale)
                each[tag(b)]["rmse"].append(rmse)
                each[tag(b)]["r2"].append(r2)
                seconds[tag(b)] += sec
                print(f"    {tag(b):<13} test RMSE {rmse:.2f}° (R² {r2:.3f}), {sec:.0f} s")
                if b is None:
                    fit.append(scores(predict(model, x_train[idx]), slants_train[idx], scale)[0])
                if r == 0:
                    kept[(n, tag(b))] = (model, scale)
                if watch:
                    curves[tag(b)] = c
        k = f"n{n}"
        for name, v in each.items():
            lesson.report(f"{k}_{name}_rmse", float(np.mean(v["rmse"])),
                          f"N = {n}, {name}: test RMSE (degrees), mean over labelled sets")
            lesson.report(f"{k}_{name}_rmse_each", [round(x, 4) for x in v["rmse"]],
                          "  ... per labelled set")  # fmt: skip
            lesson.report(f"{k}_{name}_r2_each", [round(x, 5) for x in v["r2"]], "  ... R²")
            lesson.report(f"{k}_{name}_seconds", round(seconds[name], 1), "  ... seconds")
        lesson.report(f"{k}_baseline_train_rmse_each", [round(x, 4) for x in fit],
                      f"N = {n}: baseline RMSE on its own labelled images")  # fmt: skip
        lesson.report(f"{k}_mean_predictor_rmse_each", [round(x, 4) for x in mean_rmse],
                      "  ... RMSE of predicting the labelled mean slant")  # fmt: skip
        lesson.report(f"{k}_label_mean", kept[(n, "baseline")][1][0],
                      "  ... mean slant of labelled set 0 (y = 0)")  # fmt: skip
        lesson.report(f"{k}_label_std", kept[(n, "baseline")][1][1],
                      "  ... its standard deviation (y's unit)")  # fmt: skip
        table[n] = {**{name: v["rmse"] for name, v in each.items()}, "mean": mean_rmse}
    lesson.report("n_labels", list(table), "numbers of labelled images")
    lesson.report("repeats", len(orders), "labelled sets per N")
    plot_error_vs_labels(lesson, table, kinds, len(x_test), len(orders))
    for name, c in curves.items():
        lesson.report(f"curve_{name}_rmse", [round(v, 3) for v in c["rmse"]],
                      f"N = {main_n}, {name}: test RMSE during training ({len(x_curve)} images)")
        if c["slope"]:
            lesson.report(f"curve_{name}_slope", [round(v, 4) for v in c["slope"]],
                          "  ... the decoder's slope of decoded against asked slant")
    lesson.report("curve_steps", curves["baseline"]["step"], "  ... at these steps")
    plot_learning_curves(lesson, curves, main_n, len(x_curve))
    plot_predictions(lesson, kept, main_n, [tag(b) for b in kinds], x_test, s_test)
    return kept


def plot_error_vs_labels(lesson: Lesson, table, kinds, n_test, repeats):
    ns = np.array(list(table), dtype=float)
    legend = {"baseline": "supervised only (the same network)",
              "mean": "predicting the labelled mean"}  # fmt: skip
    for b in kinds[1:]:
        legend[tag(b)] = f"semi-supervised VAE, β_z = {b:g}"
    series = {}
    for name in [tag(b) for b in kinds] + ["mean"]:
        values = np.array([table[n][name] for n in table])  # (N values, repeats)
        series[legend[name]] = (ns, values.mean(axis=1), values.std(axis=1))
    spread = f", shaded: ± std over {repeats} labelled sets" if repeats > 1 else ""
    plots.line_plot(series, lesson.path("3_error_vs_labels.png"),
                    f"Part 3 - test RMSE of the predicted slant against the number of labelled "
                    f"images ({n_test} test images, mean{spread})",
                    "labelled training images N (log scale)", "test RMSE (degrees)",
                    logx=True)  # fmt: skip


def plot_learning_curves(lesson: Lesson, curves, n, n_images):
    """Test RMSE of every model, and the decoder's use of y, against the step."""
    fig = Figure(figsize=(10.0, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2, sharex=True)
    for name, c in curves.items():
        label = "supervised only" if name == "baseline" else \
            "semi-supervised, β_z = " + name.removeprefix("ssvae_betaz")
        left.plot(c["step"], c["rmse"], marker="o", markersize=3, label=label)
        if name != "baseline":  # the baseline has an untrained decoder: nothing to measure
            right.plot(c["step"], c["slope"], marker="o", markersize=3, label=label,
                       color=left.lines[-1].get_color())  # fmt: skip
    left.set_ylabel(f"test RMSE (degrees, {n_images} images)")
    left.set_title("error of the predicted slant")
    right.axhline(1.0, color="0.4", linewidth=1, linestyle="--", label="decoded = asked")
    right.axhline(0.0, color="0.4", linewidth=1, linestyle=":", label="y ignored")
    right.set_ylabel("decoded slant per asked degree (slope)")
    right.set_title("how much the decoder follows y (Part 4's measure)")
    for ax in (left, right):
        ax.set_xlabel("optimizer step")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=9)
    fig.suptitle(f"Part 3 - during training, N = {n} labels, labelled set 0")
    save_figure(fig, lesson.path("3_learning_curves.png"))


def plot_predictions(lesson: Lesson, kept, n, names, x_test, s_test):
    """Predicted against true slant, one panel per model (labelled set 0)."""
    fig = Figure(figsize=(4.2 * len(names), 4.6), layout="constrained")
    axes = fig.subplots(1, len(names), sharex=True, sharey=True)
    lo, hi = np.percentile(s_test, [0.5, 99.5])
    for ax, name in zip(axes, names):
        model, (mean, std) = kept[(n, name)]
        pred = mean + std * predict(model, x_test)[:, 0]
        rmse = math.sqrt(float(np.mean((pred - s_test) ** 2)))
        ax.scatter(s_test, pred, s=3, alpha=0.3, color="tab:blue", linewidths=0)
        ax.plot([lo, hi], [lo, hi], color="0.3", linewidth=1, label="predicted = true")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        title = "supervised only" if name == "baseline" else \
            "semi-supervised, β_z = " + name.removeprefix("ssvae_betaz")
        ax.set_title(f"{title}: RMSE {rmse:.2f}°")
        ax.set_xlabel("true slant (degrees)")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", fontsize=9)
    axes[0].set_ylabel("predicted slant E_q[y|x] (degrees)")
    fig.suptitle(f"Part 3 - predicted against true slant of {len(s_test)} test images, "
                 f"N = {n} labels, labelled set 0")  # fmt: skip
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


def part4_generation(lesson: Lesson, kept, n, betas, test, x_test, styles):
    for beta_z in betas[:-1]:  # the other models: their numbers only
        model, scale = kept[(n, tag(beta_z))]
        _, _, _, corr, slope = sweep_styles(model, x_test[styles], scale)
        lesson.report(f"generation_{tag(beta_z)}_correlation", corr,
                      f"β_z = {beta_z:g}: correlation of measured with asked-for slant")
        lesson.report(f"generation_{tag(beta_z)}_slope", slope, "  ... slope")
    beta_z = betas[-1]  # the model shown
    model, (mean, std) = kept[(n, tag(beta_z))]
    path = save_checkpoint(lesson.path(os.path.join("models", f"ssvae_n{n}.npz")), model,
                           meta={"label_mean": mean, "label_std": std,
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
                     f"Part 4 - conditional generation (β_z = {beta_z:g}, N = {n} labels): each "
                     f"row keeps the style z of the test image on the left and asks for the "
                     f"slant on top", ncols=len(SWEEP) + 1,
                     col_labels=["input"] + [f"{a:+.0f}°" for a in asked],
                     row_labels=names)  # fmt: skip
    lesson.report("generation_beta_z", beta_z, "the model of the figures: β_z")
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
                    f"for, one curve per style z (β_z = {beta_z:g}; correlation {corr:.2f}, "
                    f"slope {slope:.2f})",
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
    # labelled set r: the first N images of the random order orders[r]
    orders = [np.random.default_rng([args.seed, r]).permutation(len(x_train))
              for r in range(pick(REPEATS, quick))]  # fmt: skip
    lesson.report("n_train", len(x_train), "training images (all of them unlabelled for U)")
    styles = first_of_each_class(test, N_STYLES, len(x_test))  # Parts 3 and 4

    print("Part 1: the slant of a digit, from its second moments")
    part1_property(lesson, train, test, slants_train, slants_test, orders[0], quick)

    print("Part 2: L(x, y), U(x) and J on one minibatch, by hand (seed 004)")
    hand = orders[0][:N_BY_HAND]
    y_hand = (slants_train[hand] - slants_train[hand].mean()) / slants_train[hand].std()
    rng = np.random.default_rng(args.seed)
    part2_by_hand(lesson, x_train[hand].astype(np.float64), y_hand[:, None], rng, quick)

    print("Part 3: few labels, semi-supervised against supervised only")
    kept = part3_few_labels(lesson, x_train, slants_train, orders, x_test, slants_test,
                            x_test[styles], quick)  # fmt: skip

    print("Part 4: conditional generation, the slant swept at a fixed style")
    main_n, betas = pick(N_LABELS, quick)[0], pick(BETAS_Z, quick)
    part4_generation(lesson, kept, main_n, betas, test, x_test, styles)

    n = lesson.numbers
    print("In short (test RMSE in degrees, mean over labelled sets):")
    for k in pick(N_LABELS, quick):
        models = ", ".join(f"{n[f'n{k}_{tag(b)}_rmse']:.2f} semi-supervised with β_z = {b:g}"
                           for b in betas)  # fmt: skip
        print(f"  N = {k}: {n[f'n{k}_baseline_rmse']:.2f} supervised only, {models}")
    print(f"  conditional generation (β_z = {betas[-1]:g}): measured slant follows the asked "
          f"one with correlation {n['generation_correlation']:.2f}, slope "
          f"{n['generation_slope']:.2f}")  # fmt: skip
    return lesson.finish()


if __name__ == "__main__":
    main()
