"""The training loop: minibatches, progress, metrics log, KL warm-up, clipping, schedules, checkpoints.

    from minivae.train import TrainConfig, train
    history = train(TrainConfig(model={"kind": "vae", "latent": 20}, epochs=10), "runs/vae")

The loop knows no model by name: it reads the model protocol of
``minivae.models.common`` (``batch_kind``, the data hooks, ``loss(batch)``,
``evaluate(batch)``), so every model in ``minivae.models.MODELS`` trains here.
Each epoch appends one JSON line to ``metrics.jsonl`` (train and validation
ELBO, reconstruction, KL in nats per example; an error where the model predicts
labels) and writes ``checkpoint.npz`` atomically. A NaN or Inf loss stops training
with a message naming the step and the loss terms, and the last good checkpoint stays.
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
from minivae import plots
from minivae.checkpoint import read_checkpoint, save_checkpoint
from minivae.metrics import evaluate
from minivae.models import MODELS, build_model, model_class
from minivae.optim import OPTIMIZERS, clip_grad_norm
from minivae.tensor import no_grad

SCHEDULES = ("constant", "exponential", "cosine")
TRAINABLE = tuple(MODELS)  # every model of the registry trains through this loop
BINARIZATIONS = D.BINARIZATIONS


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
    n_labelled: int = 100  # semi-supervised models: class-balanced labelled examples
    labelled_batch_size: int = 100  # semi-supervised models: labelled examples per batch
    limit_train: int | None = None  # use only the first N training examples (quick runs)
    seed: int = 0
    progress: bool = True
    fallback_dataset: bool = False  # lessons: use built-in data when the dataset is missing

    def validate(self) -> None:
        model_class(self.model)  # an unknown kind names the known ones
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
    """Host arrays of one run: the training and validation rows, with the model's labels.

    y_train, y_val: what the model's ``dataset_labels`` gives (class indices, a
    standardized property), or None. labelled: indices into the training rows of a
    semi-supervised model's labelled examples, else None. train_rows, val_rows: where
    the rows came from in the loaded data set (disjoint).
    """

    x_train: object  # (N, D) grey levels, binarized afresh each epoch
    y_train: object
    x_val: object  # (N_val, D) as evaluated: binarized once
    y_val: object
    source: str
    image_shape: tuple = (28, 28)
    labelled: object = None
    train_rows: object = None
    val_rows: object = None


def prepare_data(config: TrainConfig) -> Splits:
    """Load the data set, hold out validation, pick the labelled subset, make the model's labels.

    Every split goes through ``minivae.data``: ``split_rows`` (the rule of
    ``train_val_split``: n_val rows drawn by the seed), ``pick_labelled`` (what the model's
    batch kind needs) and ``binarize_fixed`` (the validation images, once). The config
    entries that follow from the data (the model's ``data_config``: M2's dataset sizes, the
    scale of a continuous label) are added to ``config.model`` where it does not set them.
    """
    cls = model_class(config.model)
    load = D.load_for_lesson if config.fallback_dataset else D.load_dataset
    ds = load(config.dataset, "train")
    if config.limit_train is not None:
        ds = D.first_rows(ds, config.limit_train)
    n_val = min(config.n_val, len(ds) // 5)
    train_rows, val_rows = D.split_rows(len(ds), n_val, seed=config.seed)  # disjoint, sorted
    train_ds, val_ds = D.subset(ds, train_rows, "train"), D.subset(ds, val_rows, "val")
    labelled = D.pick_labelled(cls.batch_kind, train_ds.labels, config.n_labelled, seed=config.seed)
    for key, value in cls.data_config(train_ds, labelled).items():
        config.model.setdefault(key, value)
    x_val = val_ds.images
    if config.binarize != "none" and len(x_val):
        x_val = D.binarize_fixed(x_val, seed=config.seed + 1)  # binarized once, for every epoch
    return Splits(
        x_train=train_ds.images, y_train=cls.dataset_labels(train_ds, config.model),
        x_val=x_val, y_val=cls.dataset_labels(val_ds, config.model), source=ds.source,
        image_shape=tuple(ds.image_shape), labelled=labelled, train_rows=train_rows,
        val_rows=val_rows,
    )  # fmt: skip


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

    splits = prepare_data(config)  # also adds the model's data-derived config entries
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
        x_epoch = D.binarized(splits.x_train, config.binarize, rng, seed=config.seed)
        batches = D.epoch_batches(model.batch_kind, x_epoch, splits.y_train, config.batch_size,
                                  rng, splits.labelled, config.labelled_batch_size)  # fmt: skip
        sums: dict[str, float] = {}
        bar = _progress(steps_per_epoch, f"epoch {epoch + 1}/{config.epochs}", show)
        for step, batch in enumerate(batches):
            w = kl_weight(config, epoch, step, steps_per_epoch)
            loss, terms = model.loss(batch, kl_weight=w)
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
            val = evaluate(model, splits.x_val, splits.y_val)
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


# ----------------------------------------------------------------------------- a run's figures


@no_grad()
def write_figures(model, dataset: str, out_dir, seed: int = 0, history=None,
                  n_shown: int = 30) -> list:
    """A run's figures as PNGs: its training curves (when a history is given), reconstructions
    of test images, and samples where the model has a prior.

    The images take the data set's own shape (``minivae.data.dataset_info``): 28 x 28 for
    MNIST, 32 x 32 for shapes. Returns the paths written.
    """
    image_shape = D.dataset_info(dataset)["image_shape"]
    ds = D.load_dataset(dataset, "test")
    kind = model.config["kind"]
    paths = []
    if history:  # the terms the model reports: elbo, recon, kl (the autoencoder: recon)
        keys = [k for k in ("elbo", "recon", "kl") if f"train_{k}" in history[-1]]
        paths.append(plots.training_curves(history, os.path.join(out_dir, "training_curves.png"),
                                           f"{kind} on {dataset}: training curves", keys=keys))
    B.manual_seed(seed)
    labels = model.dataset_labels(D.first_rows(ds, n_shown), model.config)
    batch = next(D.evaluation_batches(ds.images[:n_shown], labels, n_shown))
    recon = model.reconstruct(batch.x, model.condition(batch))
    paths.append(plots.reconstructions(
        ds.images[:n_shown], B.to_numpy(recon.data), os.path.join(out_dir, "reconstructions.png"),
        f"{kind}: test images and their reconstructions (rows alternate)",
        image_shape=image_shape))  # fmt: skip
    if model.has_prior:
        paths.append(sample_figure(model, os.path.join(out_dir, "samples.png"), 64, None,
                                   image_shape))  # fmt: skip
    return paths


@no_grad()
def sample_figure(model, path, n: int = 64, label=None, image_shape=(28, 28)):
    """A grid of ``model.figure_samples(n, label)`` in the data's image shape; returns the path."""
    images, caption, ncols = model.figure_samples(n, label)
    return plots.image_grid(B.to_numpy(images.data), path, f"{model.config['kind']}: {caption}",
                            ncols=ncols, image_shape=image_shape)  # fmt: skip


TEST_BINARIZATION_SEED = 12345  # the test set binarized once, the same for every model


def evaluate_checkpoint(path, k: int = 0, dataset: str | None = None, split: str = "test",
                        limit: int | None = None, batch_size: int = 100, seed: int = 0) -> dict:
    """``metrics.test_report`` of the model in a checkpoint, on a split of its data set.

    The images are binarized once with a fixed seed (unless the run trained on grey
    levels), the labels are the model's own (``dataset_labels``), and k > 0 adds the
    importance-sampled NLL with k samples. Adds "eval_seconds".
    """
    from minivae.checkpoint import load_model
    from minivae.metrics import test_report

    model, meta = load_model(path)
    train_config = meta["train_config"]
    ds = D.load_dataset(dataset or train_config["dataset"], split)
    if limit:
        ds = D.first_rows(ds, limit)
    x = ds.images
    if train_config.get("binarize", "dynamic") != "none":
        x = D.binarize_fixed(x, seed=TEST_BINARIZATION_SEED)
    B.manual_seed(seed)
    t0 = time.perf_counter()
    model.eval()
    out = test_report(model, x, model.dataset_labels(ds, model.config), k=k, batch_size=batch_size)
    out["eval_seconds"] = round(time.perf_counter() - t0, 1)
    return out


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
