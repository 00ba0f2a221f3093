"""Lesson 01: the deterministic autoencoder, its 2-D code space, and why decoding z ~ N(0, I) fails.

An autoencoder compresses x to a code z = f(x) and decodes it back, y = g(z),
trained so that ‖g(f(x)) − x‖² is small (seed 000, "Autoencoders"). It learns a
good code, but not a generative model: nothing says which codes are likely, so
"choose a random z (e.g. z ~ N(0, I)), decode it" does not give data (seed 000,
"Generating Data Using Autoencoders"). This lesson trains one with a 2-D code and
then measures that failure with numbers:

  1. train the autoencoder on MNIST, min Σ_i ‖g(f(x_i)) − x_i‖²   (seed 000, "Autoencoders"),
     against the best linear 2-D code (PCA) and the mean image
  2. test images beside their reconstructions g(f(x))
  3. the code space: test codes coloured by digit                (seed 001, Problem 2, Fig. 1a)
  4. the codes against the prior N(0, I): their mean and covariance, the Gaussian KL,
     how often a prior sample lands where codes are, and why no code scale is
     special (rescaling the code leaves the loss unchanged)       (seed 000, "Generating ...")
  5. decode z ~ N(0, I) and z from a Gaussian fitted to the codes; count the pixels the
     decoder puts outside [0, 1], and let a digit classifier (an MLP trained here) say
     which digits come out and how sure it is

Seeds are the lecture notes in the shared seeds folder (see DESIGN.md); "seed 001,
Problem 2" means Problem 2 of file 001_*.txt.

Run (about 1 minute on 2 cores, 2 when they are busy; --quick takes under 10 s):

    python lessons/01_autoencoder.py [--quick]

Figures and summary.json go to runs/lessons/01_autoencoder/ (change the root with
--out); the trained autoencoder's checkpoint and metrics go to its ae_training/
subfolder. Without the MNIST files (and without network) the lesson says so in one
line and uses the built-in Fashion-MNIST subset instead: the argument is the same,
with clothes for digits.
"""

# %% [markdown]
# # Setup
# Imports, the hyperparameters as named constants (pairs are (full run, --quick)),
# and small helpers that push host arrays through the model in batches.

# %%

from __future__ import annotations

import math
import os
import sys

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout

import minivae as mv
from lessons.common import Lesson, parse_args
from minivae import backend as B
from minivae import data as D
from minivae import ops, plots
from minivae.checkpoint import load_model
from minivae.models import build_model
from minivae.nn import MLP
from minivae.optim import Adam
from minivae.train import TrainConfig, train

NAME = "01_autoencoder"

# Part 1: the autoencoder (seed 000, "Autoencoders")
HIDDEN = (512, 256)  # encoder 784-512-256-2, decoder 2-256-512-784
LATENT = 2  # a 2-D code, so that the code space can be drawn (seed 001, Fig. 1a)
ACTIVATION = "relu"
LIKELIHOOD = "mse"  # the lecture's squared error; "bernoulli" is the alternative (see Part 1)
EPOCHS = (6, 3)
BATCH_SIZE = 128
LEARNING_RATE = 1e-3  # Adam
LIMIT_TRAIN = (None, 2000)  # training images used (None: all; train() holds out 1/6 or 10,000)

# Parts 2-4: what is encoded and sampled
N_TEST = (10000, 1000)  # test images encoded (the whole test split in the full run)
N_REFERENCE = (10000, 1000)  # training codes: "where the decoder has seen codes"
N_SAMPLES = (10000, 1000)  # codes drawn from N(0, I), and from the Gaussian fitted to the codes
N_SHOWN = 100  # images per figure grid
NEAR_QUANTILE = 0.99  # "near the codes": as near to a training code as 99 % of test codes are
CHI2_2D_2SIGMA = 1.0 - math.exp(-2.0)  # Pr(‖z‖ < 2) for z ~ N(0, I) in 2-D: 0.8647
RESCALE = (0.1, 10.0)  # Part 4: the same autoencoder with its code multiplied by these
OUT_OF_RANGE_TOL = 0.05  # a decoded pixel below -0.05 or above 1.05 is "outside [0, 1]"

# Part 5: the classifier that scores decoded images (an MLP 784-256-10)
CLF_HIDDEN = 256
CLF_EPOCHS = (3, 3)
CLF_BATCH_SIZE = 128
CLF_LEARNING_RATE = 1e-3  # Adam
CLF_LIMIT_TRAIN = (None, 2000)  # training images for the classifier (None: all 60,000)

EVAL_BATCH = 2000  # rows per forward pass when encoding, decoding and classifying


def pick(pair, quick: bool):
    """The --quick value of a (full, quick) pair when quick, else the full one."""
    return pair[1] if quick else pair[0]


@mv.no_grad()
def encode(model, x):
    """z = f(x) for host images (N, 784), in batches: host (N, latent), float64."""
    parts = [B.to_numpy(model.code(D.to_device(x[s : s + EVAL_BATCH])).data)
             for s in range(0, len(x), EVAL_BATCH)]  # fmt: skip
    return np.concatenate(parts).astype(np.float64)


@mv.no_grad()
def decode(model, z):
    """x̂ = g(z) for host codes (N, latent), in batches: host (N, 784), float64, unclipped.

    An MSE decoder's output is unbounded: nothing stops it from leaving [0, 1]."""
    parts = [B.to_numpy(model.decode(D.to_device(z[s : s + EVAL_BATCH])).data)
             for s in range(0, len(z), EVAL_BATCH)]  # fmt: skip
    return np.concatenate(parts).astype(np.float64)


def as_image(x_hat):
    """Decoder output clipped to the pixel range [0, 1]: what is drawn and what is classified."""
    return np.clip(x_hat, 0.0, 1.0)


def outside_fraction(x_hat, tolerance: float = OUT_OF_RANGE_TOL):
    """The fraction of pixels a decoder put outside [0, 1] (by more than the tolerance)."""
    return float(np.mean((x_hat < -tolerance) | (x_hat > 1.0 + tolerance)))


def squared_error(x, x_hat):
    """Per-image ‖x̂ − x‖², summed over the 784 pixels: (N,)  (seed 000, "Autoencoders")."""
    return ((x_hat - x) ** 2).sum(axis=1)


def save_figure(fig: Figure, path: str) -> None:
    """A multi-panel figure that minivae.plots has no function for: Agg canvas, no pyplot."""
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100, bbox_inches="tight", pad_inches=0.1)


# %% [markdown]
# # Part 1: train the autoencoder (seed 000, "Autoencoders")
# Encoder z = f_φ(x) (784 → 512 → 256 → 2, relu) and decoder y = g_θ(z)
# (2 → 256 → 512 → 784), trained with Adam on
#     min_{θ,φ} Σ_i ‖g_θ(f_φ(x_i)) − x_i‖²
# over grey-level images (no binarization). minivae's Autoencoder with
# likelihood="mse" is exactly this loss (summed over pixels, averaged over a batch).
# The alternative, likelihood="bernoulli", treats each pixel as a coin: the
# decoder outputs logits l and the loss is the binary cross-entropy
# −Σ_pixels [x log σ(l) + (1 − x) log(1 − σ(l))], usually on binarized images;
# the code space would look much the same.
#
# Two yardsticks for the error: the mean training image for every x (no code at
# all), and PCA with 2 components, which is the best any *linear* 2-D
# autoencoder can do (its optimum spans the top-2 principal subspace). The relu
# network should beat both: its decoder bends a 2-D sheet through image space.

# %%


def pca_baseline(x_train, x_test, k: int = LATENT):
    """Squared error per test image of the mean image and of the best rank-k linear code."""
    mean = x_train.mean(axis=0)  # (784,)
    centred = x_train - mean
    cov = centred.T @ centred / len(x_train)  # (784, 784) pixel covariance
    _, vecs = np.linalg.eigh(cov)  # eigenvalues ascending
    top = vecs[:, -k:]  # (784, k): the top-k principal directions
    # the linear autoencoder at its optimum: z = Vᵀ(x − x̄), x̂ = x̄ + V z
    x_hat = mean + (x_test - mean) @ top @ top.T
    return squared_error(x_test, mean[None, :]), squared_error(x_test, x_hat)


def part1_train(lesson: Lesson, train_ds, test_x, quick):
    config = TrainConfig(
        model={"kind": "ae", "hidden": list(HIDDEN), "latent": LATENT,
               "activation": ACTIVATION, "likelihood": LIKELIHOOD},
        dataset=train_ds.name, epochs=pick(EPOCHS, quick), batch_size=BATCH_SIZE,
        lr=LEARNING_RATE, binarize="none", limit_train=pick(LIMIT_TRAIN, quick),
        seed=lesson.args.seed, progress=not lesson.args.no_progress, fallback_dataset=True,
    )  # fmt: skip
    folder = lesson.path("ae_training")
    stale = os.path.join(folder, "metrics.jsonl")
    if os.path.exists(stale):  # train() appends to it; a re-run starts a fresh log
        os.remove(stale)
    history = train(config, folder, log=lambda line: print("  " + line))
    model, _ = load_model(os.path.join(folder, "checkpoint.npz"), expect_kind="ae")
    model.eval()

    # the AE's loss is -recon = ‖g(f(x)) − x‖² per image (Autoencoder.elbo with "mse")
    train_se = [-row["train_recon"] for row in history]
    val_se = [-row["val_recon"] for row in history]
    lesson.report("train_se_per_epoch", [round(v, 3) for v in train_se],
                  "training ‖g(f(x)) − x‖² per image, mean over each epoch")  # fmt: skip
    lesson.report("val_se_per_epoch", [round(v, 3) for v in val_se],
                  "validation ‖g(f(x)) − x‖² per image, after each epoch")  # fmt: skip

    limit = pick(LIMIT_TRAIN, quick)
    mean_se, pca_se = pca_baseline(train_ds.images[:limit].astype(np.float64), test_x)
    test_se = squared_error(test_x, decode(model, encode(model, test_x)))  # unclipped
    lesson.report("test_se", float(test_se.mean()), "test ‖g(f(x)) − x‖² of the autoencoder")
    lesson.report("test_se_pca2", float(pca_se.mean()),
                  "  ... of PCA with 2 components (the best linear 2-D autoencoder)")  # fmt: skip
    lesson.report("test_se_mean_image", float(mean_se.mean()),
                  "  ... of the mean training image (no code at all)")  # fmt: skip

    epochs = np.arange(1, len(history) + 1)
    plots.line_plot(
        {"training (mean over the epoch)": (epochs, np.array(train_se)),
         "validation (after the epoch)": (epochs, np.array(val_se)),
         f"PCA, 2 components (best linear 2-D code), test: {pca_se.mean():.1f}":
             (epochs, np.full(len(epochs), pca_se.mean()))},
        lesson.path("1_training_curve.png"),
        f"Part 1 - autoencoder {D.dataset_info(train_ds.name)['x_dim']}-"
        f"{'-'.join(map(str, HIDDEN))}-{LATENT}: squared reconstruction error "
        f"(seed 000, Autoencoders); the mean image alone: {mean_se.mean():.1f}",
        "epoch", "‖g(f(x)) − x‖² per image (sum over 784 pixels)",
    )  # fmt: skip
    return model, test_se


# %% [markdown]
# # Part 2: reconstructions
# Test images (never trained on) above their reconstructions g(f(x)). Two
# numbers per image is very little: the decoder keeps the class and the rough
# shape (slant, width) and loses the details, so reconstructions are blurry
# "typical" versions of the input. Some classes merge: in the full MNIST run a
# classifier reads almost no reconstruction as a 4 or a 5 (Part 5): they come
# back as 9s, and as 3s or 8s.

# %%


def part2_reconstructions(lesson: Lesson, model, test_x, test_se):
    shown = test_x[:30]
    plots.reconstructions(
        shown, as_image(decode(model, encode(model, shown))), lesson.path("2_reconstructions.png"),
        f"Part 2 - test images and their reconstructions g(f(x)) through a {LATENT}-D code "
        f"(test ‖g(f(x)) − x‖² = {test_se.mean():.1f} per image)",
    )  # fmt: skip


# %% [markdown]
# # Part 3: the code space (seed 001, Problem 2, Fig. 1a)
# Every test image's code z = f(x), coloured by its class. Like Fig. 1a of the
# exercise: similar digits lie close together, but the clusters are stretched
# and scattered, the space has empty regions between them, and nothing ties the
# codes to any particular distribution. The dashed circles are where N(0, I)
# puts 39 % (1σ) and 86 % (2σ) of its mass. In the full MNIST run the codes
# fill only a small, lopsided part of that disc and leave the rest empty; with
# another initialization they could as well spread ten times wider (Part 4
# shows why nothing in the loss decides).

# %%


def part3_code_space(lesson: Lesson, test_z, test_y, class_names):
    plots.latent_scatter(
        test_z, test_y, lesson.path("3_code_space.png"),
        f"Part 3 - codes z = f(x) of {len(test_z):,} test images (seed 001, Fig. 1a); "
        "dashed: the 1σ and 2σ circles of N(0, I)",
        class_names=class_names, show_prior=True,
    )  # fmt: skip


# %% [markdown]
# # Part 4: the codes are not N(0, I) (seed 000, "Generating Data Using Autoencoders")
# The lecture's recipe for generating with an autoencoder is: choose z ~ N(0, I),
# decode x̂ = g(z). It "doesn't work because the distribution of z is unknown
# ≠ N(0, I)". We measure how far from N(0, I) the codes are, two ways, and show
# why nothing could have made them N(0, I).
#
# (a) Moments. Fit N(m, S) to the training codes. If the codes were N(0, I):
# m = 0 and both eigenvalues of S would be 1. The closed-form Gaussian KL
# (seed 001, Problem 1.7; there for a diagonal S, here with a full S)
#     KL(N(m, S) ‖ N(0, I)) = ½ (tr S + mᵀm − d − log det S)
# is 0 only for N(0, I). It is also a *lower bound* on KL(codes ‖ N(0, I)): of all
# distributions with this mean and covariance the Gaussian has the most entropy,
# and the cross-entropy to N(0, I) depends only on the first two moments.
#
# Why the codes land wherever they land: multiply the encoder's last layer by c
# and divide the decoder's first layer by c. The new network computes
# g(z / c) on z = c f(x): the same reconstructions, the same loss, for every
# c ≠ 0, while the codes shrink or grow at will. The loss Σ‖g(f(x)) − x‖² has no
# opinion about the scale (or position, or shape) of the code distribution; the
# one we got is an accident of initialization and training.
#
# (b) Where do prior samples land? For each point, the distance to the nearest
# training code. A test code's nearest training code tells how densely the codes
# fill their region; a point counts as "near the codes" when it is as near as
# 99 % of test codes are. A sample that is not near any code asks the decoder
# about a place it never saw during training.

# %%


def gaussian_kl_to_standard(mean, cov):
    """KL(N(m, S) ‖ N(0, I)) = ½ (tr S + mᵀm − d − log det S), in nats."""
    _, logdet = np.linalg.slogdet(cov)
    return 0.5 * (np.trace(cov) + mean @ mean - len(mean) - logdet)


def nearest_distance(points, reference, chunk: int = 1000):
    """For each point (N, d), the Euclidean distance to its nearest reference point (M, d): (N,)."""
    ref_sq = (reference**2).sum(axis=1)  # (M,)
    out = np.empty(len(points))
    for s in range(0, len(points), chunk):
        p = points[s : s + chunk]  # (n, d)
        d2 = (p**2).sum(axis=1)[:, None] + ref_sq[None, :] - 2.0 * p @ reference.T  # (n, M)
        out[s : s + chunk] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    return out


def near_the_codes(points, ref_z, test_z):
    """(distances of points to the nearest training code, the 'near' threshold): a point is
    near the codes when it is as near to a training code as NEAR_QUANTILE of test codes are."""
    threshold = float(np.quantile(nearest_distance(test_z, ref_z), NEAR_QUANTILE))
    return nearest_distance(points, ref_z), threshold


def rescaled(model, c: float):
    """The same autoencoder with its code multiplied by c: f'(x) = c f(x), g'(z) = g(z / c)."""
    twin = build_model(model.config)
    twin.load_state_dict(model.state_dict())
    last, first = twin.encoder[-1], twin.decoder[0]  # the Linear layers on either side of z
    last.weight.data *= c  # f'(x) = W_L h + b_L, times c
    last.bias.data *= c
    first.weight.data /= c  # g'(z) starts with W_1 (z / c) + b_1: the same first layer on z / c
    return twin


def part4_codes_vs_prior(lesson: Lesson, model, ref_x, test_x, test_z, test_y, rng, quick):
    ref_z = encode(model, ref_x)  # (M, d) codes of training images
    d = ref_z.shape[1]
    mean = ref_z.mean(axis=0)  # (d,) empirical mean of the codes
    cov = np.cov(ref_z, rowvar=False)  # (d, d) empirical covariance
    eig = np.linalg.eigvalsh(cov)[::-1]  # descending
    kl = gaussian_kl_to_standard(mean, cov)
    lesson.report("code_mean", [round(float(v), 4) for v in mean],
                  f"(a) mean m of {len(ref_z):,} training codes (N(0, I): 0)")  # fmt: skip
    lesson.report("code_mean_norm", float(np.linalg.norm(mean)), "  ... its norm ‖m‖")
    lesson.report("code_cov", [[round(float(v), 4) for v in row] for row in cov],
                  "  ... covariance S (N(0, I): the identity)")  # fmt: skip
    lesson.report("code_cov_eigenvalues", [round(float(v), 4) for v in eig],
                  "  ... eigenvalues of S (N(0, I): all 1)")  # fmt: skip
    lesson.report("code_gaussian_kl", float(kl),
                  "  ... KL(N(m, S) ‖ N(0, I)) in nats (0 for N(0, I))")  # fmt: skip
    inside = float(np.mean(np.linalg.norm(test_z, axis=1) < 2.0))
    lesson.report(
        "test_codes_inside_2sigma",
        inside,
        f"  ... test codes inside the prior's 2σ circle (N(0, I): {CHI2_2D_2SIGMA:.4f})",
    )

    n = pick(N_SAMPLES, quick)
    z_prior = rng.standard_normal((n, d))  # z ~ N(0, I), the lecture's recipe
    z_fitted = mean + rng.standard_normal((n, d)) @ np.linalg.cholesky(cov).T  # z ~ N(m, S)

    # the same network with rescaled codes: same loss, any code distribution we like
    scales, ses, kls, nears, twins = [], [], [], [], {}
    for c in sorted((1.0, *RESCALE)):
        twin = twins[c] = model if c == 1.0 else rescaled(model, c)
        z_c, ref_c = encode(twin, test_x), encode(twin, ref_x)
        dist_c, near_c = near_the_codes(z_prior, ref_c, z_c)
        scales.append(c)
        ses.append(float(squared_error(test_x, decode(twin, z_c)).mean()))
        kls.append(float(gaussian_kl_to_standard(ref_c.mean(axis=0), np.cov(ref_c, rowvar=False))))
        nears.append(float(np.mean(dist_c <= near_c)))
        print(f"  code times {c:g}: test ‖g(f(x)) − x‖² {ses[-1]:.4f}, KL(N(m, S) ‖ N(0, I)) "
              f"{kls[-1]:.2f} nats, z ~ N(0, I) near the codes {nears[-1]:.1%}")  # fmt: skip
    lesson.numbers["rescale_factors"] = scales
    lesson.numbers["rescale_test_se"] = [round(v, 4) for v in ses]
    lesson.numbers["rescale_code_kl"] = [round(v, 4) for v in kls]
    lesson.numbers["rescale_near_fraction_prior"] = [round(v, 4) for v in nears]
    lesson.report(
        "rescale_max_se_change",
        float(max(ses) - min(ses)),
        "  ... largest change of the test error over these scales (rounding only)",
    )

    dist = {"test codes": nearest_distance(test_z, ref_z),
            "z ~ N(0, I)": nearest_distance(z_prior, ref_z),
            "z ~ N(m, S) fitted": nearest_distance(z_fitted, ref_z)}  # fmt: skip
    near = float(np.quantile(dist["test codes"], NEAR_QUANTILE))  # as in near_the_codes
    lesson.report("near_threshold", near,
                  f"(b) 'near the codes': within this distance of a training code "
                  f"({NEAR_QUANTILE:.0%} of test codes are)")  # fmt: skip
    for key, (label, values) in zip(("test", "prior", "fitted"), dist.items()):
        lesson.report(
            f"nearest_code_median_{key}",
            float(np.median(values)),
            f"  ... {label}: median distance to the nearest training code",
        )
        lesson.report(f"near_fraction_{key}", float(np.mean(values <= near)),
                      f"  ... {label}: fraction near the codes")  # fmt: skip

    draw_codes_vs_prior(lesson, test_z, test_y, z_prior, z_fitted, mean, cov, dist, near)
    return z_prior, z_fitted, dist["z ~ N(0, I)"] <= near, twins


def draw_codes_vs_prior(lesson, test_z, test_y, z_prior, z_fitted, mean, cov, dist, near):
    """Where the samples land among the codes, and their distances to the nearest code."""
    eig = np.linalg.eigvalsh(cov)[::-1]
    kl = gaussian_kl_to_standard(mean, cov)
    fig = Figure(figsize=(16.5, 5.4), layout="constrained")
    axes = fig.subplots(1, 3, width_ratios=(1.0, 1.0, 1.1))
    colours = [matplotlib.colormaps["tab10"](i) for i in range(10)]
    vals, vecs = np.linalg.eigh(cov)  # the fitted Gaussian's 2σ ellipse
    angle = math.degrees(math.atan2(vecs[1, 1], vecs[0, 1]))
    panels = (("z ~ N(0, I)", z_prior[:1000], "black", np.concatenate([test_z, z_prior[:1000]])),
              ("z ~ N(m, S), fitted", z_fitted[:500], "red", test_z))  # fmt: skip
    for ax, (label, z, colour, extent) in zip(axes[:2], panels):
        lo, hi = extent.min(axis=0), extent.max(axis=0)  # panel b: zoomed in on the codes
        centre, half = (lo + hi) / 2, 0.55 * float((hi - lo).max())
        for c in np.unique(test_y):
            mask = test_y == c
            ax.scatter(test_z[mask, 0], test_z[mask, 1], s=3, alpha=0.35, linewidths=0,
                       color=colours[int(c) % 10], rasterized=True)  # fmt: skip
        ax.scatter([], [], s=12, color="0.6", label="test codes (coloured by class, as in Part 3)")
        ax.scatter(z[:, 0], z[:, 1], s=5, color=colour, linewidths=0, rasterized=True,
                   label=f"{len(z):,} samples {label}")  # fmt: skip
        for r in (1.0, 2.0):  # the prior's 1σ and 2σ circles, as in Part 3
            ax.add_patch(Ellipse((0, 0), 2 * r, 2 * r, fill=False, linestyle="--", color="0.3"))
        ax.plot([], [], "--", color="0.3", label="1σ and 2σ circles of N(0, I)")
        ax.add_patch(Ellipse(mean, 4 * math.sqrt(vals[1]), 4 * math.sqrt(vals[0]), angle=angle,
                             fill=False, color="tab:red", linewidth=1.5,
                             label="2σ ellipse of N(m, S), fitted to the codes"))  # fmt: skip
        ax.set(xlim=(centre[0] - half, centre[0] + half), ylim=(centre[1] - half, centre[1] + half),
               xlabel="$z_0$", ylabel="$z_1$", aspect="equal")  # fmt: skip
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=2,
                  markerscale=2.5, frameon=False)  # fmt: skip
        ax.grid(alpha=0.25)
    share = {k: f"{np.mean(v <= near):.0%}" for k, v in dist.items()}
    axes[0].set_title(f"a) z ~ N(0, I): {share['z ~ N(0, I)']} of samples land near a code")
    axes[1].set_title(f"b) z ~ N(m, S) fitted to the codes: {share['z ~ N(m, S) fitted']} do")
    ax = axes[2]
    positive = np.concatenate([v[v > 0] for v in dist.values()])
    edges = np.geomspace(max(float(positive.min()), 1e-5), float(positive.max()), 50)
    for (label, values), colour in zip(dist.items(), ("tab:blue", "black", "tab:red")):
        ax.hist(values, bins=edges, histtype="step", linewidth=1.6, color=colour,
                label=f"{label}: median {np.median(values):.3g}")  # fmt: skip
    ax.axvline(near, color="0.4", linestyle=":",
               label=f"'near': ≤ {near:.3g} ({NEAR_QUANTILE:.0%} of test codes are)")  # fmt: skip
    ax.set(
        xscale="log",
        xlabel="distance to the nearest training code",
        ylabel="count",
        title="c) how far each point is from the training codes",
    )
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    fig.suptitle(
        f"Part 4 - the codes are not N(0, I) (seed 000, Generating Data Using "
        f"Autoencoders): ‖m‖ = {np.linalg.norm(mean):.2f}, eigenvalues of S = "
        f"{', '.join(f'{v:.3g}' for v in eig)}, KL(N(m, S) ‖ N(0, I)) = {kl:.2f} nats"
    )
    save_figure(fig, lesson.path("4_codes_vs_prior.png"))


# %% [markdown]
# # Part 5: are the decodes digits? Pixels and a classifier decide
# Pictures can be argued about; numbers less so. First a plain check: the MSE
# decoder's output is unbounded, and on the codes it was trained on it stays
# (almost) inside the pixel range [0, 1]. Where it never saw a code it
# extrapolates, and pixels leave [0, 1]: a sign of "off the data" that needs no
# model at all. (For drawing and classifying, decodes are clipped to [0, 1].)
#
# Then a classifier: a small MLP 784 → 256 → 10 (relu) trained here on the
# training images with the engine (cross-entropy, Adam). We feed it
#   (i) real test images, (i′) their reconstructions g(f(x)),
#   (ii) decodes g(z) of z ~ N(0, I) (the lecture's recipe), split into the
#        samples that landed near the codes and those that did not (Part 4),
#   (iii) decodes of z ~ N(m, S), the Gaussian fitted to the codes.
# Two scores per kind: the mean confidence max_c p(c | x̂), and the entropy of
# the histogram of predicted classes (ln 10 = 2.303 nats when all ten classes
# come out equally often, as in the test set; 0 when all get the same class).
# Confidence alone is a weak test of realism: a classifier trained only on real
# digits has never been asked about non-digits, and can be sure about a smudge.
# The class histogram shows what a generator must get right: all digits, each
# as often as in the data.
#
# Last, Part 4's rescaled twins (code × 0.1, × 1, × 10; the same loss) decode
# the same z ~ N(0, I). No scale is right: where the codes are small, the prior
# reaches far outside them and the decoder extrapolates (pixels leave [0, 1]);
# where they are large, the prior covers only the few classes near the origin.

# %%


def train_classifier(lesson: Lesson, x, y, n_classes: int, quick):
    """An MLP x_dim-256-n_classes trained with the mean cross-entropy −log softmax(logits)_y."""
    clf = MLP([x.shape[1], CLF_HIDDEN, n_classes], "relu")  # logits (B, n_classes)
    optimizer = Adam(clf.parameters(), lr=CLF_LEARNING_RATE)
    rng = np.random.default_rng([lesson.args.seed, 5])  # the minibatch order
    epochs = pick(CLF_EPOCHS, quick)
    for epoch in range(epochs):
        total, count = 0.0, 0
        for xb, yb in D.batches(x, CLF_BATCH_SIZE, y, rng=rng):
            loss = ops.cross_entropy(clf(mv.Tensor(xb)), yb).mean()  # (B,) -> scalar
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, count = total + float(loss.data) * len(yb), count + len(yb)
        print(f"  classifier epoch {epoch + 1}/{epochs}: cross-entropy {total / count:.4f}")
    return clf


@mv.no_grad()
def class_probabilities(clf, x):
    """p(c | x) = softmax(logits) for host images (N, 784): host (N, C)."""
    parts = [B.to_numpy(ops.softmax(clf(mv.Tensor(D.to_device(x[s : s + EVAL_BATCH])))).data)
             for s in range(0, len(x), EVAL_BATCH)]  # fmt: skip
    return np.concatenate(parts).astype(np.float64)


def class_histogram_entropy(predicted, n_classes: int):
    """(histogram of predicted classes as fractions, its entropy −Σ h log h in nats)."""
    h = np.bincount(predicted, minlength=n_classes) / max(len(predicted), 1)
    nz = h[h > 0]
    return h, float(-(nz * np.log(nz)).sum())


def near_and_far_grid(decoded, near, per_group: int):
    """Up to per_group decodes near the codes, then up to per_group far from them, in whole
    rows of 10, with a label per row."""
    images, labels = [], []
    for mask, label in ((near, "near a code"), (~near, "far from codes")):
        k = min(per_group, int(mask.sum()) // 10 * 10)
        images.append(decoded[np.flatnonzero(mask)[:k]])
        labels += [label] * (k // 10)
    return np.concatenate(images), labels


def part5_decodes(lesson, model, train_ds, test_x, test_y, test_z, z_prior, z_fitted, prior_near,
                  twins, quick):  # fmt: skip
    n_classes = train_ds.n_classes
    n = min(len(test_x), len(z_prior))
    raw = {"real": test_x[:n], "recon": decode(model, test_z[:n]),
           "prior": decode(model, z_prior), "fitted": decode(model, z_fitted)}  # fmt: skip
    raw["prior_near"], raw["prior_far"] = raw["prior"][prior_near], raw["prior"][~prior_near]
    labels = {"real": "(i) real test images", "recon": "(i′) their reconstructions",
              "prior": "(ii) g(z), z ~ N(0, I)", "prior_near": "(ii) ... z near a code",
              "prior_far": "(ii) ... z far from codes",
              "fitted": "(iii) g(z), z ~ N(m, S) fitted"}  # fmt: skip

    limit = pick(CLF_LIMIT_TRAIN, quick)
    clf = train_classifier(lesson, train_ds.images[:limit], train_ds.labels[:limit], n_classes,
                           quick)  # fmt: skip
    probs = {key: class_probabilities(clf, as_image(x)) for key, x in raw.items() if len(x)}
    accuracy = float(np.mean(probs["real"].argmax(axis=1) == test_y[:n]))
    lesson.report("classifier_test_accuracy", accuracy,
                  f"classifier test accuracy on {n:,} test images")  # fmt: skip

    confidence, entropy, outside, hists = {}, {}, {}, {}
    for key, label in labels.items():
        if key not in probs:  # no prior sample landed near (or far from) the codes
            continue
        outside[key] = outside_fraction(raw[key])
        confidence[key] = float(probs[key].max(axis=1).mean())
        hists[key], entropy[key] = class_histogram_entropy(probs[key].argmax(axis=1), n_classes)
        print(f"  {label} ({len(raw[key]):,} images):")
        lesson.report(f"outside_fraction_{key}", outside[key],
                      f"    pixels outside [0, 1] (by > {OUT_OF_RANGE_TOL})")  # fmt: skip
        lesson.report(f"confidence_{key}", confidence[key], "    mean confidence max_c p(c | x)")
        lesson.report(f"class_entropy_{key}", entropy[key],
                      f"    entropy of the predicted-class histogram, nats "
                      f"(max ln {n_classes} = {math.log(n_classes):.3f})")  # fmt: skip
        lesson.report(f"class_histogram_{key}", [round(float(h), 4) for h in hists[key]],
                      "    fraction predicted as each class")  # fmt: skip
        lesson.report(f"top_class_share_{key}", float(hists[key].max()),
                      f"    share of the most frequent class "
                      f"({train_ds.class_names[int(hists[key].argmax())]})")  # fmt: skip

    grid, rows = near_and_far_grid(as_image(raw["prior"]), prior_near, N_SHOWN // 2)
    plots.image_grid(
        grid, lesson.path("5_decoded_prior_samples.png"),
        f"Part 5 - g(z) for codes z ~ N(0, I) (seed 000, Generating Data Using Autoencoders), "
        f"clipped to [0, 1]: {outside['prior']:.1%} of their pixels were outside [0, 1] "
        f"(reconstructions: {outside['recon']:.1%})",
        ncols=10, row_labels=rows,
    )  # fmt: skip
    plots.image_grid(
        as_image(raw["fitted"][:N_SHOWN]), lesson.path("5_decoded_fitted_gaussian_samples.png"),
        f"Part 5 - g(z) for {N_SHOWN} codes z ~ N(m, S), the Gaussian fitted to the codes, "
        f"clipped to [0, 1] ({outside['fitted']:.1%} of pixels were outside)",
        ncols=10,
    )  # fmt: skip
    keys = list(confidence)
    plots.bar_plot(
        [confidence[k] for k in keys], [labels[k] for k in keys],
        lesson.path("5_classifier_confidence.png"),
        f"Part 5 - mean classifier confidence max_c p(c | x) (classifier test accuracy "
        f"{accuracy:.1%}): high on real images, and not much lower on decodes",
        "mean max_c p(c | x)",
    )  # fmt: skip
    draw_predicted_classes(lesson, keys, labels, hists, entropy, confidence, outside,
                           train_ds.class_names)  # fmt: skip

    # Part 4's rescaled twins: the same loss, but N(0, I) now meets other codes
    scaled, rows, per_scale = {}, [], {"outside": [], "confidence": [], "entropy": []}
    for c, twin in twins.items():
        scaled[c] = decode(twin, z_prior)  # g(z / c) of the trained decoder
        p = class_probabilities(clf, as_image(scaled[c]))
        per_scale["outside"].append(round(outside_fraction(scaled[c]), 4))
        per_scale["confidence"].append(round(float(p.max(axis=1).mean()), 4))
        per_scale["entropy"].append(
            round(class_histogram_entropy(p.argmax(axis=1), n_classes)[1], 4)
        )
        print(f"  z ~ N(0, I) decoded by the autoencoder with its code times {c:g}: pixels "
              f"outside [0, 1] {per_scale['outside'][-1]:.1%}, confidence "
              f"{per_scale['confidence'][-1]:.3f}, class entropy {per_scale['entropy'][-1]:.2f} "
              "nats")  # fmt: skip
        rows += [f"code × {c:g}"] * 2
    for key, values in per_scale.items():
        lesson.numbers[f"rescale_{key}_prior"] = values
    plots.image_grid(
        np.concatenate([as_image(x[:20]) for x in scaled.values()]),
        lesson.path("5_prior_samples_by_code_scale.png"),
        "Part 5 - the same 20 codes z ~ N(0, I), decoded by the autoencoder with its code "
        f"multiplied by {', '.join(f'{c:g}' for c in twins)} (all three have the same loss); "
        f"class entropy {', '.join(f'{e:.2f}' for e in per_scale['entropy'])} nats",
        ncols=10, row_labels=rows,
    )  # fmt: skip


def draw_predicted_classes(lesson, keys, labels, hists, entropy, confidence, outside, names):
    """One panel per kind of image: the histogram of the classes the classifier predicts."""
    n_classes = len(names)
    short = [str(c) if len(str(c)) <= 2 else str(c)[:5] for c in names]
    fig = Figure(figsize=(15.0, 7.2), layout="constrained")
    axes = fig.subplots(2, 3, sharey=True).ravel()
    for ax, key in zip(axes, keys):
        ax.bar(range(n_classes), hists[key], color="tab:blue", alpha=0.85)
        ax.axhline(1.0 / n_classes, color="0.4", linestyle=":", linewidth=1)
        ax.set_xticks(range(n_classes), short, rotation=0 if max(map(len, short)) <= 2 else 60)
        ax.set_title(f"{labels[key]}\nentropy {entropy[key]:.2f} nats, confidence "
                     f"{confidence[key]:.2f}, pixels outside [0, 1] {outside[key]:.1%}",
                     fontsize=10)  # fmt: skip
        ax.grid(alpha=0.3, axis="y")
    for ax in axes[len(keys) :]:
        ax.set_visible(False)
    for ax in axes[::3]:
        ax.set_ylabel("fraction predicted as this class")
    fig.suptitle(f"Part 5 - the classes a classifier sees in each kind of image (dotted: "
                 f"uniform 1/{n_classes}; entropy at most ln {n_classes} = "
                 f"{math.log(n_classes):.2f} nats)")  # fmt: skip
    save_figure(fig, lesson.path("5_predicted_classes.png"))


# %% [markdown]
# # What this shows
# The autoencoder learned a good 2-D code (it beats the best linear code, PCA),
# but only *a* code: its mean and covariance are whatever initialization and
# training made them (rescaling the code leaves the loss unchanged), and the
# classes sit in stretched clusters with gaps between them. Sampling N(0, I)
# therefore asks the decoder about codes it never saw: in the full MNIST run
# about 60 % of prior samples land away from every code, the decoder
# extrapolates there (about a fifth of the pixels outside [0, 1], against 1 %
# for reconstructions: thick, saturated, noisy strokes), and the digits that
# come out are the wrong mix (0, 1 and 8, the classes on the edge of the code
# cloud, make up about 70 %). The classifier's confidence barely notices; the
# class mix and the pixels do. A Gaussian fitted to the codes does better but
# still lands in the gaps between clusters and blends classes, since the codes
# are not Gaussian either. And no rescaling of the code helps. The code
# distribution is unknown (seed 000), so there is nothing right to sample from.
# The VAE (lesson 02) fixes exactly this: its KL term pulls every q(z|x)
# towards N(0, I), so that the prior becomes the distribution to sample from.

# %%


def main(argv=None):
    args = parse_args(argv, __doc__)
    lesson = Lesson(NAME, args)  # the output folder, the clock, the numbers; seeds minivae
    quick = args.quick
    rng = np.random.default_rng([args.seed, 4])  # the codes sampled in Parts 4 and 5
    # one line, and only one, if the data set cannot be had and the built-in set is used
    train_ds = D.load_for_lesson(args.dataset, "train")
    test_ds = D.load_dataset(train_ds.name, "test")
    lesson.report("dataset", train_ds.name, "data set")
    n_test = pick(N_TEST, quick)
    test_x, test_y = test_ds.images[:n_test].astype(np.float64), test_ds.labels[:n_test]
    pool = min(len(train_ds.images), pick(LIMIT_TRAIN, quick) or len(train_ds.images))
    ref_rows = np.random.default_rng([args.seed, 3]).choice(  # rows of the training split
        pool, size=min(pick(N_REFERENCE, quick), pool), replace=False
    )
    ref_x = train_ds.images[np.sort(ref_rows)].astype(np.float64)

    print("Part 1: train the autoencoder, min Σ ‖g(f(x)) − x‖² (seed 000, Autoencoders)")
    model, test_se = part1_train(lesson, train_ds, test_x, quick)
    print("Part 2: reconstructions")
    part2_reconstructions(lesson, model, test_x, test_se)
    print("Part 3: the code space (seed 001, Fig. 1a)")
    test_z = encode(model, test_x)
    part3_code_space(lesson, test_z, test_y, train_ds.class_names)
    print("Part 4: the codes against N(0, I) (seed 000, Generating Data Using Autoencoders)")
    z_prior, z_fitted, prior_near, twins = part4_codes_vs_prior(
        lesson, model, ref_x, test_x, test_z, test_y, rng, quick
    )
    print("Part 5: are the decodes digits? pixels and a classifier decide")
    part5_decodes(lesson, model, train_ds, test_x, test_y, test_z, z_prior, z_fitted, prior_near,
                  twins, quick)  # fmt: skip

    n = lesson.numbers
    print("In short:")
    print(
        f"  the autoencoder reconstructs test images with ‖g(f(x)) − x‖² = {n['test_se']:.1f} "
        f"(PCA-2 {n['test_se_pca2']:.1f}, mean image {n['test_se_mean_image']:.1f})"
    )
    print(f"  its codes: ‖mean‖ = {n['code_mean_norm']:.2f}, covariance eigenvalues "
          f"{n['code_cov_eigenvalues']}, KL(N(m, S) ‖ N(0, I)) = {n['code_gaussian_kl']:.2f} "
          f"nats; codes times {RESCALE[0]:g} or {RESCALE[1]:g}: the same error, KL "
          f"{n['rescale_code_kl'][0]:.1f} and {n['rescale_code_kl'][-1]:.1f} nats")  # fmt: skip
    print(f"  near the codes: {n['near_fraction_prior']:.1%} of z ~ N(0, I), "
          f"{n['near_fraction_fitted']:.1%} of z ~ N(m, S), "
          f"{n['near_fraction_test']:.1%} of test codes")  # fmt: skip
    print(f"  pixels outside [0, 1]: reconstructions {n['outside_fraction_recon']:.1%}, "
          f"N(0, I) decodes {n['outside_fraction_prior']:.1%}, fitted-Gaussian decodes "
          f"{n['outside_fraction_fitted']:.1%}")  # fmt: skip
    print(f"  classifier ({n['classifier_test_accuracy']:.1%} test accuracy), confidence / "
          f"class entropy: real {n['confidence_real']:.3f} / {n['class_entropy_real']:.2f}, "
          f"reconstructions {n['confidence_recon']:.3f} / {n['class_entropy_recon']:.2f}, "
          f"N(0, I) decodes {n['confidence_prior']:.3f} / {n['class_entropy_prior']:.2f}, "
          f"fitted-Gaussian decodes {n['confidence_fitted']:.3f} / "
          f"{n['class_entropy_fitted']:.2f}")  # fmt: skip
    return lesson.finish()


if __name__ == "__main__":
    main()
