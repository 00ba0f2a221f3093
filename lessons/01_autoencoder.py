# %% [markdown]
# # Lesson 01: the autoencoder, its 2-D code, and why decoding z ~ N(0, I) fails
#
# An autoencoder compresses x to a code z = f(x) and decodes it back, y = g(z), trained
# so that ‖g(f(x)) − x‖² is small (*PGM Lecture 30*, "Autoencoders"). It learns a good
# code, but not a generative model: nothing says which codes are likely, so "choose a
# random z (e.g. z ~ N(0, I)), decode it" does not give data (*PGM Lecture 30*,
# "Generating Data Using Autoencoders"). This lesson trains one with a 2-D code on MNIST
# and measures that failure with numbers: 1. training, against the best linear 2-D code,
# 2. reconstructions, 3. the code space (*Computational Intelligence Lab, Series 9*,
# Problem 2, Fig. 1a), 4. the codes against N(0, I), 5. what the decoder makes of
# samples, judged by their pixels and by a digit classifier. Each part opens with the
# question it answers: make your guess before you run its cell.
#
# Errata this lesson relies on: [E10](../docs/ERRATA.md#e10-indices-in-the-gaussian-kl-derivation)
# (the Gaussian KL) and [E14](../docs/ERRATA.md#e14-generation-does-not-run-the-encoder)
# (generation decodes a prior sample; the encoder plays no part).

# %%
"""Lesson 01: the deterministic autoencoder, its 2-D code space, and why decoding z ~ N(0, I) fails.

    python lessons/01_autoencoder.py [--quick] [--dataset mnist] [--epochs 6]

Figures and summary.json go to OUT/01_autoencoder/; the autoencoder's checkpoint and
metrics go to its ae_training/ subfolder. Without the MNIST files (and without network)
the lesson says so and uses the built-in Fashion-MNIST subset: the argument
is the same, with clothes for digits. In a notebook, edit the settings below instead of
passing options; MINIVAE_QUICK=1 turns QUICK on in both.
"""

QUICK = False  # True: 2,000 images and 3 epochs, seconds; the numbers only show the code runs
SEED = 0  # every random draw follows from it
DEVICE = "cpu"  # "cpu" (NumPy) or "gpu" (CuPy)
DATASET = "mnist"  # falls back to the built-in Fashion-MNIST subset offline
OUT = "runs/lessons"  # figures and summary.json go to OUT/01_autoencoder/
PROGRESS = True  # progress bars while training
EPOCHS = 6  # epochs of the autoencoder (QUICK: at most 3)
CLF_EPOCHS = 3  # epochs of the classifier that judges the decodes in Part 5 (QUICK too)

# %%
import math

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse

try:
    import common  # a script, or a notebook kernel started in lessons/
except ModuleNotFoundError:
    from lessons import common  # a kernel started in the repository root

from minivae import data as D
from minivae import plots
from minivae.checkpoint import load_model
from minivae.models import build_model
from minivae.train import TrainConfig, train

lesson = common.setup("01_autoencoder", globals(), own=("EPOCHS", "CLF_EPOCHS"))
LIMIT_TRAIN = common.pick((None, 2000), QUICK)  # training images (None: all of them)
N_TEST = common.pick((10000, 1000), QUICK)  # test images encoded (all of MNIST's)
N_SAMPLES = common.pick((10000, 1000), QUICK)  # codes drawn from each Gaussian in Parts 4-5
N_SHOWN = 100  # images per figure grid


def squared_error(x, x_hat):
    """‖x̂ − x‖² per image, summed over the pixels: (N,)  (PGM Lecture 30, "Autoencoders")."""
    return ((x_hat - x) ** 2).sum(axis=1)


def as_image(x_hat):
    """Decoder output clipped to the pixel range [0, 1]: what is drawn and what is classified."""
    return np.clip(x_hat, 0.0, 1.0)


# The data: if MNIST cannot be had, the lesson says why and that it uses the built-in set.
train_ds = D.load_for_lesson(DATASET, "train")
test_ds = D.load_dataset(train_ds.name, "test")
lesson.dataset_used(train_ds.name)
test_x, test_y = test_ds.images[:N_TEST].astype(np.float64), test_ds.labels[:N_TEST]  # (N, 784)

# %% [markdown]
# ## Part 1: how much better than the best linear 2-D code is a 2-D autoencoder?
# PGM Lecture 30, "Autoencoders": encoder z = f_φ(x) (784 → 512 → 256 → 2, relu),
# decoder y = g_θ(z) (2 → 256 → 512 → 784), trained with Adam on
#
#     min_{θ,φ} Σ_i ‖g_θ(f_φ(x_i)) − x_i‖²
#
# over grey-level images. minivae's Autoencoder with likelihood="mse" is exactly this
# loss, summed over pixels and averaged over a batch. (likelihood="bernoulli" would
# treat each pixel as a coin, with the binary cross-entropy as the loss, usually on
# binarized images; the code space would look much the same.)
#
# Two yardsticks: the mean training image for every x (no code at all), and PCA with
# 2 components, the best any *linear* 2-D autoencoder can do (its optimum spans the
# top-2 principal subspace). *Predict:* how much of PCA's error does the relu network
# remove: a few percent, or a fifth?

# %%
HIDDEN = (512, 256)  # encoder 784-512-256-2, decoder 2-256-512-784
LATENT = 2  # a 2-D code, so that the code space can be drawn (Series 9, Fig. 1a)
LIKELIHOOD = "mse"  # the lecture's squared error
BATCH_SIZE, LEARNING_RATE = 128, 1e-3  # Adam

print("Part 1: train the autoencoder, min Σ ‖g(f(x)) − x‖² (PGM Lecture 30, Autoencoders)")
config = TrainConfig(
    model={"kind": "ae", "hidden": list(HIDDEN), "latent": LATENT, "activation": "relu",
           "likelihood": LIKELIHOOD},
    dataset=train_ds.name, epochs=lesson.pick("EPOCHS", min(EPOCHS, 3)),
    batch_size=BATCH_SIZE, lr=LEARNING_RATE, binarize="none", limit_train=LIMIT_TRAIN,
    seed=SEED, progress=PROGRESS,
)  # fmt: skip
history = train(config, lesson.path("ae_training"), log=lambda line: print("  " + line))
model, _ = load_model(lesson.path("ae_training/checkpoint.npz"), expect_kind="ae")
model.eval()

# the AE's loss is −recon = ‖g(f(x)) − x‖² per image (Autoencoder.elbo with "mse")
train_se = [-row["train_recon"] for row in history]
val_se = [-row["val_recon"] for row in history]
lesson.report("train_se_per_epoch", [round(v, 3) for v in train_se],
              "training ‖g(f(x)) − x‖² per image, mean over each epoch")  # fmt: skip
lesson.report("val_se_per_epoch", [round(v, 3) for v in val_se],
              "validation ‖g(f(x)) − x‖² per image, after each epoch")  # fmt: skip

# the linear autoencoder at its optimum: z = Vᵀ(x − x̄), x̂ = x̄ + V z, V the top-2 eigenvectors
x_fit = train_ds.images[:LIMIT_TRAIN].astype(np.float64)  # (N, 784)
x_bar = x_fit.mean(axis=0)  # (784,)
_, vecs = np.linalg.eigh((x_fit - x_bar).T @ (x_fit - x_bar) / len(x_fit))  # ascending
top = vecs[:, -LATENT:]  # (784, 2) the top principal directions
pca_se = squared_error(test_x, x_bar + (test_x - x_bar) @ top @ top.T)
mean_se = squared_error(test_x, x_bar[None, :])
test_z = common.encode_mean(model, test_x)  # (N, 2) z = f(x)
test_se = squared_error(test_x, common.decode(model, test_z))  # unclipped
lesson.report("test_se", float(test_se.mean()), "test ‖g(f(x)) − x‖² of the autoencoder")
lesson.report("test_se_pca2", float(pca_se.mean()),
              "  ... of PCA with 2 components (the best linear 2-D autoencoder)")  # fmt: skip
lesson.report("test_se_mean_image", float(mean_se.mean()),
              "  ... of the mean training image (no code at all)")  # fmt: skip

epochs = np.arange(1, len(history) + 1)
common.show(plots.line_plot(
    {"training (mean over the epoch)": (epochs, np.array(train_se)),
     "validation (after the epoch)": (epochs, np.array(val_se)),
     f"PCA, 2 components (best linear 2-D code), test: {pca_se.mean():.1f}":
         (epochs, np.full(len(epochs), pca_se.mean()))},
    lesson.path("1_training_curve.png"),
    f"Part 1 - autoencoder 784-{'-'.join(map(str, HIDDEN))}-{LATENT}: squared reconstruction "
    f"error (PGM Lecture 30, Autoencoders); the mean image alone: {mean_se.mean():.1f}",
    "epoch", "‖g(f(x)) − x‖² per image (sum over 784 pixels)"))  # fmt: skip

# %% [markdown]
# ## Part 2: what do two numbers per image keep of a digit?
# Test images (never trained on) above their reconstructions g(f(x)). *Predict:* which
# survives the 2-D bottleneck: the class, the slant and width, the details of the
# stroke? Do some classes merge?

# %%
print("Part 2: reconstructions")
common.show(plots.reconstructions(
    test_x[:30], as_image(common.decode(model, test_z[:30])),
    lesson.path("2_reconstructions.png"),
    f"Part 2 - test images and their reconstructions g(f(x)) through a {LATENT}-D code "
    f"(test ‖g(f(x)) − x‖² = {test_se.mean():.1f} per image)"))  # fmt: skip

# %% [markdown]
# Two numbers are very little: the reconstructions keep the rough shape (slant, width)
# and lose the details, blurry "typical" versions of the input. Some classes merge: in
# the full MNIST run the classifier of Part 5 reads almost no reconstruction as a 4 or a
# 5 (under 1 % each, against 10 % in the test set); they come back as 9s, 3s or 8s.

# %% [markdown]
# ## Part 3: where do the codes of the test images lie?
# Every test image's code z = f(x), coloured by its class, like Fig. 1a of
# Computational Intelligence Lab, Series 9, Problem 2 ("somewhat structured ... but it
# is unclear how to sample from this space, as some clusters are very scattered").
# The dashed circles are where N(0, I) puts 39 % (1σ) and 86 % (2σ) of its mass.
# *Predict:* do the codes fill that disc, or only a part of it?

# %%
print("Part 3: the code space (Computational Intelligence Lab, Series 9, Fig. 1a)")
common.show(plots.latent_scatter(
    test_z, test_y, lesson.path("3_code_space.png"),
    f"Part 3 - codes z = f(x) of {len(test_z):,} test images (Series 9, Fig. 1a); "
    "dashed: the 1σ and 2σ circles of N(0, I)", class_names=train_ds.class_names))  # fmt: skip

# %% [markdown]
# In the full MNIST run the codes fill only a small, lopsided part of the disc (their
# mean is about (−0.4, 0.4), their spread about 0.5 by 0.4), in stretched clusters with
# empty gaps between them. Nothing in the loss asked for anything else: Part 4 measures it.

# %% [markdown]
# ## Part 4: how far from N(0, I) are the codes, and could training have made them N(0, I)?
# PGM Lecture 30, "Generating Data Using Autoencoders": choose z ~ N(0, I), decode
# x̂ = g_θ(z); it "doesn't work because the distribution of z is unknown ≠ N(0, I)".
#
# (a) Moments. Fit N(m, S) to the training codes. For N(0, I), m = 0 and both
# eigenvalues of S are 1. The closed-form Gaussian KL (Computational Intelligence Lab,
# Series 9, Problem 1.7, written there for a diagonal S; see
# [E10](../docs/ERRATA.md#e10-indices-in-the-gaussian-kl-derivation))
#
#     KL(N(m, S) ‖ N(0, I)) = ½ (tr S + mᵀm − d − log det S)
#
# is 0 only for N(0, I). It is also a *lower bound* on KL(codes ‖ N(0, I)): of all
# distributions with this mean and covariance the Gaussian has the most entropy, and the
# cross-entropy to N(0, I) depends only on the first two moments.
#
# (b) Why the codes land wherever they land: multiply the encoder's last layer by c and
# divide the decoder's first layer by c. The new network computes g(z / c) on z = c f(x):
# the same reconstructions and the same loss for every c ≠ 0, while the codes shrink or
# grow at will. The loss has no opinion about the scale (or position, or shape) of the
# code distribution; the one we got is an accident of initialization and training.
#
# (c) Where do samples land? For each point, the distance to the nearest training code.
# A point is "near the codes" when it is as near as 99 % of test codes are; a sample that
# is not asks the decoder about a place it never saw in training. *Predict:* what share
# of z ~ N(0, I) lands near a code: nine in ten, or fewer than half?

# %%
N_REFERENCE = common.pick((10000, 1000), QUICK)  # training codes: "where the decoder saw codes"
NEAR_QUANTILE = 0.99  # "near": as near to a training code as 99 % of test codes are
RESCALE = (0.1, 10.0)  # (b): the same autoencoder with its code multiplied by these
CHI2_2D_2SIGMA = 1.0 - math.exp(-2.0)  # Pr(‖z‖ < 2) for z ~ N(0, I) in 2-D: 0.8647


def nearest_distance(points, reference, chunk: int = 1000):
    """For each point (N, d), the Euclidean distance to its nearest reference point (M, d): (N,)."""
    ref_sq = (reference**2).sum(axis=1)  # (M,)
    out = np.empty(len(points))
    for s in range(0, len(points), chunk):
        p = points[s : s + chunk]  # (n, d)
        d2 = (p**2).sum(axis=1)[:, None] + ref_sq[None, :] - 2.0 * p @ reference.T  # (n, M)
        out[s : s + chunk] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    return out


def rescaled(model, c: float):
    """The same autoencoder with its code multiplied by c: f'(x) = c f(x), g'(z) = g(z / c)."""
    twin = build_model(model.config)
    twin.load_state_dict(model.state_dict())
    last, first = twin.encoder[-1], twin.decoder[0]  # the Linear layers on either side of z
    last.weight.data *= c  # f'(x) = c (W_L h + b_L)
    last.bias.data *= c
    first.weight.data /= c  # g'(z) starts with W_1 (z / c) + b_1
    return twin


print("Part 4: the codes against N(0, I) (PGM Lecture 30, Generating Data Using Autoencoders)")
pool = len(train_ds.images) if LIMIT_TRAIN is None else min(LIMIT_TRAIN, len(train_ds.images))
ref_rows = np.random.default_rng([SEED, 3]).choice(pool, min(N_REFERENCE, pool), replace=False)
ref_x = train_ds.images[np.sort(ref_rows)].astype(np.float64)  # (M, 784) training images
ref_z = common.encode_mean(model, ref_x)  # (M, 2) their codes
code_mean, code_cov = ref_z.mean(axis=0), np.cov(ref_z, rowvar=False)  # m (2,), S (2, 2)
eig = np.linalg.eigvalsh(code_cov)[::-1]  # descending
lesson.report("code_mean", [round(float(v), 4) for v in code_mean],
              f"(a) mean m of {len(ref_z):,} training codes (N(0, I): 0)")  # fmt: skip
lesson.report("code_mean_norm", float(np.linalg.norm(code_mean)), "  ... its norm ‖m‖")
lesson.report("code_cov", [[round(float(v), 4) for v in row] for row in code_cov],
              "  ... covariance S (N(0, I): the identity)")  # fmt: skip
lesson.report("code_cov_eigenvalues", [round(float(v), 4) for v in eig],
              "  ... eigenvalues of S (N(0, I): all 1)")  # fmt: skip
lesson.report("code_gaussian_kl", common.gaussian_kl_to_standard(code_mean, code_cov),
              "  ... KL(N(m, S) ‖ N(0, I)) in nats (0 for N(0, I))")  # fmt: skip
lesson.report("test_codes_inside_2sigma", float(np.mean(np.linalg.norm(test_z, axis=1) < 2.0)),
              f"  ... test codes inside the 2σ circle (N(0, I): {CHI2_2D_2SIGMA:.4f})")  # fmt: skip

rng = np.random.default_rng([SEED, 4])  # the codes sampled in Parts 4 and 5
z_prior = rng.standard_normal((N_SAMPLES, LATENT))  # (n, 2) z ~ N(0, I), the lecture's recipe
z_fitted = code_mean + rng.standard_normal((N_SAMPLES, LATENT)) @ np.linalg.cholesky(code_cov).T

# (b) the same network with rescaled codes: the same loss, any code distribution we like
twins = {c: model if c == 1.0 else rescaled(model, c) for c in sorted((1.0, *RESCALE))}
ses, kls, nears = [], [], []
for c, twin in twins.items():
    z_c, ref_c = common.encode_mean(twin, test_x), common.encode_mean(twin, ref_x)
    near_c = np.quantile(nearest_distance(z_c, ref_c), NEAR_QUANTILE)
    ses.append(float(squared_error(test_x, common.decode(twin, z_c)).mean()))
    kls.append(common.gaussian_kl_to_standard(ref_c.mean(axis=0), np.cov(ref_c, rowvar=False)))
    nears.append(float(np.mean(nearest_distance(z_prior, ref_c) <= near_c)))
    print(f"  (b) code times {c:g}: test ‖g(f(x)) − x‖² {ses[-1]:.4f}, KL(N(m, S) ‖ N(0, I)) "
          f"{kls[-1]:.2f} nats, z ~ N(0, I) near the codes {nears[-1]:.1%}")  # fmt: skip
lesson.numbers["rescale_factors"] = list(twins)
lesson.numbers["rescale_test_se"] = [round(v, 4) for v in ses]
lesson.numbers["rescale_code_kl"] = [round(v, 4) for v in kls]
lesson.numbers["rescale_near_fraction_prior"] = [round(v, 4) for v in nears]
lesson.report("rescale_max_se_change", max(ses) - min(ses),
              "  ... largest change of the test error over these scales")  # fmt: skip

# (c) the distance of every point to its nearest training code
dist = {"test codes": nearest_distance(test_z, ref_z),
        "z ~ N(0, I)": nearest_distance(z_prior, ref_z),
        "z ~ N(m, S) fitted": nearest_distance(z_fitted, ref_z)}  # fmt: skip
near = float(np.quantile(dist["test codes"], NEAR_QUANTILE))
lesson.report("near_threshold", near, f"(c) 'near the codes': within this distance of a "
              f"training code ({NEAR_QUANTILE:.0%} of test codes are)")  # fmt: skip
for key, (label, values) in zip(("test", "prior", "fitted"), dist.items()):
    lesson.report(f"nearest_code_median_{key}", float(np.median(values)),
                  f"  ... {label}: median distance to the nearest training code")  # fmt: skip
    lesson.report(f"near_fraction_{key}", float(np.mean(values <= near)),
                  f"  ... {label}: fraction near the codes")  # fmt: skip
prior_near = dist["z ~ N(0, I)"] <= near  # (n,) which prior samples landed near a code

fig = Figure(figsize=(16.5, 5.4), layout="constrained")
axes = fig.subplots(1, 3, width_ratios=(1.0, 1.0, 1.1))
vals, vecs = np.linalg.eigh(code_cov)  # the fitted Gaussian's 2σ ellipse
angle = math.degrees(math.atan2(vecs[1, 1], vecs[0, 1]))
panels = (("z ~ N(0, I)", z_prior[:1000], "black", np.concatenate([test_z, z_prior[:1000]])),
          ("z ~ N(m, S), fitted", z_fitted[:500], "red", test_z))  # fmt: skip
for ax, (label, z, colour, extent) in zip(axes[:2], panels):
    lo, hi = extent.min(axis=0), extent.max(axis=0)  # panel b: zoomed in on the codes
    centre, half = (lo + hi) / 2, 0.55 * float((hi - lo).max())
    for c in np.unique(test_y):
        ax.scatter(*test_z[test_y == c].T, s=3, alpha=0.35, linewidths=0,
                   color=colormaps["tab10"](int(c) % 10), rasterized=True)  # fmt: skip
    ax.scatter([], [], s=12, color="0.6", label="test codes (coloured by class, as in Part 3)")
    ax.scatter(*z.T, s=5, color=colour, linewidths=0, rasterized=True,
               label=f"{len(z):,} samples {label}")  # fmt: skip
    for r in (1.0, 2.0):  # the prior's 1σ and 2σ circles, as in Part 3
        ax.add_patch(Ellipse((0, 0), 2 * r, 2 * r, fill=False, linestyle="--", color="0.3"))
    ax.plot([], [], "--", color="0.3", label="1σ and 2σ circles of N(0, I)")
    ax.add_patch(Ellipse(code_mean, 4 * math.sqrt(vals[1]), 4 * math.sqrt(vals[0]), angle=angle,
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
positive = np.concatenate([v[v > 0] for v in dist.values()])
edges = np.geomspace(max(float(positive.min()), 1e-5), float(positive.max()), 50)
for (label, values), colour in zip(dist.items(), ("tab:blue", "black", "tab:red")):
    axes[2].hist(values, bins=edges, histtype="step", linewidth=1.6, color=colour,
                 label=f"{label}: median {np.median(values):.3g}")  # fmt: skip
axes[2].axvline(near, color="0.4", linestyle=":",
                label=f"'near': ≤ {near:.3g} ({NEAR_QUANTILE:.0%} of test codes are)")  # fmt: skip
axes[2].set(xscale="log", xlabel="distance to the nearest training code", ylabel="count",
            title="c) how far each point is from the training codes")  # fmt: skip
axes[2].legend(fontsize=8, loc="upper left")
axes[2].grid(alpha=0.3)
fig.suptitle(f"Part 4 - the codes are not N(0, I) (PGM Lecture 30, Generating Data Using "
             f"Autoencoders): ‖m‖ = {np.linalg.norm(code_mean):.2f}, eigenvalues of S = "
             f"{', '.join(f'{v:.3g}' for v in eig)}, KL(N(m, S) ‖ N(0, I)) = "
             f"{lesson.numbers['code_gaussian_kl']:.2f} nats")  # fmt: skip
common.save_figure(fig, lesson.path("4_codes_vs_prior.png"))

# %% [markdown]
# ## Part 5: are the decodes of z ~ N(0, I) digits?
# Pictures can be argued about; numbers less so. First a check that needs no model: the
# MSE decoder's output is unbounded, yet on the codes it was trained on it stays (almost)
# inside the pixel range [0, 1]. Where it never saw a code it extrapolates, and pixels
# leave [0, 1]. (For drawing and classifying, decodes are clipped to [0, 1].)
#
# Then a classifier, an MLP 784 → 256 → 10 (relu) trained here with the engine
# (cross-entropy, Adam), reads (i) real test images, (i′) their reconstructions,
# (ii) decodes g(z) of z ~ N(0, I) (the lecture's recipe), split into the samples that
# landed near the codes and those that did not (Part 4), (iii) decodes of z ~ N(m, S),
# the Gaussian fitted to the codes. Two scores per kind: the mean confidence
# max_c p(c | x̂), and the entropy of the histogram of predicted classes (ln 10 = 2.303
# nats when all ten come out equally often, as in the test set; 0 when all get one
# class). A classifier trained only on real digits was never asked about non-digits and
# can be sure about a smudge: the class histogram shows what a generator must get right,
# every digit, each as often as in the data. *Predict:* which of the two scores gives the
# prior's decodes away? Last, Part 4's rescaled twins (code × 0.1, × 1, × 10: the same
# loss) decode the same z ~ N(0, I). Does any scale make the prior work?

# %%
CLF_HIDDEN = 256  # the classifier 784-256-10
OUT_OF_RANGE_TOL = 0.05  # a decoded pixel below -0.05 or above 1.05 is "outside [0, 1]"


def outside_fraction(x_hat):
    """The fraction of pixels a decoder put outside [0, 1] (by more than OUT_OF_RANGE_TOL)."""
    return float(np.mean((x_hat < -OUT_OF_RANGE_TOL) | (x_hat > 1.0 + OUT_OF_RANGE_TOL)))


def class_histogram(probs, n_classes: int):
    """(fractions of the rows predicted as each class, the entropy −Σ h log h of them, nats)."""
    h = np.bincount(probs.argmax(axis=1), minlength=n_classes) / max(len(probs), 1)
    return h, float(-(h[h > 0] * np.log(h[h > 0])).sum())


print("Part 5: are the decodes digits? Pixels and a classifier decide")
n_classes, n = train_ds.n_classes, min(len(test_x), N_SAMPLES)
raw = {"real": test_x[:n], "recon": common.decode(model, test_z[:n]),  # (n, 784) each
       "prior": common.decode(model, z_prior),
       "fitted": common.decode(model, z_fitted)}  # fmt: skip
raw["prior_near"], raw["prior_far"] = raw["prior"][prior_near], raw["prior"][~prior_near]
labels = {"real": "(i) real test images", "recon": "(i′) their reconstructions",
          "prior": "(ii) g(z), z ~ N(0, I)", "prior_near": "(ii) ... z near a code",
          "prior_far": "(ii) ... z far from codes",
          "fitted": "(iii) g(z), z ~ N(m, S) fitted"}  # fmt: skip
clf = common.train_classifier(  # an MLP 784-256-10, its minibatch order drawn by [SEED, 5]
    train_ds.images[:LIMIT_TRAIN], train_ds.labels[:LIMIT_TRAIN],
    (test_x.shape[1], CLF_HIDDEN, n_classes), CLF_EPOCHS,
    rng=np.random.default_rng([SEED, 5]))  # fmt: skip
probs = {key: common.class_probabilities(clf, as_image(x)) for key, x in raw.items() if len(x)}
accuracy = float(np.mean(probs["real"].argmax(axis=1) == test_y[:n]))
lesson.report("classifier_test_accuracy", accuracy, f"classifier accuracy on {n:,} test images")

confidence, entropy, outside, hists = {}, {}, {}, {}
for key in [k for k in labels if k in probs]:  # a group may be empty: no sample near the codes
    outside[key] = outside_fraction(raw[key])
    confidence[key] = float(probs[key].max(axis=1).mean())
    hists[key], entropy[key] = class_histogram(probs[key], n_classes)
    print(f"  {labels[key]} ({len(raw[key]):,} images):")
    lesson.report(f"outside_fraction_{key}", outside[key],
                  f"    pixels outside [0, 1] (by > {OUT_OF_RANGE_TOL})")  # fmt: skip
    lesson.report(f"confidence_{key}", confidence[key], "    mean confidence max_c p(c | x)")
    lesson.report(f"class_entropy_{key}", entropy[key], f"    entropy of the predicted-class "
                  f"histogram, nats (max ln {n_classes} = {math.log(n_classes):.3f})")  # fmt: skip
    lesson.report(f"class_histogram_{key}", [round(float(h), 4) for h in hists[key]],
                  "    fraction predicted as each class")  # fmt: skip
    lesson.report(f"top_class_share_{key}", float(hists[key].max()), f"    share of the most "
                  f"frequent class ({train_ds.class_names[int(hists[key].argmax())]})")  # fmt: skip

grid, rows = [], []  # up to 50 decodes near the codes, then up to 50 far, in rows of 10
for mask, label in ((prior_near, "near a code"), (~prior_near, "far from codes")):
    k = min(N_SHOWN // 2, int(mask.sum()) // 10 * 10)
    grid.append(as_image(raw["prior"][np.flatnonzero(mask)[:k]]))
    rows += [label] * (k // 10)
common.show(plots.image_grid(
    np.concatenate(grid), lesson.path("5_decoded_prior_samples.png"),
    f"Part 5 - g(z) for codes z ~ N(0, I) (PGM Lecture 30, Generating Data Using "
    f"Autoencoders), clipped to [0, 1]: {outside['prior']:.1%} of their pixels were outside "
    f"[0, 1] (reconstructions: {outside['recon']:.1%})", row_labels=rows))  # fmt: skip
common.show(plots.image_grid(
    as_image(raw["fitted"][:N_SHOWN]), lesson.path("5_decoded_fitted_gaussian_samples.png"),
    f"Part 5 - g(z) for {N_SHOWN} codes z ~ N(m, S), the Gaussian fitted to the codes, "
    f"clipped to [0, 1] ({outside['fitted']:.1%} of pixels were outside)"))  # fmt: skip
common.show(plots.bar_plot(
    list(confidence.values()), [labels[k] for k in confidence],
    lesson.path("5_classifier_confidence.png"),
    f"Part 5 - mean classifier confidence max_c p(c | x) (classifier test accuracy "
    f"{accuracy:.1%}): high on real images, and not much lower on decodes",
    "mean max_c p(c | x)"))  # fmt: skip

short = [str(c) if len(str(c)) <= 2 else str(c)[:5] for c in train_ds.class_names]
fig = Figure(figsize=(15.0, 7.2), layout="constrained")
axes = fig.subplots(2, 3, sharey=True).ravel()
for ax, key in zip(axes, hists):
    ax.bar(range(n_classes), hists[key], color="tab:blue", alpha=0.85)
    ax.axhline(1.0 / n_classes, color="0.4", linestyle=":", linewidth=1)
    ax.set_xticks(range(n_classes), short, rotation=0 if max(map(len, short)) <= 2 else 60)
    ax.set_title(f"{labels[key]}\nentropy {entropy[key]:.2f} nats, confidence "
                 f"{confidence[key]:.2f}, pixels outside [0, 1] {outside[key]:.1%}",
                 fontsize=10)  # fmt: skip
    ax.grid(alpha=0.3, axis="y")
for ax in axes[len(hists) :]:
    ax.set_visible(False)
for ax in axes[::3]:
    ax.set_ylabel("fraction predicted as this class")
fig.suptitle(f"Part 5 - the classes a classifier sees in each kind of image (dotted: uniform "
             f"1/{n_classes}; entropy at most ln {n_classes} = "
             f"{math.log(n_classes):.2f} nats)")  # fmt: skip
common.save_figure(fig, lesson.path("5_predicted_classes.png"))

# Part 4's rescaled twins: the same loss, but N(0, I) now meets other codes
scaled, rows = [], []
per_scale = {"outside": [], "confidence": [], "entropy": []}
for c, twin in twins.items():
    x_c = common.decode(twin, z_prior)  # (n, 784) g(z / c) of the trained decoder
    p = common.class_probabilities(clf, as_image(x_c))
    per_scale["outside"].append(round(outside_fraction(x_c), 4))
    per_scale["confidence"].append(round(float(p.max(axis=1).mean()), 4))
    per_scale["entropy"].append(round(class_histogram(p, n_classes)[1], 4))
    print(f"  z ~ N(0, I) decoded by the autoencoder with its code times {c:g}: pixels outside "
          f"[0, 1] {per_scale['outside'][-1]:.1%}, confidence {per_scale['confidence'][-1]:.3f},"
          f" class entropy {per_scale['entropy'][-1]:.2f} nats")  # fmt: skip
    scaled.append(as_image(x_c[:20]))
    rows += [f"code × {c:g}"] * 2
for key, values in per_scale.items():
    lesson.numbers[f"rescale_{key}_prior"] = values
common.show(plots.image_grid(
    np.concatenate(scaled), lesson.path("5_prior_samples_by_code_scale.png"),
    "Part 5 - the same 20 codes z ~ N(0, I), decoded by the autoencoder with its code "
    f"multiplied by {', '.join(f'{c:g}' for c in twins)} (all three have the same loss); "
    f"class entropy {', '.join(f'{e:.2f}' for e in per_scale['entropy'])} nats",
    row_labels=rows))  # fmt: skip

# %% [markdown]
# ## What the numbers say
# The autoencoder learned a good 2-D code (it beats the best linear code, PCA), but only
# *a* code: its mean and covariance are whatever initialization and training made them
# (rescaling the code leaves the loss unchanged), and the classes sit in stretched
# clusters with gaps between them. Sampling N(0, I) therefore asks the decoder about
# codes it never saw. In the full MNIST run more than half of the prior samples land
# away from every code; the decoder extrapolates there (about a sixth of their pixels
# leave [0, 1], against 1 % for reconstructions: thick, saturated, noisy strokes), and
# the digits that come out are the wrong mix (0, 1, 3 and 8, the classes on the edge of
# the code cloud, make up about four fifths). The classifier's confidence barely
# notices; the class mix and the pixels do. A Gaussian fitted to the codes does better
# but still lands in the gaps between clusters and blends classes, since the codes are
# not Gaussian either. No rescaling helps: with small codes the prior reaches far
# outside them and the decoder extrapolates, with large ones it covers only the few
# classes near the origin. The code distribution is unknown (PGM Lecture 30), so there
# is nothing right to sample from. The VAE (lesson 02) fixes exactly this: its KL term
# pulls every q(z|x) towards N(0, I), so that the prior becomes the distribution to
# sample from, and generation is then prior sample → decoder, without the encoder
# ([E14](../docs/ERRATA.md#e14-generation-does-not-run-the-encoder)). A QUICK run
# records the verdicts below in summary.json but does not print them.

# %%
N = lesson.numbers
lesson.verdict("autoencoder_beats_pca", N["test_se"] < N["test_se_pca2"] < N["test_se_mean_image"],
               f"the autoencoder beats PCA-2 and the mean image (test error {N['test_se']:.1f} "
               f"< {N['test_se_pca2']:.1f} < {N['test_se_mean_image']:.1f})")  # fmt: skip
lesson.verdict("codes_are_not_standard_normal",
               N["code_gaussian_kl"] > 0.5 and max(abs(np.log(eig))) > math.log(2),
               f"the codes are not N(0, I): KL(N(m, S) ‖ N(0, I)) = {N['code_gaussian_kl']:.2f} "
               "nats, some variance off by more than a factor 2")  # fmt: skip
lesson.verdict("rescaling_keeps_the_loss",
               N["rescale_max_se_change"] < 1e-3 * N["test_se"] and max(kls) - min(kls) > 1.0,
               f"rescaling the code keeps the loss but moves the KL ({min(kls):.2f} to "
               f"{max(kls):.1f} nats)")  # fmt: skip
lesson.verdict("prior_samples_miss_the_codes",
               N["near_fraction_prior"] < 0.5 < N["near_fraction_fitted"],
               f"most z ~ N(0, I) miss the codes ({N['near_fraction_prior']:.0%} near), "
               f"most z ~ N(m, S) do not ({N['near_fraction_fitted']:.0%})")  # fmt: skip
lesson.verdict("decoder_extrapolates_off_the_codes",
               outside["prior"] > 2 * outside["recon"]
               and outside.get("prior_far", 0) > outside.get("prior_near", 1),
               f"pixels outside [0, 1]: prior decodes {outside['prior']:.1%}, reconstructions "
               f"{outside['recon']:.1%}, most where the samples miss the codes")  # fmt: skip
lesson.verdict("prior_decodes_are_the_wrong_mix",
               N["class_entropy_prior"] < N["class_entropy_real"] - 0.2,
               f"prior decodes are the wrong mix of classes (class entropy "
               f"{N['class_entropy_prior']:.2f} vs {N['class_entropy_real']:.2f} "
               "nats)")  # fmt: skip
lesson.verdict("confidence_barely_notices",
               N["confidence_prior"] > N["confidence_recon"] - 0.1,
               f"the classifier's confidence barely notices (prior decodes "
               f"{N['confidence_prior']:.3f}, reconstructions "
               f"{N['confidence_recon']:.3f})")  # fmt: skip
lesson.verdict("no_code_scale_makes_the_prior_work",
               max(per_scale["entropy"]) < N["class_entropy_real"] - 0.2
               and per_scale["outside"][0] > per_scale["outside"][-1],
               "no code scale makes the prior work (each has the wrong class mix; the smallest "
               "code extrapolates most)")  # fmt: skip
summary = lesson.finish()
