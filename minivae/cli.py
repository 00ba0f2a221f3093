"""The ``minivae`` command: train, eval, sample, datasets, download.

    minivae train vae --dataset mnist --latent 20 --epochs 10
    minivae eval runs/vae-mnist/checkpoint.npz --nll-samples 5000
    minivae sample runs/cvae-mnist/checkpoint.npz -n 64 --label 3
    minivae datasets
    minivae download mnist

Each run writes under runs/<name>/ (config.json, metrics.jsonl, checkpoint.npz,
summary.json, figures) and prints where. The command only parses, checks and
dispatches: training and the run's figures are ``minivae.train``'s, the numbers
``minivae.metrics``'s, and no model is known by name here. Which option applies to
which model is read off the model classes (``option_table()``): their constructor
arguments, and what the protocol says they have (a prior, labelled batches, a
likelihood).

Every failure ends in a message that says what was wrong and what to do, never in a
traceback (``--debug`` or ``MINIVAE_DEBUG=1`` shows it). Exit codes: 0 done, 1 failed
(a bad file, missing data, a diverged run, out of memory), 2 an option or a run folder
that cannot be used (refused before any work), 130 interrupted.
"""

from __future__ import annotations

import argparse
import glob
import math
import os
import sys
import time
import warnings

from minivae import backend as B
from minivae.models.common import SemiSupervised

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
DEBUG_ENV = "MINIVAE_DEBUG"


class UsageError(ValueError):
    """An option (or a combination of options, or a run folder) that cannot be used."""


# ----------------------------------------------------------------------------- option types
# Each raises argparse.ArgumentTypeError, which argparse reports as
# "minivae train: error: argument --lr: <message>", naming the option.


def finite_number(text: str) -> float:
    """An argparse type: a finite real number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    value = finite_number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    value = finite_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    return value


def whole_number(text: str) -> int:
    """An argparse type: an integer."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (a count)."""
    value = whole_number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """An argparse type: an integer >= 0 (a seed)."""
    value = whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}")
    return value


MAX_SAMPLES = 4096  # a grid of 64 x 64 images; more is no figure anyone can read


def _grid_size(text: str) -> int:
    value = positive_int(text)
    if value > MAX_SAMPLES:
        raise argparse.ArgumentTypeError(
            f"at most {MAX_SAMPLES} samples fit a readable grid, got {value}: draw several "
            "grids with different --seed instead"
        )
    return value


def _sizes(text: str) -> list:
    """Layer sizes "400" or "500,500"; "none" for no hidden layer (linear maps)."""
    if text.strip().lower() == "none":
        return []
    try:
        sizes = [int(s) for s in text.split(",")]  # an empty item (",", "400,") is an error
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected sizes like '400' or '500,500' (or 'none' for no hidden layer), got {text!r}"
        ) from None
    if any(s <= 0 for s in sizes):
        raise argparse.ArgumentTypeError(f"layer sizes must be positive, got {text!r}")
    return sizes


def _label(text: str):
    """A label for ``sample --label``: a whole number (a class) or a real number (a property)."""
    value = finite_number(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text else value


def _run_name(text: str) -> str:
    """A run name: one folder name inside --out, so that a run can never be written outside it."""
    bad = (not text or text in (".", "..") or os.path.isabs(text) or "/" in text
           or (os.sep in text) or (os.altsep and os.altsep in text) or "\0" in text)  # fmt: skip
    if bad:
        raise argparse.ArgumentTypeError(
            f"a run name is one folder name inside --out (no '/', '..' or absolute path), "
            f"got {text!r}; choose where runs go with --out"
        )
    return text


# ----------------------------------------------------------------------------- which option applies

# the options of `minivae train` that set a model's constructor argument of the same meaning:
# argument -> (option, what it sets). A model takes the option when its constructor takes the
# argument (``Model.arguments()``); otherwise the option is refused, naming the models that do.
MODEL_OPTIONS = {
    "hidden": ("--hidden", "the hidden layer sizes"),
    "latent": ("--latent", "the latent size"),
    "activation": ("--activation", "the hidden activation"),
    "likelihood": ("--likelihood", "the decoder's likelihood"),
    "sigma": ("--sigma", "a Gaussian decoder's fixed sigma"),
    "beta": ("--beta", "the weight of the KL term"),
    "tc_beta": ("--tc-beta", "the weight of the total correlation"),
    "n_samples": ("--samples", "the Monte-Carlo samples of z"),
    "alpha": ("--alpha", "the weight of the classification term"),
    "covariance": ("--covariance", "the form of q(z|x)'s covariance"),
    "init": ("--init", "the layers' initialisation"),
    "capacity": ("--capacity", "the target rate of a controlled-capacity beta-VAE"),
}

# the other options that apply to some models only: option -> (what the model must have,
# read off its class; the reason, said of a model without it)
CLASS_OPTIONS = {
    "--labels": (lambda cls: issubclass(cls, SemiSupervised),
                 ("it trains on labels it is given for every example, or on none, and picks "
                  "no labelled subset")),
    "--kl-warmup": (lambda cls: cls.has_prior, "it has no prior p(z), so no KL term to warm up"),
    "--nll-samples": (lambda cls: hasattr(cls, "log_importance_weights"),
                      ("it defines no likelihood p(x) to estimate (summary.json holds its "
                       "validation reconstruction, and 'minivae eval' on its checkpoint gives "
                       "its test reconstruction)")),
}  # fmt: skip


def option_table() -> dict:
    """{option: [models it applies to]} for every model-dependent option (README, tests)."""
    from minivae.models import MODELS

    table = {flag: [kind for kind, cls in MODELS.items() if name in cls.arguments()]
             for name, (flag, _) in MODEL_OPTIONS.items()}  # fmt: skip
    for flag, (has, _) in CLASS_OPTIONS.items():
        table[flag] = [kind for kind, cls in MODELS.items() if has(cls)]
    return table


def _listed(names: list) -> str:
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


# the options of a resumed run that may differ from the run's start (the rest must match)
RESUME_MAY_CHANGE = ("--epochs", "--nll-samples", "--no-progress", "--device", "--debug")

# TrainConfig fields -> the option that sets each (for messages about a resumed run)
FIELD_OPTIONS = {
    "dataset": "--dataset", "batch_size": "--batch-size", "optimizer": "--optimizer",
    "lr": "--lr", "lr_schedule": "--lr-schedule", "lr_decay": "--lr-decay",
    "kl_warmup_epochs": "--kl-warmup", "clip_grad": "--clip-grad", "binarize": "--binarize",
    "n_val": "--n-val", "n_labelled": "--labels", "limit_train": "--limit-train",
    "seed": "--seed", "dtype": "--dtype", "epochs": "--epochs (the cosine schedule's length)",
}  # fmt: skip


# ----------------------------------------------------------------------------- the parser


def _add_common(p, device: bool = True):
    if device:
        p.add_argument("--device", choices=("cpu", "gpu"), default=None,
                       help="cpu (NumPy) or gpu (CuPy); default: $MINIVAE_DEVICE or cpu")  # fmt: skip
        p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                       help="floating-point precision (default float32)")  # fmt: skip
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help=f"show the Python traceback of a failure (or set {DEBUG_ENV}=1)")  # fmt: skip


EPILOG = ("Exit codes: 0 done; 1 failed (a bad file, missing data, a diverged run, out of "
          "memory); 2 an option or run folder that cannot be used; 130 interrupted.")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    from minivae.data import DATASETS
    from minivae.models import MODELS, VAE
    from minivae.nn import INITS

    parser = argparse.ArgumentParser(
        prog="minivae",
        description="Variational autoencoders from scratch: train, evaluate and sample.",
        epilog=EPILOG,
    )
    parser.add_argument("--debug", action="store_true", default=False,
                        help=f"show the Python traceback of a failure (or set {DEBUG_ENV}=1)")  # fmt: skip
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    table = option_table()

    def only(flag: str) -> str:
        return f"; {_listed(table[flag])} only" if len(table[flag]) < len(MODELS) else ""

    t = sub.add_parser(
        "train", help="train a model and write runs/<name>/",
        description="Train an autoencoder, VAE, conditional VAE, M2, or the continuous-label "
                    "M2 (its label: each image's slant). The run goes to --out/--name; a "
                    "folder that already holds a run is refused unless --resume (continue "
                    "it) or --overwrite (replace it) is given. An option that does not apply "
                    "to the model is refused, saying why.",
        epilog=EPILOG,
    )  # fmt: skip
    t.add_argument("model", choices=tuple(MODELS),
                   help="ae, vae, cvae, m2 (semi-supervised) or ssvae-continuous "
                        "(semi-supervised with a real-valued label)")  # fmt: skip
    t.add_argument("--dataset", default="mnist", choices=DATASETS, help="dataset (default mnist)")
    t.add_argument("--latent", type=positive_int, default=20, help="latent size (default 20)")
    t.add_argument("--hidden", type=_sizes, default=[400],
                   help="hidden layer sizes, comma-separated, or none (default 400)")  # fmt: skip
    t.add_argument("--activation", default="relu",
                   choices=("relu", "leaky_relu", "tanh", "softplus", "sigmoid"),
                   help="hidden activation (default relu)")  # fmt: skip
    t.add_argument("--likelihood", default="bernoulli", choices=("bernoulli", "gaussian"),
                   help="decoder likelihood (default bernoulli; ae: gaussian means the squared "
                        "error)")  # fmt: skip
    t.add_argument("--sigma", type=positive_float, default=None,
                   help="fixed decoder sigma > 0, with --likelihood gaussian only (default: "
                        "learned)" + only("--sigma"))  # fmt: skip
    t.add_argument("--beta", type=non_negative_float, default=None,
                   help="weight of the KL term (default 1)" + only("--beta"))
    t.add_argument("--tc-beta", type=non_negative_float, default=None,
                   help="beta-TCVAE: weight of the total correlation alone (default 1, no extra "
                        "term)" + only("--tc-beta"))  # fmt: skip
    t.add_argument("--samples", type=positive_int, default=None,
                   help="Monte-Carlo samples L of z per example (default 1)" + only("--samples"))
    t.add_argument("--alpha", type=non_negative_float, default=None,
                   help="weight of the classification term (default 0.1 N / N_labelled)"
                        + only("--alpha"))  # fmt: skip
    t.add_argument("--covariance", default=None, choices=VAE.COVARIANCES,
                   help="q(z|x) = N(mu, diag sigma^2) or N(mu, L L^T) (default diagonal)"
                        + only("--covariance"))  # fmt: skip
    t.add_argument("--init", default=None, choices=INITS,
                   help="the layers' initialisation (default: he for relu nets, else xavier; "
                        "uniform is PyTorch's nn.Linear default)" + only("--init"))  # fmt: skip
    t.add_argument("--capacity", type=positive_float, default=None,
                   help="C nats: train -recon + beta |KL - c| (Burgess et al. 2018), c rising "
                        "from 0 to C over --kl-warmup epochs; use a large --beta, e.g. 100 "
                        "(default: none)" + only("--capacity"))  # fmt: skip
    t.add_argument("--labels", type=positive_int, default=None,
                   help="number of class-balanced labelled examples, a multiple of the "
                        "classes (default 100, or the multiple nearest it: 99 for the 3 "
                        "shapes)" + only("--labels"))  # fmt: skip
    t.add_argument("--epochs", type=positive_int, default=10,
                   help="epochs in all (default 10); with --resume, raise it to train longer")
    t.add_argument("--batch-size", type=positive_int, default=128, help="batch size (default 128)")
    t.add_argument("--optimizer", default="adam", choices=("adam", "adagrad", "sgd"),
                   help="optimizer (default adam)")  # fmt: skip
    t.add_argument("--lr", type=positive_float, default=1e-3,
                   help="learning rate > 0 (default 1e-3)")  # fmt: skip
    t.add_argument("--lr-schedule", default="constant", choices=("constant", "exponential", "cosine"),
                   help="learning-rate schedule (default constant)")  # fmt: skip
    t.add_argument("--lr-decay", type=positive_float, default=None,
                   help="per-epoch factor > 0 of the learning rate, with --lr-schedule "
                        "exponential only (default 1)")  # fmt: skip
    t.add_argument("--kl-warmup", type=non_negative_float, default=None,
                   help="epochs over which the KL weight rises from 0 to 1 (default 0: none)"
                        + only("--kl-warmup"))  # fmt: skip
    t.add_argument("--clip-grad", type=positive_float, default=None,
                   help="clip the gradient norm to this (> 0; default: no clipping)")
    t.add_argument("--binarize", default="dynamic", choices=("dynamic", "fixed", "none"),
                   help="binarization of the pixels (default dynamic: redrawn each epoch)")  # fmt: skip
    t.add_argument("--n-val", type=non_negative_int, default=10000,
                   help="training examples held out for validation (default 10000; at most a "
                        "fifth of the examples, and training says when it holds out fewer)")  # fmt: skip
    t.add_argument("--limit-train", type=positive_int, default=None,
                   help="use only the first N training examples (for quick runs)")  # fmt: skip
    t.add_argument("--seed", type=non_negative_int, default=0,
                   help="random seed >= 0 (default 0)")  # fmt: skip
    t.add_argument("--name", type=_run_name, default=None,
                   help="run name: one folder inside --out (default: <model>-<dataset>)")
    t.add_argument("--out", default="runs", help="folder that holds the runs (default runs)")
    again = t.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue the run in --out/--name from its checkpoint. Every option "
                            "must be as the run started (the run is refused, listing the "
                            "differences), except " + ", ".join(RESUME_MAY_CHANGE)
                            + " (--epochs not under --lr-schedule cosine, whose length it is)")  # fmt: skip
    again.add_argument("--overwrite", action="store_true",
                       help="replace the run in --out/--name (its checkpoint, metrics, "
                            "config, summary and figures are deleted once the data are "
                            "loaded); without it, a folder holding a run is refused")  # fmt: skip
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--nll-samples", type=non_negative_int, default=None,
                   help="after training, importance-sampled test NLL with K samples "
                        "(default 0: skip)" + only("--nll-samples"))  # fmt: skip
    _add_common(t)

    e = sub.add_parser(
        "eval", help="test ELBO, importance-sampled NLL, M2 error",
        description="Evaluate a checkpoint on a test set. The importance-sampled NLL takes "
                    "minutes with K = 5000 on the 10000 test images (a progress bar shows "
                    "the time left on a terminal): --limit and --nll-samples make it quicker.",
        epilog=EPILOG,
    )  # fmt: skip
    e.add_argument("checkpoint", help="path to a checkpoint.npz")
    e.add_argument("--nll-samples", type=positive_int, default=None,
                   help="importance samples K for log p(x) (default 5000; not for ae, which "
                        "has no likelihood)")  # fmt: skip
    e.add_argument("--dataset", default=None, choices=DATASETS,
                   help="dataset (default: the one it was trained on)")  # fmt: skip
    e.add_argument("--split", default="test", choices=("train", "test"), help="split (default test)")
    e.add_argument("--limit", type=positive_int, default=None,
                   help="evaluate the first N examples only (quicker)")  # fmt: skip
    e.add_argument("--batch-size", type=positive_int, default=100,
                   help="examples per importance-sampling batch (default 100)")  # fmt: skip
    e.add_argument("--seed", type=non_negative_int, default=0, help="random seed >= 0 (default 0)")
    _add_common(e)

    s = sub.add_parser(
        "sample", help="decode samples from the prior into an image grid",
        description="Draw samples from a trained model (not from an ae: it has no prior). "
                    "The grid goes beside the checkpoint as sample-n<N>-seed<S>[-label<L>].png, "
                    "never over the samples.png of training; the command says when it "
                    "replaces a file.",
        epilog=EPILOG,
    )  # fmt: skip
    s.add_argument("checkpoint", help="path to a checkpoint.npz")
    s.add_argument("-n", type=_grid_size, default=64,
                   help=f"number of samples, at most {MAX_SAMPLES} (default 64)")  # fmt: skip
    s.add_argument("--label", type=_label, default=None,
                   help="cvae, m2: the class to generate; ssvae-continuous: the label's value "
                        "(degrees of slant)")  # fmt: skip
    s.add_argument("--out", default=None,
                   help="PNG path, or a folder for the default name (a new folder: end it "
                        "with /; default: beside the checkpoint)")  # fmt: skip
    s.add_argument("--seed", type=non_negative_int, default=0, help="random seed >= 0 (default 0)")
    _add_common(s)

    ds = sub.add_parser("datasets", help="list the datasets and where their files are",
                        description="List datasets and locate their files.")  # fmt: skip
    _add_common(ds, device=False)

    d = sub.add_parser(
        "download", help="download a dataset into the user cache",
        description="Download a dataset, verify its SHA-256, store it atomically. Without "
                    "the internet: put the files in a folder and set MINIVAE_DATA, or use "
                    "the built-in set fashion-mnist-builtin. MINIVAE_OFFLINE=1 turns "
                    "downloads off.",
        epilog=EPILOG,
    )  # fmt: skip
    d.add_argument("name", choices=[n for n in DATASETS if n in ("mnist", "fashion-mnist")],
                   help="dataset to download")  # fmt: skip
    _add_common(d, device=False)
    parser.subcommands = {"train": t, "eval": e, "sample": s, "datasets": ds, "download": d}
    return parser


# ----------------------------------------------------------------------------- checks at parse time


def check_train(args) -> None:
    """Refuse (UsageError) what `minivae train` cannot do, before any work; fill in defaults."""
    from minivae.data import dataset_info
    from minivae.models import MODELS, build_model
    from minivae.train import FIGURES, RUN_FILES

    cls = MODELS[args.model]
    table = option_table()
    taken = cls.arguments()
    for name, (flag, meaning) in MODEL_OPTIONS.items():
        if _given(args, flag) and name not in taken:
            raise UsageError(
                f"{flag} does not apply to {args.model}: it sets {meaning}, which {args.model} "
                f"does not have (its constructor takes no {name!r}); {flag} applies to "
                f"{_listed(table[flag])}"
            )
    for flag, (has, reason) in CLASS_OPTIONS.items():
        if _given(args, flag) and not has(cls):
            if flag == "--nll-samples" and args.nll_samples == 0:
                continue  # 0 means "skip", which is what it does anyway
            raise UsageError(f"{flag} does not apply to {args.model}: {reason}; {flag} applies "
                             f"to {_listed(table[flag])}")  # fmt: skip
    if args.sigma is not None and args.likelihood != "gaussian":
        raise UsageError("--sigma is the standard deviation of a Gaussian decoder: give "
                         "--likelihood gaussian with it (a Bernoulli decoder has no sigma)")  # fmt: skip
    if args.lr_decay is not None and args.lr_schedule != "exponential":
        raise UsageError(f"--lr-decay is the factor of --lr-schedule exponential; the schedule "
                         f"is {args.lr_schedule}: give --lr-schedule exponential with it")  # fmt: skip
    info = dataset_info(args.dataset)
    if args.labels is not None and args.labels % info["n_classes"]:
        raise UsageError(f"--labels {args.labels}: the labelled examples are class-balanced, so "
                         f"give a multiple of the {info['n_classes']} classes of "
                         f"{args.dataset}")  # fmt: skip

    args.name = args.name or f"{args.model}-{args.dataset}"
    args.run = os.path.join(args.out, args.name)
    found = [n for n in (*RUN_FILES, "summary.json") if os.path.exists(os.path.join(args.run, n))]
    if args.resume and "checkpoint.npz" not in found:
        raise UsageError(f"--resume: {args.run} holds no checkpoint.npz to continue (the run "
                         "never finished an epoch, or the folder is another); leave out "
                         "--resume to start it")  # fmt: skip
    if found and not (args.resume or args.overwrite):
        raise UsageError(
            f"{args.run} already holds a run ({', '.join(found)}): continue it with --resume, "
            "replace it with --overwrite, or give another --name"
        )
    if os.path.exists(args.run) and not os.path.isdir(args.run):
        raise UsageError(f"{args.run} is a file, not a run folder: give another --name or --out")
    check_can_write(args.run, "--out")
    # the figures the run writes (and sample-*.png, which --overwrite removes with the old run)
    figures = [n for n in FIGURES if os.path.exists(os.path.join(args.run, n))]
    if figures and not (args.resume or args.overwrite):
        raise UsageError(
            f"{args.run} already holds {', '.join(figures)}, which this run would replace: "
            "move them, give another --name, or replace them with --overwrite"
        )
    # the defaults of the options whose presence the checks above read
    if args.labels is None:  # 100, or the multiple of the classes nearest it
        args.labels = info["n_classes"] * max(1, round(100 / info["n_classes"]))
    args.kl_warmup = 0.0 if args.kl_warmup is None else args.kl_warmup
    args.lr_decay = 1.0 if args.lr_decay is None else args.lr_decay
    args.nll_samples = args.nll_samples or 0
    try:  # the model's own checks of its settings, before any data are loaded or files removed
        build_model(_model_config(args))
    except ValueError as err:
        raise UsageError(str(err)) from None


def check_can_write(folder: str, option: str) -> None:
    """Refuse (UsageError) a folder that cannot be created or written, without creating it:
    its nearest existing ancestor must be a folder this process may write into."""
    from minivae.files import missing_folders

    missing = missing_folders(folder)
    existing = os.path.dirname(missing[-1]) if missing else os.path.abspath(folder)
    if not os.path.isdir(existing):
        raise UsageError(f"{option}: {existing} is a file, not a folder, so nothing can be "
                         f"written under it; give {option} a path in a folder")  # fmt: skip
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{option}: cannot write into {existing} (no permission, or a "
                         f"read-only file system); give {option} a folder you can write to")  # fmt: skip


def _names_a_folder(out: str) -> bool:
    """sample --out: a folder for the default name (one that exists, or a path ending in /)."""
    return out.endswith(("/", os.sep)) or os.path.isdir(out)


def check_sample(args) -> None:
    """Refuse (UsageError) an --out that cannot take the image, before the model is loaded."""
    if args.out is None:
        return
    if _names_a_folder(args.out):
        check_can_write(args.out, "--out")  # a folder: the default name goes in it
    elif not args.out.lower().endswith(".png"):
        raise UsageError(f"--out {args.out}: the image is written as PNG, so give a path "
                         "ending in .png, or a folder (end it with /) for the default name")  # fmt: skip
    else:
        check_can_write(os.path.dirname(args.out) or ".", "--out")


def _given(args, flag: str) -> bool:
    """Whether an option was given (its default is None, so that this can tell)."""
    return getattr(args, flag[2:].replace("-", "_")) is not None


CHECKS = {"train": check_train, "sample": check_sample}


# ----------------------------------------------------------------------------- the commands


def _model_config(args) -> dict:
    """The model's config from the options: each model's ``config_from`` reads them."""
    from minivae.data import dataset_info
    from minivae.models import MODELS

    options = {name: getattr(args, flag[2:].replace("-", "_"))
               for name, (flag, _) in MODEL_OPTIONS.items()}  # fmt: skip
    return MODELS[args.model].config_from(options, dataset_info(args.dataset))


def check_environment(args) -> None:
    """The device (--device, else MINIVAE_DEVICE) and MINIVAE_FAST, before any work: a setting
    that cannot be honoured is a usage error. Only the commands that compute (those with
    --device) need them; ``datasets`` and ``download`` run whatever they say."""
    from minivae import fast

    if not hasattr(args, "device"):
        return
    if args.device is not None:  # it overrides MINIVAE_DEVICE, even one that is unusable
        try:
            B.set_device(args.device)
        except RuntimeError as err:  # gpu without CuPy or without a CUDA device
            raise UsageError(f"--device {args.device}: {err}") from None
    elif B.ENVIRONMENT_ERROR is not None:
        raise UsageError(f"{B.ENVIRONMENT_ERROR.rstrip('.')}; or add --device cpu")
    if fast.ENVIRONMENT_ERROR is not None:
        raise UsageError(fast.ENVIRONMENT_ERROR)


def _select_dtype(args) -> None:
    """The dtype; the device was chosen before any work (``check_environment``)."""
    B.set_default_dtype(args.dtype)


def _show_progress(args) -> bool:
    return not getattr(args, "no_progress", False) and sys.stderr.isatty()


def _write_summary(path: str, summary: dict) -> dict:
    """summary.json as strict JSON: a non-finite number becomes null, and the summary says so."""
    from minivae.files import atomic_write_json, to_json_safe

    safe, replaced = to_json_safe(summary)
    if replaced:
        safe["null_because_not_finite"] = replaced
    atomic_write_json(path, safe)
    return safe


def cmd_train(args) -> int:
    from minivae.checkpoint import load_model
    from minivae.files import dumps_json
    from minivae.train import (
        FIGURES,
        ResumeMismatch,
        ResumeTooShort,
        TrainConfig,
        TrainingDiverged,
        evaluate_checkpoint,
        train,
        write_figures,
    )

    _select_dtype(args)
    out_dir = args.run
    config = TrainConfig(
        model=_model_config(args), dataset=args.dataset, epochs=args.epochs,
        batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
        lr_schedule=args.lr_schedule, lr_decay=args.lr_decay, kl_warmup_epochs=args.kl_warmup,
        clip_grad=args.clip_grad, binarize=args.binarize, n_val=args.n_val,
        n_labelled=args.labels, limit_train=args.limit_train, seed=args.seed,
        progress=not args.no_progress,
    )  # fmt: skip
    try:  # the settings' own checks, before any work
        config.validate()
    except ValueError as err:
        raise UsageError(str(err)) from None
    summary_path = os.path.join(out_dir, "summary.json")
    old_samples = ([os.path.basename(p) for p in glob.glob(os.path.join(out_dir, "sample-*.png"))]
                   if args.overwrite else [])  # an earlier run's samples go with it
    t0 = time.perf_counter()
    try:
        history = train(config, out_dir, resume=args.resume,
                        replace=("summary.json", *FIGURES, *old_samples))  # fmt: skip
    except ResumeMismatch as err:
        raise UsageError(_resume_message(err, out_dir)) from None
    except ResumeTooShort as err:
        raise UsageError(str(err)) from None
    except TrainingDiverged as err:
        if err.last_good:  # the run folder and its good checkpoint stay: say so in its summary
            _write_summary(summary_path, {"status": "diverged", "run": out_dir,
                                          "epochs": err.epoch, "error": str(err)})  # fmt: skip
        raise
    except KeyboardInterrupt:
        ckpt = os.path.join(out_dir, "checkpoint.npz")
        kept = (f"; {ckpt} holds the last finished epoch: continue with the same command and "
                "--resume" if os.path.exists(ckpt) else "; no epoch had finished, nothing was kept")
        raise Interrupted(f"minivae train: interrupted{kept}") from None
    seconds = time.perf_counter() - t0
    ckpt = os.path.join(out_dir, "checkpoint.npz")
    model, _ = load_model(ckpt)
    write_figures(model, args.dataset, out_dir, args.seed, history)
    # the epochs' own seconds, summed over every invocation of a resumed run
    epoch_seconds = sum(row.get("seconds", 0.0) for row in history)
    summary = {"status": "completed", "run": out_dir, "epochs": len(history),
               "train_seconds": round(epoch_seconds, 1),
               "this_command_seconds": round(seconds, 1)}  # fmt: skip
    summary.update({k: round(v, 3) for k, v in history[-1].items() if k.startswith("val_")})
    if args.nll_samples:
        summary.update(evaluate_checkpoint(ckpt, args.nll_samples, seed=args.seed,
                                           progress=_show_progress(args)))  # fmt: skip
    summary = _write_summary(summary_path, summary)
    print(dumps_json(summary)[0])
    print(f"wrote {out_dir}/ (config.json, metrics.jsonl, checkpoint.npz, summary.json, figures)")
    return 0


def _resume_message(err, out_dir: str) -> str:
    """A ResumeMismatch in the options' words."""
    inverse = {name: flag for name, (flag, _) in MODEL_OPTIONS.items()}
    lines = []
    for name, saved, now in err.differences:
        if name.startswith("model."):
            key = name[len("model."):]
            flag = inverse.get(key, "--dataset" if key in ("x_dim", "n_classes") else None)
            shown = f"{flag} (the model's {key})" if flag else f"the model's {key}"
        else:
            shown = FIELD_OPTIONS.get(name, name)
        lines.append(f"  {shown}: {saved!r} in the checkpoint, {now!r} now")
    return (
        f"cannot resume {err.path}: it was trained with other options than these:\n"
        + "\n".join(lines)
        + f"\nGive the options it was trained with ({os.path.join(out_dir, 'config.json')} "
        f"holds them; only {', '.join(RESUME_MAY_CHANGE)} may change), or start a new run "
        "with another --name or --overwrite."
    )


def cmd_eval(args) -> int:
    from minivae.checkpoint import load_model
    from minivae.files import dumps_json
    from minivae.train import DatasetMismatch, evaluate_checkpoint

    _select_dtype(args)
    model, _ = load_model(args.checkpoint)  # checked first: a bad file says so at once
    k = args.nll_samples
    if not hasattr(model, "log_importance_weights"):
        if k is not None:
            raise UsageError(
                f"--nll-samples: the {model.config['kind']!r} model in {args.checkpoint} "
                "defines no likelihood p(x) to estimate; leave --nll-samples out to get its "
                "test reconstruction"
            )
        print(f"({model.config['kind']}: no likelihood p(x), so no NLL; its test "
              "reconstruction follows)", file=sys.stderr)  # fmt: skip
    k = 5000 if k is None else k
    try:
        out = evaluate_checkpoint(args.checkpoint, k, args.dataset, args.split, args.limit,
                                  args.batch_size, args.seed, progress=_show_progress(args))  # fmt: skip
    except DatasetMismatch as err:  # --dataset names a data set the model cannot read
        raise UsageError(f"--dataset {args.dataset}: {err}") from None
    print(dumps_json(out)[0])
    return 0


def cmd_sample(args) -> int:
    from minivae.checkpoint import load_model
    from minivae.data import dataset_info
    from minivae.train import sample_figure

    _select_dtype(args)
    model, meta = load_model(args.checkpoint)
    if not model.has_prior:
        raise UsageError(
            f"the {model.config['kind']!r} model in {args.checkpoint} has no prior p(z) "
            "to sample from (decoding random codes of an autoencoder gives no images like the "
            "data; lesson 01 shows why). Its reconstructions are in reconstructions.png beside "
            "it; train a vae to draw samples"
        )
    dataset = (meta.get("train_config") or {}).get("dataset")
    if dataset is None:
        raise ValueError(f"{args.checkpoint} does not say which data set it was trained on, so "
                         "the image shape is unknown (it was not saved by minivae train)")  # fmt: skip
    if "n_classes" in model.config and isinstance(args.label, float) and args.label.is_integer():
        args.label = int(args.label)  # a class given as 3.0 or 3e0 is class 3
    suffix = "" if args.label is None else f"-label{args.label}"
    name = f"sample-n{args.n}-seed{args.seed}{suffix}.png"
    path = args.out or os.path.join(os.path.dirname(args.checkpoint) or ".", name)
    if _names_a_folder(path):  # the default name goes in it
        os.makedirs(path, exist_ok=True)
        path = os.path.join(path, name)
    replaced = os.path.exists(path)
    B.manual_seed(args.seed)
    image_shape = dataset_info(dataset)["image_shape"]
    try:
        written = sample_figure(model, path, args.n, args.label, image_shape)
    except ValueError as err:
        if args.label is None:
            raise
        raise UsageError(f"--label {args.label}: {err}") from None
    except OSError as err:  # the folder refused the file after all (a special file system)
        raise OSError(f"cannot write {path} ({err.strerror or err}); give --out a path in a "
                      "folder you can write to") from None
    print(f"wrote {written}" + (" (it replaced the file of that name)" if replaced else ""))
    return 0


def cmd_datasets(args) -> int:
    from minivae.data import DATASETS, locate

    for name, description in DATASETS.items():
        files = locate(name)
        if not files:
            where = "built in"
        elif all(files.values()):
            where = ", ".join(sorted({str(path.parent) for path in files.values()}))
        else:
            missing = ", ".join(stem for stem, path in files.items() if path is None)
            where = f"missing {missing}: run 'minivae download {name}' or set MINIVAE_DATA"
        print(f"{name:22s} {description}\n{'':22s} {where}")
    return 0


def cmd_download(args) -> int:
    from minivae.data import download

    paths = download(args.name)
    folder = sorted({str(p.parent) for p in paths.values()})
    print(f"{args.name}: {len(paths)} files, checksums verified, in {', '.join(folder)}")
    return 0


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "sample": cmd_sample,
            "datasets": cmd_datasets, "download": cmd_download}  # fmt: skip


# ----------------------------------------------------------------------------- failures


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with what was kept (the message to show)."""


# what to try when memory runs out, per command
MEMORY_HINTS = {
    "train": "a smaller --batch-size, --hidden or --latent, or --limit-train",
    "eval": "a smaller --batch-size, fewer --nll-samples, or --limit",
    "sample": "a smaller -n",
}


def _message(command: str, err: BaseException) -> tuple:
    """(exit code, message) for a failure: what was wrong and what to do."""
    from minivae.checkpoint import CheckpointError
    from minivae.data import DataError
    from minivae.train import TrainingDiverged

    prefix = f"minivae {command}: error:"
    if isinstance(err, TrainingDiverged):
        return EXIT_FAILED, f"{prefix} {err}"
    if isinstance(err, MemoryError):
        detail = f" ({err})" if str(err) else ""
        hint = MEMORY_HINTS.get(command, "a smaller problem")
        return EXIT_FAILED, (f"{prefix} out of memory{detail}. Ask for less at a time: "
                             f"{hint}; or close other programs.")  # fmt: skip
    if isinstance(err, (CheckpointError, DataError, ValueError)):
        return EXIT_FAILED, f"{prefix} {err}"
    if isinstance(err, (OSError, RuntimeError)):  # a file or folder; no GPU
        return EXIT_FAILED, f"{prefix} {err}"
    return EXIT_FAILED, (
        f"minivae {command}: internal error: {type(err).__name__}: {err}. This is a bug in "
        f"minivae, not in what you gave it; run again with --debug (or {DEBUG_ENV}=1) to see "
        "where, and report it."
    )


FLOATING_POINT_WARNINGS = r"(overflow|invalid value|divide by zero|underflow) encountered"


def _debug(args) -> bool:
    return bool(getattr(args, "debug", False)) or os.environ.get(DEBUG_ENV, "").strip() == "1"


def _quiet_broken_pipe() -> int:
    """The reader of stdout went away (``minivae datasets | head -1``): stop without a message."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # so that the flush at exit does not fail again
    return EXIT_FAILED


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # argparse reports a bad option itself (exit 2)
    command = args.command
    try:
        check_environment(args)  # one line, no usage: the option is not what is wrong
        try:
            CHECKS.get(command, lambda a: None)(args)
        except UsageError as err:
            parser.subcommands[command].error(str(err))  # usage and the message, exit 2
        if _debug(args):
            return COMMANDS[command](args)
        # NumPy's overflow warnings are not shown: the NaN guard says what diverged, and where
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", FLOATING_POINT_WARNINGS, RuntimeWarning)
            return COMMANDS[command](args)
    except UsageError as err:
        print(f"minivae {command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except KeyboardInterrupt as err:
        if _debug(args):
            raise
        print(str(err) if isinstance(err, Interrupted) else f"minivae {command}: interrupted",
              file=sys.stderr)  # fmt: skip
        return EXIT_INTERRUPTED
    except Exception as err:
        if _debug(args):
            raise
        code, message = _message(command, err)
        print(message, file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
