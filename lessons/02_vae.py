"""Lesson 02: the variational autoencoder, step by step, and how good it gets on MNIST.

The VAE replaces the autoencoder's code z = f(x) by a distribution
q(z|x) = N(μ(x), diag σ²(x)), samples z from it with the reparameterization trick,
and maximizes the ELBO = E_q[log p(x|z)] − KL(q(z|x) ‖ N(0, I)) (seed 000, "VAE
Cost function"; seed 001, Problem 1). This lesson builds that objective by hand,
then trains VAEs and measures what each piece of the lecture does:

  1. one minibatch through the VAE by hand, with shapes: μ and log σ², z = μ + σ ⊙ ε,
     the closed-form KL, the ELBO; equal to model.elbo(x) with the same ε, gradients too
                                                   (seed 000, "Reparameterization Trick";
                                                    seed 001, Problem 1.5 and 1.7)
  2. autoencoder vs VAE latent spaces with a 2-D code          (seed 001, Problem 2, Fig. 1a vs 1b)
  3. the decoded 2-D latent manifold, and samples from the prior with z = 2 vs z = 20
                                                               (seed 002, "Generation Samples")
  4. the Gaussian decoder: seed 000's cost α‖x − g(z)‖² + KL with α = 1/(2σ²), for three
     fixed σ, against the Bernoulli decoder: blur, sharpness and the KL each reaches
                                                   (seed 000, "Variational Inference View")
  5. L > 1 samples per example: the variance of the gradient for L = 1, 5, 20
                                                               (seed 001, Problem 1.4)
  6. the analytic KL against its Monte-Carlo estimate: the variance of each gradient
                                                               (seed 001, Problem 1.7)
  7. the quality bar: the 784-400-20 VAE on dynamically binarized MNIST (all 60,000 images),
     its test log-likelihood by importance sampling (K = 1000), the ELBO, the active units,
     against PyTorch with the same protocol                    (seed 003, "Applications")

Seeds are the lecture notes in the shared seeds folder (see DESIGN.md); "seed 001,
Problem 1.7" means Problem 1.7 of file 001_*.txt.

Run (about 5 minutes on 2 idle cores and 20 on busy ones, most of it Part 7; --quick takes
about 10 s):

    python lessons/02_vae.py [--quick] [--epochs 10] [--nll-k 1000]

--epochs sets the training epochs of the main VAE of Part 7 (default 10; PyTorch's
numbers for the same protocol are quoted for 10, 30 and 100), --nll-k the number
of importance samples per test image (default 1000). Figures and summary.json go to
runs/lessons/02_vae/ (change the root with --out); the checkpoint of the main VAE
and its metrics go to the vae_training/ subfolder, the small models of Parts 2-4 to
small_models/. Without the MNIST files (and without network) the lesson says so in
one line and uses the built-in Fashion-MNIST subset instead.
"""

# %% [markdown]
# # Setup
# Imports, the hyperparameters as named constants (pairs are (full run, --quick)),
# the lesson's two extra options, and small helpers that push host arrays
# through a model in batches.

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
from matplotlib.patches import Circle

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout

import minivae as mv
from lessons.common import Lesson, lesson_options, parse_args, positive_int
from minivae import backend as B
from minivae import data as D
from minivae import ops, plots
from minivae.checkpoint import load_model
from minivae.distributions import standard_normal_log_prob
from minivae.metrics import (
    active_units,
    default_chunk,
    evaluate,
    importance_sampled_log_likelihood,
    unit_activity,
)
from minivae.models import VAE
from minivae.train import TrainConfig, train

NAME = "02_vae"

# The architecture of every VAE here: 784-400-20 (Kingma & Welling 2013, one hidden layer)
HIDDEN = ((400,), (64,))  # encoder 784-400-(2 x latent), decoder latent-400-784; --quick: 64
LATENT = 20
ACTIVATION = "relu"
BATCH_SIZE = 128
LEARNING_RATE = 1e-3  # Adam
TEST_BINARIZATION_SEED = 12345  # the test set is binarized once, with this seed
N_TEST = (10000, 300)  # test images used (the whole test split in the full run)

# Part 1: one minibatch by hand
N_REPARAM_DRAWS = (100_000, 10_000)  # ε draws for the Monte-Carlo checks of z and of the KL

# Parts 2-4: small models, each trained briefly on a subset (the point is the comparison)
SMALL_EPOCHS = (4, 1)
SMALL_LIMIT_TRAIN = (30000, 600)  # training images, a validation split taken out of them
SMALL_N_VAL = (5000, 100)
SIGMAS = (0.05, 0.2, 1.0)  # Part 4: fixed decoder σ of the Gaussian decoders; α = 1/(2σ²)
MANIFOLD_N = 20  # Part 3: a 20 x 20 grid of decoded z
N_SAMPLES_SHOWN = 30  # Part 3: prior samples per model
N_SHOWN = 10  # Part 4: test images and samples per row
N_SHARPNESS = 500  # Part 4: decoded samples whose sharpness is measured

# Parts 5-6: the gradient's variance over draws of ε, at a fixed model and minibatch
GRAD_LS = (1, 5, 20)  # samples of z per example (seed 001, Problem 1.4)
GRAD_BATCH = 32
GRAD_REPEATS = (50, 8)  # gradients drawn per setting

# Part 7: the quality bar (PyTorch's numbers are for this protocol on the same machine)
EPOCHS = (10, 1)  # --epochs overrides
LIMIT_TRAIN = (None, 1000)  # None: all 60,000 training images (n_val = 0: no validation split)
NLL_K = (1000, 100)  # importance samples per test image; --nll-k overrides
IS_BATCH = 100  # test images per call of importance_sampled_log_likelihood
IS_CURVE_IMAGES = (500, 50)  # test images for the estimate-against-K figure
IS_CURVE_KS = (1, 3, 10, 30, 100, 300, 1000, 3000, 10000)  # (those up to --nll-k are used)
TORCH_REFERENCE_NLL = {10: 97.1, 30: 93.9, 100: 91.6}  # PyTorch, same protocol, K = 1000
LITERATURE_NLL = 89.8  # a one-hidden-layer VAE after about 500 epochs (DESIGN.md, Reference points)
ACTIVE_THRESHOLD = 0.01  # a unit is active when Cov_x(E_q[z_u]) > 0.01 (Burda et al. 2015)

EVAL_BATCH = 1000  # rows per forward pass when encoding and decoding


def pick(pair, quick: bool):
    """The --quick value of a (full, quick) pair when quick, else the full one."""
    return pair[1] if quick else pair[0]


def lesson_args(argv):
    """The options every lesson has (lessons/common.py), plus this lesson's --epochs and --nll-k."""
    own = lesson_options()
    own.add_argument("--epochs", type=positive_int, default=None,
                     help=f"epochs of the main VAE of Part 7 (default {EPOCHS[0]}, "
                          f"--quick {EPOCHS[1]}); PyTorch's reference exists for 10, 30, 100")
    own.add_argument("--nll-k", type=positive_int, default=None,
                     help=f"importance samples per test image (default {NLL_K[0]}, "
                          f"--quick {NLL_K[1]})")  # fmt: skip
    return parse_args(argv, __doc__, own=own)


@mv.no_grad()
def encode(model, x):
    """(μ(x), log σ²(x)) for host images (N, 784), in batches: host (N, latent) each, float64.
    For the autoencoder: (f(x), None)."""
    mus, log_vars = [], []
    for s in range(0, len(x), EVAL_BATCH):
        mu, log_var = model.encode(D.to_device(x[s : s + EVAL_BATCH]))
        mus.append(B.to_numpy(mu.data))
        if log_var is not None:
            log_vars.append(B.to_numpy(log_var.data))
    mu = np.concatenate(mus).astype(np.float64)
    return mu, (np.concatenate(log_vars).astype(np.float64) if log_vars else None)


@mv.no_grad()
def decode(model, z):
    """Data-space means for host codes (N, latent): Bernoulli probabilities or Gaussian means."""
    parts = [B.to_numpy(model.decode(D.to_device(z[s : s + EVAL_BATCH])).data)
             for s in range(0, len(z), EVAL_BATCH)]  # fmt: skip
    return np.concatenate(parts).astype(np.float64)


def gaussian_kl_to_standard(mean, cov):
    """KL(N(m, S) ‖ N(0, I)) = ½ (tr S + mᵀm − d − log det S), in nats."""
    _, logdet = np.linalg.slogdet(cov)
    return float(0.5 * (np.trace(cov) + mean @ mean - len(mean) - logdet))


def log_mean_exp(a, axis=0):
    """log mean exp(a) along an axis, without overflow (host NumPy)."""
    top = a.max(axis=axis, keepdims=True)
    return np.log(np.mean(np.exp(a - top), axis=axis)) + np.squeeze(top, axis=axis)


def save_figure(fig: Figure, path: str) -> None:
    """A multi-panel figure that minivae.plots has no function for: Agg canvas, no pyplot."""
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100, bbox_inches="tight", pad_inches=0.1)


def train_model(lesson: Lesson, folder: str, model_config: dict, dataset: str, *, epochs: int,
                limit, n_val: int, binarize: str = "dynamic"):  # fmt: skip
    """Train with minivae.train into the lesson's folder; (model in eval mode, history, seconds)."""
    config = TrainConfig(
        model=dict(model_config), dataset=dataset, epochs=epochs, batch_size=BATCH_SIZE,
        lr=LEARNING_RATE, binarize=binarize, n_val=n_val, limit_train=limit,
        seed=lesson.args.seed, progress=not lesson.args.no_progress, fallback_dataset=True,
    )  # fmt: skip
    folder = lesson.path(folder)
    stale = os.path.join(folder, "metrics.jsonl")
    if os.path.exists(stale):  # train() appends to it; a re-run starts a fresh log
        os.remove(stale)
    t0 = time.perf_counter()
    history = train(config, folder, log=lambda line: print("    " + line))
    seconds = time.perf_counter() - t0
    model, _ = load_model(os.path.join(folder, "checkpoint.npz"), expect_kind=model_config["kind"])
    model.eval()
    return model, history, seconds


def layers(quick: bool, latent: int = LATENT) -> str:
    """The network's sizes as the lecture writes them: "784-400-20"."""
    return "-".join(str(n) for n in (784, *pick(HIDDEN, quick), latent))


def vae_config(quick: bool, latent: int = LATENT, likelihood: str = "bernoulli",
               sigma=None) -> dict:  # fmt: skip
    """The model config of a VAE with this lesson's architecture."""
    config = {"kind": "vae", "x_dim": 784, "hidden": list(pick(HIDDEN, quick)), "latent": latent,
              "activation": ACTIVATION, "likelihood": likelihood}  # fmt: skip
    if sigma is not None:
        config["sigma"] = sigma
    return config


# %% [markdown]
# # Part 1: one minibatch through the VAE, by hand (seed 000, seed 001 Problem 1)
# The encoder is an MLP whose last layer has 2 × 20 outputs: the first 20 are the
# mean μ(x), the last 20 the log-variance log σ²(x) of q(z|x) = N(μ, diag σ²).
# (Log-variance, not σ: any real number is a valid log σ², so the network needs
# no constraint, and σ = exp(½ log σ²) is always positive.)
#
#   z = μ + σ ⊙ ε,  ε ~ N(0, I)         (seed 000, "Reparameterization Trick"; seed 001, 1.5)
#   log p(x|z) = Σ_pixels [x log p + (1 − x) log(1 − p)],  p = sigmoid(logits of g(z))
#              = Σ_pixels [x l − softplus(l)]                   (Bernoulli decoder, logits l)
#   KL(q ‖ N(0, I)) = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²)       (seed 001, Problem 1.7)
#   ELBO = log p(x|z) − KL, one z per example                   (seed 001, Problem 1.2 and 1.4)
#
# Sums run over the pixels and the latent units of each example; the batch is
# averaged (minivae/distributions.py: one number per example, in nats).
# The model is untrained here: the numbers are those of random weights, the
# point is that every line of the lecture's formula is one line of code, and
# that the library's VAE computes exactly that. The check runs in float64, so
# the two agree to rounding (1e-12), not just to float32's 1e-5.

# %%


def part1_by_hand(lesson: Lesson, x_host, rng, quick):
    with mv.set_default_dtype("float64"):
        model = VAE(x_dim=x_host.shape[1], hidden=pick(HIDDEN, quick), latent=LATENT,
                    activation=ACTIVATION)  # fmt: skip
        x = mv.Tensor(B.from_numpy(x_host, dtype=np.float64))  # (B, 784) binarized images
        n, d = x.shape[0], LATENT
        h = model.encoder(x)  # (B, 40): the encoder's 2 x 20 outputs
        mu = h[:, :d]  # (B, 20) mean of q(z|x)
        log_var = h[:, d:]  # (B, 20) log σ² of q(z|x)
        eps = B.from_numpy(rng.standard_normal((n, d)))  # (B, 20) ε ~ N(0, I)
        # seed 000, "Reparameterization Trick": z = μ + ε σ, with σ = exp(½ log σ²)
        sigma = ops.exp(0.5 * log_var)  # (B, 20)
        z = mu + sigma * mv.Tensor(eps)  # (B, 20)
        logits = model.decoder(z)  # (B, 784) logits l of the Bernoulli decoder
        # log p(x|z) = Σ_i [x_i l_i − softplus(l_i)]: log sigmoid(l) = l − softplus(l)
        log_px_z = (x * logits - ops.softplus(logits)).sum(axis=1)  # (B,)
        # seed 001, Problem 1.7: −KL = ½ Σ_j (1 + log σ_j² − μ_j² − σ_j²)
        kl = 0.5 * (mu * mu + ops.exp(log_var) - 1.0 - log_var).sum(axis=1)  # (B,)
        elbo = log_px_z - kl  # (B,)
        for label, t in (("x", x), ("encoder output h", h), ("μ = h[:, :20]", mu),
                         ("log σ² = h[:, 20:]", log_var), ("ε", mv.Tensor(eps)), ("σ", sigma),
                         ("z = μ + σ ⊙ ε", z), ("decoder logits l", logits),
                         ("log p(x|z)", log_px_z), ("KL", kl), ("ELBO", elbo)):  # fmt: skip
            print(f"  {label:<20} shape {tuple(t.shape)}")

        library = model.elbo(x, eps=eps)  # the same ε
        for key, mine in (("recon", log_px_z), ("kl", kl), ("elbo", elbo)):
            lesson.report(f"by_hand_minus_library_{key}",
                          float(np.max(np.abs(B.to_numpy(mine.data - library[key].data)))),
                          f"max over the batch of |{key} by hand − model.elbo(x)['{key}']|",
                          )  # fmt: skip
        lesson.report("by_hand_elbo_mean", float(elbo.data.mean()),
                      f"ELBO per example at random weights (recon "
                      f"{float(log_px_z.data.mean()):.1f}, KL {float(kl.data.mean()):.2f} nats)",
                      )  # fmt: skip

        # the gradients of −mean ELBO: backward through the hand-built graph and through model.loss
        (-elbo.mean()).backward()
        mine = {name: B.to_numpy(p.grad).copy() for name, p in model.named_parameters()}
        model.zero_grad()
        loss, _ = model.loss(D.Batch(x), eps=eps)
        loss.backward()
        worst = max(float(np.max(np.abs(mine[name] - B.to_numpy(p.grad))))
                    for name, p in model.named_parameters())  # fmt: skip
        lesson.report("by_hand_minus_library_grad", worst,
                      "max |∂(−ELBO)/∂θ by hand − by model.loss| over all parameters")  # fmt: skip

        # z = μ + σ ε really is N(μ, σ²), and the closed-form KL is E_q[log q(z) − log p(z)]
        draws = pick(N_REPARAM_DRAWS, quick)
        m0, s0 = B.to_numpy(mu.data[0]), B.to_numpy(sigma.data[0])  # (20,) example 0
        zs = m0 + s0 * rng.standard_normal((draws, d))  # (N, 20)
        lesson.report("reparam_mean_error", float(np.max(np.abs(zs.mean(axis=0) - m0) / s0)),
                      f"{draws:,} draws of z for example 0: max_j |mean(z_j) − μ_j| / σ_j "
                      f"(≈ 1/√N = {1 / math.sqrt(draws):.4f})")  # fmt: skip
        lesson.report("reparam_std_error", float(np.max(np.abs(zs.std(axis=0) / s0 - 1))),
                      "  ... max_j |std(z_j) / σ_j − 1|")  # fmt: skip
        log_q = (-0.5 * ((zs - m0) / s0) ** 2 - np.log(s0) - 0.5 * B.LOG_2PI).sum(axis=1)
        log_p = (-0.5 * zs**2 - 0.5 * B.LOG_2PI).sum(axis=1)
        mc = log_q - log_p  # (N,) one-sample KL estimates
        lesson.report("kl_closed_form_example0", float(kl.data[0]),
                      "KL of example 0: closed form (seed 001, Problem 1.7)")  # fmt: skip
        lesson.report("kl_monte_carlo_example0", float(mc.mean()),
                      f"  ... Monte Carlo, mean of log q(z) − log p(z) over {draws:,} draws")
        lesson.report("kl_monte_carlo_se", float(mc.std() / math.sqrt(draws)),
                      "  ... its standard error")  # fmt: skip


# %% [markdown]
# # Part 2: autoencoder vs VAE latent spaces, 2-D codes (seed 001, Problem 2, Fig. 1a vs 1b)
# The same 784-400-2 networks, the same Bernoulli likelihood and data, trained the
# same way; only the objective differs. The autoencoder minimizes −log p(x | z = f(x));
# the VAE maximizes the ELBO, whose KL term pulls every q(z|x) towards N(0, I).
# Fig. 1 of the exercise: the autoencoder's codes are "somewhat structured, but it
# is unclear how to sample from this space"; the VAE's are "more structured and
# compact". Numbers for "compact": fit a Gaussian N(m, S) to the codes and
# measure KL(N(m, S) ‖ N(0, I)); for the VAE the code distribution is the
# aggregate posterior, a mixture of the q(z|x), with covariance Cov(μ) + E[diag σ²].

# %%


def code_moments(mu, log_var=None):
    """Mean and covariance of the codes (the aggregate posterior's when log σ² is given)."""
    mean = mu.mean(axis=0)
    cov = np.cov(mu, rowvar=False)
    if log_var is not None:
        cov = cov + np.diag(np.exp(log_var).mean(axis=0))  # + E_x[diag σ²(x)]
    return mean, cov


def part2_latent_spaces(lesson: Lesson, train_name, x_test, y_test, class_names, quick):
    kw = {"epochs": pick(SMALL_EPOCHS, quick), "limit": pick(SMALL_LIMIT_TRAIN, quick),
          "n_val": pick(SMALL_N_VAL, quick)}  # fmt: skip
    ae_config = {"kind": "ae", "x_dim": 784, "hidden": list(pick(HIDDEN, quick)), "latent": 2,
                 "activation": ACTIVATION, "likelihood": "bernoulli"}  # fmt: skip
    print(f"  training the autoencoder {layers(quick, 2)} ...")
    ae, _, _ = train_model(lesson, os.path.join("small_models", "ae_2d"), ae_config, train_name,
                           **kw)  # fmt: skip
    print(f"  training the VAE {layers(quick, 2)} ...")
    vae2, _, _ = train_model(lesson, os.path.join("small_models", "vae_2d"), vae_config(quick, 2),
                             train_name, **kw)  # fmt: skip

    ae_z, _ = encode(ae, x_test)  # (N, 2) codes f(x)
    mu, log_var = encode(vae2, x_test)  # (N, 2) each
    ae_terms, vae_terms = evaluate(ae, x_test), evaluate(vae2, x_test)
    lesson.report("ae2_test_recon", ae_terms["recon"],
                  "autoencoder: test log p(x | z = f(x)) per image (no KL to pay)")  # fmt: skip
    lesson.report("vae2_test_recon", vae_terms["recon"], "VAE: test E_q[log p(x|z)]")
    lesson.report("vae2_test_kl", vae_terms["kl"], "  ... test KL(q(z|x) ‖ N(0, I))")
    lesson.report("vae2_test_elbo", vae_terms["elbo"], "  ... test ELBO")
    stats = {}
    codes = {"ae": ("autoencoder codes f(x)", ae_z, None),
             "vae": ("VAE aggregate posterior", mu, log_var)}  # fmt: skip
    for key, (label, z, lv) in codes.items():
        mean, cov = code_moments(z, lv)
        stats[key] = gaussian_kl_to_standard(mean, cov)
        lesson.report(f"{key}2_code_mean", [round(float(v), 4) for v in mean], f"{label}: mean")
        lesson.report(f"{key}2_code_cov_eigenvalues",
                      [round(float(v), 4) for v in np.linalg.eigvalsh(cov)[::-1]],
                      "  ... covariance eigenvalues (N(0, I): 1 and 1)")  # fmt: skip
        lesson.report(f"{key}2_code_gaussian_kl", stats[key],
                      "  ... KL(N(m, S) ‖ N(0, I)) of the Gaussian fitted to them")  # fmt: skip
        lesson.report(f"{key}2_code_radius_95", float(np.quantile(np.linalg.norm(z, axis=1), 0.95)),
                      "  ... 95 % of the codes (VAE: means μ) lie within this radius "
                      "(N(0, I) in 2-D: 2.45)")  # fmt: skip

    fig = Figure(figsize=(14.0, 6.2), layout="constrained")
    axes = fig.subplots(1, 2)
    colours = [matplotlib.colormaps["tab10"](i) for i in range(10)]
    panels = (
        (axes[0], ae_z, ("a) autoencoder: codes z = f(x) (seed 001, Fig. 1a)\n"
                         f"fitted Gaussian: KL to N(0, I) = {stats['ae']:.2f} nats")),
        (axes[1], mu, ("b) VAE: posterior means μ(x) (seed 001, Fig. 1b)\n"
                       f"aggregate posterior: KL to N(0, I) = {stats['vae']:.2f} nats")),
    )  # fmt: skip
    size = 3.0 if len(x_test) > 3000 else 10.0
    for ax, z, title in panels:
        for c in range(10):
            keep = y_test == c
            ax.scatter(z[keep, 0], z[keep, 1], s=size, color=colours[c], alpha=0.7, linewidths=0,
                       label=str(class_names[c]), rasterized=True)  # fmt: skip
        for radius in (1.0, 2.0):
            ax.add_patch(Circle((0.0, 0.0), radius, fill=False, linestyle="--", linewidth=1.2,
                                color="black",
                                label="prior N(0, I): 1σ and 2σ" if radius == 1.0 else None))
        ax.set_aspect("equal", adjustable="datalim")
        ax.set(xlabel="$z_0$", ylabel="$z_1$", title=title)
        ax.grid(alpha=0.25)
    axes[1].legend(title="class", loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=9,
                   markerscale=3.0 if size < 5 else 1.5, frameon=False)  # fmt: skip
    fig.suptitle(f"Part 2 - the same {layers(quick, 2)} networks, {len(x_test):,} test images: the "
                 "autoencoder puts its codes anywhere, the VAE's KL term packs them into N(0, I)")
    save_figure(fig, lesson.path("2_latent_spaces_ae_vs_vae.png"))
    return vae2


# %% [markdown]
# # Part 3: the 2-D latent manifold, and generation from the prior (seed 002)
# With z ∈ R², every point of the plane decodes to an image. Kingma & Welling's
# Fig. 4 layout: the grid takes equal steps of *probability* under the prior,
# z = Φ⁻¹(u) for u evenly spaced in (0.05, 0.95), so every cell is about equally
# likely under N(0, I). Neighbouring cells morph into each other: the decoder is
# smooth and the prior has no holes where the VAE put no data.
#
# Generation (seed 002, "Generation Samples"): z ~ N(0, I), x̂ = g(z). The blog
# post found z = 2 "pretty alright" and z = 10 "much better". Here a VAE with
# z = 20 is trained exactly like the one with z = 2 (same data, epochs, seed): two
# numbers cannot hold stroke width, slant and style at once, twenty can, and
# the test ELBO says by how much.

# %%


def part3_manifold_and_samples(lesson: Lesson, vae2, train_name, x_test, rng, quick):
    grid = plots.manifold_grid(MANIFOLD_N)  # (n², 2), row-major, z_1 growing upwards
    plots.latent_manifold(
        decode(vae2, grid), MANIFOLD_N, lesson.path("3_latent_manifold_2d.png"),
        f"Part 3 - the decoder of the 2-D VAE over a {MANIFOLD_N} x {MANIFOLD_N} grid of z, "
        "equal steps of prior probability (seed 002; Kingma & Welling 2013, Fig. 4)",
    )  # fmt: skip

    print(f"  training the VAE {layers(quick)} exactly like the 2-D one ...")
    vae20, _, _ = train_model(lesson, os.path.join("small_models", "vae_20d"), vae_config(quick),
                              train_name, epochs=pick(SMALL_EPOCHS, quick),
                              limit=pick(SMALL_LIMIT_TRAIN, quick),
                              n_val=pick(SMALL_N_VAL, quick))  # fmt: skip
    samples, elbos = [], {}
    for latent, model in ((2, vae2), (LATENT, vae20)):
        terms = evaluate(model, x_test)
        elbos[latent] = terms["elbo"]
        lesson.report(f"vae{latent}_small_test_elbo", terms["elbo"],
                      f"z = {latent}: test ELBO (recon {terms['recon']:.1f}, "
                      f"KL {terms['kl']:.1f})")  # fmt: skip
        z = rng.standard_normal((N_SAMPLES_SHOWN, latent))  # z ~ N(0, I)
        samples.append(decode(model, z))
    plots.image_grid(
        np.concatenate(samples), lesson.path("3_prior_samples_z2_vs_z20.png"),
        f"Part 3 - decoder means g(z) for z ~ N(0, I): latent z = 2 (top rows, test ELBO "
        f"{elbos[2]:.1f}) against z = {LATENT} (bottom rows, test ELBO {elbos[LATENT]:.1f}), "
        "same training (seed 002)",
        ncols=10,
        row_labels=[f"z = {d}" for d in (2, LATENT) for _ in range(N_SAMPLES_SHOWN // 10)],
    )  # fmt: skip
    return vae20


# %% [markdown]
# # Part 4: the Gaussian decoder and its α (seed 000, "VAE Cost function" and
# # "Variational Inference View")
# The lecture's cost is  C(θ, φ) = Σ_i α ‖g_θ(z_i) − x_i‖² + KL(q(z|x_i) ‖ N(0, I)).
# It is the negative ELBO of a Gaussian decoder p(x|z) = N(g(z), σ² I):
#   −log N(x; g(z), σ² I) = ‖x − g(z)‖² / (2σ²) + (D/2) log(2π σ²)
# so α = 1/(2σ²) and the last term is a constant. (The slide drops the 2 and a
# sign along the way; the Gaussian density fixes both.) σ is how much pixel
# noise the model claims. A small σ (large α) makes every squared error
# expensive against the KL: the model pays many nats of KL for detailed codes.
# A large σ makes the KL weigh more: the model gives up details (blurrier
# reconstructions) for a smaller KL, in the limit q(z|x) = p(z) for every x
# ("posterior collapse": KL → 0, every image decodes to the mean image).
# Here three fixed σ on grey-level images, trained like the models of Parts 2
# and 3, against the Bernoulli decoder of Part 3 (binarized images; it has no
# σ: each pixel's cross-entropy is its own weighting).
#
# What the full MNIST run shows: the KL falls from about 110 nats (σ = 0.05)
# to 67 (σ = 0.2) and 11 (σ = 1), and the reconstructions blur (squared error
# 18 → 31). And a warning that is the lecture's point again: in this short
# training the Gaussian decoders' codes do not fill N(0, I). They sit off-centre
# with a tenth to a half of the prior's variance, because the KL's pull on
# where the codes sit is weak against α‖x − g(z)‖² (the offset costs only a few
# of the KL's nats). So z ~ N(0, I) lands where the decoder saw no codes, and its
# unbounded output extrapolates to speckle: lesson 01's failure, back. Decoding
# z from a Gaussian N(m, S) fitted to the codes shows what each decoder did
# learn, and there the blur grows with σ. The Bernoulli VAE, trained the same
# way, fills the prior (variance about 1.1 per unit) and its prior samples look
# like its fitted ones.
#
# The sharpness number is the images' total variation (the summed absolute
# difference between neighbouring pixels) relative to the test images': below
# 1 is blurrier than the data, above 1 is speckled. Samples are decoder means
# g(z); drawing x ~ N(g(z), σ² I) would add σ of white noise to every pixel.

# %%


def total_variation(images):
    """Σ |neighbour differences| per image (N, 784) -> (N,): low for blurry images."""
    im = images.reshape(len(images), 28, 28)
    down, right = np.abs(np.diff(im, axis=1)), np.abs(np.diff(im, axis=2))
    return down.sum(axis=(1, 2)) + right.sum(axis=(1, 2))


@mv.no_grad()
def gaussian_cost_terms(model, x_host, rng):
    """Per-image ‖x − g(z)‖², −log p(x|z) and KL, one z ~ q(z|x) each (host arrays)."""
    se, nll, kl = [], [], []
    for s in range(0, len(x_host), EVAL_BATCH):
        x = D.to_device(x_host[s : s + EVAL_BATCH])
        q = model.posterior(x)
        z = q.sample(eps=D.to_device(rng.standard_normal(q.mu.shape)))  # (B, 20)
        g = model.decode(z)  # (B, 784) decoder means
        se.append(B.to_numpy(((g - x) * (g - x)).sum(axis=1).data))
        nll.append(-B.to_numpy(model.log_likelihood(x, z).data))
        kl.append(B.to_numpy(q.kl_to_standard().data))
    return [np.concatenate(a).astype(np.float64) for a in (se, nll, kl)]


def part4_gaussian_decoder(lesson: Lesson, train_name, vae20, x_grey, rng, quick):
    models, labels = [], []
    for sigma in SIGMAS:
        alpha = 1.0 / (2.0 * sigma**2)
        print(f"  training a Gaussian-decoder VAE with σ = {sigma:g} (α = {alpha:g}) on grey-level "
              "images ...")  # fmt: skip
        folder = os.path.join("small_models", f"vae_gaussian_sigma_{sigma:g}")
        model, _, _ = train_model(lesson, folder, vae_config(quick, LATENT, "gaussian", sigma),
                                  train_name, epochs=pick(SMALL_EPOCHS, quick),
                                  limit=pick(SMALL_LIMIT_TRAIN, quick),
                                  n_val=pick(SMALL_N_VAL, quick), binarize="none")  # fmt: skip
        se, nll, kl = gaussian_cost_terms(model, x_grey, rng)
        d = x_grey.shape[1]
        # seed 000: −log N(x; g, σ² I) = α ‖x − g‖² + (D/2) log(2π σ²), α = 1/(2σ²)
        predicted = alpha * se + 0.5 * d * math.log(2 * math.pi * sigma**2)
        key = f"sigma_{sigma:g}"
        lesson.report(f"{key}_alpha", alpha, f"σ = {sigma:g}: α = 1/(2σ²)")
        lesson.report(f"{key}_nll_minus_alpha_se",
                      float(np.max(np.abs(nll - predicted) / nll.std())),
                      "  ... max |−log p(x|z) − (α‖x − g(z)‖² + D/2 log 2πσ²)| / its spread "
                      "(float32 rounding)")  # fmt: skip
        lesson.report(f"{key}_cost", float((alpha * se + kl).mean()),
                      "  ... the lecture's cost α‖x − g(z)‖² + KL per test image")  # fmt: skip
        lesson.report(f"{key}_se", float(se.mean()), "  ... ‖x − g(z)‖², z ~ q(z|x)")
        lesson.report(f"{key}_kl", float(kl.mean()), "  ... KL(q(z|x) ‖ N(0, I)) in nats")
        models.append(model)
        labels.append(f"σ = {sigma:g}, α = {alpha:g}")
    models.append(vae20)
    labels.append("Bernoulli (Part 3)")
    keys = [f"sigma_{s:g}" for s in SIGMAS] + ["bernoulli"]

    test_tv = float(total_variation(x_grey).mean())
    n = len(x_grey)
    eps_prior = rng.standard_normal((N_SHARPNESS, LATENT))  # the same ε for every model
    recon_rows, sample_rows, row_labels = [x_grey[:N_SHOWN]], [], []
    stats = {name: [] for name in ("kl", "se", "active", "agg_var", "tv_prior", "tv_fitted")}
    for key, label, model in zip(keys, labels, models):
        mu, log_var = encode(model, x_grey)
        recon = np.clip(decode(model, mu), 0.0, 1.0)  # g(μ(x)): the mean reconstruction
        kl = 0.5 * (mu**2 + np.exp(log_var) - 1.0 - log_var).sum(axis=1)  # closed form, per image
        # the codes of the whole test set: the aggregate posterior, summarized as N(m, S)
        m, cov = code_moments(mu, log_var)
        agg_var = float(np.trace(cov)) / LATENT  # N(0, I): 1
        prior = np.clip(decode(model, eps_prior), 0.0, 1.0)  # z ~ N(0, I)
        fitted = np.clip(decode(model, m + eps_prior @ np.linalg.cholesky(cov).T), 0.0, 1.0)
        stats["kl"].append(float(kl.mean()))
        stats["se"].append(float(((recon - x_grey) ** 2).sum(axis=1).mean()))
        stats["active"].append(active_units(mu, ACTIVE_THRESHOLD))
        stats["agg_var"].append(agg_var)
        stats["tv_prior"].append(float(total_variation(prior).mean()) / test_tv)
        stats["tv_fitted"].append(float(total_variation(fitted).mean()) / test_tv)
        lesson.report(f"{key}_test_kl_grey", stats["kl"][-1],
                      f"{label}: KL on the {n:,} grey-level test images, closed form")  # fmt: skip
        lesson.report(f"{key}_recon_se", stats["se"][-1],
                      "  ... ‖x − g(μ(x))‖² of the mean reconstruction")  # fmt: skip
        lesson.report(f"{key}_active_units", stats["active"][-1], f"  ... active units of {LATENT}")
        lesson.report(f"{key}_aggregate_variance", agg_var,
                      "  ... the codes' variance per unit, tr(Cov(μ) + E[diag σ²]) / 20 "
                      "(N(0, I): 1)")  # fmt: skip
        lesson.report(f"{key}_aggregate_mean_norm", float(np.linalg.norm(m)),
                      "  ... ‖mean of the codes‖ (N(0, I): 0)")  # fmt: skip
        lesson.report(f"{key}_sharpness_prior", stats["tv_prior"][-1],
                      "  ... total variation of decoded z ~ N(0, I) / of test images "
                      "(1: like the data, < 1: blurred, > 1: speckled)")  # fmt: skip
        lesson.report(f"{key}_sharpness_fitted", stats["tv_fitted"][-1],
                      "  ... the same for z ~ N(m, S) fitted to the codes")  # fmt: skip
        recon_rows.append(recon[:N_SHOWN])
        sample_rows += [prior[:N_SHOWN], fitted[:N_SHOWN]]
        name = label.split(",")[0]
        row_labels += [f"{name}: z ~ N(0, I)", f"{name}: z ~ N(m, S)"]

    plots.image_grid(
        np.concatenate(recon_rows), lesson.path("4_gaussian_decoder_reconstructions.png"),
        "Part 4 - grey-level test images and their mean reconstructions g(μ(x)), squared error "
        + ", ".join(f"{lab.split(',')[0]} {se:.1f}" for lab, se in zip(labels, stats["se"]))
        + " (seed 000, α = 1/(2σ²))",
        ncols=N_SHOWN, row_labels=["test image"] + labels,
    )  # fmt: skip
    plots.image_grid(
        np.concatenate(sample_rows), lesson.path("4_gaussian_decoder_samples.png"),
        "Part 4 - decoder means g(z), the same ε in every row: z ~ N(0, I) (the prior), and "
        "z ~ N(m, S) fitted to the test images' codes; the codes' variance per unit: "
        + ", ".join(f"{lab.split(',')[0]} {v:.2f}" for lab, v in zip(labels, stats["agg_var"])),
        ncols=N_SHOWN, row_labels=row_labels,
    )  # fmt: skip

    fig = Figure(figsize=(16.0, 4.6), layout="constrained")
    axes = fig.subplots(1, 4)
    names = [lab.replace(", ", "\n").replace(" (", "\n(") for lab in labels]
    colours = ["tab:blue"] * len(SIGMAS) + ["tab:orange"]
    panels = (
        ("kl", "nats per image", "a) KL(q(z|x) ‖ N(0, I)) it reaches", "{:.1f}"),
        ("se", "‖x − g(μ(x))‖² per image", "b) squared error of the reconstruction", "{:.1f}"),
        ("active", f"active units (of {LATENT})", "c) latent units in use", "{:d}"),
        ("agg_var", "variance per unit (N(0, I): 1)", "d) how much of N(0, I) the codes fill",
         "{:.2f}"),
    )  # fmt: skip
    for ax, (stat, ylabel, title, fmt) in zip(axes, panels):
        values = stats[stat]
        bars = ax.bar(range(len(values)), values, color=colours, alpha=0.85)
        ax.bar_label(bars, labels=[fmt.format(v) for v in values], padding=2, fontsize=9)
        ax.set_xticks(range(len(values)), names, fontsize=9)
        ax.margins(y=0.15)
        ax.set(ylabel=ylabel, title=title)
        ax.grid(alpha=0.3, axis="y")
    axes[3].axhline(1.0, color="0.3", linestyle="--", linewidth=1)
    fig.suptitle("Part 4 - Gaussian decoders with fixed σ (blue) and the Bernoulli decoder "
                 f"(orange), {layers(quick)}, on the grey-level test images")  # fmt: skip
    save_figure(fig, lesson.path("4_kl_error_active_units.png"))


# %% [markdown]
# # Part 5: L samples per example and the variance of the gradient (seed 001, Problem 1.4)
# The ELBO's expectation is estimated with L samples,
#   ELBO ≈ (1/L) Σ_l [log p(x|z_l)] − KL,  z_l = μ + σ ε_l,
# and its gradient is an average of L independent single-sample gradients, so
# its covariance is 1/L times the one-sample covariance: L = 20 costs 20 decoder
# passes and removes 95 % of the noise. We measure it at a fixed model (the
# 20-D VAE of Part 3) and a fixed minibatch: draw the gradient R times with new
# ε, and sum the variances of its coordinates (the trace of its covariance).
# The encoder's gradient and the decoder's are reported apart: only the
# reconstruction term is noisy here, since the KL is in closed form.

# %%


def gradient_moments(model, loss_fn, repeats: int):
    """Draw the gradient of loss_fn() `repeats` times; per parameter group, the trace of its
    covariance over the draws and the squared norm of its mean (host floats)."""
    named = list(model.named_parameters())
    sizes = [p.size for _, p in named]
    is_encoder = np.concatenate([np.full(s, name.startswith("encoder.")) for (name, _), s
                                 in zip(named, sizes)])  # fmt: skip
    mean = np.zeros(sum(sizes))
    m2 = np.zeros(sum(sizes))  # Σ (g − mean)², updated one draw at a time (Welford)
    for k in range(1, repeats + 1):
        model.zero_grad()
        loss_fn().backward()
        g = np.concatenate([np.zeros(p.size) if p.grad is None
                            else B.to_numpy(p.grad).ravel().astype(np.float64)
                            for _, p in named])  # fmt: skip
        delta = g - mean
        mean += delta / k
        m2 += delta * (g - mean)  # exactly 0 when every draw is the same
    var = m2 / (repeats - 1)  # per coordinate, unbiased
    out = {}
    for part, mask in (("all", slice(None)), ("encoder", is_encoder), ("decoder", ~is_encoder)):
        out[part] = float(var[mask].sum())
        out[f"{part}_mean_sq"] = float((mean[mask] ** 2).sum())
    model.zero_grad()
    return out


def elbo_loss(model, x, n_samples: int, kl: str, seed):
    """−mean ELBO with L = n_samples and the KL estimator ``kl``, as a function to call again:
    each call draws new ε (L, B, latent) from a generator made from ``seed``, so that two
    estimators given the same seed see the same ε, draw for draw (common random numbers)."""
    rng = np.random.default_rng(seed)

    def loss():
        eps = D.to_device(rng.standard_normal((n_samples, x.shape[0], model.latent)))
        model.kl = kl
        try:
            return -model.elbo(x, eps=eps)["elbo"].mean()
        finally:
            model.kl = "analytic"

    return loss


def part5_samples_per_example(lesson: Lesson, model, x, seed, quick):
    repeats = pick(GRAD_REPEATS, quick)
    results = {}
    for L in GRAD_LS:
        t0 = time.perf_counter()
        results[L] = gradient_moments(model, elbo_loss(model, x, L, "analytic", seed), repeats)
        r = results[L]
        lesson.report(f"grad_var_L{L}", r["all"],
                      f"L = {L}: trace of the gradient's covariance over {repeats} draws "
                      f"(encoder {r['encoder']:.4g}, decoder {r['decoder']:.4g}; "
                      f"{time.perf_counter() - t0:.1f} s)")  # fmt: skip
        lesson.report(f"grad_snr_L{L}", r["all_mean_sq"] / r["all"],
                      "  ... signal to noise: ‖mean gradient‖² / trace")  # fmt: skip
    for L in GRAD_LS[1:]:
        lesson.report(f"grad_var_ratio_L1_over_L{L}", results[1]["all"] / results[L]["all"],
                      f"variance at L = 1 / at L = {L} (expected {L})")  # fmt: skip
    ls = np.array(GRAD_LS, dtype=float)
    fig = Figure(figsize=(7.4, 5.0), layout="constrained")
    ax = fig.add_subplot()
    for part, colour in (("all", "black"), ("encoder", "tab:orange"), ("decoder", "tab:blue")):
        values = np.array([results[L][part] for L in GRAD_LS])
        ax.plot(ls, values, "o-", color=colour, label=f"{part} parameters" if part != "all"
                else "all parameters")  # fmt: skip
        ax.plot(ls, values[0] / ls, "--", color=colour, linewidth=1, alpha=0.7)
    ax.plot([], [], "--", color="0.4", linewidth=1, label="1/L × the value at L = 1")
    ax.set(xscale="log", yscale="log", xticks=ls, xticklabels=[f"{L:g}" for L in ls],
           xlabel="L, samples of z per example", ylabel="trace of the gradient's covariance",
           title=f"Part 5 - L samples of z per example (seed 001, Problem 1.4): the gradient's\n"
                 f"variance falls as 1/L ({repeats} draws of ε, fixed model, minibatch of "
                 f"{len(x)})")  # fmt: skip
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9)
    save_figure(fig, lesson.path("5_gradient_variance_vs_L.png"))
    return results[1]


# %% [markdown]
# # Part 6: the closed-form KL against its Monte-Carlo estimate (seed 001, Problem 1.7)
# The KL can be estimated at the same z as the reconstruction,
#   KL ≈ log q(z|x) − log p(z),  z = μ + σ ε   (seed 001, Problem 1.4: the L-sample ELBO
#                                               written as log p(x, z) − log q(z|x)),
# which is unbiased but noisy; Problem 1.7 computes it exactly for Gaussians,
#   KL = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²),
# and then its gradient has no noise at all. Same model, same minibatch, L = 1,
# and the very same draws of ε as Part 5 (common random numbers): the variance
# of the whole ELBO gradient with each KL, and of the KL term's gradient alone.
# The decoder's gradient does not involve the KL, so with the same ε it is the
# same draw for draw; the whole difference is in the encoder's gradient.

# %%


def part6_kl_estimators(lesson: Lesson, model, x, analytic, seed, quick):
    repeats = pick(GRAD_REPEATS, quick)
    mc = gradient_moments(model, elbo_loss(model, x, 1, "mc", seed), repeats)  # Part 5's ε
    lesson.report("grad_var_elbo_analytic_kl", analytic["all"],
                  f"ELBO gradient, closed-form KL: trace of covariance (= Part 5, L = 1; "
                  f"encoder {analytic['encoder']:.4g})")  # fmt: skip
    lesson.report("grad_var_elbo_mc_kl", mc["all"],
                  f"ELBO gradient, Monte-Carlo KL: trace of covariance "
                  f"(encoder {mc['encoder']:.4g})")  # fmt: skip
    lesson.report("grad_var_ratio_mc_over_analytic", mc["all"] / analytic["all"],
                  "  ... ratio Monte-Carlo / closed form, all parameters")  # fmt: skip
    lesson.report("grad_var_ratio_mc_over_analytic_encoder", mc["encoder"] / analytic["encoder"],
                  "  ... ratio for the encoder's parameters")  # fmt: skip

    def kl_only(kind):
        def loss():
            q = model.posterior(x)
            if kind == "analytic":
                return q.kl_to_standard().mean()
            z = q.sample()  # (B, 20), z = μ + σ ε
            return (q.log_prob(z) - standard_normal_log_prob(z)).mean()

        return loss

    kl_analytic = gradient_moments(model, kl_only("analytic"), repeats)
    kl_mc = gradient_moments(model, kl_only("mc"), repeats)
    lesson.report("grad_var_kl_term_analytic", kl_analytic["all"],
                  "gradient of the KL term alone, closed form: trace of covariance (exactly 0)")
    lesson.report("grad_var_kl_term_mc", kl_mc["all"], "  ... Monte Carlo")

    fig = Figure(figsize=(12.0, 4.6), layout="constrained")
    axes = fig.subplots(1, 2)
    names = ["closed-form KL", "Monte-Carlo KL"]
    for ax, pair, title in (
        (axes[0], (analytic, mc), "a) the whole ELBO gradient (L = 1)"),
        (axes[1], (kl_analytic, kl_mc), "b) the gradient of the KL term alone"),
    ):  # fmt: skip
        enc = [r["encoder"] for r in pair]
        dec = [r["decoder"] for r in pair]
        ax.bar(range(2), dec, color="tab:blue", alpha=0.85, label="decoder parameters")
        bars = ax.bar(range(2), enc, bottom=dec, color="tab:orange", alpha=0.85,
                      label="encoder parameters")  # fmt: skip
        ax.bar_label(bars, labels=[f"{e + d:.4g}" for e, d in zip(enc, dec)], padding=2,
                     fontsize=9)  # fmt: skip
        ax.set_xticks(range(2), names)
        ax.margins(y=0.15)
        ax.set(ylabel="trace of the gradient's covariance", title=title)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=9, loc="upper left")
    fig.suptitle(f"Part 6 - closed-form vs Monte-Carlo KL (seed 001, Problem 1.7): variance over "
                 f"{repeats} draws of ε at a fixed model; ratio {mc['all'] / analytic['all']:.2f} "
                 "for the whole gradient")  # fmt: skip
    save_figure(fig, lesson.path("6_kl_estimator_gradient_variance.png"))


# %% [markdown]
# # Part 7: the quality bar, test log-likelihood by importance sampling (seed 003, "Applications")
# Protocol: the 784-400-20 VAE, Bernoulli decoder, Adam 1e-3, batch 128, all
# 60,000 training images binarized afresh every epoch ("dynamic"), the 10,000
# test images binarized once with a fixed seed. log p(x) is estimated by
# importance sampling with q(z|x) as the proposal:
#   p(x) = E_q[p(x|z) p(z) / q(z|x)] ≈ (1/K) Σ_k w_k,  w_k = p(x|z_k) p(z_k) / q(z_k|x)
# (seed 003, "Applications"; Burda et al. 2015). By Jensen, E[log (1/K) Σ w_k] is
# itself a lower bound on log p(x); it equals the ELBO at K = 1 and rises towards
# log p(x) as K grows. The test NLL is −log p̂(x) averaged over the test set.
# Reference: PyTorch with the same protocol reaches 97.1 nats after 10 epochs,
# 93.9 after 30 and 91.6 after 100 (K = 1000); a one-hidden-layer VAE in the
# literature ≈ 89.8 nats after about 500 epochs.
#
# Active units (Burda et al. 2015): unit u is in use when its posterior mean
# varies with x, Cov_x(E_q[z_u]) > 0.01. An unused unit has q(z_u|x) = p(z_u) for
# every x: the KL pushed it back to the prior, and the decoder ignores it.

# %%


@mv.no_grad()
def is_curve(model, x_host, ks):
    """Mean over images of the K-sample estimate log (1/K) Σ_k w_k for each K in ks, from one set
    of max(ks) log-weights per image (the first K of them for each K): host array (len(ks),)."""
    k_max = max(ks)
    rows = []
    for s in range(0, len(x_host), IS_BATCH):
        xb = D.to_device(x_host[s : s + IS_BATCH])
        chunk = default_chunk(model, len(xb))
        parts = [B.to_numpy(model.log_importance_weights(xb, min(chunk, k_max - done)).data)
                 for done in range(0, k_max, chunk)]  # fmt: skip
        log_w = np.concatenate(parts).astype(np.float64)  # (K_max, b)
        rows.append([log_mean_exp(log_w[:k], axis=0) for k in ks])  # each (b,)
    return np.array([np.concatenate([r[i] for r in rows]).mean() for i in range(len(ks))])


def part7_quality(lesson: Lesson, train_name, x_test, rng, quick):
    args = lesson.args
    epochs = args.epochs or pick(EPOCHS, quick)
    k = args.nll_k or pick(NLL_K, quick)
    print(f"  training the VAE {layers(quick)} for {epochs} epochs on all training images ...")
    model, history, train_seconds = train_model(
        lesson, "vae_training", vae_config(quick), train_name, epochs=epochs,
        limit=pick(LIMIT_TRAIN, quick), n_val=0,
    )  # fmt: skip
    lesson.report("epochs", epochs, "epochs trained")
    lesson.report("train_seconds", round(train_seconds, 1), "training wall time (s)")

    # the test set, K importance samples per image, in batches of IS_BATCH images
    t0 = time.perf_counter()
    log_px, elbo, mus = [], [], []
    report_every = max(1, len(x_test) // 5 // IS_BATCH) * IS_BATCH
    for s in range(0, len(x_test), IS_BATCH):
        xb = D.to_device(x_test[s : s + IS_BATCH])  # (b, 784)
        log_px.append(importance_sampled_log_likelihood(model, xb, k=k))  # (b,) host
        with mv.no_grad():
            elbo.append(B.to_numpy(model.elbo(xb)["elbo"].data))  # (b,) one z per image
            mus.append(B.to_numpy(model.encode(xb)[0].data))  # (b, 20)
        done = s + len(xb)
        if not quick and done % report_every == 0 and done < len(x_test):
            print(f"    importance sampling: {done:,} of {len(x_test):,} test images, "
                  f"{time.perf_counter() - t0:.0f} s")  # fmt: skip
    eval_seconds = time.perf_counter() - t0
    log_px = np.concatenate(log_px).astype(np.float64)
    elbo = np.concatenate(elbo).astype(np.float64)
    mu = np.concatenate(mus)
    nll = float(-log_px.mean())
    reference = TORCH_REFERENCE_NLL.get(epochs)
    lesson.report("nll_k", k, "importance samples per test image, K")
    lesson.report("n_test", len(x_test), "test images")
    lesson.report("test_nll", nll, f"test NLL −log p(x), importance-sampled with K = {k} (nats)")
    lesson.report("test_elbo", float(elbo.mean()), "test ELBO (one z per image; nats)")
    lesson.report("test_is_minus_elbo", float((log_px - elbo).mean()),
                  "  ... log p̂(x) − ELBO, mean over test images (≥ 0: the ELBO is a lower bound)")
    lesson.report("test_is_above_elbo_fraction", float(np.mean(log_px > elbo)),
                  "  ... fraction of test images with log p̂(x) > their one-sample ELBO",
                  )  # fmt: skip
    lesson.report("active_units", active_units(mu, ACTIVE_THRESHOLD),
                  f"active units of {LATENT} (Cov_x(E_q[z_u]) > {ACTIVE_THRESHOLD})")  # fmt: skip
    lesson.report("eval_seconds", round(eval_seconds, 1), "importance-sampling wall time (s)")
    lesson.report("torch_reference_nll", reference,
                  f"PyTorch, same protocol, {epochs} epochs, K = 1000 (None: not measured "
                  "for this number of epochs)")  # fmt: skip
    lesson.report("literature_nll", LITERATURE_NLL,
                  "a one-hidden-layer VAE in the literature, about 500 epochs")  # fmt: skip

    # figures: training curves, the estimate against K, the per-image gap, units, images
    plots.training_curves(
        history, lesson.path("7_training_curves.png"),
        f"Part 7 - the {layers(quick)} VAE on all training images, dynamically binarized: "
        "training ELBO = E_q[log p(x|z)] − KL, mean over each epoch (nats per image)",
    )  # fmt: skip
    ks = [kk for kk in IS_CURVE_KS if kk <= k]
    n_curve = min(pick(IS_CURVE_IMAGES, quick), len(x_test))
    curve = is_curve(model, x_test[:n_curve], ks)
    lesson.numbers["is_curve_k"] = ks
    lesson.numbers["is_curve_log_px"] = [round(float(v), 4) for v in curve]
    print(f"  first {n_curve} test images, mean log p̂(x) for K = {ks}: "
          f"{', '.join(f'{v:.2f}' for v in curve)}")  # fmt: skip
    plots.line_plot(
        {f"mean of log (1/K) Σ w_k, first {n_curve} test images": (np.array(ks, float), curve),
         f"the same images, main estimate with K = {k}":
             (np.array(ks, float), np.full(len(ks), log_px[:n_curve].mean())),
         "the same images, one-sample ELBO": (np.array(ks, float),
                                             np.full(len(ks), elbo[:n_curve].mean()))},
        lesson.path("7_is_estimate_vs_k.png"),
        "Part 7 - the importance-sampled estimate of log p(x) rises with K: a tighter lower "
        "bound than the ELBO (K = 1) (seed 003, Applications)",
        "K, importance samples per image", "nats per image", logx=True,
    )  # fmt: skip
    plots.histogram_plot(
        {"log p̂(x) − ELBO(x)": log_px - elbo},
        lesson.path("7_is_minus_elbo_per_image.png"),
        f"Part 7 - per test image, the importance-sampled log p̂(x) (K = {k}) minus the "
        f"one-sample ELBO: mean {float((log_px - elbo).mean()):.2f} nats",
        "log p̂(x) − ELBO(x)  [nats]", bins=60,
    )  # fmt: skip
    activity = np.sort(unit_activity(mu))[::-1]  # (20,) Cov_x(E_q[z_u]), most active first
    n_active = active_units(mu, ACTIVE_THRESHOLD)
    fig = Figure(figsize=(7.4, 4.4), layout="constrained")
    ax = fig.add_subplot()
    ranks = np.arange(1, LATENT + 1)
    ax.bar(ranks, activity, color=np.where(activity > ACTIVE_THRESHOLD, "tab:blue", "0.6"),
           label="Cov_x(E_q[z_u]) of one unit")  # fmt: skip
    ax.axhline(ACTIVE_THRESHOLD, color="tab:red", linestyle="--", linewidth=1,
               label=f"threshold {ACTIVE_THRESHOLD}: active above")  # fmt: skip
    ax.set(yscale="log", xticks=ranks, xlabel="latent unit, most active first",
           ylabel="variance over x of the posterior mean",
           title=f"Part 7 - activity of the {LATENT} latent units on the test set: {n_active} "
                 "active (Burda et al. 2015)")  # fmt: skip
    ax.set_ylim(ACTIVE_THRESHOLD / 3, max(float(activity.max()), ACTIVE_THRESHOLD) * 20)  # legend room
    ax.grid(alpha=0.3, axis="y", which="both")
    ax.legend(fontsize=9, loc="upper right")
    save_figure(fig, lesson.path("7_active_units.png"))
    shown = x_test[:20]
    plots.reconstructions(
        shown, decode(model, mu[:20]), lesson.path("7_reconstructions.png"),
        f"Part 7 - binarized test images and the decoder's means g(μ(x)) after {epochs} epochs",
    )  # fmt: skip
    plots.image_grid(
        decode(model, rng.standard_normal((50, LATENT))), lesson.path("7_samples.png"),
        f"Part 7 - decoder means g(z) for z ~ N(0, I) after {epochs} epochs "
        f"(test NLL {nll:.1f} nats)",
        ncols=10,
    )  # fmt: skip
    return nll, reference


# %% [markdown]
# # Run everything

# %%


def main(argv=None):
    args = lesson_args(argv)
    lesson = Lesson(NAME, args)  # the output folder, the clock, the numbers; seeds minivae
    quick = args.quick
    # one NumPy generator per part, so that changing one part's sizes leaves the others' draws
    rngs = [np.random.default_rng([args.seed, part]) for part in range(8)]
    # one line, and only one, if the data set cannot be had and the built-in set is used
    train_ds = D.load_for_lesson(args.dataset, "train")
    test_ds = D.load_dataset(train_ds.name, "test")
    lesson.report("dataset", train_ds.name, "data set")
    n_test = pick(N_TEST, quick)
    x_grey = test_ds.images[:n_test].astype(np.float32)  # (N, 784) grey levels in [0, 1]
    x_test = D.binarize_fixed(test_ds.images, seed=TEST_BINARIZATION_SEED)[:n_test]  # once
    y_test = test_ds.labels[:n_test]

    print("Part 1: one minibatch through the VAE by hand (seed 000, seed 001 Problem 1)")
    x_batch = D.binarize_fixed(train_ds.images[:BATCH_SIZE], seed=args.seed)
    part1_by_hand(lesson, x_batch, rngs[1], quick)
    print("Part 2: autoencoder vs VAE latent spaces with 2-D codes (seed 001, Fig. 1a vs 1b)")
    vae2 = part2_latent_spaces(lesson, train_ds.name, x_test, y_test, train_ds.class_names, quick)
    print("Part 3: the 2-D latent manifold, and samples with z = 2 vs z = 20 (seed 002)")
    vae20 = part3_manifold_and_samples(lesson, vae2, train_ds.name, x_test, rngs[3], quick)
    print("Part 4: Gaussian decoders, α = 1/(2σ²), against the Bernoulli one (seed 000)")
    part4_gaussian_decoder(lesson, train_ds.name, vae20, x_grey, rngs[4], quick)
    print("Part 5: L samples per example, the gradient's variance (seed 001, Problem 1.4)")
    x_grad = D.to_device(x_test[:GRAD_BATCH])
    analytic = part5_samples_per_example(lesson, vae20, x_grad, [args.seed, 5], quick)
    print("Part 6: closed-form vs Monte-Carlo KL, the gradient's variance (seed 001, Problem 1.7)")
    part6_kl_estimators(lesson, vae20, x_grad, analytic, [args.seed, 5], quick)
    print("Part 7: the quality bar, test NLL by importance sampling (seed 003, Applications)")
    nll, reference = part7_quality(lesson, train_ds.name, x_test, rngs[7], quick)

    n = lesson.numbers
    print("In short:")
    print(f"  by hand = model.elbo to {n['by_hand_minus_library_elbo']:.1e} nats, gradients to "
          f"{n['by_hand_minus_library_grad']:.1e}")  # fmt: skip
    print(f"  2-D codes, KL of the fitted Gaussian to N(0, I): autoencoder "
          f"{n['ae2_code_gaussian_kl']:.2f}, VAE {n['vae2_code_gaussian_kl']:.2f} nats; test ELBO "
          f"z = 2 {n['vae2_small_test_elbo']:.1f}, "
          f"z = {LATENT} {n[f'vae{LATENT}_small_test_elbo']:.1f}")  # fmt: skip
    print("  Gaussian decoders, KL / active units: "
          + ", ".join(f"σ = {s:g}: {n[f'sigma_{s:g}_test_kl_grey']:.1f} / "
                      f"{n[f'sigma_{s:g}_active_units']}" for s in SIGMAS)
          + f"; Bernoulli {n['bernoulli_test_kl_grey']:.1f} / {n['bernoulli_active_units']}")
    print(f"  gradient variance, L = 1 / L = 5 / L = 20: 1 / "
          f"{1 / n['grad_var_ratio_L1_over_L5']:.3f} / {1 / n['grad_var_ratio_L1_over_L20']:.3f}; "
          f"Monte-Carlo KL / closed form: {n['grad_var_ratio_mc_over_analytic']:.2f}")  # fmt: skip
    ref = f"PyTorch {reference} nats" if reference is not None else "no PyTorch number for it"
    print(f"  test NLL {nll:.2f} nats (K = {n['nll_k']}, {n['epochs']} epochs; {ref}), test ELBO "
          f"{n['test_elbo']:.2f}, {n['active_units']} active units, training "
          f"{n['train_seconds']:.0f} s, importance sampling {n['eval_seconds']:.0f} s")  # fmt: skip
    return lesson.finish()


if __name__ == "__main__":
    main()
