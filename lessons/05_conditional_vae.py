"""Lesson 05: the conditional VAE, q(z | x, y) and p(x | y, z), and what the label buys.

The conditional (supervised) VAE of Sohn et al. 2015 gives both networks the label y
as a second input (seed 004, "Conditional VAE (Supervised VAE)"):

    q(z | x, y) = N(μ(x, y), diag σ²(x, y))     encoder input [x, onehot(y)]
    p(x | y, z) = Bernoulli(sigmoid(g(z, y)))    decoder input [z, onehot(y)]
    log p(x, y) ≥ E_q[log p(x | y, z)] + log p(y) − KL(q(z | x, y) ‖ p(z))

Because the decoder is told the class, the code z no longer has to carry it: z is
free to hold what the label does not say, the "style" (slant, stroke width, size).
This lesson trains a CVAE and, with the same networks and budget, a plain VAE on
MNIST, and measures what the lecture claims:

  1. the conditional ELBO by hand on one minibatch, with shapes; equal to
     model.elbo(x, y) with the same ε          (seed 004, "What does the training objective
                                                look like?" under "Conditional VAE")
  2. training both models (784-400-2): the CVAE's ELBO bounds log p(x | y), the VAE's
     log p(x); why the code is 2-D (with 20 units the CVAE keeps the class in z)
  3. class-conditional generation, one row per class (seed 004, "What does generation
     look like?"), scored by a classifier trained here on real images: the bar is that
     at least 95 % of the samples of every class are read as that class
  4. style transfer: encode x with its own label, decode the same z with every label
  5. resynthesis (seed 003, "VAE applications [3]"): interpolation between the codes of
     two examples, and latent arithmetic with a "thick minus thin stroke" vector
  6. what z holds: a linear probe asks how much of the class is left in each model's z
  7. the quality bar: the importance-sampled log p(x | y) of the CVAE against log p(x)
     of the VAE on the same binarized test images with the same K, and what the
     difference means (log p(x | y) − log p(x) = log p(y | x) − log p(y) ≤ log 10
     for the true distribution)

Seeds are the lecture notes in the shared seeds folder (see DESIGN.md); "seed 004,
Conditional VAE" means that section of file 004_*.txt.

Run (206 s measured on 2 cores; --quick takes about 15 s):

    python lessons/05_conditional_vae.py [--quick]

Figures and summary.json go to runs/lessons/05_conditional_vae/ (change the root with
--out); the checkpoints of the two models go to its cvae_training/ and vae_training/
subfolders. Without the MNIST files (and without network) the lesson says so in one
line and uses the built-in Fashion-MNIST subset instead.
"""

# %% [markdown]
# # Setup
# Imports, the sizes of every part as named constants (pairs are (full run, --quick)),
# and helpers that push host arrays through a model in batches.

# %%

from __future__ import annotations

import math
import os
import sys
import time

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout

import minivae as mv
from lessons.common import Lesson, parse_args
from minivae import backend as B
from minivae import data as D
from minivae import ops, plots
from minivae.checkpoint import load_model
from minivae.metrics import importance_sampled_log_likelihood
from minivae.models import ConditionalVAE
from minivae.nn import MLP
from minivae.optim import Adam
from minivae.train import TrainConfig, train

NAME = "05_conditional_vae"

# The two models: 784-400-2 networks (Part 2 says why the code is 2-D). The CVAE's
# encoder reads 784 + 10 inputs and its decoder 2 + 10; everything else is the same.
HIDDEN = ((400,), (64,))
LATENT = 2  # L in the shape comments
ACTIVATION = "relu"
BATCH_SIZE = 64  # twice the updates per epoch of batch 128: the label's weights need them
LEARNING_RATE = 1e-3  # Adam
EPOCHS = (10, 1)  # the same for both models (with 5 the worst class's samples read 94.9 %)
LIMIT_TRAIN = (None, 1500)  # None: all 60,000 training images (dynamically binarized)
TEST_BINARIZATION_SEED = 12345  # the test set is binarized once, as in lesson 02

# Part 1: one minibatch by hand
BY_HAND_BATCH = 64

# Part 3: the classifier that judges the samples (an MLP 784-256-10 on real grey images)
CLF_HIDDEN = 256
CLF_EPOCHS = (3, 1)
CLF_LIMIT_TRAIN = (None, 2000)
CLF_BATCH = 128
CLF_LEARNING_RATE = 1e-3
N_SAMPLES_PER_CLASS = (1000, 50)  # samples per class that the classifier labels
N_SHOWN_PER_CLASS = 12  # columns of the sample grid
AGREEMENT_BAR = 0.95  # the quality bar: share of a class's samples read as that class

# Part 4: style transfer
N_TRANSFER = (1000, 100)  # test images decoded with every label for the measurement

# Part 5: interpolation and latent arithmetic (seed 003, VAE applications [3])
PAIRS_SHOWN = ((3, 8), (4, 9), (1, 7))  # classes of the pairs in the figure
INTERP_STEPS = 9
N_INTERP_PAIRS = (300, 30)  # random pairs of different classes for the measurement
N_CONCEPT = (20000, 1000)  # training images whose codes define the stroke vector
INK_QUANTILE = 0.25  # "thin": the lightest quarter of a class, "thick": the heaviest quarter
ALPHAS = (-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5)  # z + α d, d the thick-minus-thin vector
N_ARITHMETIC = (1000, 100)  # test images moved along d for the measurement

# Part 6: the linear probe on the codes
PROBE_TRAIN = (10000, 1000)  # training images whose codes train the probe
PROBE_TEST = (10000, 500)  # test images it is scored on
PROBE_EPOCHS = (10, 3)
PROBE_LEARNING_RATE = 1e-2
N_SCATTER = (3000, 300)

# Part 7: the quality bar, importance-sampled log-likelihoods
N_TEST = (2000, 100)  # the first test images of the binarized test split
NLL_K = (500, 20)  # importance samples per image, the same K for both models
IS_BATCH = 100  # test images per call of importance_sampled_log_likelihood
N_MARGINAL = (300, 40)  # test images for the decomposition (10 labels each)
MARGINAL_K = (100, 10)

EVAL_BATCH = 1000  # rows per forward pass when encoding, decoding and classifying


def pick(pair, quick: bool):
    """The --quick value of a (full, quick) pair when quick, else the full one."""
    return pair[1] if quick else pair[0]


@mv.no_grad()
def encode_mean(model, x, y=None):
    """μ(x) of the VAE, or μ(x, y) of the CVAE, for host images (N, 784): host (N, latent)."""
    parts = []
    for s in range(0, len(x), EVAL_BATCH):
        yb = None if y is None else D.to_device(y[s : s + EVAL_BATCH])
        parts.append(B.to_numpy(model.encode(D.to_device(x[s : s + EVAL_BATCH]), yb)[0].data))
    return np.concatenate(parts).astype(np.float64)


@mv.no_grad()
def decode(model, z, y=None):
    """Bernoulli means sigmoid(g(z)) or sigmoid(g(z, y)) for host codes (N, latent): (N, 784)."""
    parts = []
    for s in range(0, len(z), EVAL_BATCH):
        yb = None if y is None else D.to_device(y[s : s + EVAL_BATCH])
        parts.append(B.to_numpy(model.decode(D.to_device(z[s : s + EVAL_BATCH]), yb).data))
    return np.concatenate(parts).astype(np.float64)


def save_figure(fig: Figure, path: str) -> None:
    """A multi-panel figure that minivae.plots has no function for: Agg canvas, no pyplot."""
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100, bbox_inches="tight", pad_inches=0.1)


def first_of_each_class(y, n_classes: int):
    """Index of the first example of every class, in class order: (C,)."""
    return np.array([int(np.flatnonzero(y == c)[0]) for c in range(n_classes)])


def train_classifier(lesson: Lesson, x, y, n_classes: int, sizes, epochs: int, lr: float,
                     rng_part: int):  # fmt: skip
    """An MLP trained with the mean cross-entropy −log softmax(logits)_y (minivae's own ops)."""
    clf = MLP(sizes, "relu")  # logits (B, n_classes)
    optimizer = Adam(clf.parameters(), lr=lr)
    rng = np.random.default_rng([lesson.args.seed, rng_part])  # the minibatch order
    for epoch in range(epochs):
        total, count = 0.0, 0
        for xb, yb in D.batches(x, CLF_BATCH, y, rng=rng):
            loss = ops.cross_entropy(clf(mv.Tensor(xb)), yb).mean()  # (B,) -> scalar
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, count = total + float(loss.data) * len(yb), count + len(yb)
        if epoch == epochs - 1 or epochs <= 5:
            print(f"    epoch {epoch + 1}/{epochs}: cross-entropy {total / count:.4f}")
    return clf


@mv.no_grad()
def predict(clf, x):
    """The classifier's class argmax_c logits_c for host rows (N, D): host (N,) int."""
    parts = [B.to_numpy(clf(mv.Tensor(D.to_device(x[s : s + EVAL_BATCH]))).data).argmax(axis=1)
             for s in range(0, len(x), EVAL_BATCH)]  # fmt: skip
    return np.concatenate(parts)


def per_class_rate(hit, y, n_classes: int):
    """Mean of the booleans ``hit`` within each class of y: (C,) floats."""
    return np.array([float(hit[y == c].mean()) for c in range(n_classes)])


# %% [markdown]
# # Part 1: the conditional ELBO by hand (seed 004, "Conditional VAE")
# Seed 004 conditions the VAE's bound on y:
#   log p(x, y) ≥ E_q(z|x,y)[log p(x|y,z) + log p(y) + log p(z) − log q(z|x,y)]
#               = E_q(z|x,y)[log p(x|y,z)] + log p(y) − KL(q(z|x,y) ‖ p(z))  = ELBO(x, y)
# (the slide prints "+ D_KL" in the last line; the KL enters with a minus sign, as
# in the line before it). With a uniform p(y) = 1/10, log p(y) = −log 10 is a
# constant: it changes no gradient, and minivae's CVAE leaves it out, so its
# model.elbo(x, y) = E_q[log p(x|y,z)] − KL is the bound on log p(x | y) and
# ELBO(x, y) = model.elbo(x, y) − log 10.
# The only change to the VAE's code is what the two networks read: [x, onehot(y)]
# and [z, onehot(y)]. Random weights, float64: the point is the bookkeeping.

# %%


def part1_by_hand(lesson: Lesson, x_host, y_host, quick):
    rng = np.random.default_rng([lesson.args.seed, 1])
    with mv.set_default_dtype("float64"):
        model = ConditionalVAE(x_dim=x_host.shape[1], hidden=pick(HIDDEN, quick), latent=LATENT,
                               activation=ACTIVATION, n_classes=10)  # fmt: skip
        x = mv.Tensor(B.from_numpy(x_host, dtype=np.float64))  # (B, 784) binarized images
        y = D.to_device(y_host)  # (B,) integer labels
        n, d = x.shape[0], LATENT
        hot = mv.Tensor(B.xp.eye(10, dtype=np.float64)[y])  # (B, 10) onehot(y)
        h = model.encoder(ops.concatenate([x, hot], axis=1))  # (B, 794) -> (B, 2 L)
        mu, log_var = h[:, :d], h[:, d:]  # (B, L) each: q(z | x, y) = N(μ, diag σ²)
        eps = B.from_numpy(rng.standard_normal((n, d)))  # (B, L) ε ~ N(0, I)
        z = mu + ops.exp(0.5 * log_var) * mv.Tensor(eps)  # (B, L) z = μ + σ ⊙ ε
        logits = model.decoder(ops.concatenate([z, hot], axis=1))  # (B, L + 10) -> (B, 784)
        # log p(x | y, z) = Σ_i [x_i l_i − softplus(l_i)], Bernoulli with logits l
        log_px_yz = (x * logits - ops.softplus(logits)).sum(axis=1)  # (B,)
        # KL(q(z|x,y) ‖ N(0, I)) = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²), as in lesson 02
        kl = 0.5 * (mu * mu + ops.exp(log_var) - 1.0 - log_var).sum(axis=1)  # (B,)
        elbo_given_y = log_px_yz - kl  # (B,) bound on log p(x | y)
        elbo_joint = elbo_given_y - math.log(10)  # (B,) seed 004's ELBO(x, y), bound on log p(x, y)
        for label, t in (("x", x), ("onehot(y)", hot), ("encoder output h", h),
                         ("μ(x, y), log σ²(x, y)", mu), ("z = μ + σ ⊙ ε", z),
                         ("decoder logits l", logits), ("log p(x|y,z)", log_px_yz),
                         ("KL", kl), ("ELBO(x, y)", elbo_joint)):  # fmt: skip
            print(f"  {label:<24} shape {tuple(t.shape)}")
        library = model.elbo(x, y, eps=eps)  # the same ε
        gap = max(float(np.max(np.abs(B.to_numpy(mine.data - library[key].data))))
                  for key, mine in (("recon", log_px_yz), ("kl", kl), ("elbo", elbo_given_y)))
        lesson.report("by_hand_minus_library", gap,
                      "max |by hand − model.elbo(x, y)| over recon, KL, ELBO and the batch")
        lesson.report("by_hand_elbo_joint_mean", float(elbo_joint.data.mean()),
                      "ELBO(x, y) = model.elbo(x, y) − log 10 at random weights (nats)")


# %% [markdown]
# # Part 2: two models, one budget
# The CVAE and the VAE have the same hidden layers and latent size, and train the
# same number of epochs with the same optimizer on the same dynamically binarized
# training images (minivae.train). Their training ELBOs bound different things:
# log p(x | y) for the CVAE, log p(x) for the VAE. For the true distribution
# log p(x | y) = log p(x) + log p(y | x) − log p(y) ≤ log p(x) + log 10, so the curve
# "VAE ELBO + log 10" marks how far a label could lift a perfect model.
#
# Why a 2-D code. Nothing in the ELBO forbids the encoder, which sees x, from
# putting the class into z as well; the KL charges at most log 10 = 2.3 nats for it,
# about 2 % of the bound, so the pressure to leave the class to y is weak and
# training moves it there slowly. With lesson 02's 20 units (5 epochs, batch 128) the CVAE
# kept the class in z: a linear probe read it from z 58 % of the time, only 42 % of
# its samples showed the class they were asked for, and decoding one z with other
# labels mostly redrew the same digit (20 %). Two units leave no room to spare: the
# code must hold what y does not say, the style, and the decoder must take the
# class from y. (The same lesson with LATENT = 20 and more epochs shows the slow
# hand-over; it is a good experiment.)

# %%


def train_model(lesson: Lesson, folder: str, kind: str, dataset: str, quick):
    """Train a CVAE or a VAE with minivae.train; (model in eval mode, history, seconds)."""
    model_config = {"kind": kind, "x_dim": 784, "hidden": list(pick(HIDDEN, quick)),
                    "latent": LATENT, "activation": ACTIVATION, "likelihood": "bernoulli"}
    if kind == "cvae":
        model_config["n_classes"] = 10
    config = TrainConfig(
        model=model_config, dataset=dataset, epochs=pick(EPOCHS, quick), batch_size=BATCH_SIZE,
        lr=LEARNING_RATE, binarize="dynamic", n_val=0, limit_train=pick(LIMIT_TRAIN, quick),
        seed=lesson.args.seed, progress=not lesson.args.no_progress, fallback_dataset=True,
    )  # fmt: skip
    folder = lesson.path(folder)
    t0 = time.perf_counter()
    history = train(config, folder, log=lambda line: print("    " + line))
    seconds = time.perf_counter() - t0
    model, _ = load_model(os.path.join(folder, "checkpoint.npz"), expect_kind=kind)
    model.eval()
    return model, history, seconds


def part2_train(lesson: Lesson, dataset: str, quick):
    print(f"  training the CVAE 784-{pick(HIDDEN, quick)[0]}-{LATENT} ...")
    cvae, cvae_history, cvae_seconds = train_model(lesson, "cvae_training", "cvae", dataset, quick)
    print(f"  training the VAE 784-{pick(HIDDEN, quick)[0]}-{LATENT} ...")
    vae, vae_history, vae_seconds = train_model(lesson, "vae_training", "vae", dataset, quick)
    lesson.report("epochs", pick(EPOCHS, quick), "epochs, both models")
    lesson.report("cvae_train_seconds", round(cvae_seconds, 1), "CVAE training wall time (s)")
    lesson.report("vae_train_seconds", round(vae_seconds, 1), "VAE training wall time (s)")
    lesson.report("cvae_final_train_elbo", float(cvae_history[-1]["train_elbo"]),
                  "CVAE training ELBO of the last epoch (bound on log p(x|y), nats)")
    lesson.report("vae_final_train_elbo", float(vae_history[-1]["train_elbo"]),
                  "VAE training ELBO of the last epoch (bound on log p(x), nats)")
    epochs = np.array([row["epoch"] for row in vae_history], dtype=float)
    vae_elbo = np.array([row["train_elbo"] for row in vae_history])
    plots.line_plot(
        {"CVAE: ELBO, a bound on log p(x | y)":
             (epochs, np.array([row["train_elbo"] for row in cvae_history])),
         "VAE: ELBO, a bound on log p(x)": (epochs, vae_elbo),
         "VAE ELBO + log 10 (what a label can add at most, true model)":
             (epochs, vae_elbo + math.log(10))},
        lesson.path("2_training_elbo.png"),
        "Part 2 - training ELBO per epoch (mean over the epoch's minibatches, nats per image), "
        "the same networks and budget",
        "epoch", "nats per image",
    )  # fmt: skip
    return cvae, vae


# %% [markdown]
# # Part 3: class-conditional generation (seed 004, "What does generation look like?")
# Generation draws z ~ p(z) = N(0, I), picks the class y, and decodes g(z, y). In
# the grid each row is one class and each column one z: along a column the code is
# the same and only the label changes, so a column shares a style.
# Whether a sample "is" its class is decided by a classifier that never saw a
# generated image: an MLP 784-256-10 trained here on the real grey training images
# with minivae's cross-entropy and Adam. The bar: for every class, at least 95 % of
# 1000 samples (decoder means, as drawn) are read as that class.

# %%


def part3_samples(lesson: Lesson, cvae, clf, class_names, quick):
    rng = np.random.default_rng([lesson.args.seed, 3])
    n_classes = len(class_names)
    # the figure: the same N_SHOWN_PER_CLASS codes for every row
    z = rng.standard_normal((N_SHOWN_PER_CLASS, LATENT))  # (S, L)
    z_grid = np.tile(z, (n_classes, 1))  # (C S, L): rows c S ... c S + S - 1 are class c
    y_grid = np.repeat(np.arange(n_classes), N_SHOWN_PER_CLASS)  # (C S,)

    # the measurement: fresh codes, N per class, each decoded with its class
    n = pick(N_SAMPLES_PER_CLASS, quick)
    y = np.repeat(np.arange(n_classes), n)  # (C N,)
    samples = decode(cvae, rng.standard_normal((len(y), LATENT)), y)  # (C N, 784)
    hit = predict(clf, samples) == y
    per_class = per_class_rate(hit, y, n_classes)
    lesson.report("samples_per_class", n, "generated samples per class that the classifier labels")
    lesson.report("sample_agreement_per_class", [round(float(a), 4) for a in per_class],
                  "share of each class's samples that the classifier reads as that class")
    lesson.report("sample_agreement", float(hit.mean()), "  ... over all classes")
    lesson.report("sample_agreement_min", float(per_class.min()),
                  f"  ... the worst class ({class_names[int(per_class.argmin())]})")
    met = bool(per_class.min() >= AGREEMENT_BAR)
    lesson.report("bar_sample_agreement_met", met,
                  f"bar: every class at least {AGREEMENT_BAR:.0%} (met: {met})")
    plots.image_grid(
        decode(cvae, z_grid, y_grid), lesson.path("3_class_conditional_samples.png"),
        f"Part 3 - CVAE samples g(z, y), z ~ N(0, I): one row per class y, one code z per "
        f"column; of {n} samples per class the classifier reads {hit.mean():.1%} as their "
        f"class (worst class {per_class.min():.1%})",
        ncols=N_SHOWN_PER_CLASS, row_labels=list(class_names),
    )  # fmt: skip
    return per_class


def plot_agreement(lesson: Lesson, per_class, real_per_class, class_names):
    """Per class: how often the classifier agrees with the label of samples and of real images."""
    n_classes = len(class_names)
    fig = Figure(figsize=(9.6, 4.6), layout="constrained")
    ax = fig.add_subplot()
    at = np.arange(n_classes + 1)
    width = 0.4
    samples = np.append(per_class, per_class.mean())
    real = np.append(real_per_class, real_per_class.mean())
    bars = ax.bar(at - width / 2, samples, width, color="tab:blue",
                  label="CVAE samples g(z, y): read as y")  # fmt: skip
    ax.bar(at + width / 2, real, width, color="0.65",
           label="real test images: read as their label (the classifier's accuracy)")
    ax.bar_label(bars, labels=[f"{v:.3f}" for v in samples], padding=2, fontsize=7, rotation=90)
    ax.axhline(AGREEMENT_BAR, color="tab:red", linestyle="--", linewidth=1.2,
               label=f"the bar: {AGREEMENT_BAR:.0%} in every class")  # fmt: skip
    ax.set_xticks(at, [*class_names, "all"], rotation=30 if max(map(len, class_names)) > 3 else 0)
    low = float(min(samples.min(), real.min()))
    ax.set_ylim(0.0 if low < 0.7 else low - 0.1, 1.1)
    ax.set(ylabel="share read as the class")
    ax.set_title("Part 3 - the classifier's verdict per class: generated samples against real "
                 "images", fontsize=11)  # fmt: skip
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, frameon=False)
    save_figure(fig, lesson.path("3_sample_agreement.png"))


# %% [markdown]
# # Part 4: style transfer
# Encode a test image with its own label, z = μ(x, y), and decode the same z with
# every label y': g(z, y'). Because the decoder is told the class, z only needs to
# hold how this x is drawn; decoding it with another label draws the other class
# in the same style (slant, width, stroke). Measured: how often the classifier reads
# g(μ(x, y), y') as y', over 10 labels for each of 1000 test images.

# %%


def part4_style_transfer(lesson: Lesson, cvae, clf, x_test, y_test, class_names, quick):
    n_classes = len(class_names)
    shown = first_of_each_class(y_test, n_classes)  # one test image per class
    z = encode_mean(cvae, x_test[shown], y_test[shown])  # (C, L)
    z_all = np.repeat(z, n_classes, axis=0)  # (C C, L): row r holds example r // C
    y_all = np.tile(np.arange(n_classes), n_classes)  # label r % C
    decoded = decode(cvae, z_all, y_all).reshape(n_classes, n_classes, -1)  # (C, C, 784)
    grid = np.concatenate([x_test[shown][:, None, :], decoded], axis=1)  # (C, 1 + C, 784)

    n = min(pick(N_TRANSFER, quick), len(x_test))
    z = encode_mean(cvae, x_test[:n], y_test[:n])  # (n, L), the first n test images
    target = np.tile(np.arange(n_classes), n)  # (n C,)
    source = np.repeat(y_test[:n], n_classes)  # (n C,)
    hit = predict(clf, decode(cvae, np.repeat(z, n_classes, axis=0), target)) == target
    lesson.report("style_transfer_agreement", float(hit.mean()),
                  f"g(μ(x, y), y') read as y', {n} test images x {n_classes} labels")
    lesson.report("style_transfer_agreement_other_labels", float(hit[source != target].mean()),
                  "  ... only the labels y' ≠ y (a class the image does not show)")
    plots.image_grid(
        grid.reshape(-1, grid.shape[-1]), lesson.path("4_style_transfer.png"),
        "Part 4 - style transfer: each row encodes the test image on the left with its own "
        "label, z = μ(x, y), then decodes that z with every label y' (columns); over "
        f"{n} test images the classifier reads {hit[source != target].mean():.1%} of the "
        "redrawn ones (y' ≠ y) as y'",
        ncols=n_classes + 1, row_labels=[f"x: {class_names[c]}" for c in range(n_classes)],
        col_labels=["input", *(f"y'={c}" for c in range(n_classes))],
    )  # fmt: skip


# %% [markdown]
# # Part 5: resynthesis (seed 003, "VAE applications [3]")
# Seed 003: "Find the difference between two concepts in latent space ..., then add
# that difference to a specific example."
# a) Interpolation. For two test images of different classes, walk the straight
#    line z_t = (1 − t) z_a + t z_b. In the VAE the class lives in z, so the walk
#    crosses from one digit to the other, often through a third. In the CVAE z is
#    the style: decoding the same walk with a fixed label morphs the style and
#    keeps the class. Measured over random pairs: how often the CVAE's interpolants
#    are read as the fixed label, and how often the VAE's interior points are read
#    as neither endpoint's class.
# b) Latent arithmetic. Ink (mean pixel value) measures stroke weight. Within each
#    class, the heaviest quarter of the training images minus the lightest quarter
#    of their codes gives a direction; averaged over classes it is
#        d = mean_c [ mean μ(x, c | heavy) − mean μ(x, c | light) ]
#    and z + α d, decoded with the image's own label, should thicken (α > 0) or thin
#    (α < 0) any digit while keeping its class. Measured: the decoded ink against α,
#    and the classifier's agreement with the label at each α.

# %%


def part5_interpolation(lesson: Lesson, cvae, vae, clf, x_test, y_test, class_names, quick):
    ts = np.linspace(0.0, 1.0, INTERP_STEPS)  # (S,)
    rows, labels = [], []
    for a_class, b_class in PAIRS_SHOWN:
        a = int(np.flatnonzero(y_test == a_class)[0])
        b = int(np.flatnonzero(y_test == b_class)[0])
        za, zb = encode_mean(vae, x_test[[a, b]])  # (L,) each
        rows.append(decode(vae, (1 - ts)[:, None] * za + ts[:, None] * zb))
        labels.append(f"VAE {class_names[a_class]}→{class_names[b_class]}")
        ca, cb = encode_mean(cvae, x_test[[a, b]], y_test[[a, b]])
        path = (1 - ts)[:, None] * ca + ts[:, None] * cb  # (S, L)
        for fixed in (a_class, b_class):
            rows.append(decode(cvae, path, np.full(INTERP_STEPS, fixed)))
            labels.append(f"CVAE y={class_names[fixed]}")

    # the measurement over random pairs of different classes
    rng = np.random.default_rng([lesson.args.seed, 5])
    n_pairs = pick(N_INTERP_PAIRS, quick)
    a = rng.integers(0, len(x_test), size=4 * n_pairs)
    b = rng.integers(0, len(x_test), size=4 * n_pairs)
    keep = y_test[a] != y_test[b]
    a, b = a[keep][:n_pairs], b[keep][:n_pairs]
    inner = ts[1:-1]  # (S - 2,) the interior points, t in (0, 1)

    def walk(z_a, z_b):  # (P, L) each -> (P (S - 2), L), pair-major
        return ((1 - inner)[None, :, None] * z_a[:, None] + inner[None, :, None] * z_b[:, None]
                ).reshape(-1, LATENT)  # fmt: skip

    ya = np.repeat(y_test[a], len(inner))
    yb = np.repeat(y_test[b], len(inner))
    z_path = walk(encode_mean(cvae, x_test[a], y_test[a]), encode_mean(cvae, x_test[b], y_test[b]))
    cvae_pred = predict(clf, decode(cvae, z_path, ya))
    vae_path = walk(encode_mean(vae, x_test[a]), encode_mean(vae, x_test[b]))
    vae_pred = predict(clf, decode(vae, vae_path))
    lesson.report("interpolation_pairs", len(a), "random test pairs of different classes")
    lesson.report("cvae_interpolation_agreement", float(np.mean(cvae_pred == ya)),
                  "CVAE interpolants decoded with label y_a, read as y_a")
    third = (vae_pred != ya) & (vae_pred != yb)
    lesson.report("vae_interpolation_third_class", float(np.mean(third)),
                  "VAE interior interpolants read as neither endpoint's class")
    plots.image_grid(
        np.concatenate(rows), lesson.path("5_interpolations.png"),
        "Part 5a - interpolation z_t = (1 − t) z_a + t z_b between two test images. Over "
        f"{len(a)} random pairs: the CVAE's interpolants, decoded with y_a, are read as y_a "
        f"{np.mean(cvae_pred == ya):.0%} of the time; the VAE's interior ones are read as "
        f"a third class {np.mean(third):.0%} of the time",
        ncols=INTERP_STEPS, row_labels=labels, col_labels=[f"t={t:.2f}" for t in ts],
    )  # fmt: skip


def part5_arithmetic(lesson: Lesson, cvae, clf, train_ds, x_test, y_test, x_test_grey,
                     class_names, quick):  # fmt: skip
    n_classes = len(class_names)
    n = pick(N_CONCEPT, quick)
    grey, y = train_ds.images[:n], train_ds.labels[:n]
    ink = grey.mean(axis=1)  # (n,) mean pixel value of the grey training images
    mu = encode_mean(cvae, D.binarize_fixed(grey, seed=lesson.args.seed + 2), y)  # (n, L)
    directions = []
    for c in range(n_classes):
        ink_c, mu_c = ink[y == c], mu[y == c]
        light = ink_c <= np.quantile(ink_c, INK_QUANTILE)
        heavy = ink_c >= np.quantile(ink_c, 1 - INK_QUANTILE)
        directions.append(mu_c[heavy].mean(axis=0) - mu_c[light].mean(axis=0))  # (L,)
    d = np.mean(directions, axis=0)  # (L,) seed 003: "the difference between two concepts"
    lesson.report("stroke_vector_norm", float(np.linalg.norm(d)),
                  "‖d‖, the heavy-minus-light vector")
    # how much the per-class vectors agree: mean cosine of each with the average
    cosines = [float(v @ d / (np.linalg.norm(v) * np.linalg.norm(d) + 1e-12)) for v in directions]
    lesson.report("stroke_vector_mean_cosine", float(np.mean(cosines)),
                  "mean cosine of the per-class vectors with their average (1: one direction)")

    alphas = np.array(ALPHAS)
    shown = first_of_each_class(y_test, n_classes)
    z = encode_mean(cvae, x_test[shown], y_test[shown])  # (C, L)
    moved = z[:, None, :] + alphas[None, :, None] * d  # (C, A, L)
    images = decode(cvae, moved.reshape(-1, LATENT), np.repeat(y_test[shown], len(alphas)))
    grid = np.concatenate([x_test[shown][:, None, :], images.reshape(n_classes, len(alphas), -1)],
                          axis=1)  # (C, 1 + A, 784)
    plots.image_grid(
        grid.reshape(-1, grid.shape[-1]), lesson.path("5_latent_arithmetic.png"),
        "Part 5b - latent arithmetic: z = μ(x, y) + α d with d = heavy-stroke codes minus "
        "light-stroke codes, decoded with the image's own label (α = 0: the reconstruction)",
        ncols=1 + len(alphas), row_labels=[f"x: {class_names[c]}" for c in range(n_classes)],
        col_labels=["input", *(f"α={a:g}" for a in alphas)],
    )  # fmt: skip

    m = min(pick(N_ARITHMETIC, quick), len(x_test))
    z = encode_mean(cvae, x_test[:m], y_test[:m])  # (m, L)
    inks, agreement = [], []
    for alpha in alphas:
        out = decode(cvae, z + alpha * d, y_test[:m])  # (m, 784)
        inks.append(round(float(out.mean()), 5))
        agreement.append(round(float(np.mean(predict(clf, out) == y_test[:m])), 4))
    lesson.report("arithmetic_alphas", [float(a) for a in alphas], "α of z + α d")
    lesson.report("arithmetic_ink", inks, f"mean decoded pixel value per α, {m} test images")
    lesson.report("arithmetic_test_ink", round(float(x_test_grey[:m].mean()), 5),
                  "  ... the same test images, grey originals")
    lesson.report("arithmetic_agreement", agreement, "  ... classifier reads the label, per α")


# %% [markdown]
# # Part 6: what z holds
# If the CVAE's z holds the style and not the class, a classifier reading only z
# should do poorly on the CVAE's codes and well on the VAE's. A linear probe
# (softmax regression, minivae's MLP with no hidden layer, trained on the codes of
# training images) measures it; chance is 1/10. The scatter shows the test codes
# μ, coloured by class (their first two principal components when L > 2).

# %%


def part6_probe(lesson: Lesson, cvae, vae, train_ds, x_test, y_test, class_names, quick):
    n = pick(PROBE_TRAIN, quick)
    x_train = D.binarize_fixed(train_ds.images[:n], seed=lesson.args.seed + 3)
    y_train = train_ds.labels[:n]
    n_test = pick(PROBE_TEST, quick)
    x_test, y_test = x_test[:n_test], y_test[:n_test]
    codes, accuracy = {}, {}
    for tag, model, needs_y in (("vae", vae, False), ("cvae", cvae, True)):
        z_train = encode_mean(model, x_train, y_train if needs_y else None)  # (n, L)
        z_test = encode_mean(model, x_test, y_test if needs_y else None)  # (N, L)
        probe = train_classifier(lesson, z_train.astype(np.float32), y_train, len(class_names),
                                 [LATENT, len(class_names)], pick(PROBE_EPOCHS, quick),
                                 PROBE_LEARNING_RATE, rng_part=6)  # fmt: skip
        accuracy[tag] = float(np.mean(predict(probe, z_test.astype(np.float32)) == y_test))
        codes[tag] = z_test
        lesson.report(f"{tag}_probe_accuracy", accuracy[tag],
                      f"{tag.upper()}: linear probe on z, test accuracy (chance 0.1)")

    m = min(pick(N_SCATTER, quick), len(x_test))
    fig = Figure(figsize=(12.0, 5.4), layout="constrained")
    axes = fig.subplots(1, 2)
    colours = [matplotlib.colormaps["tab10"](c) for c in range(len(class_names))]
    for ax, tag, title in ((axes[0], "vae", "VAE: μ(x)"), (axes[1], "cvae", "CVAE: μ(x, y)")):
        z = codes[tag][:m]  # (m, L)
        if LATENT > 2:  # the first two principal components
            z = z - z.mean(axis=0)
            z = z @ np.linalg.svd(z, full_matrices=False)[2][:2].T  # (m, 2)
        for c, name in enumerate(class_names):
            mask = y_test[:m] == c
            ax.scatter(z[mask, 0], z[mask, 1], s=6, alpha=0.7, color=colours[c], linewidths=0,
                       label=name, rasterized=True)  # fmt: skip
        ax.set(xlabel="$z_0$" if LATENT == 2 else "first principal component",
               ylabel="$z_1$" if LATENT == 2 else "second principal component",
               title=f"{title}; linear probe accuracy {accuracy[tag]:.3f}")  # fmt: skip
        ax.set_aspect("equal", adjustable="datalim")
        ax.grid(alpha=0.25)
    axes[1].legend(title="class", loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8,
                   markerscale=2.5, frameon=False)  # fmt: skip
    fig.suptitle(f"Part 6 - {m} test codes, coloured by class: a code that holds the class "
                 "sorts the colours, a code that leaves the class to y mixes them")  # fmt: skip
    save_figure(fig, lesson.path("6_latent_codes_by_class.png"))


# %% [markdown]
# # Part 7: the quality bar, log p(x | y) against log p(x) (seed 003, "VAE applications [1]")
# Both models are scored by importance sampling with their own encoder as proposal
# (minivae.metrics, as in lesson 02):
#   CVAE: log p(x | y) ≈ log (1/K) Σ_k p(x | y, z_k) p(z_k) / q(z_k | x, y),  z_k ~ q(z | x, y)
#   VAE:  log p(x)     ≈ log (1/K) Σ_k p(x | z_k) p(z_k) / q(z_k | x),        z_k ~ q(z | x)
# with the same K on the same binarized test images. The bar: the CVAE's mean
# log p(x | y) is higher than the VAE's mean log p(x).
#
# What the difference means. For the true distribution, Bayes' rule gives, per image,
#   log p(x | y) − log p(x) = log p(y | x) − log p(y) = log p(y | x) + log 10 ≤ log 10 = 2.30
# (p(y) = 1/10): a label can make an image at most 2.30 nats more probable, and
# about that much for a digit whose class is obvious. Two learned models are not
# the true distribution, so the measured gain mixes two things. The CVAE is itself
# a model of x: p_CVAE(x) = Σ_y p(y) p(x | y) = (1/10) Σ_y p(x | y), which we
# estimate on a subset by scoring each image under all 10 labels. Then
#   gain = [log p_CVAE(x|y) − log p_CVAE(x)] + [log p_CVAE(x) − log p_VAE(x)]
#        =  label term, log p_CVAE(y|x) + log 10 ≤ 2.30     +  which model fits x better
# The label term is at most log 10 by construction; the second is a fair comparison
# of two density models of x. (The same sum also gives a classifier for free:
# p_CVAE(y | x) ∝ p(x | y), its accuracy is reported too.)

# %%


def log_likelihoods(model, x, k, y=None):
    """Importance-sampled log p(x) or log p(x | y) per image (host (N,)), IS_BATCH images a call."""
    parts = []
    for s in range(0, len(x), IS_BATCH):
        yb = None if y is None else D.to_device(y[s : s + IS_BATCH])
        parts.append(importance_sampled_log_likelihood(model, D.to_device(x[s : s + IS_BATCH]),
                                                       k=k, y=yb))  # fmt: skip
    return np.concatenate(parts).astype(np.float64)


@mv.no_grad()
def test_elbo(model, x, y=None):
    """The one-sample ELBO per image (host (N,)): bound on log p(x | y) (CVAE) or log p(x) (VAE)."""
    parts = []
    for s in range(0, len(x), EVAL_BATCH):
        yb = None if y is None else D.to_device(y[s : s + EVAL_BATCH])
        parts.append(B.to_numpy(model.elbo(D.to_device(x[s : s + EVAL_BATCH]), yb)["elbo"].data))
    return np.concatenate(parts).astype(np.float64)


def logsumexp_rows(a):
    """log Σ_c exp(a[c, n]) over axis 0, without overflow: (C, N) -> (N,)."""
    top = a.max(axis=0)
    return top + np.log(np.exp(a - top).sum(axis=0))


def part7_quality(lesson: Lesson, cvae, vae, x_test, y_test, quick):
    k = pick(NLL_K, quick)
    t0 = time.perf_counter()
    log_px_y = log_likelihoods(cvae, x_test, k, y_test)  # (N,) CVAE log p(x | y)
    cvae_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    log_px = log_likelihoods(vae, x_test, k)  # (N,) VAE log p(x)
    vae_seconds = time.perf_counter() - t0
    gain = log_px_y - log_px  # (N,)
    lesson.report("nll_k", k, "importance samples per test image, K (both models)")
    lesson.report("n_test", len(x_test), "binarized test images (both models)")
    lesson.report("cvae_log_px_given_y", float(log_px_y.mean()), "CVAE: mean log p(x | y) (nats)")
    lesson.report("vae_log_px", float(log_px.mean()), "VAE: mean log p(x) (nats)")
    lesson.report("log_likelihood_gain", float(gain.mean()),
                  "mean log p(x | y) − log p(x), CVAE over VAE (nats per image)")
    lesson.report("log_likelihood_gain_standard_error",
                  float(gain.std(ddof=1) / math.sqrt(len(gain))), "  ... its standard error")
    lesson.report("log_likelihood_gain_positive_fraction", float(np.mean(gain > 0)),
                  "  ... fraction of test images where the CVAE scores higher")
    met = bool(log_px_y.mean() > log_px.mean())
    lesson.report("bar_log_likelihood_met", met,
                  f"bar: CVAE log p(x | y) > VAE log p(x) (met: {met})")
    lesson.report("cvae_test_elbo", float(test_elbo(cvae, x_test, y_test).mean()),
                  "CVAE: one-sample ELBO on the same images (below log p(x | y) by Jensen)")
    lesson.report("vae_test_elbo", float(test_elbo(vae, x_test).mean()),
                  "VAE: one-sample ELBO on the same images (below log p(x))")
    lesson.report("log_10", math.log(10), "log 10: the most a label adds for the true model")
    freq = np.bincount(y_test, minlength=10) / len(y_test)
    lesson.report("label_entropy", float(-(freq[freq > 0] * np.log(freq[freq > 0])).sum()),
                  "entropy of the test labels (nats; log 10 if the classes were exactly balanced)")
    lesson.report("cvae_is_seconds", round(cvae_seconds, 1), "CVAE importance sampling (s)")
    lesson.report("vae_is_seconds", round(vae_seconds, 1), "VAE importance sampling (s)")

    # the decomposition, on a subset: every image under all 10 labels
    m, km = min(pick(N_MARGINAL, quick), len(x_test)), pick(MARGINAL_K, quick)
    xs, ys = x_test[:m], y_test[:m]
    all_labels = np.stack([log_likelihoods(cvae, xs, km, np.full(m, c))
                           for c in range(10)])  # (10, m) log p(x | y = c)
    own = all_labels[ys, np.arange(m)]  # (m,) log p(x | y), the true label
    cvae_marginal = logsumexp_rows(all_labels) - math.log(10)  # (m,) log (1/10) Σ_y p(x | y)
    vae_sub = log_likelihoods(vae, xs, km)  # (m,)
    label_term = own - cvae_marginal  # (m,) log p_CVAE(y | x) + log 10, ≤ log 10
    density_term = cvae_marginal - vae_sub  # (m,)
    lesson.report("decomposition_images", m,
                  "test images of the decomposition (each under 10 labels)")
    lesson.report("decomposition_k", km, "  ... importance samples per image and label")
    lesson.report("decomposition_gain", float((own - vae_sub).mean()),
                  "  ... log p(x | y) − log p_VAE(x) on these images")
    lesson.report("decomposition_label_term", float(label_term.mean()),
                  "  ... = label term log p_CVAE(y|x) + log 10 (≤ 2.303)")
    lesson.report("decomposition_label_term_max", float(label_term.max()),
                  "  ... its largest value over the images")
    lesson.report("decomposition_density_term", float(density_term.mean()),
                  "  ... + log p_CVAE(x) − log p_VAE(x): the CVAE as a model of x vs the VAE")
    lesson.report("cvae_bayes_classifier_accuracy", float(np.mean(all_labels.argmax(axis=0) == ys)),
                  "  ... argmax_y p(x | y), the CVAE as a classifier: test accuracy")
    plot_gain(lesson, gain, k, label_term.mean(), density_term.mean(), km, m)
    return log_px_y, log_px


def plot_gain(lesson: Lesson, gain, k, label_term, density_term, km, m):
    fig = Figure(figsize=(12.0, 4.6), layout="constrained")
    ax, bx = fig.subplots(1, 2, width_ratios=(1.6, 1.0))
    ax.hist(gain, bins=60, color="tab:blue", alpha=0.75)
    ax.axvline(0.0, color="0.3", linewidth=1.0, label="0: no gain")
    ax.axvline(math.log(10), color="tab:red", linestyle="--", linewidth=1.2,
               label="log 10 = 2.30: the most for the true model")  # fmt: skip
    ax.axvline(float(gain.mean()), color="tab:orange", linewidth=1.5,
               label=f"mean {float(gain.mean()):.2f} nats")  # fmt: skip
    ax.set(xlabel="log p(x | y) (CVAE) − log p(x) (VAE)  [nats]", ylabel="test images",
           title=f"a) per test image, K = {k}, {len(gain)} images")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    values = [label_term, density_term, label_term + density_term]
    names = ["label term\nlog p(y|x)\n+ log 10", "density term\nlog p_CVAE(x)\n− log p_VAE(x)",
             "gain\n(their sum)"]  # fmt: skip
    bars = bx.bar(range(3), values, color=["tab:green", "tab:purple", "tab:orange"], alpha=0.85)
    bx.bar_label(bars, labels=[f"{v:.2f}" for v in values], padding=2, fontsize=9)
    bx.axhline(math.log(10), color="tab:red", linestyle="--", linewidth=1.2, label="log 10")
    bx.axhline(0.0, color="0.3", linewidth=0.8)
    bx.set_xticks(range(3), names, fontsize=8)
    bx.margins(y=0.15)
    bx.set(ylabel="nats per image", title=f"b) the gain split in two ({m} images, K = {km})")
    bx.grid(alpha=0.3, axis="y")
    bx.legend(fontsize=8)
    fig.suptitle("Part 7 - how much more probable the CVAE makes a test image once told its "
                 "label, against the VAE")  # fmt: skip
    save_figure(fig, lesson.path("7_log_likelihood_gain.png"))


# %% [markdown]
# # Run everything

# %%


def main(argv=None):
    args = parse_args(argv, __doc__)
    lesson = Lesson(NAME, args)  # the output folder, the clock, the numbers; seeds minivae
    quick = args.quick
    # one line, and only one, if the data set cannot be had and the built-in set is used
    train_ds = D.load_for_lesson(args.dataset, "train")
    test_ds = D.load_dataset(train_ds.name, "test")
    class_names = list(train_ds.class_names)
    lesson.report("dataset", train_ds.name, "data set")
    # the whole test split, binarized once; each part takes the first images it needs
    x_test = D.binarize_fixed(test_ds.images, seed=TEST_BINARIZATION_SEED)  # (N, 784)
    y_test = test_ds.labels  # (N,)

    print("Part 1: the conditional ELBO by hand (seed 004, Conditional VAE)")
    x_batch = D.binarize_fixed(train_ds.images[:BY_HAND_BATCH], seed=args.seed)
    part1_by_hand(lesson, x_batch, train_ds.labels[:BY_HAND_BATCH], quick)

    print("Part 2: training the CVAE and the VAE, the same networks and budget")
    cvae, vae = part2_train(lesson, train_ds.name, quick)

    print("Part 3: class-conditional samples, judged by a classifier trained on real images")
    limit = pick(CLF_LIMIT_TRAIN, quick)
    clf = train_classifier(lesson, train_ds.images[:limit], train_ds.labels[:limit],
                           len(class_names), [784, CLF_HIDDEN, len(class_names)],
                           pick(CLF_EPOCHS, quick), CLF_LEARNING_RATE, rng_part=3)  # fmt: skip
    real_hit = predict(clf, test_ds.images) == test_ds.labels
    lesson.report("classifier_test_accuracy", float(real_hit.mean()),
                  f"classifier accuracy on the {len(test_ds.labels):,} grey test images")
    real_per_class = per_class_rate(real_hit, test_ds.labels, len(class_names))
    lesson.report("classifier_test_accuracy_per_class",
                  [round(float(a), 4) for a in real_per_class], "  ... per class")
    per_class = part3_samples(lesson, cvae, clf, class_names, quick)
    plot_agreement(lesson, per_class, real_per_class, class_names)

    print("Part 4: style transfer, one z decoded with every label")
    part4_style_transfer(lesson, cvae, clf, x_test, y_test, class_names, quick)

    print("Part 5: resynthesis, interpolation and latent arithmetic (seed 003, VAE applications)")
    part5_interpolation(lesson, cvae, vae, clf, x_test, y_test, class_names, quick)
    part5_arithmetic(lesson, cvae, clf, train_ds, x_test, y_test, test_ds.images, class_names,
                     quick)  # fmt: skip

    print("Part 6: what z holds, a linear probe on each model's codes")
    part6_probe(lesson, cvae, vae, train_ds, x_test, y_test, class_names, quick)

    print("Part 7: the quality bar, log p(x | y) against log p(x) by importance sampling")
    n_test = pick(N_TEST, quick)
    part7_quality(lesson, cvae, vae, x_test[:n_test], y_test[:n_test], quick)

    n = lesson.numbers
    print("In short:")
    print(f"  classifier {n['classifier_test_accuracy']:.2%} on real test images; CVAE samples "
          f"read as their class {n['sample_agreement']:.2%} overall, worst class "
          f"{n['sample_agreement_min']:.2%} (bar {AGREEMENT_BAR:.0%} per class: "
          f"{'met' if n['bar_sample_agreement_met'] else 'NOT met'})")  # fmt: skip
    print(f"  style transfer read as the new label "
          f"{n['style_transfer_agreement_other_labels']:.2%}; linear probe on z: "
          f"VAE {n['vae_probe_accuracy']:.3f}, CVAE {n['cvae_probe_accuracy']:.3f}")
    print(f"  log p(x | y) {n['cvae_log_px_given_y']:.2f} (CVAE) vs log p(x) {n['vae_log_px']:.2f} "
          f"(VAE), K = {n['nll_k']}, {n['n_test']} test images: gain "
          f"{n['log_likelihood_gain']:.2f} ± {n['log_likelihood_gain_standard_error']:.2f} nats "
          f"(bar: {'met' if n['bar_log_likelihood_met'] else 'NOT met'}); label term "
          f"{n['decomposition_label_term']:.2f} ≤ log 10, density term "
          f"{n['decomposition_density_term']:.2f}")  # fmt: skip
    return lesson.finish()


if __name__ == "__main__":
    main()
