# %% [markdown]
# # Lesson 07: semi-supervised regression, a continuous label from few labels
#
# The semi-supervised VAE of the *VAE Extensions slides* ("Semi-supervised VAE", after
# Kingma et al. 2014 and Kang & Cho 2019) with a real-valued label: y is a property of the
# image, here the SLANT of a digit in degrees. Only N training images keep their y; the model
#
#     p(x | y, z) p(z) p(y),   q(y | x) = N(μ_y(x), σ_y²(x)),   q(z | x, y)
#
# learns from all of them with the labelled bound L(x, y) and the unlabelled bound
# U(x) = E_q(y|x)[L(x, y)] + H(q(y|x)), and its regressor q(y | x) is scored against the
# same network trained on the labelled images alone. Parts: 1. the property, 2. the
# objective by hand and why y must be reparameterized (*PGM Lecture 30*, "Reparameterization
# Trick"), 3. few labels: semi-supervised against supervised only, 4. generation with the
# slant swept at a fixed style. Each part opens with its question: guess before you run it.
#
# The slides' slips that this lesson corrects, from [`docs/ERRATA.md`](../docs/ERRATA.md):
# the KL of the labelled bound enters with a minus
# ([E21](../docs/ERRATA.md#e21-plus-kl-in-the-labelled-bound)), and so does the KL of the
# unlabelled one ([E22](../docs/ERRATA.md#e22-plus-kl-and-brackets-in-the-unlabelled-bound)),
# a bound on log p(x), not on log p(x, y)
# ([E23](../docs/ERRATA.md#e23-the-unlabelled-bound-is-on-log-p-of-x)); the KL is of q, not
# of log q ([E18](../docs/ERRATA.md#e18-kl-of-log-q)); q's covariance is σ²I
# ([E1](../docs/ERRATA.md#e1-encoder-covariance-written-sigma-i)) and the Gaussian KL sums
# over the latent units j ([E10](../docs/ERRATA.md#e10-indices-in-the-gaussian-kl-derivation));
# generation needs no encoder
# ([E14](../docs/ERRATA.md#e14-generation-does-not-run-the-encoder)).

# %%
"""Lesson 07: semi-supervised regression, a VAE that learns a digit's slant from few labels.

    python lessons/07_semi_supervised_regression.py [--quick] [--steps 1800] [--repeats 2]

Set MINIVAE_DATA=<folder holding mnist/>; without the MNIST files (and without network) the
lesson says so and uses the built-in Fashion-MNIST subset, whose garments have a slant too.
Measured on 2 cores shared with other jobs, under load, with OPENBLAS_NUM_THREADS=1: --quick
14 s on MNIST (9 s of CPU time); the full run 49 minutes on MNIST (4.8 minutes of CPU time), 44 minutes on the
built-in subset; lessons/README.md has their numbers. In a notebook, edit the settings below
instead of passing options; MINIVAE_QUICK=1 turns QUICK on in both.
"""

QUICK = False  # True: tiny sizes; the numbers then only show that the code runs
SEED = 0  # every random draw follows from it; labelled set r is drawn with SEED + r
DEVICE = "cpu"  # "cpu" (NumPy) or "gpu" (CuPy)
DATASET = "mnist"  # falls back to the built-in Fashion-MNIST subset offline
OUT = "runs/lessons"  # figures, summary.json and the training runs go to OUT/07_.../
PROGRESS = True  # the training loop's line per epoch
STEPS = 1800  # optimizer steps of every model (QUICK: 60); the loop runs the whole epochs that fit
REPEATS = 2  # random labelled sets per number of labels N (QUICK: 1)

# %%
import math
import os
import time

import numpy as np
from matplotlib.figure import Figure

try:
    import common  # a script, or a notebook kernel started in lessons/
except ModuleNotFoundError:
    from lessons import common  # a kernel started in the repository root

import minivae as mv
from minivae import backend as B
from minivae import data as D
from minivae import ops, plots
from minivae.checkpoint import load_model
from minivae.models import ContinuousSemiSupervisedVAE, build_model
from minivae.optim import Adam
from minivae.train import TrainConfig, prepare_data, train

lesson = common.setup("07_semi_supervised_regression", globals(), own=("STEPS", "REPEATS"))

# The model: regressor x-128-(2 x 1), encoder [x, y]-128-(2 x 16), decoder [z, y]-128-x,
# softplus units as in Kingma et al. 2014's M2
HIDDEN = common.pick(([128], [64]), QUICK)  # pairs: (full run, QUICK)
LATENT = 16
ACTIVATION = "softplus"
REGRESSION_WEIGHT = 10.0  # the slides' β on ||y − E_q[y|x]||² per labelled example
LEARNING_RATE = 1e-3  # Adam, for the semi-supervised models and the baseline alike
N_LABELS = common.pick(((100, 300, 1000), (20, 50)), QUICK)  # labelled images; [0]: main N
BETAS_Z = (1.0, 3.0)  # KL weight of z in training; 1 is the slides' J exactly
BATCH_UNLABELLED, BATCH_LABELLED = common.pick(((100, 100), (64, 50)), QUICK)  # per step
LIMIT_TRAIN = common.pick((None, 2000), QUICK)  # None: all training images are unlabelled
N_TEST, N_CURVE = common.pick(((10000, 2000), (500, 300)), QUICK)  # test images: scores, curves
N_STYLES = 6  # Part 4: test images whose style z is kept while y is swept
SWEEP = np.linspace(-2.5, 2.5, 9)  # y in standard deviations of the labelled slants
steps, repeats = lesson.pick("STEPS", 60), lesson.pick("REPEATS", 1)  # QUICK, unless given

train_ds = D.load_for_lesson(DATASET, "train")
test_ds = D.load_for_lesson(DATASET, "test")
lesson.dataset_used(train_ds.name)
x_train = train_ds.images if LIMIT_TRAIN is None else train_ds.images[:LIMIT_TRAIN]  # (N, 784)
x_test = test_ds.images[:N_TEST]  # (N_test, 784), grey levels in [0, 1]
per_epoch = len(x_train) // BATCH_UNLABELLED  # optimizer steps in one epoch of the loop
epochs = max(1, round(steps / per_epoch))
steps = epochs * per_epoch  # what every model, the baseline too, is trained for
lesson.report("n_train", len(x_train), "training images (every one unlabelled for U)")
lesson.report("steps", steps, f"optimizer steps of every model ({epochs} epochs)")


@mv.no_grad()
def predict(model, x):
    """E_q[y | x] = μ_y(x) in degrees for host images (N, 784): host (N,) float64."""
    mu = np.concatenate([B.to_numpy(model.predict(D.to_device(x[s : s + 1000])).data)
                         for s in range(0, len(x), 1000)])  # fmt: skip  (N, 1) standardized
    return model.label_mean + model.label_std * mu[:, 0].astype(np.float64)


def scores(model, x, slants):
    """(RMSE in degrees, R² = 1 − MSE / Var(slant)) of the model's predictions."""
    mse = float(np.mean((predict(model, x) - slants) ** 2))
    return math.sqrt(mse), 1.0 - mse / float(slants.var())


# %% [markdown]
# ## Part 1: how much do digits lean, and can the slant be read off the image?
# Treat the ink I(r, c) of an image (row r downwards, column c) as a mass. Its centre is
# (r̄, c̄), its second central moments μ_rr = Σ (r − r̄)² I / Σ I and
# μ_rc = Σ (r − r̄)(c − c̄) I / Σ I. μ_rc / μ_rr is the shear: the columns the ink moves per
# row going down (what the classic "deskewing" of MNIST undoes). A digit leaning right
# ("/") moves left going down, so its slant, positive to the right, is
#
#     slant = atan(−μ_rc / μ_rr)   (degrees, 0 = upright)   = minivae.data.slant_degrees
#
# It is computed from x, as Kang & Cho's molecular properties are, so every image could be
# labelled; the lesson hides all but N labels. The prior is p(y) = N(0, 1): y is the slant
# standardized by the mean and standard deviation of the N labelled images, the only slants
# the model may know (the training loop does this: `ContinuousSemiSupervisedVAE.data_config`).
# *Predict:* the spread of MNIST's slants in degrees: 2°, 15° or 45°?

# %%
print("Part 1: the slant of a digit, from its second moments")
slants_train, slants_test = D.slant_degrees(x_train), D.slant_degrees(x_test)  # (N,) degrees
lesson.report("slant_train_mean_degrees", float(slants_train.mean()),
              "slant of all training images: mean (degrees)")  # fmt: skip
lesson.report("slant_train_std_degrees", float(slants_train.std()), "  ... standard deviation")
lesson.report("slant_test_std_degrees", float(slants_test.std()),
              "slant of the test images: standard deviation (the error of knowing nothing)")
# ten columns from the most left-leaning to the most right-leaning test images
order = np.argsort(slants_test, kind="stable")
bins = np.array_split(order[int(0.02 * len(order)) : int(0.98 * len(order))], 10)
grid = np.stack([x_test[b[np.linspace(0, len(b) - 1, 3).round().astype(int)]] for b in bins],
                axis=1).reshape(30, -1)  # fmt: skip  (3 rows x 10, 784)
common.show(plots.image_grid(
    grid, lesson.path("1_slant_examples.png"),
    f"Part 1 - test images of {test_ds.name} ordered by their slant atan(−μ_rc / μ_rr): a "
    "tenth of the images per column, its median slant on top", ncols=10,
    col_labels=[f"{np.median(slants_test[b]):+.0f}°" for b in bins]))  # fmt: skip
config0 = TrainConfig(dataset=train_ds.name, n_val=0, n_labelled=N_LABELS[0],
                      limit_train=LIMIT_TRAIN, seed=SEED, model={"kind": "ssvae-continuous"})
labelled0 = prepare_data(config0).labelled  # the loop's labelled set 0 of the main N
common.show(plots.histogram_plot(
    {"all training images": slants_train,
     f"the {N_LABELS[0]} labelled ones": slants_train[labelled0]},
    lesson.path("1_slant_histogram.png"), "Part 1 - the slant of the training images, and of "
    "the few whose slant the model is told", "slant (degrees, > 0 leans right)"))  # fmt: skip

# %% [markdown]
# ## Part 2: is the objective one line of code per line of the slides, and why reparameterize y?
# For a labelled pair (x, y) (VAE Extensions slides, "For data points with labels"; the KL
# with a minus, [E21](../docs/ERRATA.md#e21-plus-kl-in-the-labelled-bound)):
#
#     L(x, y) = E_q(z|x,y)[log p(x | y, z)] + log p(y) − KL(q(z | x, y) ‖ p(z))
#
# with one z = μ(x, y) + σ(x, y) ⊙ ε_z, log p(x | y, z) = Σ_pixels [x l − softplus(l)] for
# the decoder's logits l at [z, y], KL = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²) (Computational
# Intelligence Lab, Series 9, Problem 1.7), log p(y) = −½ y² − ½ log 2π. For an unlabelled x
# ("For data points without labels"), y is drawn from the regressor with the
# reparameterization trick (PGM Lecture 30), y = μ_y + σ_y ε_y, and
#
#     U(x) = E_q(y|x)[L(x, y)] + H(q(y | x)),   H = ½ (log 2π + 1 + log σ_y²)
#
# a bound on log p(x) ([E22](../docs/ERRATA.md#e22-plus-kl-and-brackets-in-the-unlabelled-bound),
# [E23](../docs/ERRATA.md#e23-the-unlabelled-bound-is-on-log-p-of-x)). The objective
# ("Overall training objective", written as a quantity to maximize) is
#
#     J = Σ_labelled [L(x, y) − β ‖y − E_q[y|x]‖²] + Σ_unlabelled U(x)
#
# On eight images, an untrained model in float64, each line computed by hand and held
# against the library. Then the gradient of U with respect to μ_y: once through the
# reparameterized y, once with the same y as a constant. *Predict:* how large is ∂U/∂μ_y
# when the sample y carries no path back to μ_y? (M2, lesson 06, sums over its ten
# classes instead; a continuous y cannot be summed over.)

# %%
print("Part 2: L(x, y), U(x) and J on one minibatch, by hand")
rng = np.random.default_rng([SEED, 2])
hand = rng.choice(len(x_train), 8, replace=False)  # eight training images
y_hand = (slants_train[hand] - slants_train[hand].mean()) / slants_train[hand].std()
with mv.set_default_dtype("float64"):
    model = ContinuousSemiSupervisedVAE(hidden=HIDDEN, latent=LATENT, activation=ACTIVATION,
                                        regression_weight=REGRESSION_WEIGHT)  # fmt: skip
    x = mv.Tensor(B.from_numpy(x_train[hand], dtype=np.float64))  # (B, 784), pixels in [0, 1]
    y = mv.Tensor(B.from_numpy(y_hand[:, None], dtype=np.float64))  # (B, 1), standardized
    eps_z = B.from_numpy(rng.standard_normal((len(hand), LATENT)))  # (B, 16) ε_z ~ N(0, I)
    eps_y = B.from_numpy(rng.standard_normal((len(hand), 1)))  # (B, 1) ε_y ~ N(0, I)

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
    # J over the batch used twice, once with its labels and once without; the loss is −J
    # per example
    J = (L - REGRESSION_WEIGHT * sq).sum() + U.sum()
    loss_by_hand = -J / (2 * len(hand))

    lib_L = model.elbo(x, y, eps=eps_z)["elbo"]
    lib_U = model.elbo(x, eps=eps_z, eps_y=eps_y)["elbo"]
    batch = D.Batch(x, x_labelled=x, y_labelled=y)  # the minibatch used twice
    loss, _ = model.loss(batch, eps_labelled=eps_z, eps_unlabelled=eps_z, eps_y=eps_y)
    for key, mine, theirs in (("L", L, lib_L), ("U", U, lib_U), ("loss", loss_by_hand, loss)):
        lesson.report(f"by_hand_minus_library_{key}",
                      float(np.max(np.abs(B.to_numpy(mine.data - theirs.data)))),
                      f"max |{key} by hand − the library's|", ".2e")  # fmt: skip
    lesson.report("by_hand_L_mean", float(L.data.mean()),
                  "L(x, y) per example at random weights (nats)")  # fmt: skip
    lesson.report("by_hand_U_mean", float(U.data.mean()), "U(x) per example at random weights")

    # the gradient of U with respect to μ_y: through the reparameterized sample, and without
    mu_leaf = mv.Tensor(mu_y.data.copy(), requires_grad=True)  # (B, 1), a leaf to read
    y_r = mu_leaf + ops.exp(0.5 * mv.Tensor(log_var_y.data)) * mv.Tensor(eps_y)
    bound(x, y_r).sum().backward()
    grad_reparam = float(np.abs(B.to_numpy(mu_leaf.grad)).max())
    y_const = mv.Tensor(y_r.data.copy())  # the same numbers, no path back to μ_y
    mu_leaf.grad = None
    (bound(x, y_const).sum() + 0.0 * mu_leaf.sum()).backward()
    grad_detached = float(np.abs(B.to_numpy(mu_leaf.grad)).max())
lesson.report("grad_mu_y_reparameterized", grad_reparam,
              "max |∂U/∂μ_y| with y = μ_y + σ_y ε (reparameterized)")  # fmt: skip
lesson.report("grad_mu_y_detached", grad_detached,
              "  ... with the same y as a constant (no reparameterization)")  # fmt: skip

# %% [markdown]
# ## Part 3: do the unlabelled images make the regressor better than the labels alone?
# The semi-supervised models train through the library's loop, `minivae.train.train` with
# `{"kind": "ssvae-continuous", ...}`: each step takes an unlabelled batch (for U, any
# training image) and a batch of the N labelled ones (for L and the squared error), and
# minimizes −J per example. The loop picks the N labelled images class-balanced (as for M2)
# with its seed, standardizes their slants into y, and writes a checkpoint after each epoch.
# The baseline is the regressor network alone, from the same initial weights, trained on the
# same labelled images to minimize ||y − μ_y(x)||² for the same number of steps: a short loop
# of its own below, since the library's loop trains whole models. Both are scored on test
# images by the RMSE of the slant in degrees and by R² = 1 − MSE / Var(slant) (0: predicting
# the average slant, 1: perfect), each N on REPEATS random labelled sets.
#
# U(x) can teach the regressor only through a decoder that uses y: if z carries the slant
# too, the decoder can ignore y, and the unlabelled images then pull q(y|x) towards the prior
# p(y) (the posterior of y is its prior when p(x|y,z) does not depend on y). Nothing in J
# prefers y to z: on unlabelled images a nat of slant costs the same KL in either. So the
# semi-supervised model is trained twice: with J as the slides write it (β_z = 1), and with
# the KL of z weighted β_z = 3 (lesson 04's knob), which makes information in z three times
# dearer than in y. The reported bounds stay the true ones; only the training objective changes.
# For the main N the lesson follows the error during training, and beside it how strongly
# the decoder follows y (Part 4's measure, a slope: 1 = it draws the slant asked for, 0 = it
# ignores y). *Predict:* at N = 100, which of the three regressors is best? And at N = 1000?

# %%


@mv.no_grad()
def sweep_styles(model, x_styles):
    """Keep each image's style z = μ(x, E_q[y|x]) and decode it at every y of SWEEP.

    Returns (images (R S, 784), asked slants (S,) in degrees, measured slants (R, S) in
    degrees, their correlation, the slope of measured against asked).
    """
    mu_z, _ = model.encode(D.to_device(x_styles))  # (R, latent): y = the regressor's mean
    z = np.repeat(B.to_numpy(mu_z.data), len(SWEEP), axis=0)  # (R S, latent)
    y = np.tile(SWEEP, len(x_styles))[:, None]  # (R S, 1): row r, sweep value s
    images = B.to_numpy(model.decode(D.to_device(z), D.to_device(y)).data).astype(np.float64)
    asked = model.label_mean + model.label_std * SWEEP  # (S,) degrees
    measured = D.slant_degrees(images).reshape(len(x_styles), len(SWEEP))  # (R, S)
    flat = np.tile(asked, len(x_styles))
    corr = float(np.corrcoef(flat, measured.reshape(-1))[0, 1])
    slope = float(np.polyfit(flat, measured.reshape(-1), 1)[0])
    return images, asked, measured, corr, slope


def config_for(n, r, beta_z=1.0):
    """The training loop's config: N labelled images of labelled set r, z's KL weighted beta_z."""
    model = {"kind": "ssvae-continuous", "hidden": HIDDEN, "latent": LATENT, "beta": beta_z,
             "activation": ACTIVATION, "regression_weight": REGRESSION_WEIGHT}  # fmt: skip
    return TrainConfig(model=model, dataset=train_ds.name, epochs=epochs, lr=LEARNING_RATE,
                       batch_size=BATCH_UNLABELLED, labelled_batch_size=BATCH_LABELLED,
                       n_labelled=n, binarize="none", n_val=0, limit_train=LIMIT_TRAIN,
                       seed=SEED + r, progress=PROGRESS)  # fmt: skip



def on_epoch_of(held: dict, watch: bool):
    """An on_epoch hook for train(): it keeps the live model in held["model"] and, when
    watch, adds the test RMSE and the decoder's slope to the epoch's metrics row."""

    def on_epoch(model, epoch):
        held["model"] = model
        if watch:
            return {"curve_rmse": scores(model, x_curve, s_curve)[0],
                    "curve_slope": sweep_styles(model, x_styles)[4]}  # fmt: skip

    return on_epoch


def train_baseline(config, watch):
    """The regressor alone on the labelled images for `steps` steps, from train()'s initial
    weights: (model, its labelled images, a history as train() writes one, from epoch 0)."""
    splits = prepare_data(config)  # the loop's own data: the same labelled images, the same y
    B.manual_seed(config.seed)
    model = build_model(config.model)  # built as train() builds it: the same initial weights
    opt = Adam(model.regressor.parameters(), lr=config.lr)
    x_l, y_l = splits.x_train[splits.labelled], splits.y_train[splits.labelled]  # (N, 784), (N, 1)
    hook = on_epoch_of({}, watch)
    history = [{"epoch": 0, **(hook(model, 0) or {})}]  # the start, where every model starts
    rng, step = np.random.default_rng(config.seed), 0
    while step < steps:
        for xb, yb in D.batches(x_l, min(BATCH_LABELLED, len(x_l)), y_l, rng=rng, drop_last=True):
            diff = mv.Tensor(yb) - model.predict(xb)  # y − μ_y(x), (B_l, 1)
            loss = (diff * diff).sum(axis=1).mean()  # mean ||y − E_q[y|x]||² over the batch
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step % per_epoch == 0:  # the end of an epoch of the semi-supervised models
                epoch = step // per_epoch
                history.append({"epoch": epoch, **(hook(model, epoch) or {})})
            if step == steps:
                break
    return model, x_l, history


print("Part 3: few labels, semi-supervised against supervised only")
x_curve, s_curve = x_test[:N_CURVE], slants_test[:N_CURVE]
styles = [int(np.flatnonzero(test_ds.labels[:N_TEST] == c)[0]) for c in range(N_STYLES)]
x_styles = x_test[styles]  # (R, 784) the first test image of each of the first six classes
names = ["baseline"] + [f"ssvae_betaz{b:g}" for b in BETAS_Z]
log = print if PROGRESS else (lambda *args: None)  # the loop's line per epoch
table, kept, curves = {}, {}, {}
for n in N_LABELS:
    res = {name: {"rmse": [], "r2": [], "seconds": []} for name in names}
    fit, mean_rmse, scale = [], [], []
    for r in range(repeats):
        watch = n == N_LABELS[0] and r == 0  # learning curves for the main N, labelled set 0
        t0 = time.perf_counter()
        base, x_l, history = train_baseline(config_for(n, r), watch)
        runs = {"baseline": (base, time.perf_counter() - t0, history)}
        scale.append((base.label_mean, base.label_std))  # the labelled slants: y's origin, unit
        print(f"  N = {n}, labelled set {r} (slant {scale[-1][0]:+.1f} ± {scale[-1][1]:.1f}°)")
        for beta_z in BETAS_Z:
            held, folder = {}, lesson.path(os.path.join("runs", f"n{n}_set{r}_betaz{beta_z:g}"))
            history = train(config_for(n, r, beta_z), folder, log=log,
                            on_epoch=on_epoch_of(held, watch))  # fmt: skip
            runs[f"ssvae_betaz{beta_z:g}"] = (held["model"], sum(h["seconds"] for h in history),
                                              history)  # fmt: skip
        for name, (model, seconds, history) in runs.items():
            rmse, r2 = scores(model, x_test, slants_test)
            for key, value in (("rmse", rmse), ("r2", r2), ("seconds", seconds)):
                res[name][key].append(value)
            print(f"    {name:<13} test RMSE {rmse:.2f}° (R² {r2:.3f}), {seconds:.0f} s")
            kept[(n, r, name)] = model
            if watch:  # every curve starts at the baseline's step 0: the same initial weights
                curves[name] = history if name == "baseline" else [curves["baseline"][0], *history]
        fit.append(scores(base, x_l, D.slant_degrees(x_l))[0])
        mean_rmse.append(math.sqrt(float(np.mean((scale[-1][0] - slants_test) ** 2))))
    for name, v in res.items():
        lesson.report(f"n{n}_{name}_rmse", float(np.mean(v["rmse"])),
                      f"N = {n}, {name}: test RMSE (degrees), mean over labelled sets")
        lesson.report(f"n{n}_{name}_rmse_each", [round(e, 4) for e in v["rmse"]],
                      "  ... per labelled set")  # fmt: skip
        lesson.report(f"n{n}_{name}_r2_each", [round(q, 5) for q in v["r2"]], "  ... R²")
        lesson.report(f"n{n}_{name}_seconds", round(sum(v["seconds"]), 1), "  ... seconds")
    lesson.report(f"n{n}_baseline_train_rmse_each", [round(e, 4) for e in fit],
                  f"N = {n}: baseline RMSE on its own labelled images")  # fmt: skip
    lesson.report(f"n{n}_mean_predictor_rmse_each", [round(e, 4) for e in mean_rmse],
                  "  ... RMSE of predicting the labelled mean slant")  # fmt: skip
    lesson.report(f"n{n}_label_mean", scale[0][0], "  ... mean slant of labelled set 0 (y = 0)")
    lesson.report(f"n{n}_label_std", scale[0][1], "  ... its standard deviation (y's unit)")
    table[n] = {**{name: v["rmse"] for name, v in res.items()}, "mean": mean_rmse}
lesson.report("n_labels", list(N_LABELS), "numbers of labelled images")
lesson.report("repeats", repeats, "labelled sets per N")
for name, history in curves.items():
    lesson.report(f"curve_{name}_rmse", [round(h["curve_rmse"], 3) for h in history],
                  f"N = {N_LABELS[0]}, {name}: test RMSE after each epoch ({N_CURVE} images)")
    if name != "baseline":  # the baseline's decoder is never trained
        lesson.report(f"curve_{name}_slope", [round(h["curve_slope"], 4) for h in history],
                      "  ... the decoder's slope of decoded against asked slant")  # fmt: skip
lesson.report("curve_steps", [h["epoch"] * per_epoch for h in curves["baseline"]],
              "  ... at these steps")

# %% [markdown]
# Three figures: the test error against N, the learning curves of the main N (all three
# models start from the same weights, so they share the baseline's point at step 0), and
# predicted against true slant.

# %%
legend = {"baseline": "supervised only (the same network)", "mean": "predicting the labelled mean"}
legend.update({f"ssvae_betaz{b:g}": f"semi-supervised VAE, β_z = {b:g}" for b in BETAS_Z})
ns = np.array(N_LABELS, dtype=float)
series = {legend[k]: (ns, np.mean([table[n][k] for n in N_LABELS], axis=1),
                      np.std([table[n][k] for n in N_LABELS], axis=1))
          for k in [*names, "mean"]}  # fmt: skip
common.show(plots.line_plot(
    series, lesson.path("3_error_vs_labels.png"), f"Part 3 - test RMSE of the predicted slant "
    f"against the number of labelled images ({len(x_test)} test images, mean ± std over "
    f"{repeats} labelled set(s))", "labelled training images N (log scale)",
    "test RMSE (degrees)", logx=True))  # fmt: skip

fig = Figure(figsize=(10.0, 4.2), layout="constrained")
left, right = fig.subplots(1, 2, sharex=True)
for name, history in curves.items():
    x_steps = [h["epoch"] * per_epoch for h in history]
    left.plot(x_steps, [h["curve_rmse"] for h in history], marker="o", markersize=3,
              label=legend[name])  # fmt: skip
    if name != "baseline":
        right.plot(x_steps, [h["curve_slope"] for h in history], marker="o", markersize=3,
                   label=legend[name], color=left.lines[-1].get_color())  # fmt: skip
left.set(ylabel=f"test RMSE (degrees, {N_CURVE} images)", title="error of the predicted slant")
right.axhline(1.0, color="0.4", linewidth=1, linestyle="--", label="decoded = asked")
right.axhline(0.0, color="0.4", linewidth=1, linestyle=":", label="y ignored")
right.set(ylabel="decoded slant per asked degree (slope)",
          title="how much the decoder follows y (Part 4's measure)")  # fmt: skip
for ax in (left, right):
    ax.set_xlabel("optimizer step")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=9)
fig.suptitle(f"Part 3 - during training, N = {N_LABELS[0]} labels, labelled set 0")
common.save_figure(fig, lesson.path("3_learning_curves.png"))

fig = Figure(figsize=(4.2 * len(names), 4.6), layout="constrained")
axes = fig.subplots(1, len(names), sharex=True, sharey=True)
lo, hi = np.percentile(slants_test, [0.5, 99.5])
for ax, name in zip(axes, names):
    pred = predict(kept[(N_LABELS[0], 0, name)], x_test)  # (N_test,) degrees
    ax.scatter(slants_test, pred, s=3, alpha=0.3, color="tab:blue", linewidths=0)
    ax.plot([lo, hi], [lo, hi], color="0.3", linewidth=1, label="predicted = true")
    rmse = math.sqrt(float(np.mean((pred - slants_test) ** 2)))
    ax.set(xlim=(lo, hi), ylim=(lo, hi), xlabel="true slant (degrees)",
           title=f"{legend[name].split(' (')[0]}: RMSE {rmse:.2f}°")  # fmt: skip
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=9)
axes[0].set_ylabel("predicted slant E_q[y|x] (degrees)")
fig.suptitle(f"Part 3 - predicted against true slant of {len(x_test)} test images, "
             f"N = {N_LABELS[0]} labels, labelled set 0")  # fmt: skip
common.save_figure(fig, lesson.path("3_predicted_vs_true.png"))

# %% [markdown]
# ## Part 4: does the decoder draw the slant it is asked for?
# VAE Extensions slides, "What does conditional generation look like?". Encode a test
# image's style, z = μ(x, E_q[y|x]), keep it, and decode p(x | y, z) while y sweeps from
# −2.5 to +2.5 standard deviations of the labelled slants. (This redraws a given image;
# new images would take z ~ p(z) and need no encoder at all,
# [E14](../docs/ERRATA.md#e14-generation-does-not-run-the-encoder).) If the decoder has
# learned what y means, the same digit leans from left to right. Part 1's formula on each
# decoded image turns the picture into numbers: the correlation and slope of measured
# against asked-for slant. The model shown comes back from the checkpoint the training loop
# wrote, which must predict exactly what the trained model did. *Predict:* which model's
# decoder follows y more closely, β_z = 1 or β_z = 3?

# %%
print("Part 4: conditional generation, the slant swept at a fixed style")
main_n, shown = N_LABELS[0], f"ssvae_betaz{BETAS_Z[-1]:g}"
for beta_z in BETAS_Z:
    *_, corr, slope = sweep_styles(kept[(main_n, 0, f"ssvae_betaz{beta_z:g}")], x_styles)
    lesson.report(f"generation_ssvae_betaz{beta_z:g}_correlation", corr,
                  f"β_z = {beta_z:g}: correlation of measured with asked-for slant")
    lesson.report(f"generation_ssvae_betaz{beta_z:g}_slope", slope,
                  "  ... slope (measured degrees per asked degree)")  # fmt: skip
path = lesson.path(os.path.join("runs", f"n{main_n}_set0_betaz{BETAS_Z[-1]:g}", "checkpoint.npz"))
loaded, meta = load_model(path, expect_kind="ssvae-continuous")
trained = kept[(main_n, 0, shown)]
lesson.report("checkpoint_max_abs_diff",
              float(np.max(np.abs(predict(loaded, x_test) - predict(trained, x_test)))),
              "max |E_q[y|x]| difference, reloaded checkpoint − trained model")  # fmt: skip

images, asked, measured, corr, slope = sweep_styles(loaded, x_styles)  # (R S, 784), ...
grid = np.concatenate([x_styles[:, None, :], images.reshape(N_STYLES, len(SWEEP), -1)], axis=1)
classes = [test_ds.class_names[test_ds.labels[i]] if test_ds.class_names
           else str(test_ds.labels[i]) for i in styles]  # fmt: skip
common.show(plots.image_grid(
    grid.reshape(-1, x_styles.shape[1]), lesson.path("4_conditional_generation.png"),
    f"Part 4 - conditional generation (β_z = {BETAS_Z[-1]:g}, N = {main_n} labels): each row "
    "keeps the style z of the test image on the left and asks for the slant on top",
    ncols=len(SWEEP) + 1, col_labels=["input"] + [f"{a:+.0f}°" for a in asked],
    row_labels=classes))  # fmt: skip
lesson.report("generation_beta_z", BETAS_Z[-1], "the model of the figures: β_z")
lesson.report("generation_asked_degrees", [round(float(a), 2) for a in asked],
              "slants asked for (degrees)")  # fmt: skip
lesson.report("generation_measured_mean_degrees", [round(float(m), 2) for m in measured.mean(0)],
              "  ... measured on the decoded images, mean over the rows")  # fmt: skip
series = {name: (asked, measured[i]) for i, name in enumerate(classes)}
series["measured = asked"] = (asked, asked)
common.show(plots.line_plot(
    series, lesson.path("4_generated_slant.png"), f"Part 4 - slant measured on the decoded "
    f"images against the slant asked for, one curve per style z (β_z = {BETAS_Z[-1]:g}; "
    f"correlation {corr:.2f}, slope {slope:.2f})", "slant asked for, y (degrees)",
    "slant of the decoded image (degrees)"))  # fmt: skip

# %% [markdown]
# ## What the numbers say
# Each claim of the lesson against this run's numbers (a QUICK run records them in
# summary.json but does not print them: its sizes are too small to decide). On MNIST
# (lessons/README.md has the numbers) the unlabelled images help only once the KL of z is
# weighted: with β_z = 3 the decoder follows y more closely and the regressor beats the
# baseline at N = 100 and 300, while J as written (β_z = 1) helps on one labelled set of
# N = 100 and hurts elsewhere. With 1000 labels the baseline wins: the labels alone now
# teach the network more than the bound does. On the built-in Fashion-MNIST subset (7,000
# garments, the offline fallback) the decoder follows y far less and the semi-supervised
# models do not beat the baseline: several claims below are then NOT met.

# %%
N = lesson.numbers
few, many = N_LABELS[:-1], N_LABELS[-1]
rmse = {(n, name): N[f"n{n}_{name}_rmse"] for n in N_LABELS for name in names}
b1, b3 = (f"ssvae_betaz{b:g}" for b in BETAS_Z)
print("In short (test RMSE in degrees, mean over labelled sets):")
for n in N_LABELS:
    print(f"  N = {n}: " + ", ".join(f"{rmse[(n, name)]:.2f} {legend[name]}" for name in names))
wins = sum(e1 < e0 for n in N_LABELS for e1, e0 in zip(N[f"n{n}_{b1}_rmse_each"],
                                                       N[f"n{n}_baseline_rmse_each"]))  # fmt: skip
hand_ok = max(N[f"by_hand_minus_library_{k}"] for k in ("L", "U", "loss")) < 1e-9
lesson.verdict("objective_by_hand_is_the_library_s", hand_ok,
               "L(x, y), U(x) and J by hand equal the library's (float64)")  # fmt: skip
lesson.verdict("reparameterization_carries_the_gradient", grad_reparam > 0 and grad_detached == 0,
               "U reaches μ_y only through the reparameterized y (∂U/∂μ_y = 0 without it)")
lesson.verdict("beta_z3_beats_the_baseline_with_few_labels",
               all(rmse[(n, b3)] < rmse[(n, "baseline")] for n in few),
               f"N = {', '.join(map(str, few))}: β_z = 3 has a lower test RMSE than "
               "supervised only")  # fmt: skip
lesson.verdict("beta_z3_beats_j_as_written", all(rmse[(n, b3)] < rmse[(n, b1)] for n in N_LABELS),
               "at every N, β_z = 3 has a lower test RMSE than J as written (β_z = 1)")
lesson.verdict("j_as_written_does_not_reliably_help", wins <= len(N_LABELS) * repeats / 2,
               f"J as written (β_z = 1) beats supervised only in {wins} of "
               f"{len(N_LABELS) * repeats} runs (N x labelled set): at most half")  # fmt: skip
lesson.verdict("the_baseline_wins_with_many_labels", rmse[(many, "baseline")] < rmse[(many, b3)],
               f"N = {many}: supervised only beats β_z = 3")  # fmt: skip
lesson.verdict("beta_z3_decoder_follows_y_more",
               N[f"generation_{b3}_slope"] > N[f"generation_{b1}_slope"],
               "the decoder follows y more closely with β_z = 3 than with β_z = 1 (slope)")
lesson.verdict("generation_follows_the_asked_slant", N[f"generation_{b3}_correlation"] > 0.9,
               "β_z = 3: measured slant follows the asked one (correlation > 0.9)")
lesson.verdict("checkpoint_reproduces_the_model", N["checkpoint_max_abs_diff"] == 0.0,
               "the checkpoint predicts exactly what the trained model did")  # fmt: skip
summary = lesson.finish()
