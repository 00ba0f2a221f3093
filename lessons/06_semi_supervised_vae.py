# %% [markdown]
# # Lesson 06: the semi-supervised VAE (M2), MNIST with 100 labels
#
# M2 (Kingma et al. 2014; *VAE Extensions slides*, "Semi-supervised VAE") is a conditional
# VAE whose label y is a second latent variable: observed for a few images, inferred by a
# classifier q(y|x) for all the others. Every image then trains the generative model, and
# the generative model trains the classifier. 1. the two bounds L(x, y) and U(x) and the
# objective J by hand, checked against the library; 2. M2 with 100 labels against its own
# classifier trained on the labels alone; 3. the paper's J as written against a KL of z
# weighted by β_z; 4. conditional generation and style transfer; 5. two ablations of the
# objective. Each part opens with the question it answers: make your guess before you run
# its cell. Errata of the notes that it relies on:
# [E21](../docs/ERRATA.md#e21-plus-kl-in-the-labelled-bound),
# [E22](../docs/ERRATA.md#e22-plus-kl-and-brackets-in-the-unlabelled-bound),
# [E23](../docs/ERRATA.md#e23-the-unlabelled-bound-is-on-log-p-of-x),
# [E1](../docs/ERRATA.md#e1-encoder-covariance-written-sigma-i),
# [E10](../docs/ERRATA.md#e10-indices-in-the-gaussian-kl-derivation),
# [E14](../docs/ERRATA.md#e14-generation-does-not-run-the-encoder),
# [E18](../docs/ERRATA.md#e18-kl-of-log-q).

# %%
"""Lesson 06: the semi-supervised VAE (M2 of Kingma et al. 2014) on MNIST with 100 labels.

    python lessons/06_semi_supervised_vae.py [--quick] [--epochs 10] [--ablation-epochs 2]

Trains four M2 models (the lesson's, the paper's J, two ablations) and the classifier on the
labels alone; lessons/README.md gives the full run's numbers and wall time. Figures and
summary.json go to OUT/06_semi_supervised_vae/, each model's checkpoint and metrics to its
m2_*/ subfolder. In a notebook, edit the settings below instead of passing options;
MINIVAE_QUICK=1 turns QUICK on in both.
"""

QUICK = False  # True: 2,000 images, tiny networks, one epoch each; the numbers only show it runs
SEED = 0  # every random draw follows from it, the choice of the 100 labels included
DEVICE = "cpu"  # "cpu" (NumPy) or "gpu" (CuPy)
DATASET = "mnist"  # without the MNIST files (and offline): the built-in Fashion-MNIST subset
OUT = "runs/lessons"  # figures and summary.json go to OUT/06_semi_supervised_vae/
PROGRESS = True  # progress bars while training
EPOCHS = None  # epochs of the lesson's M2 and of the paper's J; None: 10 (1 when QUICK)
ABLATION_EPOCHS = None  # epochs of each ablation; None: 2 (1 when QUICK)

# %%
import math
import time

import numpy as np

try:
    import common  # a script, or a notebook kernel started in lessons/
except ModuleNotFoundError:
    from lessons import common  # a kernel started in the repository root

import minivae as mv
from minivae import backend as B
from minivae import data as D
from minivae import ops, plots
from minivae.checkpoint import load_model
from minivae.distributions import standard_normal
from minivae.metrics import classification_error, evaluate
from minivae.models import SemiSupervisedVAE
from minivae.optim import Adam
from minivae.train import TrainConfig, prepare_data, train

lesson = common.setup("06_semi_supervised_vae", globals(),
                      own={"EPOCHS": common.positive_int,
                           "ABLATION_EPOCHS": common.positive_int})  # fmt: skip
epochs = common.pick((10, 1), QUICK) if EPOCHS is None else EPOCHS
ablation_epochs = common.pick((2, 1), QUICK) if ABLATION_EPOCHS is None else ABLATION_EPOCHS

# M2 as in Kingma et al. (2014): one hidden layer of 500 softplus units in each of the three
# networks (encoder 784+10 -> 500 -> 2 x 50, decoder 50+10 -> 500 -> 784, classifier
# 784 -> 500 -> 10), a 50-dimensional z, Bernoulli pixels. Pairs are (full run, QUICK).
HIDDEN = common.pick(((500,), (64,)), QUICK)
LATENT = common.pick((50, 8), QUICK)
N_CLASSES = 10
N_LABELLED = 100  # class-balanced: 10 labelled images per class
N_VAL = common.pick((10000, 300), QUICK)  # held out of the 60,000: 50,000 remain, as in the paper
LIMIT_TRAIN = common.pick((None, 2000), QUICK)  # None: all training images
N_TEST = common.pick((10000, 500), QUICK)
BATCH_SIZE = 128  # unlabelled images per step ...
LABELLED_BATCH_SIZE = 100  # ... each step with a batch of labelled ones (here: all 100)
LEARNING_RATE = 2e-3  # Adam, decayed to 0 along a half cosine over the run
# α, the weight of log q(y|x) per labelled image: the paper's 0.1 N / N_labelled for the full
# run's N = 50,000, kept in QUICK too (whose small N would make it tiny)
ALPHA = 0.1 * 50_000 / N_LABELLED  # = 50
# β_z, the weight of KL(q(z|x,y) ‖ p(z)) in the training loss of both bounds (Part 3 says
# why): 1 is the paper's J; 6 is also the benchmark's (benchmarks/BENCHMARKS.md)
BETA_Z = 6.0
TEST_BINARIZATION_SEED = 12345  # the test images are binarized once, as in the benchmark
EVAL_BATCH = 1000

# Reference numbers: Kingma et al. (2014), Table 1, and Pyro's M2 tutorial
KINGMA_M2_ERROR = 0.1197  # M2 with 100 labels (± 1.71 % over label draws)
KINGMA_NN_ERROR = 0.2581  # a neural network trained on the 100 labels alone
PYRO_M2_ERROR = 0.068  # 93.2 % accuracy with 100 labels
PYRO_ABLATION_ERROR = 0.80  # about 20 % accuracy without the sum over y, or without α


def m2_config(**extra) -> dict:
    """The model config of the lesson's M2 (α = ALPHA, β_z = BETA_Z unless given)."""
    return {"kind": "m2", "x_dim": 784, "hidden": list(HIDDEN), "latent": LATENT,
            "activation": "softplus", "likelihood": "bernoulli", "n_classes": N_CLASSES,
            "alpha": ALPHA, "beta": BETA_Z, **extra}  # fmt: skip


def train_config(model: dict, n_epochs: int) -> TrainConfig:
    return TrainConfig(
        model=model, dataset=dataset, epochs=n_epochs, batch_size=BATCH_SIZE, lr=LEARNING_RATE,
        lr_schedule="cosine", binarize="dynamic", n_val=N_VAL, n_labelled=N_LABELLED,
        labelled_batch_size=LABELLED_BATCH_SIZE, limit_train=LIMIT_TRAIN, seed=SEED,
        progress=PROGRESS, fallback_dataset=True,
    )  # fmt: skip


def train_m2(folder: str, model: dict, n_epochs: int):
    """minivae.train into OUT/.../folder; (the trained model in eval mode, history, seconds)."""
    t0 = time.perf_counter()
    history = train(train_config(model, n_epochs), lesson.path(folder),
                    log=lambda line: print("    " + line))  # fmt: skip
    seconds = time.perf_counter() - t0
    trained, _ = load_model(lesson.path(f"{folder}/checkpoint.npz"), expect_kind="m2")
    trained.eval()
    return trained, history, seconds


@mv.no_grad()
def predict(model, x):
    """argmax_y q(y|x) for host images (N, 784), in batches: host ints (N,)."""
    return np.concatenate([B.to_numpy(model.classify(D.to_device(x[s : s + EVAL_BATCH])))
                           for s in range(0, len(x), EVAL_BATCH)])  # fmt: skip


def test_error(model) -> float:
    """The share of the test images whose argmax_y q(y|x) is not their label."""
    with mv.no_grad():
        return classification_error(model, D.to_device(x_test), B.from_numpy(y_test))


train_ds = D.load_for_lesson(DATASET, "train")  # one line if the built-in set is used instead
dataset = train_ds.name
lesson.dataset_used(dataset)
test_ds = D.load_dataset(dataset, "test")
x_test = D.binarize_fixed(test_ds.images, seed=TEST_BINARIZATION_SEED)[:N_TEST]  # (N_test, 784)
y_test = test_ds.labels[:N_TEST].astype(np.int64)  # (N_test,)
print(f"data set: {dataset}, {len(x_test):,} test images")
rng = np.random.default_rng([SEED, 3])  # Parts 3-5: codes, labels and pixels of samples

# %% [markdown]
# ## Part 1: does each line of the slide's L(x, y), U(x) and J compute what the library does?
# Three networks (VAE Extensions slides, "From training objective parts to model"):
#
#     q(y | x)    = Cat(softmax(classifier(x)))        the 'predictor'
#     q(z | x, y) = N(μ(x, y), diag σ²(x, y))          the encoder, input [x, onehot(y)]
#     p(x | y, z) = Bernoulli(sigmoid(g(z, y)))        the decoder, input [z, onehot(y)]
#
# with the priors p(z) = N(0, I) and p(y) = 1/C, uniform over the C = 10 classes.
# Labelled images ("What does the training objective look like?"):
#
#     log p(x, y) ≥ E_q(z|x,y)[log p(x|y,z)] + log p(y) − KL(q(z|x,y) ‖ p(z))  =: L(x, y)
#
# The slide prints "+ D_KL" (E21) and names the bound −𝓛(x, y), a loss. Here, as in the
# library, L and U are the bounds themselves (larger is better) and J is maximized.
# Unlabelled images: y is latent too, q(y, z | x) = q(y|x) q(z|x, y), and (E22, E23)
#
#     log p(x) ≥ E_q(y|x)[E_q(z|x,y) log p(x|y,z)] − KL(q(y|x) ‖ p(y))
#                − E_q(y|x)[KL(q(z|x,y) ‖ p(z))]                         =: U(x)
#              = Σ_y q(y|x) L(x, y) + H(q(y|x))
#
# The expectations over y are a sum over 10 classes, computed EXACTLY with one z-sample
# per class, not by sampling y. For fixed L(x, ·) the q(y|x) that maximizes U is
# softmax_y L(x, y), where U reaches log Σ_y exp L(x, y): the gap is
# KL(q(y|x) ‖ softmax L) ≥ 0, and training the classifier closes it. The objective
# ("Overall training objective"; Kingma et al. 2014, eq. 9):
#
#     J = Σ_labelled [L(x, y) + α log q(y|x)] + Σ_unlabelled U(x)         (maximized)
#
# The slide's last term is β Σ ‖y − E_q(y|x)[ŷ]‖², a squared error on the predicted
# probabilities; the paper, Pyro and minivae use the log-likelihood α log q(y|x) with
# α = 0.1 N / N_labelled = 50. Without it the labelled images would train q(y|x) only
# through the decoder (Part 5 measures what that does).
#
# The weights are random (float64); the point is that each line of the slide is a line of
# code, and that the library computes exactly that. *Predict:* at random weights, is U(x)
# above or below log Σ_y exp L(x, y), and is H(q(y|x)) near log 10 or near 0?

# %%
PART1_LABELLED, PART1_UNLABELLED = 6, 5  # images of the two small batches


def labelled_bound_by_hand(model, x, y, eps):
    """L(x, y) = E_q(z|x,y)[log p(x|y,z)] + log p(y) − KL(q(z|x,y) ‖ p(z)), one z-sample.

    x (B, 784) Tensor, y (B,) ints, eps (B, latent) the noise of z. Returns (B,) Tensors.
    """
    d = model.latent
    hot = mv.Tensor(B.xp.eye(N_CLASSES, dtype=np.float64)[y])  # (B, C) onehot(y), constant
    h = model.encoder(ops.concatenate([x, hot], axis=1))  # (B, 2 latent): input [x, onehot(y)]
    mu, log_var = h[:, :d], h[:, d:]  # (B, latent) each: q(z | x, y)
    z = mu + ops.exp(0.5 * log_var) * mv.Tensor(eps)  # (B, latent), z = μ + σ ε
    logits = model.decoder(ops.concatenate([z, hot], axis=1))  # (B, 784): input [z, onehot(y)]
    recon = (x * logits - ops.softplus(logits)).sum(axis=1)  # log p(x|y,z), (B,)
    # KL(q(z|x,y) ‖ p(z)) = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²)  (Computational Intelligence
    # Lab, Series 9, Problem 1.7; E10)
    kl_z = 0.5 * (mu * mu + ops.exp(log_var) - 1.0 - log_var).sum(axis=1)  # (B,)
    return {"recon": recon, "kl_z": kl_z, "L": recon - math.log(N_CLASSES) - kl_z}  # log p(y)


def unlabelled_bound_by_hand(model, x, eps_per_class):
    """U(x) in both of its forms, from L(x, y) for every class y; eps_per_class (C, B, latent)."""
    n = x.shape[0]
    log_q = ops.log_softmax(model.classifier(x), axis=1)  # log q(y|x), (B, C)
    q = ops.exp(log_q)  # q(y|x), (B, C)
    per_class = [labelled_bound_by_hand(model, x, np.full(n, c), eps_per_class[c])
                 for c in range(N_CLASSES)]  # fmt: skip
    L_all = ops.stack([t["L"] for t in per_class], axis=1)  # L(x, y) for every y, (B, C)
    recon_all = ops.stack([t["recon"] for t in per_class], axis=1)  # (B, C)
    kl_z_all = ops.stack([t["kl_z"] for t in per_class], axis=1)  # (B, C)
    entropy = -(q * log_q).sum(axis=1)  # H(q(y|x)), (B,)
    U = (q * L_all).sum(axis=1) + entropy  # Σ_y q(y|x) L(x, y) + H(q(y|x)), (B,)
    # the slide's form: E_q(y|x)[E_z log p(x|y,z)] − KL(q(y|x) ‖ p(y)) − E_q(y|x)[KL_z]
    kl_y = (q * (log_q + math.log(N_CLASSES))).sum(axis=1)  # KL(q(y|x) ‖ p(y)), (B,)
    U_slide = (q * recon_all).sum(axis=1) - kl_y - (q * kl_z_all).sum(axis=1)  # (B,)
    tightest = ops.logsumexp(L_all, axis=1)  # log Σ_y exp L(x, y): U at q(y|x) = softmax L
    return {"U": U, "U_slide": U_slide, "entropy": entropy, "log_q": log_q, "L_all": L_all,
            "tightest": tightest}  # fmt: skip


def max_abs(a, b) -> float:
    return float(np.max(np.abs(B.to_numpy(a.data) - B.to_numpy(b.data))))


print("Part 1: L(x, y), U(x) and J by hand (VAE Extensions slides, Semi-supervised VAE)")
x_host = D.binarize_fixed(train_ds.images[: PART1_LABELLED + PART1_UNLABELLED], seed=SEED)
y_l = train_ds.labels[:PART1_LABELLED].astype(np.int64)  # (B_l,) labels of the first images
with mv.set_default_dtype("float64"):
    mv.manual_seed(SEED)
    random_m2 = SemiSupervisedVAE(x_dim=784, hidden=HIDDEN, latent=LATENT, activation="softplus",
                                  n_classes=N_CLASSES, alpha=ALPHA)  # untrained, float64
    d, nl = random_m2.latent, PART1_LABELLED
    x_l = mv.Tensor(B.from_numpy(x_host[:nl], dtype=np.float64))  # (B_l, 784) labelled
    x_u = mv.Tensor(B.from_numpy(x_host[nl:], dtype=np.float64))  # (B_u, 784) unlabelled
    n_u = x_u.shape[0]
    part1_rng = np.random.default_rng([SEED, 1])

    # L(x, y) with one z per image, and the library's with the same ε
    eps_l = B.from_numpy(part1_rng.standard_normal((nl, d)))  # (B_l, latent)
    lab = labelled_bound_by_hand(random_m2, x_l, y_l, eps_l)
    library_l = random_m2.elbo(x_l, y_l, eps=eps_l)  # {"recon", "kl_z", "kl", "elbo"}
    lesson.report("by_hand_minus_library_L", max_abs(lab["L"], library_l["elbo"]),
                  "max over the batch of |L(x, y) by hand − model.elbo(x, y)['elbo']|")
    lesson.report("by_hand_L_mean", float(lab["L"].data.mean()),
                  f"L(x, y) at random weights (recon {float(lab['recon'].data.mean()):.1f}, "
                  f"KL(q(z|x,y) ‖ p(z)) {float(lab['kl_z'].data.mean()):.2f}, "
                  f"log p(y) = −log 10 = {-math.log(N_CLASSES):.3f}; nats)")  # fmt: skip

    # U(x): the same ε for every class, as model.elbo(x, eps=ε) uses it
    eps_u = B.from_numpy(part1_rng.standard_normal((n_u, d)))  # (B_u, latent)
    unl = unlabelled_bound_by_hand(random_m2, x_u, B.xp.broadcast_to(eps_u, (N_CLASSES, n_u, d)))
    library_u = random_m2.elbo(x_u, eps=eps_u)  # U(x) and its terms
    print("  shapes: " + ", ".join(f"{k} {tuple(t.shape)}" for k, t in (
        ("x_l", x_l), ("x_u", x_u), ("log q(y|x)", unl["log_q"]), ("L(x, y) for every y",
         unl["L_all"]), ("H(q(y|x))", unl["entropy"]), ("U(x)", unl["U"]))))  # fmt: skip
    lesson.report("by_hand_minus_library_U", max_abs(unl["U"], library_u["elbo"]),
                  "max |U(x) = Σ_y q(y|x) L(x, y) + H(q(y|x)) by hand − model.elbo(x)['elbo']|")
    lesson.report("by_hand_U_two_forms", max_abs(unl["U"], unl["U_slide"]),
                  "  ... |Σ_y q L + H − (E_q[recon] − KL(q(y|x) ‖ p(y)) − E_q[KL_z])| "
                  "(the slide's form)")  # fmt: skip
    lesson.report("by_hand_U_mean", float(unl["U"].data.mean()), "U(x) at random weights (nats)")
    gap = B.to_numpy(unl["tightest"].data - unl["U"].data)  # (B_u,) ≥ 0
    lesson.report("by_hand_U_gap_min", float(gap.min()),
                  "min over the batch of log Σ_y exp L(x, y) − U(x) (≥ 0: the best q(y|x) is "
                  "softmax_y L)")  # fmt: skip
    lesson.report("by_hand_U_entropy_mean", float(unl["entropy"].data.mean()),
                  f"H(q(y|x)) at random weights (at most log 10 = {math.log(10):.3f})")

    # J and its gradient, against model.loss with the noise it draws itself: one ε for the
    # labelled batch, then one per class and image (C * B_u rows, class-major)
    mv.manual_seed(SEED + 100)
    eps_l = standard_normal((nl, d), np.float64)  # on the device, as model.loss draws it
    eps_c = standard_normal((N_CLASSES * n_u, d), np.float64).reshape(N_CLASSES, n_u, d)
    lab = labelled_bound_by_hand(random_m2, x_l, y_l, eps_l)
    unl = unlabelled_bound_by_hand(random_m2, x_u, eps_c)
    alpha = random_m2.classification_weight  # ALPHA = 0.1 N / N_labelled = 50
    log_q_y = ops.log_softmax(random_m2.classifier(x_l), axis=1)[np.arange(nl), y_l]  # (B_l,)
    J = (lab["L"] + alpha * log_q_y).sum() + unl["U"].sum()  # the slide's J, maximized
    loss_by_hand = -J / (nl + n_u)  # per image, to minimize
    random_m2.zero_grad()
    loss_by_hand.backward()
    mine = {name: B.to_numpy(p.grad).copy() for name, p in random_m2.named_parameters()}
    random_m2.zero_grad()
    mv.manual_seed(SEED + 100)
    loss, _ = random_m2.loss(D.Batch(x_u, x_labelled=x_l, y_labelled=y_l))
    loss.backward()
    lesson.report("alpha", alpha, "α, the weight of log q(y|x) per labelled image (0.1 N / N_l)")
    lesson.report("by_hand_minus_library_J", abs(float(loss_by_hand.data) - float(loss.data)),
                  "|−J / (B_l + B_u) by hand − model.loss(batch of x_u, x_l, y_l)|")
    worst = max(float(np.max(np.abs(mine[name] - B.to_numpy(p.grad))))
                for name, p in random_m2.named_parameters())  # fmt: skip
    scale = max(float(np.max(np.abs(B.to_numpy(p.grad)))) for p in random_m2.parameters())
    lesson.report("by_hand_minus_library_grad", worst,
                  f"max |∂(−J)/∂θ by hand − by model.loss| over all parameters "
                  f"(largest gradient entry {scale:.3g})")  # fmt: skip

# %% [markdown]
# ## Part 2: how much do 49,900 unlabelled images add to a classifier that has 100 labels?
# 50,000 training images, of which 100 keep their labels: 10 per class, drawn by the seed
# (`minivae.data.labelled_subset`); the other 49,900 are used without labels. The labelled
# images are few, so each training step shows all of them beside an unlabelled batch of
# 128: 390 steps per epoch. The pixels are binarized afresh every epoch. After training,
# q(y|x) labels the 10,000 test images, argmax_y q(y|x) against the true labels.
#
# The baseline: M2's own classifier network (784-500-10, initialised by the same seed),
# trained with −log q(y|x) and Adam on the 100 labelled images alone (freshly binarized at
# every step); no encoder, decoder or unlabelled image. What M2 gains over it is what the
# unlabelled images add. Kingma et al. (2014, Table 1) report 25.81 % for such a network
# and 11.97 % (± 1.71 over label draws) for M2; Pyro's tutorial reaches about 6.8 %; the
# benchmark (`benchmarks/m2_quality.py`, `benchmarks/BENCHMARKS.md`) trains the lesson's M2
# for 80 epochs on three label draws: 8.75 % on average. The paper's best, 3.33 %, stacks
# M2 on the codes of a VAE trained first without labels (M1 + M2); `benchmarks/m1_m2.py`
# reaches 5.47 % with it so far (three draws; BENCHMARKS.md says what was tried). *Predict:*
# after 10 epochs, is M2's test error nearer the baseline's or the paper's?

# %%
BASELINE_STEPS = common.pick((500, 100), QUICK)  # Adam steps of the classifier alone
BASELINE_LEARNING_RATE = 1e-3

print(f"Part 2: M2 with {N_LABELLED} labels (Kingma et al. 2014)")
splits = prepare_data(train_config(m2_config(), 1))  # the training rows and the 100 labelled
labelled, labels = splits.labelled, splits.y_train[splits.labelled]  # (100,) each
per_class = np.bincount(labels, minlength=N_CLASSES)
lesson.report("n_train", len(splits.x_train), "training images (labelled and unlabelled)")
lesson.report("n_labelled", len(labelled), "of them labelled")
lesson.report("labelled_per_class", per_class.tolist(), "  ... per class")
shown = splits.x_train[labelled[np.argsort(labels, kind="stable")]]  # grey levels, by class
common.show(plots.image_grid(
    shown, lesson.path("2_labelled_examples.png"),
    f"Part 2 - the only {len(labelled)} labels M2 gets: {per_class.max()} training images per "
    f"class (drawn by seed {SEED}); the other {len(splits.x_train) - len(labelled):,} images "
    "are unlabelled", ncols=int(per_class.max()),
    row_labels=[str(c) for c in train_ds.class_names]))

mv.manual_seed(SEED)  # the baseline: the classifier q(y|x) alone
alone = SemiSupervisedVAE(**{k: v for k, v in m2_config().items() if k != "kind"})
optimizer = Adam(alone.classifier.parameters(), lr=BASELINE_LEARNING_RATE)
baseline_rng = np.random.default_rng([SEED, 2])
y_lab = B.from_numpy(labels.astype(np.int64))  # (100,)
t0 = time.perf_counter()
for _ in range(BASELINE_STEPS):
    xb = D.to_device(D.binarize(splits.x_train[labelled], baseline_rng))  # (100, 784)
    loss = ops.cross_entropy(alone.classifier_logits(xb), y_lab).mean()  # mean −log q(y|x)
    alone.zero_grad()
    loss.backward()
    optimizer.step()
alone.eval()
lesson.report("test_error_labels_only", test_error(alone),
              f"test error of the same classifier trained on the {len(labelled)} labelled images "
              f"alone ({BASELINE_STEPS} Adam steps, {time.perf_counter() - t0:.0f} s)")  # fmt: skip
lesson.report("train_loss_labels_only", float(loss.data),
              "  ... its last training loss, mean −log q(y|x) on the labelled images")

print(f"  training M2 (β_z = {BETA_Z:g}) for {common.plural(epochs, 'epoch')} ...")
full, history, seconds = train_m2("m2_full", m2_config(), epochs)
terms = evaluate(full, x_test, y_test)  # both bounds on the test images, nats per image
lesson.report("epochs", epochs, "epochs of the lesson's M2 (and of the paper's J)")
lesson.report("beta_z", full.beta, "β_z, the weight of KL(q(z|x,y) ‖ p(z)) in training")
lesson.report("train_seconds", seconds, "its training wall time (s)")
lesson.report("n_test", len(x_test), "test images")
lesson.report("test_error", test_error(full), "test error of q(y|x), argmax over y")
lesson.report("val_error_per_epoch", [float(f"{r['val_error']:.6g}") for r in history],
              "validation error after each epoch")  # fmt: skip
lesson.report("test_labelled_bound", terms["labelled_elbo"],
              "test L(x, y) with the true y, mean (nats; ≤ log p(x, y))")  # fmt: skip
lesson.report("test_unlabelled_bound", terms["unlabelled_elbo"],
              "test U(x), mean (nats; ≤ log p(x))")  # fmt: skip
lesson.report("test_classification_loss", terms["classification_loss"],
              "test −log q(y|x) at the true y, mean (nats)")  # fmt: skip

# %% [markdown]
# ## Part 3: does the paper's J, as written, teach q(y|x) as fast as J with β_z = 6?
# *This cell states what THIS lesson's budget shows (10 epochs per model, EPOCHS left at
# None). At the benchmark's 80 epochs over three label draws J as written still lags: 19.4 %
# test error against 8.75 % with β_z = 6 (`benchmarks/BENCHMARKS.md`).*
#
# U(x) teaches q(y|x) through the decoder: its gradient pulls q(y|x) towards
# softmax_y L(x, y), towards the label under which the decoder explains x best. That helps
# only if the decoder USES y. But the encoder q(z|x, y) sees x, so z can carry the digit as
# well, and the KL charges little for it: about log 10 = 2.3 nats, some 2 % of the bound.
# After this lesson's 10 epochs on J as written, the decoder still half ignores y (the
# label effect of Part 4 is well below the β_z = 6 model's: changing y changes the image
# less), L(x, y) differs little between the classes, and the unlabelled images have taught
# q(y|x) little: its test error stays near the classifier's on the labels alone.
# Weighting the KL of z by β_z > 1 in both bounds (lesson 04's β, on z only; the reported
# bounds stay the true ones) makes information in z dearer than in y, whose price is fixed
# at log 10: the decoder takes the digit from y, L(x, y) separates the classes by tens of
# nats, and U(x) pulls q(y|x) towards the right class. *Predict:* after the same 10 epochs,
# how far apart are the two test errors?

# %%
print(f"Part 3: M2 on the paper's J (β_z = 1) for {common.plural(epochs, 'epoch')} ...")
paper, paper_history, seconds = train_m2("m2_paper", m2_config(beta=1.0), epochs)
lesson.report("test_error_paper", test_error(paper),
              "test error, the paper's J (β_z = 1), as many epochs")  # fmt: skip
lesson.report("val_error_per_epoch_paper", [float(f"{r['val_error']:.6g}") for r in paper_history],
              "  ... its validation error after each epoch")  # fmt: skip
lesson.report("train_seconds_paper", seconds, "  ... training wall time (s)")
lesson.report("label_effect_paper", common.label_effect(lambda z, y: common.decode(paper, z, y),
                                                        paper.latent, N_CLASSES, rng)[0],
              "  ... its label effect (≈ 0: the decoder ignores y; Part 4)")  # fmt: skip
common.show(plots.line_plot(
    {f"M2, β_z = {BETA_Z:g}": [r["val_error"] for r in history],
     "the paper's J (β_z = 1)": [r["val_error"] for r in paper_history]},
    lesson.path("3_validation_error.png"),
    f"Part 3 - validation error of q(y|x) after each epoch, {N_LABELLED} labels (chance: 0.9)",
    "epoch", "validation error"))

# %% [markdown]
# ## Part 4: does the label y pick the digit, and z the style?
# VAE Extensions slides, "What does conditional / unconditional generation look like?".
# Conditional: choose y, draw z ~ N(0, I), decode p(x | y, z); one row per class, one z
# per column. If M2 has split the data as the paper's Fig. 1 shows, y says which digit and
# z what is left, the style (slant, stroke width, size): a column keeps its style across
# digits, a row keeps its digit across styles. Style transfer (Kingma et al. 2014, Fig. 1):
# the z of a test image (the mean of q(z | x, y) at the classifier's y) decoded with every
# y. Unconditional: y ~ p(y) = 1/10 and z ~ N(0, I), a draw from p(x) = Σ_y p(y) p(x|y).
# Generation starts from the priors; the encoder runs only for style transfer (E14).
#
# Two numbers say whether the label controls the class:
# - label effect = mean ‖g(z, y) − g(z, y')‖² over y ≠ y' (same z) divided by
#   mean ‖g(z, y) − g(z', y)‖² over z ≠ z' (same y), on the conditional grid: near 1 or
#   above when changing y changes the image as much as changing z; near 0 when the decoder
#   ignores y and z carries the digit;
# - agreement = the share of conditional samples (drawn as binary images) that the model's
#   own classifier assigns to the class they were drawn from.
#
# *Predict:* the label effect of the β_z = 6 model against the paper's J of Part 3.

# %%
N_STYLES = 10  # columns of the conditional grid: one z ~ N(0, I) each
N_TRANSFER = 8  # test images whose z is decoded with every class
N_UNCONDITIONAL = 60
N_AGREEMENT = common.pick((2000, 300), QUICK)  # conditional samples judged per model


@mv.no_grad()
def sample_agreement(model, n: int) -> float:
    """Share of n samples x ~ p(x | y, z) (y cycling over the classes) that q(y|x) labels y."""
    y = np.arange(n) % N_CLASSES
    means = common.decode(model, rng.standard_normal((n, model.latent)), y)  # (n, 784)
    drawn = (rng.random(means.shape) < means).astype(np.float32)  # binary, as in training
    return float(np.mean(predict(model, drawn) == y))


print("Part 4: conditional and unconditional generation (VAE Extensions slides)")
effect, grid = common.label_effect(lambda z, y: common.decode(full, z, y), full.latent, N_CLASSES, rng,
                                   n_styles=N_STYLES)  # fmt: skip
lesson.report("label_effect_full", effect,
              "label effect: mean ‖g(z, y) − g(z, y')‖² / mean ‖g(z, y) − g(z', y)‖² "
              "(≈ 0: the decoder ignores y)")  # fmt: skip
names = [str(c) for c in train_ds.class_names]
common.show(plots.image_grid(
    grid, lesson.path("4_conditional_samples.png"),
    "Part 4 - conditional generation p(x | y, z): one row per class y, one z ~ N(0, I) per "
    "column (the same z down a column: the style)", ncols=N_STYLES, row_labels=names,
    col_labels=[f"z{j}" for j in range(N_STYLES)]))

shown = x_test[:N_TRANSFER]  # (8, 784) binarized test images
with mv.no_grad():
    mu, _ = full.encode(D.to_device(shown))  # mean of q(z | x, y = argmax q(y|x)), (8, latent)
codes = np.repeat(B.to_numpy(mu.data).astype(np.float64), N_CLASSES, axis=0)  # (80, latent)
decoded = common.decode(full, codes, np.tile(np.arange(N_CLASSES), N_TRANSFER))  # row i * 10 + c
cells = np.concatenate([shown[:, None, :], decoded.reshape(N_TRANSFER, N_CLASSES, -1)], axis=1)
common.show(plots.image_grid(
    cells.reshape(-1, shown.shape[1]), lesson.path("4_style_transfer.png"),
    "Part 4 - style transfer: a test image (left), its z = mean of q(z|x,y), decoded with "
    "every label y (Kingma et al. 2014, Fig. 1)", ncols=N_CLASSES + 1,
    col_labels=["test image"] + names))

y_drawn = rng.integers(0, N_CLASSES, N_UNCONDITIONAL)  # y ~ p(y), uniform
z_drawn = rng.standard_normal((N_UNCONDITIONAL, full.latent))  # z ~ p(z)
common.show(plots.image_grid(
    common.decode(full, z_drawn, y_drawn), lesson.path("4_unconditional_samples.png"),
    "Part 4 - unconditional generation: y ~ p(y) = 1/10, z ~ N(0, I), the means of p(x | y, z)",
    ncols=12))
lesson.report("sample_agreement_full", sample_agreement(full, N_AGREEMENT),
              "share of conditional samples of class y that q(y|x) labels y")  # fmt: skip

# %% [markdown]
# ## Part 5: what breaks without the exact sum over y, or without the term α log q(y|x)?
# Sampled y (`sum_over_y=False`): U(x) is estimated with one y ~ q(y|x) per image instead
# of the exact sum. The estimate of the bound is unbiased, but no gradient reaches q(y|x)
# through the sampled label (a discrete choice): the classifier learns only from
# α log q(y|x) on the 100 labelled images and from the entropy H(q(y|x)) of U(x), which
# pushes q(y|x) towards uniform on every unlabelled image. Nothing tells it which class an
# unlabelled image belongs to, and the entropy term blurs what the labels taught.
#
# α = 0: the sum is exact, but the labelled images reach q(y|x) only through the generative
# model: U(x) pulls q(y|x) towards softmax_y L(x, y), the y under which the decoder
# explains x best, and the decoder learns what each y means from the labelled L(x, y).
# Here the labelled batch comes with every step, so the decoder learns that well. Pyro's
# tutorial, whose labelled batches are rare, reports about 20 % accuracy (80 % error) for
# its variants without the sum or without the classification term.
#
# Each ablation trains for fewer epochs (2, ABLATION_EPOCHS left at None) than the full
# model, whose validation error after as many epochs is reported beside them. *Predict:*
# which ablation ends worse than the classifier trained on the labels alone, and which far
# from chance?

# %%
variants = {"sampled_y": ("y sampled, not summed (sum_over_y=False)", {"sum_over_y": False}),
            "alpha0": ("no classification term (α = 0)", {"alpha": 0.0})}  # fmt: skip
ablations, ablation_histories = {}, {}
print("Part 5: the ablations: y sampled instead of summed; α = 0")
for key, (label, extra) in variants.items():
    print(f"  training the ablation {label} for {ablation_epochs} epochs ...")
    model, ablation_histories[key], seconds = train_m2(f"m2_{key}", m2_config(**extra),
                                                       ablation_epochs)  # fmt: skip
    ablations[key] = model
    lesson.report(f"test_error_{key}", test_error(model), f"test error, {label}")
    lesson.report(f"train_seconds_{key}", seconds, "  ... training wall time (s)")
    lesson.report(f"sum_over_y_{key}", model.sum_over_y, "  ... sum_over_y")
    lesson.report(f"alpha_{key}", model.classification_weight, "  ... α")
    lesson.report(f"sample_agreement_{key}", sample_agreement(model, N_AGREEMENT),
                  "  ... share of its conditional samples of class y that its q(y|x) labels y")
    lesson.report(f"val_error_{key}", ablation_histories[key][-1]["val_error"],
                  "  ... its validation error after its last epoch")  # fmt: skip
lesson.report("ablation_epochs", ablation_epochs, "epochs of each ablation")
same = min(ablation_epochs, len(history))
lesson.report("val_error_full_at_ablation_epochs", history[same - 1]["val_error"],
              f"validation error of the full model after {same} epochs (the ablations' budget)")

n = lesson.numbers
common.error_bars(
    {f"M2, β_z = {BETA_Z:g}\n({epochs} epochs)": n["test_error"],
     f"the paper's J\n(β_z = 1, {epochs} epochs)": n["test_error_paper"],
     f"sampled y\n({ablation_epochs} epochs)": n["test_error_sampled_y"],
     f"α = 0\n({ablation_epochs} epochs)": n["test_error_alpha0"],
     f"labels only\n({BASELINE_STEPS} steps)": n["test_error_labels_only"]},
    [(KINGMA_M2_ERROR, "--", f"Kingma et al. 2014, M2: {100 * KINGMA_M2_ERROR:.2f} %"),
     (KINGMA_NN_ERROR, (0, (1, 3)), f"Kingma et al., NN on labels: {100 * KINGMA_NN_ERROR:.2f} %"),
     (PYRO_M2_ERROR, ":", f"Pyro tutorial, M2: {100 * PYRO_M2_ERROR:.1f} %"),
     (PYRO_ABLATION_ERROR, "-.", f"Pyro, ablations: about {100 * PYRO_ABLATION_ERROR:.0f} %"),
     (0.9, "-", "chance: 90 %")],
    lesson.path("5_test_error.png"),
    f"Part 5 - what β_z, the sum over y and the classification term do, {N_LABELLED} labels",
    f"test error on {len(x_test):,} images")  # fmt: skip
common.confusion_matrices(
    {"M2": predict(full, x_test), "sampled y": predict(ablations["sampled_y"], x_test),
     "α = 0": predict(ablations["alpha0"], x_test)}, y_test, N_CLASSES,
    lesson.path("5_confusion_matrices.png"),
    "Part 5 - confusion matrices on the test images (counts in the cells)")  # fmt: skip

# %% [markdown]
# ## What the numbers say
# Each claim above, checked against this run's numbers (a QUICK run records them in
# summary.json but does not print them: its sizes are too small to decide).

# %%
def pct(key: str) -> str:
    return f"{100 * n[key]:.2f} %"


worst = max(n[f"by_hand_minus_library_{k}"] for k in ("L", "U", "J", "grad"))
lesson.verdict("by_hand_is_the_library", worst < 1e-9,
               f"L(x, y), U(x), J and ∂J/∂θ by hand equal the library's (to {worst:.1e})")
lesson.verdict("u_below_its_best", n["by_hand_U_gap_min"] > 0,
               "U(x) < log Σ_y exp L(x, y) for an untrained q(y|x)")
lesson.verdict("unlabelled_images_help", n["test_error"] < n["test_error_labels_only"],
               f"M2 (β_z = {BETA_Z:g}, {pct('test_error')}) beats its classifier trained on the "
               f"labels alone ({pct('test_error_labels_only')})")  # fmt: skip
lesson.verdict("beta_z_beats_paper_j_at_this_budget", n["test_error"] < n["test_error_paper"],
               f"after {epochs} epochs, β_z = {BETA_Z:g} has a lower test error than the "
               f"paper's J ({pct('test_error')} against {pct('test_error_paper')})")  # fmt: skip
lesson.verdict("beta_z_decoder_uses_y", n["label_effect_full"] > n["label_effect_paper"],
               f"the label changes the image more with β_z = {BETA_Z:g} than with the paper's "
               f"J (label effect {n['label_effect_full']:.2f} against "
               f"{n['label_effect_paper']:.2f})")  # fmt: skip
lesson.verdict("samples_have_their_class", n["sample_agreement_full"] > 0.9,
               "q(y|x) labels over 90 % of the conditional samples with their class "
               f"({pct('sample_agreement_full')})")  # fmt: skip
lesson.verdict("sampled_y_worse_than_labels_only",
               n["test_error_sampled_y"] > n["test_error_labels_only"],
               f"sampling y ({pct('test_error_sampled_y')}) ends worse than the labels alone")
lesson.verdict("alpha0_behind_but_far_from_chance",
               n["val_error_full_at_ablation_epochs"] < n["val_error_alpha0"] < 0.5,
               f"α = 0 is behind the full model after {ablation_epochs} epochs, yet far from "
               f"chance (validation error {pct('val_error_alpha0')}, below 50 %, against "
               f"{pct('val_error_full_at_ablation_epochs')})")  # fmt: skip
summary = lesson.finish()
