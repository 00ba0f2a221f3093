"""Lesson 06: the semi-supervised VAE (M2 of Kingma et al. 2014), MNIST with 100 labels.

M2 is a conditional VAE whose label y is a second latent variable: observed for a
few images, inferred by a classifier q(y|x) for all the others. Every image then
trains the generative model, and the generative model trains the classifier. This
lesson follows seed 004, "Semi-supervised VAE":

  1. the two bounds and the objective by hand, with shapes, checked equal to the
     library's SemiSupervisedVAE (values and gradients, float64):
       L(x, y)  for labelled images, a bound on log p(x, y)
       U(x)     for unlabelled ones, a bound on log p(x), with the EXACT sum over y
       J        the sum of both plus the classification term alpha log q(y|x)
  2. M2 with N = 100 class-balanced labels on MNIST: the labelled images, the
     validation error per epoch, the test error on the 10,000 test images, against
     the same classifier trained on the 100 labelled images alone; why the paper's J
     learns slowly (the decoder ignores y) and what weighting the KL of z by
     β_z = 6 changes: both trained for the same epochs
  3. generation: conditional (one row per class, one style z per column), style
     transfer (the z of a test image decoded with every y), and unconditional
     (y ~ p(y), z ~ p(z))
  4. the two ablations of the objective: sample y instead of summing over it
     (sum_over_y=False), and drop the classification term (alpha = 0); the
     confusion matrices of the lesson's M2 and both ablations

Seeds are the lecture notes in the shared seeds folder (see DESIGN.md); "seed 004,
Overall training objective" means that slide of file 004_*.txt.

Run (663 s measured on 2 cores; --quick takes about 7 s):

    python lessons/06_semi_supervised_vae.py [--quick] [--epochs E] [--ablation-epochs A]

--epochs sets the epochs of the lesson's M2 and of the paper's J (default 10),
--ablation-epochs those of each ablation (default 2). The benchmark
(benchmarks/m2_quality.py: three label draws, 80 epochs) is where the quality bar is
measured; its figures are in benchmarks/BENCHMARKS.md. Figures and summary.json go to
runs/lessons/06_semi_supervised_vae/ (change the root with --out), the checkpoints
and metrics of the four models to its m2_*/ subfolders. Without the MNIST files
(and without network) the lesson says so in one line and uses the built-in
Fashion-MNIST subset instead.
"""

# %% [markdown]
# # Setup
# Imports, the hyperparameters as named constants (pairs are (full run, --quick)),
# the lesson's extra options, and helpers that push host arrays through a model
# in batches.

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
from lessons.common import Lesson, lesson_options, parse_args, positive_int
from minivae import backend as B
from minivae import data as D
from minivae import ops, plots
from minivae.checkpoint import load_model
from minivae.distributions import standard_normal
from minivae.metrics import classification_error, evaluate
from minivae.models import SemiSupervisedVAE
from minivae.optim import Adam
from minivae.train import TrainConfig, prepare_data, train

NAME = "06_semi_supervised_vae"

# M2 as in Kingma et al. (2014): one hidden layer of 500 softplus units in each network,
# a 50-dimensional z, Bernoulli pixels
HIDDEN = ((500,), (64,))  # encoder 784+10 -> 500 -> 2 x 50, decoder 50+10 -> 500 -> 784,
#                           classifier 784 -> 500 -> 10; --quick: 64 hidden units
LATENT = (50, 8)
ACTIVATION = "softplus"
N_CLASSES = 10
N_LABELLED = 100  # class-balanced: 10 labelled images per class
N_VAL = (10000, 300)  # held out of the 60,000 training images: 50,000 remain, as in the paper
LIMIT_TRAIN = (None, 2000)  # None: all training images
BATCH_SIZE = 128  # unlabelled images per step ...
LABELLED_BATCH_SIZE = 100  # ... each step with a batch of labelled ones (here: all 100)
LEARNING_RATE = 2e-3  # Adam, decayed to 0 along a half cosine over the run
LR_SCHEDULE = "cosine"
# The weight of log q(y|x) per labelled image: the paper's 0.1 N / N_labelled for N = 50,000
# (what the full run trains on), kept in --quick too, whose small N would make it tiny
ALPHA = 0.1 * 50_000 / N_LABELLED  # = 50
# The weight of KL(q(z|x,y) ‖ p(z)) in the training loss of both bounds (Part 2 says why):
# 1 is the paper's J; 6 is also the benchmark's (benchmarks/BENCHMARKS.md, M2 with 100 labels)
BETA_Z = 6.0
EPOCHS = (10, 1)  # the lesson's M2 and, for comparison, the paper's J (BETA_Z = 1); --epochs
ABLATION_EPOCHS = (2, 1)  # each ablation; --ablation-epochs overrides
BASELINE_STEPS = (500, 100)  # the classifier q(y|x) alone on the labelled images, Adam steps
BASELINE_LEARNING_RATE = 1e-3
TEST_BINARIZATION_SEED = 12345  # the test images are binarized once (as in the benchmark)
N_TEST = (10000, 500)

# Part 1: one labelled and one unlabelled minibatch by hand
PART1_LABELLED, PART1_UNLABELLED = 6, 5

# Part 3: generation
N_STYLES = 10  # columns of the conditional samples: one z ~ N(0, I) each
N_TRANSFER = 8  # test images whose z is decoded with every class
N_UNCONDITIONAL = 60
N_AGREEMENT = (2000, 300)  # conditional samples per model that its own classifier labels

# Reference numbers (DESIGN.md, "Reference points")
KINGMA_M2_ERROR, KINGMA_M2_STD = 0.1197, 0.0171  # M2, 100 labels
PYRO_M2_ERROR = 0.068  # Pyro's tutorial: 93.2 % accuracy with 100 labels
PYRO_ABLATION_ERROR = 0.80  # Pyro: about 20 % accuracy without the sum over y, or without alpha

EVAL_BATCH = 1000


def pick(pair, quick: bool):
    """The --quick value of a (full, quick) pair when quick, else the full one."""
    return pair[1] if quick else pair[0]


def lesson_args(argv):
    """The options every lesson has (lessons/common.py), plus --epochs and --ablation-epochs."""
    own = lesson_options()
    own.add_argument("--epochs", type=positive_int, default=None,
                     help=f"epochs of the lesson's M2 and of the paper's J (default "
                          f"{EPOCHS[0]}, --quick {EPOCHS[1]})")
    own.add_argument("--ablation-epochs", type=positive_int, default=None,
                     help=f"epochs of each ablation (default {ABLATION_EPOCHS[0]}, "
                          f"--quick {ABLATION_EPOCHS[1]})")  # fmt: skip
    return parse_args(argv, __doc__, own=own)


@mv.no_grad()
def predict(model, x):
    """argmax_y q(y|x) for host images (N, 784), in batches: host ints (N,)."""
    parts = [B.to_numpy(model.classify(D.to_device(x[s : s + EVAL_BATCH])))
             for s in range(0, len(x), EVAL_BATCH)]  # fmt: skip
    return np.concatenate(parts)


@mv.no_grad()
def decode(model, z, y):
    """Bernoulli means sigmoid(g(z, y)) for host codes (N, latent) and labels (N,): host (N, 784)."""
    parts = [B.to_numpy(model.decode(D.to_device(z[s : s + EVAL_BATCH]),
                                     B.from_numpy(y[s : s + EVAL_BATCH])).data)
             for s in range(0, len(z), EVAL_BATCH)]  # fmt: skip
    return np.concatenate(parts).astype(np.float64)


def save_figure(fig: Figure, path: str) -> None:
    """A multi-panel figure that minivae.plots has no function for: Agg canvas, no pyplot."""
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100, bbox_inches="tight", pad_inches=0.1)


def m2_config(quick: bool, **extra) -> dict:
    """The model config of this lesson's M2: alpha = ALPHA and beta = BETA_Z unless given."""
    return {"kind": "m2", "x_dim": 784, "hidden": list(pick(HIDDEN, quick)),
            "latent": pick(LATENT, quick), "activation": ACTIVATION, "likelihood": "bernoulli",
            "n_classes": N_CLASSES, "alpha": ALPHA, "beta": BETA_Z, **extra}  # fmt: skip


def train_config(lesson: Lesson, model: dict, dataset: str, epochs: int) -> TrainConfig:
    quick = lesson.args.quick
    return TrainConfig(
        model=model, dataset=dataset, epochs=epochs, batch_size=BATCH_SIZE, lr=LEARNING_RATE,
        lr_schedule=LR_SCHEDULE, binarize="dynamic", n_val=pick(N_VAL, quick), n_labelled=N_LABELLED,
        labelled_batch_size=LABELLED_BATCH_SIZE, limit_train=pick(LIMIT_TRAIN, quick),
        seed=lesson.args.seed, progress=not lesson.args.no_progress, fallback_dataset=True,
    )  # fmt: skip


# %% [markdown]
# # Part 1: the bounds L(x, y), U(x) and the objective J by hand (seed 004)
# Three networks (seed 004, "From training objective parts to model"):
#   q(y | x)    = Cat(softmax(classifier(x)))            the 'predictor'
#   q(z | x, y) = N(μ(x, y), diag σ²(x, y))              the encoder, input [x, onehot(y)]
#   p(x | y, z) = Bernoulli(sigmoid(g(z, y)))            the decoder, input [z, onehot(y)]
# and the priors p(z) = N(0, I), p(y) = 1/C (uniform over the C = 10 classes).
#
# Labelled images (seed 004, "What does the training objective look like?"):
#   log p(x, y) ≥ E_q(z|x,y)[log p(x|y,z)] + log p(y) − KL(q(z|x,y) ‖ p(z))  =: L(x, y)
# The slide prints "+ D_KL" and calls the bound −𝓛(x, y): the KL enters with a minus
# sign (it is E_q[log p(z) − log q(z|x,y)]), and the slide's 𝓛 is the loss, minus
# the bound. Here, as in the library, L and U are the bounds themselves (larger is
# better) and J is maximized.
#
# Unlabelled images: y is latent too, q(y, z | x) = q(y|x) q(z|x, y), and
#   log p(x) ≥ E_q(y|x)[E_q(z|x,y) log p(x|y,z)] − KL(q(y|x) ‖ p(y))
#              − E_q(y|x)[KL(q(z|x,y) ‖ p(z))]                                 =: U(x)
#            = Σ_y q(y|x) L(x, y) + H(q(y|x))
# The expectations over y are a sum over 10 classes: computed EXACTLY, with one
# z-sample per class, not by sampling y. (Again the slide writes "+" before the last
# expectation of KLs; it is a minus.) For fixed L(x, ·), the q(y|x) that maximizes U
# is softmax_y L(x, y), where U reaches log Σ_y exp L(x, y): the gap is
# KL(q(y|x) ‖ softmax L) ≥ 0, and training the classifier closes it.
#
# The objective (seed 004, "Overall training objective"; Kingma et al. 2014, eq. 9):
#   J = Σ_labelled [L(x, y) + α log q(y|x)] + Σ_unlabelled U(x)         (maximized)
# The slide's last term is β Σ ‖y − E_q(y|x)[ŷ]‖², a squared error on the predicted
# probabilities; the paper, Pyro and minivae use the log-likelihood α log q(y|x),
# with α = 0.1 N / N_labelled per labelled example (N = 50,000, N_labelled = 100:
# α = 50). Without this term the labelled images would train q(y|x) only through the
# decoder, which is why the paper adds it (part 4 measures what it does).
#
# The numbers below are those of random weights; the point is that each line of
# the slide is a line of code, and that the library computes exactly that.

# %%


def one_hot(labels, dtype=np.float64):
    """(B,) ints -> a constant (B, C) Tensor, one 1 per row."""
    return mv.Tensor(B.xp.eye(N_CLASSES, dtype=dtype)[labels])  # on the device


def labelled_bound_by_hand(model, x, y, eps):
    """L(x, y) = E_q(z|x,y)[log p(x|y,z)] + log p(y) − KL(q(z|x,y) ‖ p(z)): (B,) Tensors.

    x (B, 784) Tensor, y (B,) ints, eps (B, latent) the noise of the one z-sample.
    Returns the three terms and L.
    """
    d = model.latent
    hot = one_hot(y)  # (B, C)
    h = model.encoder(ops.concatenate([x, hot], axis=1))  # (B, 2 latent): input [x, onehot(y)]
    mu, log_var = h[:, :d], h[:, d:]  # (B, latent) each: q(z | x, y)
    z = mu + ops.exp(0.5 * log_var) * mv.Tensor(eps)  # (B, latent), z = μ + σ ε
    logits = model.decoder(ops.concatenate([z, hot], axis=1))  # (B, 784): input [z, onehot(y)]
    recon = (x * logits - ops.softplus(logits)).sum(axis=1)  # log p(x|y,z), (B,)
    kl_z = 0.5 * (mu * mu + ops.exp(log_var) - 1.0 - log_var).sum(axis=1)  # KL(q(z|x,y) ‖ p(z))
    log_py = -math.log(N_CLASSES)  # log p(y), uniform
    return {"recon": recon, "kl_z": kl_z, "L": recon + log_py - kl_z}  # (B,) each


def unlabelled_bound_by_hand(model, x, eps_per_class):
    """U(x) both ways, from L(x, y) for every class y: a dict of Tensors.

    eps_per_class (C, B, latent): the noise of the z-sample of each class.
    """
    n = x.shape[0]
    logits_y = model.classifier(x)  # (B, C)
    log_q = ops.log_softmax(logits_y, axis=1)  # log q(y|x), (B, C)
    q = ops.exp(log_q)  # q(y|x), (B, C)
    per_class = [labelled_bound_by_hand(model, x, np.full(n, c), eps_per_class[c])
                 for c in range(N_CLASSES)]  # fmt: skip
    L_all = ops.stack([t["L"] for t in per_class], axis=1)  # L(x, y) for every y, (B, C)
    recon_all = ops.stack([t["recon"] for t in per_class], axis=1)  # (B, C)
    kl_z_all = ops.stack([t["kl_z"] for t in per_class], axis=1)  # (B, C)
    entropy = -(q * log_q).sum(axis=1)  # H(q(y|x)), (B,)
    U = (q * L_all).sum(axis=1) + entropy  # Σ_y q(y|x) L(x, y) + H(q(y|x)), (B,)
    # seed 004's form: E_q(y|x)[E_z log p(x|y,z)] − KL(q(y|x) ‖ p(y)) − E_q(y|x)[KL(q(z|x,y) ‖ p(z))]
    kl_y = (q * (log_q + math.log(N_CLASSES))).sum(axis=1)  # KL(q(y|x) ‖ p(y)), (B,)
    U_slide = (q * recon_all).sum(axis=1) - kl_y - (q * kl_z_all).sum(axis=1)  # (B,)
    tightest = ops.logsumexp(L_all, axis=1)  # log Σ_y exp L(x, y): U at q(y|x) = softmax L
    return {"U": U, "U_slide": U_slide, "entropy": entropy, "log_q": log_q,
            "L_all": L_all, "tightest": tightest}  # fmt: skip


def max_abs(a, b) -> float:
    return float(np.max(np.abs(B.to_numpy(a.data) - B.to_numpy(b.data))))


def part1_by_hand(lesson: Lesson, x_host, y_host, quick):
    nl = PART1_LABELLED
    with mv.set_default_dtype("float64"):
        mv.manual_seed(lesson.args.seed)
        model = SemiSupervisedVAE(x_dim=784, hidden=pick(HIDDEN, quick), latent=pick(LATENT, quick),
                                  activation=ACTIVATION, n_classes=N_CLASSES,
                                  alpha=ALPHA)  # fmt: skip
        d = model.latent
        x_l = mv.Tensor(B.from_numpy(x_host[:nl], dtype=np.float64))  # (B_l, 784) labelled
        y_l = y_host[:nl]  # (B_l,) their labels
        x_u = mv.Tensor(B.from_numpy(x_host[nl:], dtype=np.float64))  # (B_u, 784) unlabelled
        n_u = x_u.shape[0]
        rng = np.random.default_rng([lesson.args.seed, 1])

        # L(x, y) with one z per image, and the library's with the same ε
        eps_l = B.from_numpy(rng.standard_normal((nl, d)))  # (B_l, latent)
        lab = labelled_bound_by_hand(model, x_l, y_l, eps_l)
        library_l = model.elbo(x_l, y_l, eps=eps_l)  # {"recon", "kl_z", "kl", "elbo"}
        lesson.report("by_hand_minus_library_L", max_abs(lab["L"], library_l["elbo"]),
                      "max over the batch of |L(x, y) by hand − model.elbo(x, y)['elbo']|")
        lesson.report("by_hand_L_mean", float(lab["L"].data.mean()),
                      f"L(x, y) at random weights (recon {float(lab['recon'].data.mean()):.1f}, "
                      f"KL(q(z|x,y) ‖ p(z)) {float(lab['kl_z'].data.mean()):.2f}, "
                      f"log p(y) = −log 10 = {-math.log(N_CLASSES):.3f}; nats)")  # fmt: skip

        # U(x): the same ε for every class, as model.elbo(x, eps=ε) uses it
        eps_u = B.from_numpy(rng.standard_normal((n_u, d)))  # (B_u, latent)
        unl = unlabelled_bound_by_hand(model, x_u, B.xp.broadcast_to(eps_u, (N_CLASSES, n_u, d)))
        library_u = model.elbo(x_u, eps=eps_u)  # U(x) and its terms
        for label, t in (("x_l", x_l), ("x_u", x_u), ("log q(y|x)", unl["log_q"]),
                         ("L(x, y) for every y", unl["L_all"]), ("H(q(y|x))", unl["entropy"]),
                         ("U(x)", unl["U"])):  # fmt: skip
            print(f"  {label:<22} shape {tuple(t.shape)}")
        lesson.report("by_hand_minus_library_U", max_abs(unl["U"], library_u["elbo"]),
                      "max |U(x) = Σ_y q(y|x) L(x, y) + H(q(y|x)) by hand − model.elbo(x)['elbo']|")
        lesson.report("by_hand_U_two_forms", max_abs(unl["U"], unl["U_slide"]),
                      "  ... |Σ_y q L + H − (E_q[recon] − KL(q(y|x) ‖ p(y)) − E_q[KL_z])| "
                      "(seed 004's form)")  # fmt: skip
        lesson.report("by_hand_U_mean", float(unl["U"].data.mean()), "U(x) at random weights (nats)")
        gap = B.to_numpy(unl["tightest"].data - unl["U"].data)  # (B_u,) ≥ 0
        lesson.report("by_hand_U_gap_min", float(gap.min()),
                      "min over the batch of log Σ_y exp L(x, y) − U(x) (≥ 0: the best q(y|x) is "
                      "softmax_y L)")  # fmt: skip
        lesson.report("by_hand_U_entropy_mean", float(unl["entropy"].data.mean()),
                      f"H(q(y|x)) at random weights (at most log 10 = {math.log(10):.3f})")

        # J and its gradient, against model.loss with the noise it draws itself:
        # one ε for the labelled batch, then one per class and image (C * B_u rows, class-major)
        seed = lesson.args.seed + 100
        mv.manual_seed(seed)
        eps_l = standard_normal((nl, d), np.float64)  # on the device, as model.loss draws it
        eps_c = standard_normal((N_CLASSES * n_u, d), np.float64).reshape(N_CLASSES, n_u, d)
        lab = labelled_bound_by_hand(model, x_l, y_l, eps_l)
        unl = unlabelled_bound_by_hand(model, x_u, eps_c)
        alpha = model.classification_weight  # ALPHA = 0.1 N / N_labelled = 50
        log_q_y = ops.log_softmax(model.classifier(x_l), axis=1)[np.arange(nl), y_l]  # (B_l,)
        J = (lab["L"] + alpha * log_q_y).sum() + unl["U"].sum()  # seed 004's J, maximized
        loss_by_hand = -J / (nl + n_u)  # per image, to minimize
        model.zero_grad()
        loss_by_hand.backward()
        mine = {name: B.to_numpy(p.grad).copy() for name, p in model.named_parameters()}
        model.zero_grad()
        mv.manual_seed(seed)
        loss, _ = model.loss(D.Batch(x_u, x_labelled=x_l, y_labelled=y_l))
        loss.backward()
        lesson.report("alpha", alpha, "α, the weight of log q(y|x) per labelled image (0.1 N / N_l)")
        lesson.report("by_hand_minus_library_J", abs(float(loss_by_hand.data) - float(loss.data)),
                      "|−J / (B_l + B_u) by hand − model.loss(batch of x_u, x_l, y_l)|")
        worst = max(float(np.max(np.abs(mine[name] - B.to_numpy(p.grad))))
                    for name, p in model.named_parameters())  # fmt: skip
        scale = max(float(np.max(np.abs(B.to_numpy(p.grad)))) for p in model.parameters())
        lesson.report("by_hand_minus_library_grad", worst,
                      f"max |∂(−J)/∂θ by hand − by model.loss| over all parameters "
                      f"(largest gradient entry {scale:.3g})")  # fmt: skip


# %% [markdown]
# # Part 2: M2 with 100 labels (Kingma et al. 2014, Table 1)
# 50,000 training images, of which 100 keep their labels: 10 per class, drawn by the
# seed (minivae.data.labelled_subset); the other 49,900 are used without labels. The
# labelled images are few, so each training step shows all of them (a labelled batch
# beside every unlabelled batch of 128): 390 steps per epoch. The pixels are
# binarized afresh every epoch ("dynamic"). After training, the classifier q(y|x)
# labels the 10,000 test images: argmax_y q(y|x), compared with the true labels.
#
# Why the paper's J alone learns slowly. U(x) teaches q(y|x) through the decoder: its
# gradient pulls q(y|x) towards softmax_y L(x, y), towards the label under which the
# decoder explains x best. That helps only if the decoder USES y. But the encoder
# q(z|x, y) sees x, so z can carry the digit as well, and the KL charges little for
# it: about log 10 = 2.3 nats, some 2 % of the bound. Trained on J as written, the
# decoder mostly ignores y for minutes of training (the label effect below is near 0:
# changing y barely changes the image), L(x, y) is nearly the same for every y, and the
# unlabelled images teach q(y|x) next to nothing. Weighting the KL of z by β_z > 1 in
# both bounds (the β of lesson 04, applied to z only; the reported bounds stay the true
# ones) makes information in z dearer than in y, whose price is fixed at log 10: the
# decoder takes the digit from y, L(x, y) separates the classes by tens of nats, and
# U(x) pulls q(y|x) towards the right class. The lesson trains both, for the same
# epochs: the paper's J (β_z = 1) and the lesson's M2 (β_z = 6).
#
# Reference: Kingma et al. report a test error of 11.97 % (± 1.71 over label draws);
# Pyro's tutorial reaches about 6.8 %. A neural network trained on the 100 labelled
# images alone has 25.81 % (Kingma et al., Table 1); the lesson trains that baseline
# too, M2's own classifier network on the 100 labelled images and nothing else. The
# difference is what the other 49,900 images add. The benchmark
# (benchmarks/m2_quality.py) trains the lesson's M2 for 80 epochs on three label draws:
# a mean test error of 8.75 % (7.27, 10.02, 8.96 %; benchmarks/BENCHMARKS.md).

# %%


def train_m2(lesson: Lesson, folder: str, model: dict, dataset: str, epochs: int):
    """Train with minivae.train into the lesson's folder; (model in eval mode, history, seconds)."""
    config = train_config(lesson, model, dataset, epochs)
    folder = lesson.path(folder)
    t0 = time.perf_counter()
    history = train(config, folder, log=lambda line: print("    " + line))
    seconds = time.perf_counter() - t0
    trained, _ = load_model(os.path.join(folder, "checkpoint.npz"), expect_kind="m2")
    trained.eval()
    return trained, history, seconds


def test_error(model, x_test, y_test) -> float:
    with mv.no_grad():
        return classification_error(model, D.to_device(x_test), B.from_numpy(y_test))


def confusion(pred, truth):
    """counts[i, j] = test images of class i predicted as j: host (C, C)."""
    counts = np.zeros((N_CLASSES, N_CLASSES), dtype=np.int64)
    np.add.at(counts, (truth, pred), 1)
    return counts


def part2_labelled_examples(lesson: Lesson, dataset: str, class_names):
    """The 100 labelled images the full model is given, one row per class."""
    splits = prepare_data(train_config(lesson, m2_config(lesson.args.quick), dataset, 1))
    idx = splits.labelled  # indices into the training split
    labels = splits.y_train[idx]
    per_class = np.bincount(labels, minlength=N_CLASSES)
    lesson.report("n_train", len(splits.x_train), "training images (labelled and unlabelled)")
    lesson.report("n_labelled", len(idx), "of them labelled")
    lesson.report("labelled_per_class", per_class.tolist(), "  ... per class")
    order = np.argsort(labels, kind="stable")
    shown = splits.x_train[idx[order]]  # grey levels, class by class
    k = int(per_class.max())
    plots.image_grid(shown, lesson.path("1_labelled_examples.png"),
                     f"Part 2 - the only {len(idx)} labels M2 gets: {k} training images per "
                     f"class (drawn by seed {lesson.args.seed}); the other "
                     f"{len(splits.x_train) - len(idx):,} images are unlabelled",
                     ncols=k, row_labels=[str(c) for c in class_names])  # fmt: skip
    return len(splits.x_train)


def part2_full_model(lesson: Lesson, dataset: str, x_test, y_test, epochs: int):
    print(f"  training M2 (β_z = {BETA_Z:g}) for {epochs} epochs ...")
    model, history, seconds = train_m2(lesson, "m2_full", m2_config(lesson.args.quick), dataset,
                                       epochs)  # fmt: skip
    error = test_error(model, x_test, y_test)
    terms = evaluate(model, x_test, y_test)  # both bounds on the test images, nats per image
    lesson.report("epochs", epochs, "epochs of the lesson's M2 (and of the paper's J)")
    lesson.report("beta_z", model.beta, "β_z, the weight of KL(q(z|x,y) ‖ p(z)) in training")
    lesson.report("train_seconds", round(seconds, 1), "its training wall time (s)")
    lesson.report("seconds_per_epoch", round(seconds / epochs, 1), "  ... per epoch")
    lesson.report("n_test", len(x_test), "test images")
    lesson.report("test_error", error, "test error of q(y|x), argmax over y")
    lesson.report("val_error_per_epoch", [float(f"{r['val_error']:.6g}") for r in history],
                  "validation error after each epoch")  # fmt: skip
    lesson.report("test_labelled_bound", terms["labelled_elbo"],
                  "test L(x, y) with the true y, mean (nats; ≤ log p(x, y))")  # fmt: skip
    lesson.report("test_unlabelled_bound", terms["unlabelled_elbo"],
                  "test U(x), mean (nats; ≤ log p(x))")  # fmt: skip
    lesson.report("test_classification_loss", terms["classification_loss"],
                  "test −log q(y|x) at the true y, mean (nats)")  # fmt: skip
    return model, history


def part2_paper_objective(lesson: Lesson, dataset: str, x_test, y_test, epochs: int, rng):
    """The same model and budget trained on the paper's J as written (β_z = 1)."""
    print(f"  training M2 on the paper's J (β_z = 1) for {epochs} epochs ...")
    model, history, seconds = train_m2(lesson, "m2_paper", m2_config(lesson.args.quick, beta=1.0),
                                       dataset, epochs)  # fmt: skip
    lesson.report("test_error_paper", test_error(model, x_test, y_test),
                  "test error, the paper's J (β_z = 1), as many epochs")  # fmt: skip
    lesson.report("val_error_per_epoch_paper",
                  [float(f"{r['val_error']:.6g}") for r in history],
                  "  ... its validation error after each epoch")  # fmt: skip
    lesson.report("train_seconds_paper", round(seconds, 1), "  ... training wall time (s)")
    lesson.report("label_effect_paper", label_effect(model, rng)[0],
                  "  ... its label effect (≈ 0: the decoder ignores y; Part 3)")  # fmt: skip
    return history


def part2_labels_only(lesson: Lesson, dataset: str, x_test, y_test):
    """The baseline M2 must beat: its classifier q(y|x) trained on the labelled images alone.

    The same 784-500-10 network, initialised by the same seed, minimizing the mean of
    −log q(y|x) over the 100 labelled images (freshly binarized at every step), with Adam;
    none of the unlabelled images, no encoder or decoder.
    """
    quick = lesson.args.quick
    config = train_config(lesson, m2_config(quick), dataset, 1)
    splits = prepare_data(config)
    x_lab, y_lab = splits.x_train[splits.labelled], splits.y_train[splits.labelled]
    mv.manual_seed(lesson.args.seed)
    model = SemiSupervisedVAE(**{k: v for k, v in m2_config(quick).items() if k != "kind"})
    params = model.classifier.parameters()
    optimizer = Adam(params, lr=BASELINE_LEARNING_RATE)
    rng = np.random.default_rng([lesson.args.seed, 2])
    labels = B.from_numpy(y_lab.astype(np.int64))
    t0 = time.perf_counter()
    for _ in range(pick(BASELINE_STEPS, quick)):
        xb = D.to_device(D.binarize(x_lab, rng))  # (100, 784), a fresh draw every step
        loss = ops.cross_entropy(model.classifier_logits(xb), labels).mean()  # −log q(y|x)
        for p in params:
            p.grad = None
        loss.backward()
        optimizer.step()
    model.eval()
    error = test_error(model, x_test, y_test)
    lesson.report("test_error_labels_only", error,
                  f"test error of the same classifier trained on the {len(x_lab)} labelled "
                  f"images alone ({pick(BASELINE_STEPS, quick)} Adam steps, "
                  f"{time.perf_counter() - t0:.0f} s)")  # fmt: skip
    lesson.report("train_loss_labels_only", float(loss.data),
                  "  ... its last training loss, mean −log q(y|x) on the labelled images")
    return error


# %% [markdown]
# # Part 3: generation (seed 004, "What does conditional / unconditional generation look like?")
# Conditional: choose y, draw z ~ N(0, I), decode p(x | y, z). One row per class, one
# z per column. If M2 has split the data the way the paper's Fig. 1 shows, the label
# says which digit and z what is left, the style (slant, stroke width, size): a
# column keeps its style across digits, a row keeps its digit across styles.
# Style transfer (Kingma et al. 2014, Fig. 1): the z of a test image, the mean of
# q(z | x, y) at the classifier's y, decoded with every y.
# Unconditional: y ~ p(y) = 1/10 and z ~ N(0, I), a draw from p(x) = Σ_y p(y) p(x|y).
#
# Two numbers for "the label controls the class":
#   label effect = mean ‖g(z, y) − g(z, y')‖² over y ≠ y' (same z)
#                  / mean ‖g(z, y) − g(z', y)‖² over z ≠ z' (same y),
#     on the conditional grid: near 1 or above when changing y changes the image as
#     much as changing z; near 0 when the decoder ignores y and z carries the digit;
#   agreement = the share of conditional samples (drawn as binary images) that the
#     model's own classifier assigns to the class they were drawn from.
# The model trained on the paper's J (Part 2) has a label effect near 0: its z carries
# the digit, and each row of its style transfer would stay one digit whatever y says.
# The lesson's M2 (β_z = 6) draws the asked digit in the style of z.

# %%


@mv.no_grad()
def sample_agreement(model, n: int, rng) -> float:
    """Share of n samples x ~ p(x | y, z) (y cycling over classes) that q(y|x) labels y."""
    y = np.arange(n) % N_CLASSES
    z = rng.standard_normal((n, model.latent))
    means = decode(model, z, y)
    drawn = (rng.random(means.shape) < means).astype(np.float32)  # binary, as in training
    return float(np.mean(predict(model, drawn) == y))


@mv.no_grad()
def label_effect(model, rng):
    """(label effect, the conditional grid): N_STYLES codes z ~ N(0, I) decoded with every y.

    The grid is (C * N_STYLES, 784), row c * N_STYLES + j holding g(z_j, c).
    """
    z = rng.standard_normal((N_STYLES, model.latent))  # one style per column
    grid_z = np.tile(z, (N_CLASSES, 1))  # row c, column j: z_j
    grid_y = np.repeat(np.arange(N_CLASSES), N_STYLES)  # row c: class c
    grid = decode(model, grid_z, grid_y)  # (C * N_STYLES, 784)
    cells = grid.reshape(N_CLASSES, N_STYLES, -1)  # [y, z_j]
    over_y = np.mean([np.sum((cells[a] - cells[b]) ** 2, axis=-1).mean()
                      for a in range(N_CLASSES) for b in range(N_CLASSES) if a != b])
    over_z = np.mean([np.sum((cells[:, a] - cells[:, b]) ** 2, axis=-1).mean()
                      for a in range(N_STYLES) for b in range(N_STYLES) if a != b])  # fmt: skip
    return float(over_y / over_z), grid


def part3_generation(lesson: Lesson, model, x_test, class_names, rng, quick):
    d = model.latent
    effect, grid = label_effect(model, rng)
    lesson.report("label_effect_full", effect,
                  "label effect: mean ‖g(z, y) − g(z, y')‖² / mean ‖g(z, y) − g(z', y)‖² "
                  "(≈ 0: the decoder ignores y)")  # fmt: skip
    plots.image_grid(grid, lesson.path("3_conditional_samples.png"),
                     "Part 3 - conditional generation p(x | y, z): one row per class y, one "
                     "z ~ N(0, I) per column (the same z down a column: the style)",
                     ncols=N_STYLES, row_labels=[str(c) for c in class_names],
                     col_labels=[f"z{j}" for j in range(N_STYLES)])  # fmt: skip

    shown = x_test[:N_TRANSFER]  # (8, 784) binarized test images
    with mv.no_grad():
        mu, _ = model.encode(D.to_device(shown))  # mean of q(z | x, y = argmax q(y|x)), (8, latent)
    mu = B.to_numpy(mu.data).astype(np.float64)
    codes = np.repeat(mu, N_CLASSES, axis=0)  # (8 * 10, latent), row i * 10 + c
    ys = np.tile(np.arange(N_CLASSES), N_TRANSFER)  # (8 * 10,)
    decoded = decode(model, codes, ys).reshape(N_TRANSFER, N_CLASSES, -1)
    cells = np.concatenate([shown[:, None, :], decoded], axis=1).reshape(-1, shown.shape[1])
    plots.image_grid(cells, lesson.path("3_style_transfer.png"),
                     "Part 3 - style transfer: a test image (left), its z = mean of q(z|x,y), "
                     "decoded with every label y (Kingma et al. 2014, Fig. 1)",
                     ncols=N_CLASSES + 1,
                     col_labels=["test image"] + [str(c) for c in class_names])  # fmt: skip

    y = rng.integers(0, N_CLASSES, N_UNCONDITIONAL)  # y ~ p(y), uniform
    z = rng.standard_normal((N_UNCONDITIONAL, d))  # z ~ p(z)
    plots.image_grid(decode(model, z, y), lesson.path("3_unconditional_samples.png"),
                     "Part 3 - unconditional generation: y ~ p(y) = 1/10, z ~ N(0, I), "
                     "the means of p(x | y, z)", ncols=12)  # fmt: skip
    agreement = sample_agreement(model, pick(N_AGREEMENT, quick), rng)
    lesson.report("sample_agreement_full", agreement,
                  "share of conditional samples of class y that q(y|x) labels y")  # fmt: skip


# %% [markdown]
# # Part 4: the two ablations — no sum over y, no classification term
# Sampled y (sum_over_y=False): U(x) is estimated with one y ~ q(y|x) per image
# instead of the exact sum. The estimate of the bound is unbiased, but no gradient
# reaches q(y|x) through the sampled label (it is a discrete choice): the classifier
# learns only from α log q(y|x) on the 100 labelled images and from the entropy
# H(q(y|x)) of U(x), which pushes q(y|x) towards uniform on every unlabelled image.
# Nothing tells it which class an unlabelled image belongs to, and the entropy term
# blurs what the labels taught: expect it worse than the labels-only baseline.
# α = 0: the sum is exact, but the labelled images reach q(y|x) only through the
# generative model: U(x) pulls q(y|x) towards softmax_y L(x, y), towards the y under
# which the decoder explains x best, and the decoder learns what each y means from
# the labelled L(x, y). Here the labelled batch comes with every step, so the
# decoder learns that well, and in the full run α = 0 ends far from chance. Pyro's
# tutorial, whose labelled batches are rare, reports about 20 % accuracy (80 % error)
# for its variants without the sum or without the classification term.
# Each ablation trains for fewer epochs than the full model; the full model's
# validation error after the same number of epochs is reported beside them.

# %%


def part4_ablations(lesson: Lesson, dataset: str, x_test, y_test, full, full_history,
                    paper_history, epochs, rng, quick):  # fmt: skip
    variants = {
        "sampled_y": ("y sampled, not summed (sum_over_y=False)", {"sum_over_y": False}),
        "alpha0": ("no classification term (α = 0)", {"alpha": 0.0}),
    }
    models, histories, errors = {}, {}, {}
    for key, (label, extra) in variants.items():
        print(f"  training the ablation {label} for {epochs} epochs ...")
        model, history, seconds = train_m2(lesson, f"m2_{key}", m2_config(quick, **extra), dataset,
                                           epochs)  # fmt: skip
        models[key], histories[key] = model, history
        errors[key] = test_error(model, x_test, y_test)
        lesson.report(f"test_error_{key}", errors[key], f"test error, {label}")
        lesson.report(f"train_seconds_{key}", round(seconds, 1), "  ... training wall time (s)")
        lesson.report(f"sum_over_y_{key}", model.sum_over_y, "  ... sum_over_y")
        lesson.report(f"alpha_{key}", model.classification_weight, "  ... α")
        lesson.report(f"sample_agreement_{key}", sample_agreement(model, pick(N_AGREEMENT, quick), rng),
                      "  ... share of its conditional samples of class y that its q(y|x) labels y")
    lesson.report("ablation_epochs", epochs, "epochs of each ablation")
    same = full_history[min(epochs, len(full_history)) - 1]["val_error"]
    lesson.report("val_error_full_at_ablation_epochs", same,
                  f"validation error of the full model after {min(epochs, len(full_history))} "
                  "epochs (the ablations' budget)")  # fmt: skip
    lesson.report("val_error_sampled_y", histories["sampled_y"][-1]["val_error"],
                  "validation error of the sampled-y ablation after its last epoch")
    lesson.report("val_error_alpha0", histories["alpha0"][-1]["val_error"],
                  "validation error of the α = 0 ablation after its last epoch")

    # validation error per epoch, all four models
    series = {f"M2, β_z = {BETA_Z:g} (exact sum, α log q(y|x))":
              (np.arange(1, len(full_history) + 1.0), [r["val_error"] for r in full_history]),
              "the paper's J (β_z = 1)":
              (np.arange(1, len(paper_history) + 1.0), [r["val_error"] for r in paper_history])}
    for key, (label, _) in variants.items():
        h = histories[key]
        series[label] = (np.arange(1, len(h) + 1.0), [r["val_error"] for r in h])
    plots.line_plot(series, lesson.path("2_validation_error.png"),
                    f"Parts 2 and 4 - validation error of q(y|x) after each epoch, "
                    f"{N_LABELLED} labels (chance: 0.9)", "epoch",
                    "validation error")  # fmt: skip

    # test errors beside the literature
    names = [f"M2, β_z = {BETA_Z:g}", "the paper's J\n(β_z = 1)", "sampled y", "α = 0",
             "labels only"]  # fmt: skip
    values = [lesson.numbers["test_error"], lesson.numbers["test_error_paper"],
              errors["sampled_y"], errors["alpha0"],
              lesson.numbers["test_error_labels_only"]]  # fmt: skip
    fig = Figure(figsize=(11.0, 4.8), layout="constrained")
    ax = fig.add_subplot()
    bars = ax.bar(range(5), values,
                  color=["tab:blue", "tab:cyan", "tab:orange", "tab:red", "tab:gray"],
                  alpha=0.85)  # fmt: skip
    ax.bar_label(bars, labels=[f"{100 * v:.1f} %" for v in values], padding=2)
    for level, style, text in (
        (KINGMA_M2_ERROR, "--", f"Kingma et al. 2014, M2: {100 * KINGMA_M2_ERROR:.2f} %"),
        (PYRO_M2_ERROR, ":", f"Pyro tutorial, M2: {100 * PYRO_M2_ERROR:.1f} %"),
        (PYRO_ABLATION_ERROR, "-.", f"Pyro tutorial, ablations: about {100 * PYRO_ABLATION_ERROR:.0f} %"),
        (0.9, "-", "chance: 90 %"),
    ):  # fmt: skip
        ax.axhline(level, color="0.35", linestyle=style, linewidth=1.1, label=text)
    budgets = [f"{lesson.numbers['epochs']} epochs", f"{lesson.numbers['epochs']} epochs",
               f"{epochs} epochs", f"{epochs} epochs",
               f"{pick(BASELINE_STEPS, quick)} steps, 100 images"]  # fmt: skip
    ax.set_xticks(range(5), [f"{n}\n({b})" for n, b in zip(names, budgets)])
    ax.set(ylim=(0, 1.0), ylabel=f"test error on {len(x_test):,} images",
           title=f"Parts 2 and 4 - what β_z, the sum over y and the classification term do, "
                 f"{N_LABELLED} labels")  # fmt: skip
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8, loc="upper left")
    save_figure(fig, lesson.path("4_ablation_test_error.png"))

    # confusion matrices: which digits each model confuses (or renames)
    fig = Figure(figsize=(15.0, 5.0), layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, (name, model) in zip(axes, (("M2", full), ("sampled y", models["sampled_y"]),
                                        ("α = 0", models["alpha0"]))):  # fmt: skip
        counts = confusion(predict(model, x_test), y_test)
        shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
        for i in range(N_CLASSES):
            for j in range(N_CLASSES):
                if counts[i, j]:
                    ax.text(j, i, f"{counts[i, j]}", ha="center", va="center", fontsize=6,
                            color="white" if shares[i, j] > 0.5 else "black")  # fmt: skip
        error = 1.0 - np.trace(counts) / counts.sum()
        ax.set(xticks=range(N_CLASSES), yticks=range(N_CLASSES), xlabel="predicted class",
               ylabel="true class", title=f"{name}: test error {100 * error:.1f} %")  # fmt: skip
    fig.colorbar(image, ax=axes, shrink=0.8, label="share of the true class's test images")
    fig.suptitle("Part 4 - confusion matrices on the test images (counts in the cells)")
    save_figure(fig, lesson.path("4_confusion_matrices.png"))


# %% [markdown]
# # Run everything

# %%


def main(argv=None):
    args = lesson_args(argv)
    lesson = Lesson(NAME, args)  # the output folder, the clock, the numbers; seeds minivae
    quick = args.quick
    epochs = args.epochs or pick(EPOCHS, quick)
    ablation_epochs = args.ablation_epochs or pick(ABLATION_EPOCHS, quick)
    train_ds = D.load_for_lesson(args.dataset, "train")  # one line if the built-in set is used
    test_ds = D.load_dataset(train_ds.name, "test")
    lesson.report("dataset", train_ds.name, "data set")
    n_test = pick(N_TEST, quick)
    x_test = D.binarize_fixed(test_ds.images, seed=TEST_BINARIZATION_SEED)[:n_test]  # once
    y_test = test_ds.labels[:n_test].astype(np.int64)
    rng = np.random.default_rng([args.seed, 3])

    print("Part 1: L(x, y), U(x) and J by hand (seed 004, Semi-supervised VAE)")
    x_batch = D.binarize_fixed(train_ds.images[: PART1_LABELLED + PART1_UNLABELLED], seed=args.seed)
    part1_by_hand(lesson, x_batch, train_ds.labels[:PART1_LABELLED].astype(np.int64), quick)
    print(f"Part 2: M2 with {N_LABELLED} labels (Kingma et al. 2014)")
    part2_labelled_examples(lesson, train_ds.name, train_ds.class_names)
    part2_labels_only(lesson, train_ds.name, x_test, y_test)
    full, history = part2_full_model(lesson, train_ds.name, x_test, y_test, epochs)
    paper_history = part2_paper_objective(lesson, train_ds.name, x_test, y_test, epochs, rng)
    print("Part 3: conditional and unconditional generation (seed 004)")
    part3_generation(lesson, full, x_test, train_ds.class_names, rng, quick)
    print("Part 4: the ablations: y sampled instead of summed; α = 0")
    part4_ablations(lesson, train_ds.name, x_test, y_test, full, history, paper_history,
                    ablation_epochs, rng, quick)  # fmt: skip

    n = lesson.numbers
    print("In short:")
    print(f"  by hand = the library: L to {n['by_hand_minus_library_L']:.1e}, U to "
          f"{n['by_hand_minus_library_U']:.1e}, J to {n['by_hand_minus_library_J']:.1e}, "
          f"gradients to {n['by_hand_minus_library_grad']:.1e}")  # fmt: skip
    print(f"  {N_LABELLED} labels, {epochs} epochs: test error {100 * n['test_error']:.2f} % "
          f"with β_z = {BETA_Z:g}, {100 * n['test_error_paper']:.2f} % on the paper's J; label "
          f"effect {n['label_effect_full']:.2f} against {n['label_effect_paper']:.2f}")
    print(f"  (the classifier on the labels alone {100 * n['test_error_labels_only']:.2f} %; "
          f"Kingma et al. {100 * KINGMA_M2_ERROR:.2f} %, Pyro {100 * PYRO_M2_ERROR:.1f} %; the "
          "benchmark's number over three label draws is in benchmarks/BENCHMARKS.md)")
    print(f"  ablations after {ablation_epochs} epochs: sampled y "
          f"{100 * n['test_error_sampled_y']:.1f} %, α = 0 {100 * n['test_error_alpha0']:.1f} % "
          f"test error (the full model's validation error after as many epochs: "
          f"{100 * n['val_error_full_at_ablation_epochs']:.1f} %)")  # fmt: skip
    return lesson.finish()


if __name__ == "__main__":
    main()
