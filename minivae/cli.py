"""The ``minivae`` command: train, eval, sample, datasets, download.

    minivae train vae --dataset mnist --latent 20 --epochs 10
    minivae eval runs/vae/checkpoint.npz --nll-samples 5000
    minivae sample runs/cvae/checkpoint.npz -n 64 --label 3
    minivae datasets
    minivae download mnist

Each run writes under runs/<name>/ (config.json, metrics.jsonl, checkpoint.npz,
figures) and prints where. The command only parses and dispatches: training and the
run's figures are ``minivae.train``'s, the numbers ``minivae.metrics``'s, and no
model is known by name here (each model's ``config_from`` reads the options).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from minivae import backend as B
from minivae.checkpoint import load_model


def _sizes(text: str) -> list:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like '400' or '500,500', got {text!r}")
    if any(s <= 0 for s in sizes):
        raise argparse.ArgumentTypeError(f"layer sizes must be positive, got {text!r}")
    return sizes


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def _add_device(p):
    p.add_argument("--device", choices=("cpu", "gpu"), default=None,
                   help="cpu (NumPy) or gpu (CuPy); default: $MINIVAE_DEVICE or cpu")  # fmt: skip
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="floating-point precision (default float32)")  # fmt: skip


def _label(text: str):
    """A label for ``sample --label``: a whole number (a class) or a real number (a property)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")
    return int(value) if value.is_integer() and "." not in text else value


# the flags of `minivae train` that set a model's constructor argument of the same meaning
MODEL_OPTIONS = {"hidden": "--hidden", "latent": "--latent", "activation": "--activation",
                 "likelihood": "--likelihood", "sigma": "--sigma", "beta": "--beta",
                 "tc_beta": "--tc-beta", "n_samples": "--samples", "alpha": "--alpha"}  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    from minivae.data import DATASETS
    from minivae.models import MODELS

    parser = argparse.ArgumentParser(
        prog="minivae",
        description="Variational autoencoders from scratch: train, evaluate and sample.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    t = sub.add_parser("train", help="train a model and write runs/<name>/",
                       description="Train an autoencoder, VAE, conditional VAE, M2, or the "
                                   "continuous-label M2 (its label: each image's slant).")  # fmt: skip
    t.add_argument("model", choices=tuple(MODELS),
                   help="ae, vae, cvae, m2 (semi-supervised) or ssvae-continuous "
                        "(semi-supervised with a real-valued label)")  # fmt: skip
    t.add_argument("--dataset", default="mnist", choices=DATASETS, help="dataset (default mnist)")
    t.add_argument("--latent", type=_positive_int, default=20, help="latent size (default 20)")
    t.add_argument("--hidden", type=_sizes, default=[400],
                   help="hidden layer sizes, comma-separated (default 400)")  # fmt: skip
    t.add_argument("--activation", default="relu",
                   choices=("relu", "leaky_relu", "tanh", "softplus", "sigmoid"),
                   help="hidden activation (default relu)")  # fmt: skip
    t.add_argument("--likelihood", default="bernoulli", choices=("bernoulli", "gaussian"),
                   help="decoder likelihood (default bernoulli; ae uses mse for gaussian)")  # fmt: skip
    t.add_argument("--sigma", type=float, default=None,
                   help="fixed decoder sigma for --likelihood gaussian (default: learned)")  # fmt: skip
    t.add_argument("--beta", type=float, default=None,
                   help="weight of the KL term (default 1; not for ae)")  # fmt: skip
    t.add_argument("--tc-beta", type=float, default=None,
                   help="beta-TCVAE: weight of the total correlation alone (vae and cvae; "
                        "default 1, no extra term)")  # fmt: skip
    t.add_argument("--samples", type=_positive_int, default=None,
                   help="Monte-Carlo samples L of z per example (default 1; not for ae)")  # fmt: skip
    t.add_argument("--alpha", type=float, default=None,
                   help="m2: weight of the classification term (default 0.1 N / N_labelled)")  # fmt: skip
    t.add_argument("--labels", type=_positive_int, default=100,
                   help="m2, ssvae-continuous: number of class-balanced labelled examples "
                        "(default 100)")  # fmt: skip
    t.add_argument("--epochs", type=_positive_int, default=10, help="epochs (default 10)")
    t.add_argument("--batch-size", type=_positive_int, default=128, help="batch size (default 128)")
    t.add_argument("--optimizer", default="adam", choices=("adam", "adagrad", "sgd"),
                   help="optimizer (default adam)")  # fmt: skip
    t.add_argument("--lr", type=float, default=1e-3, help="learning rate (default 1e-3)")
    t.add_argument("--lr-schedule", default="constant", choices=("constant", "exponential", "cosine"),
                   help="learning-rate schedule (default constant)")  # fmt: skip
    t.add_argument("--lr-decay", type=float, default=1.0,
                   help="per-epoch factor for --lr-schedule exponential")  # fmt: skip
    t.add_argument("--kl-warmup", type=float, default=0.0,
                   help="epochs over which the KL weight rises from 0 to 1 (default 0: none)")  # fmt: skip
    t.add_argument("--clip-grad", type=float, default=None, help="clip the gradient norm to this")
    t.add_argument("--binarize", default="dynamic", choices=("dynamic", "fixed", "none"),
                   help="binarization of the pixels (default dynamic: redrawn each epoch)")  # fmt: skip
    t.add_argument("--n-val", type=int, default=10000,
                   help="training examples held out for validation (default 10000)")  # fmt: skip
    t.add_argument("--limit-train", type=_positive_int, default=None,
                   help="use only the first N training examples (for quick runs)")  # fmt: skip
    t.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    t.add_argument("--name", default=None, help="run name (default: <model>-<dataset>)")
    t.add_argument("--out", default="runs", help="folder that holds the runs (default runs)")
    t.add_argument("--resume", action="store_true", help="continue from runs/<name>/checkpoint.npz")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--nll-samples", type=int, default=0,
                   help="after training, importance-sampled test NLL with K samples (default 0: skip)")  # fmt: skip
    _add_device(t)

    e = sub.add_parser("eval", help="test ELBO, importance-sampled NLL, M2 error",
                       description="Evaluate a checkpoint on a test set.")  # fmt: skip
    e.add_argument("checkpoint", help="path to a checkpoint.npz")
    e.add_argument("--nll-samples", type=_positive_int, default=5000,
                   help="importance samples K for log p(x) (default 5000)")  # fmt: skip
    e.add_argument("--dataset", default=None, choices=DATASETS,
                   help="dataset (default: the one it was trained on)")  # fmt: skip
    e.add_argument("--split", default="test", choices=("train", "test"), help="split (default test)")
    e.add_argument("--limit", type=_positive_int, default=None, help="evaluate the first N only")
    e.add_argument("--batch-size", type=_positive_int, default=100,
                   help="examples per importance-sampling batch (default 100)")  # fmt: skip
    e.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    _add_device(e)

    s = sub.add_parser("sample", help="decode samples from the prior into an image grid",
                       description="Draw samples from a trained model.")  # fmt: skip
    s.add_argument("checkpoint", help="path to a checkpoint.npz")
    s.add_argument("-n", type=_positive_int, default=64, help="number of samples (default 64)")
    s.add_argument("--label", type=_label, default=None,
                   help="cvae, m2: the class to generate; ssvae-continuous: the label's value "
                        "(degrees of slant)")  # fmt: skip
    s.add_argument("--out", default=None, help="PNG path (default: beside the checkpoint)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    _add_device(s)

    sub.add_parser("datasets", help="list the datasets and where their files are",
                   description="List datasets and locate their files.")  # fmt: skip

    d = sub.add_parser("download", help="download a dataset into the user cache",
                       description="Download a dataset, verify its SHA-256, store it atomically.")  # fmt: skip
    d.add_argument("name", choices=[n for n in DATASETS if n in ("mnist", "fashion-mnist")],
                   help="dataset to download")  # fmt: skip
    return parser


def _model_config(args) -> dict:
    """The model's config from the options: each model's ``config_from`` reads them."""
    from minivae.data import dataset_info
    from minivae.models import MODELS

    cls = MODELS[args.model]
    options = {name: getattr(args, flag[2:].replace("-", "_")) for name, flag in MODEL_OPTIONS.items()}
    options["hidden"] = list(options["hidden"])
    taken = cls.arguments()
    for name, value in options.items():
        if value is not None and name not in taken:
            takers = [kind for kind, other in MODELS.items() if name in other.arguments()]
            listed = " and ".join([", ".join(takers[:-1]), takers[-1]] if len(takers) > 1
                                  else takers)  # fmt: skip
            raise SystemExit(f"minivae train: {MODEL_OPTIONS[name]} applies to {listed}, "
                             f"not {args.model}")  # fmt: skip
    return cls.config_from(options, dataset_info(args.dataset))


def _select_device(args) -> None:
    if args.device is not None:
        B.set_device(args.device)
    B.set_default_dtype(args.dtype)


def cmd_train(args) -> int:
    from minivae.train import TrainConfig, evaluate_checkpoint, train, write_figures

    _select_device(args)
    name = args.name or f"{args.model}-{args.dataset}"
    out_dir = os.path.join(args.out, name)
    config = TrainConfig(
        model=_model_config(args), dataset=args.dataset, epochs=args.epochs,
        batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
        lr_schedule=args.lr_schedule, lr_decay=args.lr_decay, kl_warmup_epochs=args.kl_warmup,
        clip_grad=args.clip_grad, binarize=args.binarize, n_val=args.n_val,
        n_labelled=args.labels, limit_train=args.limit_train, seed=args.seed,
        progress=not args.no_progress,
    )  # fmt: skip
    t0 = time.perf_counter()
    history = train(config, out_dir, resume=args.resume)
    seconds = time.perf_counter() - t0
    ckpt = os.path.join(out_dir, "checkpoint.npz")
    model, _ = load_model(ckpt)
    write_figures(model, args.dataset, out_dir, args.seed, history)
    summary = {"run": out_dir, "epochs": len(history), "train_seconds": round(seconds, 1)}
    summary.update({k: round(v, 3) for k, v in history[-1].items() if k.startswith("val_")})
    if args.nll_samples:
        summary.update(evaluate_checkpoint(ckpt, args.nll_samples, seed=args.seed))
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary))
    print(f"wrote {out_dir}/ (config.json, metrics.jsonl, checkpoint.npz, summary.json, figures)")
    return 0


def cmd_eval(args) -> int:
    from minivae.train import evaluate_checkpoint

    _select_device(args)
    out = evaluate_checkpoint(args.checkpoint, args.nll_samples, args.dataset, args.split,
                              args.limit, args.batch_size, args.seed)  # fmt: skip
    print(json.dumps(out))
    return 0


def cmd_sample(args) -> int:
    from minivae.data import dataset_info
    from minivae.train import sample_figure

    _select_device(args)
    model, meta = load_model(args.checkpoint)
    B.manual_seed(args.seed)
    suffix = "" if args.label is None else f"-{args.label}"
    path = args.out or os.path.join(os.path.dirname(args.checkpoint) or ".", f"samples{suffix}.png")
    image_shape = dataset_info(meta["train_config"]["dataset"])["image_shape"]
    print(f"wrote {sample_figure(model, path, args.n, args.label, image_shape)}")
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


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ValueError, OSError, RuntimeError) as err:
        print(f"minivae {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
