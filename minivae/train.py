"""The training loop: minibatches, progress, metrics log, KL warm-up, clipping, schedules, checkpoints.

    from minivae.train import TrainConfig, train
    history = train(TrainConfig(model={"kind": "vae", "latent": 20}, epochs=10), "runs/vae")

The loop knows no model by name: it reads the model protocol of
``minivae.models.common`` (``batch_kind``, the data hooks, ``loss(batch)``,
``evaluate(batch)``), so every model in ``minivae.models.MODELS`` trains here.

A run folder holds config.json (the TrainConfig), checkpoint.npz and metrics.jsonl
(one JSON line per epoch: train and validation ELBO, reconstruction, KL in nats per
example; an error where the model predicts labels). Every file is written atomically
(``minivae.files``). The checkpoint is the record of the run: it holds the weights,
the optimizer state, the random state, the training config and the whole metrics
history. After each epoch the checkpoint is saved first and the metrics row appended
second, and a resumed run rewrites metrics.jsonl from the checkpoint's history, so a
crash at any point leaves a run whose log and checkpoint agree once it is resumed
(no missing row, no duplicate).

Resuming checks that the run continues the way it started: the model and every
training setting must match the checkpoint's (``resume_differences``); only
``RESUMABLE`` settings (the number of epochs, the progress bar) may change. With the
same seed, N epochs straight and k epochs + resume for N - k give bit-identical
weights on NumPy.

The NaN guard: a NaN or Inf loss at any step, a non-finite training or validation
number at the end of an epoch, or non-finite weights stop training with
``TrainingDiverged``, a message naming the epoch, the step and the terms; nothing
non-finite is ever saved, and the message names the last good checkpoint (the one
on disk). A run that fails before its first checkpoint leaves nothing behind: the
files it wrote are removed, and the run folder too when the run made it.
"""

from __future__ import annotations

import contextlib
import glob
import math
import numbers
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields

from minivae import backend as B
from minivae import data as D
from minivae import fast, plots
from minivae.checkpoint import CheckpointError, NonFiniteState, read_checkpoint, save_checkpoint
from minivae.files import (
    atomic_append_text,
    atomic_write_json,
    atomic_write_text,
    dumps_json,
    missing_folders,
)
from minivae.memory import keep_freed_memory
from minivae.metrics import evaluate
from minivae.models import MODELS, build_model, model_class
from minivae.optim import OPTIMIZERS, clip_grad_norm
from minivae.tensor import no_grad

SCHEDULES = ("constant", "exponential", "cosine")
TRAINABLE = tuple(MODELS)  # every model of the registry trains through this loop
BINARIZATIONS = D.BINARIZATIONS


# the files train() writes into a run folder (the command adds summary.json and figures)
CONFIG_FILE, CHECKPOINT_FILE, METRICS_FILE = "config.json", "checkpoint.npz", "metrics.jsonl"
RUN_FILES = (CONFIG_FILE, CHECKPOINT_FILE, METRICS_FILE)
FIGURES = ("training_curves.png", "reconstructions.png", "samples.png")  # write_figures'
# the training settings that may differ between a checkpoint and the run resuming it
RESUMABLE = ("epochs", "progress")


class TrainingDiverged(FloatingPointError):
    """The loss, a validation number or a weight became NaN or Inf; the message names where.

    ``last_good``: the path of the checkpoint left on disk (the last good one), or None.
    ``epoch``: the epoch that checkpoint holds (0 when there is none).
    """

    def __init__(self, message: str, last_good=None, epoch: int = 0):
        super().__init__(message)
        self.last_good, self.epoch = last_good, epoch


class DatasetMismatch(ValueError):
    """A data set asked for does not fit the model in a checkpoint (its pixels or classes)."""


class ResumeTooShort(ValueError):
    """A resumed run asks for fewer epochs than its checkpoint already holds."""


class ResumeMismatch(ValueError):
    """A resumed run asks for other settings than its checkpoint was trained with.

    ``differences``: (setting, in the checkpoint, asked for now) for each; a model
    setting is named ``model.<key>``.
    """

    def __init__(self, path: str, differences: list):
        self.path, self.differences = path, differences
        shown = "\n".join(f"  {name}: {saved!r} in the checkpoint, {now!r} now"
                          for name, saved, now in differences)  # fmt: skip
        super().__init__(
            f"cannot resume {path}: it was trained with other settings than this run asks "
            f"for:\n{shown}\nResume with the settings it was trained with (its config.json "
            f"holds them; only {' and '.join(RESUMABLE)} may change), or start a new run."
        )


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
        """Refuse a setting out of its range with a ValueError naming it."""
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
        for name in ("n_val", "seed"):
            value = getattr(self, name)
            if not _is_int(value) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
        for name in ("epochs", "batch_size", "labelled_batch_size", "n_labelled", "limit_train"):
            value = getattr(self, name)
            if (value is not None or name != "limit_train") and (not _is_int(value) or value <= 0):
                raise ValueError(f"{name} must be a positive whole number, got {value!r}")
        for name in ("lr", "lr_decay", "clip_grad"):
            value = getattr(self, name)
            if (value is not None or name != "clip_grad") and not _is_finite(value, above=0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if not _is_finite(self.kl_warmup_epochs, above=None):
            raise ValueError(f"kl_warmup_epochs must be a finite number >= 0, "
                             f"got {self.kl_warmup_epochs!r}")  # fmt: skip
        if self.lr_schedule == "exponential":  # lr * lr_decay^epoch must stay a usable number
            try:
                last = learning_rate(self, self.epochs - 1)
            except OverflowError:
                last = math.inf
            if not (math.isfinite(last) and last > 0):
                raise ValueError(
                    f"lr_decay={self.lr_decay} takes the learning rate from {self.lr} to {last} "
                    f"by epoch {self.epochs}, out of floating-point range; choose a factor "
                    "nearer 1, or fewer epochs"
                )


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_finite(value, above) -> bool:
    """value is a finite real number, > above (or >= 0 when above is None)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        return False
    return value >= 0 if above is None else value > above


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
    n_loaded: int = 0  # rows of the data set used (after limit_train), before the split


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
    n_val = min(config.n_val, len(ds) // 5)  # capped at a fifth; train() says so
    train_rows, val_rows = D.split_rows(len(ds), n_val, seed=config.seed)  # disjoint, sorted
    train_ds, val_ds = D.subset(ds, train_rows, "train"), D.subset(ds, val_rows, "val")
    try:
        labelled = D.pick_labelled(cls.batch_kind, train_ds.labels, config.n_labelled,
                                   seed=config.seed,
                                   n_classes=D.dataset_info(ds.name)["n_classes"])  # fmt: skip
    except ValueError as err:
        raise ValueError(
            f"cannot pick n_labelled={config.n_labelled} labelled examples (the command's "
            f"--labels) from {len(train_ds)} training rows: {err}; ask for fewer, or train on "
            "more rows (--limit-train)"
        ) from None
    for key, value in cls.data_config(train_ds, labelled).items():
        config.model.setdefault(key, value)
    x_val = val_ds.images
    if config.binarize != "none" and len(x_val):
        x_val = D.binarize_fixed(x_val, seed=config.seed + 1)  # binarized once, for every epoch
    return Splits(
        x_train=train_ds.images, y_train=cls.dataset_labels(train_ds, config.model),
        x_val=x_val, y_val=cls.dataset_labels(val_ds, config.model), source=ds.source,
        image_shape=tuple(ds.image_shape), labelled=labelled, train_rows=train_rows,
        val_rows=val_rows, n_loaded=len(ds),
    )  # fmt: skip


# ----------------------------------------------------------------------------- the loop


def train(config: TrainConfig, out_dir, resume: bool = False, log=print, on_epoch=None,
          replace=()) -> list:  # fmt: skip
    """Train ``config.model`` for ``config.epochs`` epochs; returns the metrics history.

    A fresh run (resume=False) replaces the files of an earlier run in out_dir
    (``RUN_FILES``, and the names in ``replace``), once its data are loaded; the command
    refuses to do that unless asked (``--overwrite``).
    resume=True continues from out_dir/checkpoint.npz, whose settings must match
    config's (``ResumeMismatch`` lists the differences).
    on_epoch(model, epoch) -> dict or None is called after each epoch (1-based), with the
    model in eval mode, before its metrics row is written; the numbers it returns join
    that row (a benchmark's test error after every epoch, say).
    """
    config.validate()
    if fast.enabled:  # the freed arrays stay with the process for the next step
        keep_freed_memory()
    out_dir = os.fspath(out_dir)
    created = missing_folders(out_dir)  # made by this run, deepest first
    saved_before = resume  # a resumed run has a checkpoint on disk from the start
    ckpt_path = os.path.join(out_dir, CHECKPOINT_FILE)
    written: list = []  # whether this run has replaced an earlier one's files yet
    try:
        ready = _start(config, check_writable(out_dir), resume, log, replace, written)
        splits, model, optimizer, history, start_epoch = ready
        last_good = start_epoch  # the epoch the checkpoint on disk holds (0: none)
        rng = B.rng_on_cpu()  # shuffling and binarization; checkpointed with the weights
        steps_per_epoch = max(1, len(splits.x_train) // config.batch_size)
        show = config.progress and sys.stderr.isatty()
        for epoch in range(start_epoch, config.epochs):
            t0 = time.perf_counter()
            optimizer.lr = learning_rate(config, epoch)
            x_epoch = D.binarized(splits.x_train, config.binarize, rng, seed=config.seed)
            batches = D.epoch_batches(model.batch_kind, x_epoch, splits.y_train,
                                      config.batch_size, rng, splits.labelled,
                                      config.labelled_batch_size)  # fmt: skip
            sums: dict[str, float] = {}
            bar = _progress(steps_per_epoch, f"epoch {epoch + 1}/{config.epochs}", show)
            for step, batch in enumerate(batches):
                w = kl_weight(config, epoch, step, steps_per_epoch)
                loss, terms = model.loss(batch, kl_weight=w)
                value = float(loss.data)
                if not math.isfinite(value):
                    shown = ", ".join(f"{k}={v:.4g}" for k, v in terms.items())
                    raise _diverged(f"the loss became {value} at epoch {epoch + 1}, step "
                                    f"{step + 1} ({shown})", ckpt_path, last_good)  # fmt: skip
                optimizer.zero_grad()
                loss.backward()
                if config.clip_grad is not None:
                    clip_grad_norm(model.parameters(), config.clip_grad)
                optimizer.step()
                for k, v in terms.items():
                    sums[k] = sums.get(k, 0.0) + v
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix({k: f"{v:.2f}" for k, v in terms.items()
                                     if k in ("elbo", "recon", "kl")})  # fmt: skip
            if bar is not None:
                bar.close()
            row = _epoch_row(model, splits, sums, steps_per_epoch, epoch, on_epoch)
            row.update({"lr": optimizer.lr, "kl_weight": kl_weight(config, epoch + 1, 0, 1),
                        "seconds": time.perf_counter() - t0})  # fmt: skip
            _check_row(row, ckpt_path, last_good)
            history.append(row)
            meta = {"train_config": asdict(config), "epoch": epoch + 1, "history": history,
                    "rng_state": B.get_rng_state()}  # fmt: skip
            try:  # first the checkpoint (the record), then its readable copy, the metrics row
                save_checkpoint(ckpt_path, model, optimizer, meta)
            except NonFiniteState as err:  # never saved
                raise _diverged(f"after epoch {epoch + 1}, {err.what}", ckpt_path,
                                last_good) from None  # fmt: skip
            saved_before, last_good = True, epoch + 1
            atomic_append_text(os.path.join(out_dir, METRICS_FILE), _metrics_line(row))
            log(_summary(row))
        return history
    except BaseException:
        if not saved_before:  # nothing worth keeping: leave no trace of this run
            _remove_run(out_dir, created, ours=bool(written))
        raise


def _start(config: TrainConfig, out_dir: str, resume: bool, log, replace=(), written=None):
    """(splits, model, optimizer, history, start epoch) of a fresh or resumed run; writes
    config.json (and, resumed, metrics.jsonl from the checkpoint's history).

    A fresh run removes an earlier run's files only once its data are loaded and its model
    and optimizer are built (a bad setting leaves the earlier run as it was), and then
    appends to ``written``: from there on, the run files in out_dir are this run's.
    """
    ckpt_path = os.path.join(out_dir, CHECKPOINT_FILE)
    metrics_path = os.path.join(out_dir, METRICS_FILE)
    meta = params = optim_state = None
    if resume:
        meta, params, optim_state = _read_for_resume(ckpt_path)
        differences = resume_differences(meta["train_config"], config)
        differences += model_differences(meta["model_config"], config.model,
                                         skip=model_class(config.model).DATA_CONFIG_KEYS)  # fmt: skip
        if differences:  # checked before the data are loaded: refusing costs nothing
            raise ResumeMismatch(ckpt_path, differences)
        if config.epochs < meta["epoch"]:
            raise ResumeTooShort(f"cannot resume {ckpt_path}: it holds {meta['epoch']} epochs, "
                                 f"more than the {config.epochs} asked for; ask for more "
                                 "epochs")  # fmt: skip

    splits = prepare_data(config)  # also adds the model's data-derived config entries
    # the temporary files (minivae.files: ".NAME.PID.HEX.tmp") of writes a killed run left half
    # done: the run files, the figures, the command's summary.json
    for stale in glob.glob(os.path.join(glob.escape(out_dir), ".*.*.tmp")):
        with contextlib.suppress(OSError):
            os.remove(stale)
    B.manual_seed(config.seed)
    model = build_model(config.model)
    optimizer = OPTIMIZERS[config.optimizer](model.parameters(), lr=config.lr)
    if not resume:
        for name in (*RUN_FILES, *replace):  # a fresh run replaces an earlier one's files
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(out_dir, name))
        if written is not None:
            written.append(out_dir)
    history: list = []
    start_epoch = 0
    if resume:  # the entries that follow from the data, now that they are loaded
        differences = model_differences(meta["model_config"], model.config)
        dtypes = {str(a.dtype) for a in params.values()}
        ours = str(B.xp.dtype(B.get_default_dtype()))
        if dtypes and dtypes != {ours}:
            differences.append(("dtype", ", ".join(sorted(dtypes)), ours))
        if differences:
            raise ResumeMismatch(ckpt_path, differences)
        model.load_state_dict(params)
        try:
            optimizer.load_state_dict(optim_state)
        except (ValueError, KeyError, TypeError) as err:
            raise CheckpointError(f"cannot resume {ckpt_path}: its optimizer state does not "
                                  f"fit the model ({err}); train a new run") from None  # fmt: skip
        B.set_rng_state(meta["rng_state"])
        history = list(meta["history"])
        start_epoch = meta["epoch"]
        log(f"resuming {ckpt_path} after epoch {start_epoch}"
            + ("" if start_epoch < config.epochs else ": nothing to do, ask for more epochs"))
        # the checkpoint is the record: the metrics log is rewritten from its history
        atomic_write_text(metrics_path, "".join(_metrics_line(row) for row in history))
    atomic_write_json(os.path.join(out_dir, CONFIG_FILE), asdict(config))

    n = len(splits.x_train)
    n_val = len(splits.x_val)
    if n_val < config.n_val:
        log(f"note: n_val={config.n_val} is more than a fifth of the {splits.n_loaded} examples "
            f"loaded; holding out {n_val} for validation instead")  # fmt: skip
    left = config.epochs - start_epoch
    if left == 0:
        return splits, model, optimizer, history, start_epoch
    log(f"training {model.config['kind']} on {config.dataset} ({n} train, {n_val} validation; "
        f"from {splits.source}) for {_plural(left, 'epoch')}"
        + (f" more (to {config.epochs})" if start_epoch else "") + f"; writing to {out_dir}")
    return splits, model, optimizer, history, start_epoch


def _read_for_resume(ckpt_path: str):
    """(meta, params, optimizer state) of the checkpoint a run resumes from, or a clear error."""
    if not os.path.exists(ckpt_path):
        raise CheckpointError(
            f"cannot resume: there is no {ckpt_path} (the run never finished an epoch, or it "
            "is another folder); start the run without resuming"
        )
    meta, params, optim_state = read_checkpoint(ckpt_path)
    missing = [key for key in ("train_config", "epoch", "history", "rng_state") if key not in meta]
    if missing:
        raise CheckpointError(
            f"cannot resume {ckpt_path}: its metadata has no {', '.join(missing)}, so it was not "
            "saved by the training loop (a model saved on its own cannot be resumed); "
            "start a new run"
        )
    return meta, params, optim_state


def model_differences(saved: dict, asked: dict, skip=()) -> list:
    """("model.KEY", saved value, asked value) for each entry in which two model configs
    differ, each completed with its constructor's defaults (a checkpoint saved before an
    entry existed gets its default); the keys in ``skip`` are left out."""
    saved, asked = build_model(saved).config, build_model(asked).config
    return [(f"model.{key}", saved.get(key), asked.get(key))
            for key in sorted(set(saved) | set(asked))
            if key not in skip and saved.get(key) != asked.get(key)]  # fmt: skip


def resume_differences(saved: dict, config: TrainConfig) -> list:
    """(setting, saved value, asked value) for each training setting (not the model, not
    ``RESUMABLE``) in which ``config`` differs from a checkpoint's ``train_config``.

    A setting the checkpoint does not hold (saved before the setting existed) means its
    default. The number of epochs may change, except under the cosine schedule, whose
    length it is (more epochs would change the learning rate of those still to come).
    """
    differences = []
    for f in fields(TrainConfig):
        if f.name in RESUMABLE or f.name == "model":
            continue
        default = f.default_factory() if callable(f.default_factory) else f.default
        before, now = saved.get(f.name, default), getattr(config, f.name)
        if before != now:
            differences.append((f.name, before, now))
    if config.lr_schedule == "cosine" and saved.get("epochs", config.epochs) != config.epochs:
        differences.append(("epochs", saved["epochs"], config.epochs))
    return differences


def _epoch_row(model, splits: Splits, sums: dict, steps: int, epoch: int, on_epoch) -> dict:
    """The metrics row of an epoch: the training means, the validation numbers, on_epoch's."""
    row = {"epoch": epoch + 1}
    row.update({f"train_{k}": v / steps for k, v in sums.items()})
    if len(splits.x_val):  # n_val = 0 trains on the whole split, without validation
        model.eval()
        val = evaluate(model, splits.x_val, splits.y_val)
        model.train()
        row.update({f"val_{k}": v for k, v in val.items()})
    if on_epoch is not None:
        model.eval()
        row.update(on_epoch(model, epoch + 1) or {})
        model.train()
    return row


def _check_row(row: dict, ckpt_path: str, last_good: int) -> None:
    """The NaN guard at the end of an epoch: every training and validation number is finite."""
    bad = {k: v for k, v in row.items() if k.startswith(("train_", "val_"))
           and isinstance(v, numbers.Real) and not math.isfinite(v)}  # fmt: skip
    if bad:
        shown = ", ".join(f"{k}={v}" for k, v in bad.items())
        what = "the validation bound" if any(k.startswith("val_") for k in bad) else "a mean"
        raise _diverged(f"after epoch {row['epoch']}, {what} became non-finite ({shown})",
                        ckpt_path, last_good)  # fmt: skip


def _diverged(what: str, ckpt_path: str, last_good: int) -> TrainingDiverged:
    """The TrainingDiverged error: what went wrong, which checkpoint is kept, what to try."""
    if last_good:
        kept = (f"The last good checkpoint, {ckpt_path} (epoch {last_good}), is kept as it was: "
                "nothing non-finite was saved.")  # fmt: skip
    else:
        kept = "No checkpoint was written, and the files of this run were removed."
    return TrainingDiverged(
        f"training diverged: {what}; stopped. {kept} Try a smaller learning rate (--lr), "
        "gradient clipping (--clip-grad) or a KL warm-up (--kl-warmup).",
        ckpt_path if last_good else None, last_good,
    )


def _metrics_line(row: dict) -> str:
    """One metrics row as a strict JSON line: a non-finite number becomes null, and the row
    says so in "null_because_not_finite" (the NaN guard keeps the model's own numbers finite;
    this covers what on_epoch adds)."""
    text, replaced = dumps_json(row)
    if replaced:
        text, _ = dumps_json({**row, "null_because_not_finite": replaced})
    return text + "\n"


def _remove_run(out_dir: str, created: list, ours: bool) -> None:
    """Remove the run files in out_dir if they are this run's (ours), and the folders the run
    made (``created``, deepest first) while they are empty; an earlier run's files are never
    touched here."""
    for name in RUN_FILES if ours else ():
        with contextlib.suppress(OSError):
            os.remove(os.path.join(out_dir, name))
    for folder in created:
        try:
            os.rmdir(folder)  # only when empty: never anything a user put there
        except OSError:
            break

def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


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
        paths.append(plots.training_curves(history, os.path.join(out_dir, FIGURES[0]),
                                           f"{kind} on {dataset}: training curves", keys=keys))
    B.manual_seed(seed)
    labels = model.dataset_labels(D.first_rows(ds, n_shown), model.config)
    batch = next(D.evaluation_batches(ds.images[:n_shown], labels, n_shown))
    recon = model.reconstruct(batch.x, model.condition(batch))
    paths.append(plots.reconstructions(
        ds.images[:n_shown], B.to_numpy(recon.data), os.path.join(out_dir, FIGURES[1]),
        f"{kind}: test images and their reconstructions (rows alternate)",
        image_shape=image_shape))  # fmt: skip
    if model.has_prior:
        paths.append(sample_figure(model, os.path.join(out_dir, FIGURES[2]), 64, None,
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
                        limit: int | None = None, batch_size: int = 100, seed: int = 0,
                        progress: bool = False) -> dict:  # fmt: skip
    """``metrics.test_report`` of the model in a checkpoint, on a split of its data set.

    The images are binarized once with a fixed seed (unless the run trained on grey
    levels), the labels are the model's own (``dataset_labels``), and k > 0 adds the
    importance-sampled NLL with k samples (progress: with a progress bar on stderr).
    The numbers are named by the split ("train_elbo" on the training split). Adds
    "eval_seconds". A data set whose images or classes do not fit the model is
    refused with a ValueError naming both.
    """
    from minivae.checkpoint import load_model
    from minivae.metrics import test_report

    model, meta = load_model(path)
    train_config = meta.get("train_config") or {}
    name = dataset or train_config.get("dataset")
    if name is None:
        raise ValueError(f"{path} does not say which data set it was trained on (it was not "
                         "saved by the training loop): name one with --dataset")  # fmt: skip
    info = D.dataset_info(name)
    for key, what in (("x_dim", "pixels per image"), ("n_classes", "classes")):
        if key in model.config and model.config[key] != info[key]:
            raise DatasetMismatch(
                f"{path} holds a model for {model.config[key]} {what}, but {info['name']} has "
                f"{info[key]}: evaluate it on the data set it was trained on "
                f"({train_config.get('dataset', 'see its config.json')})"
            )
    ds = D.load_dataset(name, split)
    if limit:
        ds = D.first_rows(ds, limit)
    x = ds.images
    if train_config.get("binarize", "dynamic") != "none":
        x = D.binarize_fixed(x, seed=TEST_BINARIZATION_SEED)
    B.manual_seed(seed)
    t0 = time.perf_counter()
    model.eval()
    out = test_report(model, x, model.dataset_labels(ds, model.config), k=k,
                      batch_size=batch_size, progress=progress)  # fmt: skip
    out["eval_seconds"] = round(time.perf_counter() - t0, 1)
    if split != "test":  # test_report names its numbers test_*; these are of another split
        out = {(f"{split}_{key[5:]}" if key.startswith("test_") else key): value
               for key, value in out.items()}  # fmt: skip
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
