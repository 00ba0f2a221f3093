"""The training loop: minibatches, progress, metrics log, KL warm-up, clipping, schedules, checkpoints.

    from minivae.train import TrainConfig, train
    history = train(TrainConfig(model={"kind": "vae", "latent": 20}, epochs=10), "runs/vae")

Each epoch appends one JSON line to ``metrics.jsonl`` (train and validation
ELBO, reconstruction, KL in nats per example; classification error for M2) and
writes ``checkpoint.npz`` atomically. A NaN or Inf loss stops training with a
message naming the step and the loss terms, and the last good checkpoint stays.
With the same seed, N epochs straight and k epochs + resume for N - k give
bit-identical weights on NumPy: the checkpoint holds the weights, the optimizer
state and the random state.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field

from minivae import backend as B
from minivae import data as D
from minivae.checkpoint import read_checkpoint, save_checkpoint
from minivae.models import MODELS, build_model
from minivae.optim import OPTIMIZERS, clip_grad_norm
from minivae.tensor import no_grad

SCHEDULES = ("constant", "exponential", "cosine")
# the models this loop can train from a dataset's images and class labels
TRAINABLE = ("ae", "vae", "cvae", "m2")
BINARIZATIONS = ("dynamic", "fixed", "none")


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or Inf; the message names the step and the loss terms."""


@dataclass
class TrainConfig:
    """Everything a run needs; saved as config.json and inside each checkpoint."""

    model: dict = field(default_factory=lambda: {"kind": "vae"})
    dataset: str = "mnist"
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "adam"
    lr: float = 1e-3
    lr_schedule: str = "constant"  # constant | exponential (x lr_decay per epoch) | cosine
    lr_decay: float = 1.0
    kl_warmup_epochs: float = 0.0  # the KL weight rises linearly from 0 to 1 over these epochs
    clip_grad: float | None = None  # global gradient-norm limit
    binarize: str = "dynamic"  # dynamic: a fresh Bernoulli draw each epoch; fixed; none
    n_val: int = 10000  # examples held out of the training split for validation (0: none)
    n_labelled: int = 100  # M2 only: class-balanced labelled examples
    labelled_batch_size: int = 100  # M2 only
    limit_train: int | None = None  # use only the first N training examples (quick runs)
    seed: int = 0
    progress: bool = True
    fallback_dataset: bool = False  # lessons: use built-in data when the dataset is missing

    def validate(self) -> None:
        kind = self.model.get("kind")
        if kind not in MODELS:
            raise ValueError(f"unknown model {kind!r}: choose one of {', '.join(TRAINABLE)}")
        if kind not in TRAINABLE:
            raise ValueError(
                f"the training loop cannot train {kind!r}: it needs a real-valued label for "
                "some images, which no dataset here provides; train it from Python with its "
                "own loss(x_unlabelled, x_labelled, y_labelled), as "
                "lessons/06_semi_supervised_regression.py does"
            )
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"unknown optimizer {self.optimizer!r}: choose one of {', '.join(OPTIMIZERS)}"
            )
        if self.lr_schedule not in SCHEDULES:
            raise ValueError(
                f"unknown lr_schedule {self.lr_schedule!r}: choose one of {', '.join(SCHEDULES)}"
            )
        if self.binarize not in BINARIZATIONS:
            raise ValueError(
                f"unknown binarize {self.binarize!r}: choose one of {', '.join(BINARIZATIONS)}"
            )
        if self.n_val < 0:
            raise ValueError(f"n_val must be >= 0, got {self.n_val}")
        for name in ("epochs", "batch_size", "labelled_batch_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.clip_grad is not None and not self.clip_grad > 0:
            raise ValueError(f"clip_grad must be positive (or None), got {self.clip_grad}")
        if self.kl_warmup_epochs < 0:
            raise ValueError(f"kl_warmup_epochs must be >= 0, got {self.kl_warmup_epochs}")


# ----------------------------------------------------------------------------- helpers


def learning_rate(config: TrainConfig, epoch: int) -> float:
    """The learning rate for a 0-based epoch under the schedule."""
    if config.lr_schedule == "exponential":
        return config.lr * config.lr_decay**epoch
    if config.lr_schedule == "cosine":
        return 0.5 * config.lr * (1.0 + math.cos(math.pi * epoch / config.epochs))
    return config.lr


def kl_weight(config: TrainConfig, epoch: int, step_in_epoch: int, steps_per_epoch: int) -> float:
    """KL warm-up: rises linearly from 0 to 1 over kl_warmup_epochs, then stays 1."""
    if config.kl_warmup_epochs <= 0:
        return 1.0
    progress = epoch + step_in_epoch / steps_per_epoch
    return min(1.0, progress / config.kl_warmup_epochs)


def check_writable(out_dir) -> str:
    """Create out_dir and prove a file can be written there, before any training starts."""
    out_dir = os.fspath(out_dir)
    try:
        os.makedirs(out_dir, exist_ok=True)
        probe = os.path.join(out_dir, ".write-test")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as err:
        raise OSError(
            f"cannot write to the output directory {out_dir!r} ({err.strerror or err}); "
            "choose another with --out"
        ) from None
    return out_dir


@dataclass
class Splits:
    """Host (NumPy) arrays of one run: training, validation, and for M2 the labelled subset."""

    x_train: object
    y_train: object
    x_val: object
    y_val: object
    source: str
    labelled: object = None  # indices into x_train


def prepare_data(config: TrainConfig) -> Splits:
    """Load the dataset, hold out validation, pick M2's labelled subset; all on the host."""
    if config.fallback_dataset:
        ds = D.load_for_lesson(config.dataset, "train")
    else:
        ds = D.load_dataset(config.dataset, "train")
    x, y = ds.images, ds.labels
    if config.limit_train is not None:
        x, y = x[: config.limit_train], y[: config.limit_train]
    n_val = min(config.n_val, len(x) // 5)
    order = B.np.random.default_rng(config.seed + 7919).permutation(len(x))
    val, tr = order[:n_val], order[n_val:]
    x_val, y_val = x[val], y[val]
    if config.binarize != "none" and len(x_val):
        x_val = D.binarize_fixed(x_val, seed=config.seed + 1)  # binarized once
    splits = Splits(x[tr], y[tr], x_val, y_val, ds.source)
    if config.model.get("kind") == "m2":
        splits.labelled = D.labelled_subset(splits.y_train, config.n_labelled, seed=config.seed)
    return splits


def _binarize_epoch(config: TrainConfig, x, rng):
    if config.binarize == "dynamic":
        return D.binarize(x, rng)
    if config.binarize == "fixed":
        return D.binarize_fixed(x, seed=config.seed)
    return x


def _to_device(a):
    dtype = B.get_default_dtype() if a.dtype.kind == "f" else None
    return B.from_numpy(a, dtype=dtype)


@no_grad()
def evaluate(model, x, y=None, batch_size: int = 1000) -> dict:
    """Per-example means of the model's loss terms over a data set (host arrays in)."""
    totals: dict[str, float] = {}
    n = len(x)
    wrong = 0
    for start in range(0, n, batch_size):
        xb = _to_device(x[start : start + batch_size])
        yb = None if y is None else _to_device(y[start : start + batch_size])
        if model.config["kind"] == "m2":
            _, terms = model.loss(xb, xb, yb)
            wrong += int((model.classify(xb) != yb).sum())
        elif model.config["kind"] == "cvae":
            _, terms = model.loss(xb, yb)
        else:
            _, terms = model.loss(xb)
        for k, v in terms.items():
            totals[k] = totals.get(k, 0.0) + v * len(xb)
    out = {k: v / n for k, v in totals.items()}
    if model.config["kind"] == "m2" and y is not None:
        out["error"] = wrong / n
    return out


# ----------------------------------------------------------------------------- the loop


def train(config: TrainConfig, out_dir, resume: bool = False, log=print, on_epoch=None) -> list:
    """Train ``config.model`` for ``config.epochs`` epochs; returns the metrics history.

    on_epoch(model, epoch) -> dict or None is called after each epoch (1-based), with the
    model in eval mode, before its metrics row is written; the numbers it returns join
    that row (a benchmark's test error after every epoch, say).
    """
    config.validate()
    out_dir = check_writable(out_dir)
    ckpt_path = os.path.join(out_dir, "checkpoint.npz")
    metrics_path = os.path.join(out_dir, "metrics.jsonl")

    splits = prepare_data(config)
    if config.model.get("kind") == "m2":  # the classification weight alpha follows the data sizes
        config.model.setdefault("n_labelled", len(splits.labelled))
        config.model.setdefault("n_total", len(splits.x_train))
    B.manual_seed(config.seed)
    model = build_model(config.model)
    optimizer = OPTIMIZERS[config.optimizer](model.parameters(), lr=config.lr)
    history: list = []
    start_epoch = 0
    if resume:
        meta, params, optim_state = read_checkpoint(ckpt_path)
        # rebuilt, the saved config gains the defaults of arguments added since it was saved
        if build_model(meta["model_config"]).config != model.config:
            raise ValueError(
                f"cannot resume: {ckpt_path} holds a model with config {meta['model_config']}, "
                f"but this run asks for {model.config}"
            )
        model.load_state_dict(params)
        optimizer.load_state_dict(optim_state)
        B.set_rng_state(meta["rng_state"])
        history = meta["history"]
        start_epoch = meta["epoch"]
        log(f"resuming {ckpt_path} after epoch {start_epoch}")
    if not resume and os.path.exists(metrics_path):
        os.remove(metrics_path)  # a fresh run starts a fresh log (a resumed one appends)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(asdict(config), f, indent=2)

    kind = model.config["kind"]
    rng = B.rng_on_cpu()  # shuffling and binarization; checkpointed with the weights
    n = len(splits.x_train)
    steps_per_epoch = max(1, n // config.batch_size)
    show = config.progress and sys.stderr.isatty()
    log(
        f"training {kind} on {config.dataset} ({n} train, {len(splits.x_val)} validation; "
        f"from {splits.source}) for {config.epochs} epochs; writing to {out_dir}"
    )
    for epoch in range(start_epoch, config.epochs):
        t0 = time.perf_counter()
        optimizer.lr = learning_rate(config, epoch)
        x_epoch = _binarize_epoch(config, splits.x_train, rng)
        order = rng.permutation(n)
        lab_order = rng.permutation(splits.labelled) if kind == "m2" else None
        sums: dict[str, float] = {}
        bar = _progress(steps_per_epoch, f"epoch {epoch + 1}/{config.epochs}", show)
        for step in range(steps_per_epoch):
            idx = order[step * config.batch_size : (step + 1) * config.batch_size]
            w = kl_weight(config, epoch, step, steps_per_epoch)
            xb = _to_device(x_epoch[idx])
            if kind == "m2":
                lab_order, lab_idx = _cycle(lab_order, splits.labelled, config, rng)
                loss, terms = model.loss(
                    xb, _to_device(x_epoch[lab_idx]), _to_device(splits.y_train[lab_idx]), w
                )
            elif kind == "cvae":
                loss, terms = model.loss(xb, _to_device(splits.y_train[idx]), kl_weight=w)
            elif kind == "ae":
                loss, terms = model.loss(xb)
            else:
                loss, terms = model.loss(xb, kl_weight=w)
            value = float(loss.data)
            if not math.isfinite(value):
                shown = ", ".join(f"{k}={v:.4g}" for k, v in terms.items())
                raise TrainingDiverged(
                    f"the loss became {value} at epoch {epoch + 1}, step {step + 1} ({shown}); "
                    f"stopped. The last good checkpoint is {ckpt_path}"
                    + ("" if os.path.exists(ckpt_path) else " (none was written yet)")
                    + ". Try a smaller --lr, --clip-grad, or --kl-warmup."
                )
            optimizer.zero_grad()
            loss.backward()
            if config.clip_grad is not None:
                clip_grad_norm(model.parameters(), config.clip_grad)
            optimizer.step()
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v
            if bar is not None:
                bar.update(1)
                bar.set_postfix({k: f"{v:.2f}" for k, v in terms.items() if k in ("elbo", "recon", "kl")})
        if bar is not None:
            bar.close()
        row = {"epoch": epoch + 1}
        row.update({f"train_{k}": v / steps_per_epoch for k, v in sums.items()})
        if len(splits.x_val):  # n_val = 0 trains on the whole split, without validation
            model.eval()
            val = evaluate(model, splits.x_val, splits.y_val if kind in ("m2", "cvae") else None)
            model.train()
            row.update({f"val_{k}": v for k, v in val.items()})
        if on_epoch is not None:
            model.eval()
            row.update(on_epoch(model, epoch + 1) or {})
            model.train()
        row.update({"lr": optimizer.lr, "kl_weight": kl_weight(config, epoch + 1, 0, 1),
                    "seconds": time.perf_counter() - t0})  # fmt: skip
        history.append(row)
        with open(metrics_path, "a") as f:
            f.write(json.dumps(row) + "\n")
        meta = {"train_config": asdict(config), "epoch": epoch + 1, "history": history,
                "rng_state": B.get_rng_state()}  # fmt: skip
        save_checkpoint(ckpt_path, model, optimizer, meta)
        log(_summary(row))
    return history


def _cycle(lab_order, labelled, config: TrainConfig, rng):
    """The next labelled minibatch for M2, reshuffling the labelled set when it runs out."""
    size = min(config.labelled_batch_size, len(labelled))
    if len(lab_order) < size:
        lab_order = rng.permutation(labelled)
    return lab_order[size:], lab_order[:size]


def _progress(total: int, desc: str, show: bool):
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)


def _summary(row: dict) -> str:
    parts = [f"epoch {row['epoch']}"]
    for key in ("train_elbo", "val_elbo", "val_recon", "val_kl", "train_recon", "val_error"):
        if key in row:
            parts.append(f"{key} {row[key]:.4g}")
    parts.append(f"{row['seconds']:.1f}s")
    return " | ".join(parts)
