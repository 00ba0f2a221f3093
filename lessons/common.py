"""What every lesson shares: its settings, its output folder, its figures, its printed summary.

A lesson is a percent-format script: ``# %%`` cells that run top to bottom at module
level, the same way as a script (``python lessons/00_latent_variable_models.py --quick``)
and as a notebook (Jupyter or VS Code open the file as one; jupytext converts it).
Every part keeps its results in the module's (the notebook's) namespace. The first
cells of a lesson look like this:

    # %%
    QUICK = False  # True: tiny sizes; the numbers then only show that the code runs
    SEED = 0  # every random draw follows from it
    DEVICE = "cpu"  # "cpu" (NumPy) or "gpu" (CuPy)
    DATASET = "mnist"  # falls back to built-in data offline
    OUT = "runs/lessons"  # figures and summary.json go to OUT/<lesson>/
    EPOCHS = 10  # a setting of this lesson only

    # %%
    try:
        import common  # a script, or a notebook whose kernel started in lessons/
    except ModuleNotFoundError:
        from lessons import common  # a kernel started in the repository root
    lesson = common.setup("02_vae", globals(), own=("EPOCHS",))

``setup`` turns the settings into command-line options when the file runs as a
script (``--quick --seed 1 --dataset fashion-mnist --epochs 3``) and writes the values
it was given back into the namespace; in a notebook kernel it leaves sys.argv alone
and keeps what the learner wrote. ``MINIVAE_QUICK=1`` in the environment turns
QUICK on in both. Figures go through ``save_figure`` (or ``show`` for the ones that
``minivae.plots`` saves itself): saved as PNG files and, in a kernel, shown inline.

The older form, ``main(argv)`` with ``parse_args`` and ``Lesson``, still works for
lessons written that way.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # this checkout's minivae, without installing

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg

import minivae as mv
from minivae import backend as B
from minivae import cli

# The settings every lesson may have, with the value it gets when its first cell leaves one out.
SHARED_SETTINGS = {
    "QUICK": False,
    "SEED": 0,
    "DEVICE": "cpu",
    "DATASET": "mnist",
    "OUT": os.path.join("runs", "lessons"),
    "PROGRESS": True,
}
QUICK_NOTE = (
    "QUICK mode: tiny sizes so that the lesson runs in seconds. Its numbers only show that\n"
    "the code runs, not what the lesson concludes: for that, run it without --quick\n"
    "(QUICK = False, MINIVAE_QUICK unset)."
)


# --------------------------------------------------------------------------- where it runs


def in_kernel() -> bool:
    """True when the code runs in a notebook kernel (Jupyter, VS Code, Colab), not as a script.

    Asks IPython for its running shell: a kernel's shell has a ``kernel``; a script has no
    shell, and a terminal IPython's ``%run`` passes arguments like a script.
    """
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and getattr(shell, "kernel", None) is not None


def quick_from_env() -> bool:
    """MINIVAE_QUICK=1 (or true, yes, on): every lesson runs in quick mode."""
    return os.environ.get("MINIVAE_QUICK", "").strip().lower() in ("1", "true", "yes", "on")


# --------------------------------------------------------------------------- options


# argparse types, the minivae command's own: a count >= 1, a seed >= 0, a finite number, a
# weight >= 0 (each refuses what is not one with a message that says so)
positive_int, non_negative_int = cli.positive_int, cli.non_negative_int
finite_float, non_negative_float = cli.finite_number, cli.non_negative_float


def dataset_name(text: str) -> str:
    """--dataset: a name of minivae.data.DATASETS, or argparse's error listing them."""
    from minivae.data import canonical_name

    try:
        canonical_name(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def add_shared_options(p: argparse.ArgumentParser, defaults: dict) -> None:
    """--quick, --device, --seed, --dataset, --out, --no-progress, with the given defaults."""
    d = defaults
    p.add_argument("--quick", action="store_true", default=d["QUICK"],
                   help="seconds: tiny sizes (what the smoke tests run)")  # fmt: skip
    p.add_argument("--device", choices=("cpu", "gpu"), default=d["DEVICE"],
                   help="cpu (NumPy) or gpu (CuPy)")  # fmt: skip
    p.add_argument("--seed", type=non_negative_int, default=d["SEED"],
                   help=f"random seed >= 0 (default {d['SEED']})")  # fmt: skip
    p.add_argument("--dataset", default=d["DATASET"], type=dataset_name,
                   help=f"dataset (default {d['DATASET']}; built-in data offline)")  # fmt: skip
    p.add_argument("--out", default=d["OUT"],
                   help=f"folder for the figures and summary (default {d['OUT']})")  # fmt: skip
    p.add_argument("--no-progress", dest="progress", action="store_false", default=d["PROGRESS"],
                   help="no progress bars")  # fmt: skip


def option_name(setting: str) -> str:
    """EPOCHS -> --epochs, NLL_K -> --nll-k."""
    return "--" + setting.lower().replace("_", "-")


def _own_type(name: str, value, given):
    """The argparse type of a lesson's own setting: the one given, else from its value (an int
    setting counts something, so it must be >= 1; a float must be finite)."""
    if given is not None:
        return given
    if isinstance(value, bool) or value is None or not isinstance(value, (int, float, str)):
        raise TypeError(
            f"setting {name} = {value!r}: setup() can read an int, float or str from the command "
            f"line, and a bool as --flag/--no-flag; give its type with own={{{name!r}: type}}"
        )
    return {int: positive_int, float: finite_float}.get(type(value), type(value))


def setup(name: str, namespace: dict, own=(), argv=None) -> Lesson:
    """Read the lesson's settings from ``namespace``, start the lesson, and return it.

    namespace: the lesson's ``globals()``, holding its settings (QUICK, SEED, DEVICE, DATASET,
      OUT, PROGRESS, and its own ones); a shared setting it leaves out takes its value from
      SHARED_SETTINGS, and its option is still accepted (run_all.py passes it to every lesson).
    own: names of the lesson's own settings that become options (EPOCHS -> --epochs), typed
      by their value; a dict {name: type} gives the type (for a setting that may be None).
    argv: the command line when not in a kernel; sys.argv[1:] by default. In a kernel the
      command line is the kernel's own and is never read.

    The final values are written back into ``namespace`` (so the cells below read them as
    plain names) and printed. Sets the device and the seed; MINIVAE_QUICK=1 forces QUICK on.
    """
    own_types = dict(own) if isinstance(own, dict) else dict.fromkeys(own)
    for key in own_types:
        if key not in namespace:
            raise KeyError(f"own setting {key} is not assigned in the lesson's first cell")
    values = {k: namespace.get(k, v) for k, v in SHARED_SETTINGS.items()}
    values.update({k: namespace[k] for k in own_types})
    given: set = set()  # the lesson's own settings that the command line gave
    if not in_kernel():
        changed, given = _parse_command_line(name, namespace, own_types, values, argv)
        values.update(changed)
    values["QUICK"] = bool(values["QUICK"]) or quick_from_env()
    for key, value in values.items():
        if key in namespace:
            namespace[key] = value
    shown = [f"{k}={values[k]!r}" for k in values if k in namespace]
    print(f"{name}: " + ", ".join(shown))
    out = values["OUT"]
    if out == SHARED_SETTINGS["OUT"]:  # the default: in the checkout, wherever the kernel started
        out = os.path.join(os.path.dirname(HERE), out)
    args = argparse.Namespace(
        quick=values["QUICK"], seed=values["SEED"], device=values["DEVICE"],
        dataset=values["DATASET"], out=out, no_progress=not values["PROGRESS"],
    )  # fmt: skip
    lesson = Lesson(name, args)
    lesson.numbers["dataset"] = None  # dataset_used() records the one a lesson loads
    lesson.settings, lesson.given = {k: values[k] for k in own_types}, given
    return lesson


def _parse_command_line(name, namespace, own_types, values, argv) -> tuple:
    """({NAME: value} of the settings the command line sets, {NAME} of the lesson's own
    settings that it gave: QUICK does not override those)."""
    doc = namespace.get("__doc__") or name
    p = argparse.ArgumentParser(
        prog=f"python lessons/{name}.py",
        description=doc.strip().splitlines()[0],
        epilog="Each option sets the setting of the same name in the lesson's first cell.",
    )
    add_shared_options(p, values)
    for key in own_types:
        value = values[key]
        if isinstance(value, bool) and own_types[key] is None:
            p.add_argument(option_name(key), dest=key, action=argparse.BooleanOptionalAction,
                           default=argparse.SUPPRESS,
                           help=f"the setting {key} (default {value})")  # fmt: skip
        else:
            kind = _own_type(key, value, own_types[key])
            p.add_argument(option_name(key), dest=key, type=kind, default=argparse.SUPPRESS,
                           help=f"the setting {key} (default {value!r}; given, it holds in "
                                "--quick too)")  # fmt: skip
    args = vars(p.parse_args(sys.argv[1:] if argv is None else list(argv)))
    check_fast_setting(p)
    if args["device"] != "cpu":  # said now, in one line, rather than as the lesson's traceback
        try:
            B.set_device(args["device"])
        except RuntimeError as err:
            p.error(f"--device {args['device']}: {err}")
    given = {key for key in own_types if key in args}  # own options default to SUPPRESS
    changed = {key: args[key.lower()] for key in SHARED_SETTINGS}
    changed.update({key: args.get(key, values[key]) for key in own_types})
    for key, value in changed.items():
        if key in SHARED_SETTINGS and key not in namespace and value != SHARED_SETTINGS[key]:
            print(f"({option_name(key) if key != 'PROGRESS' else '--no-progress'} is not used "
                  f"by this lesson: it has no {key} setting)")  # fmt: skip
    return changed, given


def check_fast_setting(p: argparse.ArgumentParser) -> None:
    """A MINIVAE_FAST that is neither 0 nor 1: one line and exit 2, before the lesson starts
    (the device needs no check: the lesson sets its DEVICE, whatever MINIVAE_DEVICE says)."""
    from minivae import fast

    if fast.ENVIRONMENT_ERROR is not None:
        p.error(fast.ENVIRONMENT_ERROR)


def lesson_options() -> argparse.ArgumentParser:
    """(Older lessons) an empty parser for a lesson's own options, for parse_args(own=...)."""
    return argparse.ArgumentParser(add_help=False, usage=argparse.SUPPRESS)


def parse_args(argv, doc: str, default_dataset: str = "mnist", own=None) -> argparse.Namespace:
    """(Older lessons) --quick, --device, --seed, --dataset, --out, --no-progress.

    own: a parser from ``lesson_options()`` holding the lesson's own options; they are
    read first, listed under --help, and merged into the returned namespace.
    MINIVAE_QUICK=1 in the environment turns --quick on.
    """
    extra = {}
    if own is not None:
        argv = sys.argv[1:] if argv is None else list(argv)
        if "-h" in argv or "--help" in argv:  # the shared parser prints its help and exits
            print("options of this lesson:\n" + own.format_help().split("\n", 1)[-1])
        known, argv = own.parse_known_args(argv)
        extra = vars(known)
    p = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    add_shared_options(p, dict(SHARED_SETTINGS, DATASET=default_dataset))
    args = p.parse_args(argv)
    check_fast_setting(p)
    args.quick = args.quick or quick_from_env()
    args.no_progress = not args.progress
    del args.progress
    for name, value in extra.items():
        setattr(args, name, value)
    return args


# --------------------------------------------------------------------------- the lesson


class Lesson:
    """The lesson's output folder, its clock, and the numbers it reports."""

    def __init__(self, name: str, args: argparse.Namespace):
        self.name, self.args = name, args
        self.quick = bool(args.quick)
        self.dir = os.path.join(args.out, name)
        os.makedirs(self.dir, exist_ok=True)
        self.numbers: dict = {"lesson": name, "quick": self.quick, "seed": args.seed}
        self.settings: dict = {}  # the lesson's own settings, and those the command line gave:
        self.given: set = set()  # setup() fills both; pick() reads them
        self.t0 = time.perf_counter()
        mv.set_device(args.device)
        mv.manual_seed(args.seed)
        if self.quick:
            print(QUICK_NOTE)

    def path(self, filename: str) -> str:
        return os.path.join(self.dir, filename)

    def pick(self, setting: str, quick_value):
        """A setting of the lesson's own (EPOCHS): its value, or in QUICK mode quick_value,
        unless the command line gave the setting (``--quick --epochs 3`` trains 3 epochs)."""
        value = self.settings[setting]
        return quick_value if self.quick and setting not in self.given else value

    def report(self, key: str, value, text: str | None = None, fmt: str | None = None) -> None:
        """Record a number for summary.json and print it with its meaning.

        Without fmt a float keeps six significant digits. With fmt (".2e", ".10f") it is
        printed that way and kept in full: for numbers whose size is the point (an error
        of 1e-13, an integral of 0.9999999998).
        """
        if fmt is not None:
            value = float(value)
            self.numbers[key] = value
            print(f"  {text or key}: {value:{fmt}}")
            return
        if isinstance(value, float):
            value = float(f"{value:.6g}")  # six significant digits: 1e-13 stays 1e-13
        self.numbers[key] = value
        print(f"  {text or key}: {value}")

    def verdict(self, key: str, holds, claim: str) -> bool:
        """Record whether a claim of the lesson holds; print it only outside quick mode.

        A quick run's sizes are too small to decide anything, so it says nothing about
        the claim (summary.json still records the bool, for the tests).
        """
        holds = bool(holds)
        self.numbers[key] = holds
        if not self.quick:
            print(f"  {claim}: {'met' if holds else 'NOT met'}")
        return holds

    def dataset_used(self, name: str) -> None:
        """Record the dataset the lesson loaded, and say so when the fallback swapped it."""
        self.numbers["dataset"] = name
        asked = getattr(self.args, "dataset", None)
        if asked is not None and asked != name:
            print(f"(asked for {asked}, got {name}: the expected numbers in lessons/README.md "
                  f"for {asked} do not apply)")  # fmt: skip

    def finish(self) -> dict:
        self.numbers["seconds"] = round(time.perf_counter() - self.t0, 1)
        with open(self.path("summary.json"), "w") as f:
            json.dump(self.numbers, f, indent=2)
        figures = sorted(f for f in os.listdir(self.dir) if f.endswith(".png"))
        print(f"{self.name}: {len(figures)} figures and summary.json in {self.dir}/ "
              f"({self.numbers['seconds']} s)")  # fmt: skip
        return self.numbers


# --------------------------------------------------------------------------- figures and data


def show(path):
    """In a notebook kernel, show the PNG at ``path`` inline; as a script, do nothing.

    For figures that minivae.plots saves itself: ``common.show(plots.line_plot(...))``.
    """
    if in_kernel():
        from IPython.display import Image, display

        display(Image(filename=str(path)))
    return Path(path)


def save_figure(fig, path):
    """Save a matplotlib Figure as a PNG (Agg canvas, no pyplot) and show it in a kernel.

    For multi-panel figures that minivae.plots has no function for.
    """
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100, bbox_inches="tight", pad_inches=0.1)
    return show(path)


def plural(n: int, word: str) -> str:
    """"1 epoch", "3 epochs"."""
    return f"{n} {word}" + ("" if n == 1 else "s")


def pick(pair, quick: bool):
    """The quick value of a (full, quick) pair when quick, else the full one."""
    return pair[1] if quick else pair[0]


def to_device(x):
    """A host array as a device array: floats in the engine's default dtype, integers as int64."""
    if np.asarray(x).dtype.kind in "iu":
        return B.from_numpy(np.ascontiguousarray(x, dtype=np.int64))
    return B.from_numpy(np.ascontiguousarray(x), dtype=B.get_default_dtype())


# --------------------------------------------------------------------------- lesson 01
# A trained model and a classifier applied to host arrays, in batches: lesson 01 and the
# lessons after it encode, decode and classify whole test sets this way.

EVAL_BATCH = 2000  # rows per forward pass when encoding, decoding or classifying host arrays


@mv.no_grad()
def encode(model, x, y=None, batch_size: int = EVAL_BATCH):
    """(μ(x), log σ²(x)) of each row of host images x (N, x_dim), batch_size rows at a time:
    host float64 arrays (N, latent); (f(x), None) for an autoencoder; μ(x, y) and log σ²(x, y)
    for a conditional model, y (N,) host labels."""
    means, log_vars = [], []
    for s in range(0, len(x), batch_size):
        yb = None if y is None else to_device(y[s : s + batch_size])
        mean, log_var = model.encode(to_device(x[s : s + batch_size]), yb)  # (b, latent) each
        means.append(B.to_numpy(mean.data))
        if log_var is not None:
            log_vars.append(B.to_numpy(log_var.data))
    log_var = np.concatenate(log_vars).astype(np.float64) if log_vars else None
    return np.concatenate(means).astype(np.float64), log_var


def encode_mean(model, x, y=None, batch_size: int = EVAL_BATCH):
    """The code of each row of host images x: f(x) for an autoencoder, μ(x) (or μ(x, y)) for
    a VAE; host (N, latent), float64 (the first half of ``encode``)."""
    return encode(model, x, y, batch_size)[0]


@mv.no_grad()
def decode(model, z, y=None, batch_size: int = EVAL_BATCH):
    """model.decode for host codes z (N, latent) (and labels y (N,)): host (N, x_dim), float64,
    the decoder's means as they come (Bernoulli probabilities, or an unclipped MSE output)."""
    parts = []
    for s in range(0, len(z), batch_size):
        yb = None if y is None else to_device(y[s : s + batch_size])
        parts.append(B.to_numpy(model.decode(to_device(z[s : s + batch_size]), yb).data))
    return np.concatenate(parts).astype(np.float64)


def gaussian_kl_to_standard(mean, cov) -> float:
    """KL(N(m, S) ‖ N(0, I)) = ½ (tr S + mᵀm − d − log det S) in nats, m (d,), S (d, d): the
    full-covariance form of Computational Intelligence Lab, Series 9, Problem 1.7."""
    mean, cov = np.asarray(mean, dtype=np.float64), np.asarray(cov, dtype=np.float64)
    smallest = float(np.linalg.eigvalsh(cov).min())
    if not smallest > 0:
        raise ValueError(
            f"the covariance must be positive definite: its smallest eigenvalue is "
            f"{smallest:.3g} (fewer distinct codes than dimensions?)"
        )
    _, logdet = np.linalg.slogdet(cov)
    return float(0.5 * (np.trace(cov) + mean @ mean - len(mean) - logdet))


def train_classifier(x, y, sizes, epochs: int, lr: float = 1e-3, batch_size: int = 128,
                     rng=None, log=print):  # fmt: skip
    """An MLP ``sizes`` (relu; x_dim, hidden..., classes) trained with Adam on the mean
    cross-entropy −log softmax(logits)_y of host rows x (N, x_dim), labels y (N,).
    rng: a NumPy Generator for the minibatch order. Returns the MLP (its outputs are logits)."""
    from minivae import data as D
    from minivae import ops
    from minivae.nn import MLP
    from minivae.optim import Adam

    clf = MLP(list(sizes), "relu")  # logits (B, classes)
    optimizer = Adam(clf.parameters(), lr=lr)
    for epoch in range(epochs):
        total, count = 0.0, 0
        for xb, yb in D.batches(x, batch_size, y, rng=rng):
            loss = ops.cross_entropy(clf(mv.Tensor(xb)), yb).mean()  # (B,) -> scalar
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, count = total + float(loss.data) * len(yb), count + len(yb)
        log(f"  classifier epoch {epoch + 1}/{epochs}: cross-entropy {total / count:.4f}")
    return clf


@mv.no_grad()
def class_probabilities(clf, x, batch_size: int = EVAL_BATCH):
    """p(c | x) = softmax(logits) of a classifier for host rows x (N, x_dim): host (N, C)."""
    from minivae import ops

    parts = [B.to_numpy(ops.softmax(clf(mv.Tensor(to_device(x[s : s + batch_size])))).data)
             for s in range(0, len(x), batch_size)]  # fmt: skip
    return np.concatenate(parts).astype(np.float64)


# --------------------------------------------------------------------------- lesson 05


@mv.no_grad()
def predict(clf, x, batch_size: int = EVAL_BATCH):
    """The classifier's class argmax_c logits_c for host rows x (N, D): host (N,) ints."""
    parts = [B.to_numpy(clf(mv.Tensor(to_device(x[s : s + batch_size]))).data).argmax(axis=1)
             for s in range(0, len(x), batch_size)]  # fmt: skip
    return np.concatenate(parts)

# --------------------------------------------------------------------------- lessons 02 and 03
# Training a model into the lesson's folder, pushing host arrays through it in batches, and a
# row of bar charts.


def train_and_load(lesson: Lesson, folder: str, model_config: dict, dataset: str, *, epochs: int,
                   limit=None, n_val: int = 0, binarize: str = "dynamic", batch_size: int = 128,
                   lr: float = 1e-3):  # fmt: skip
    """Train with minivae.train into lesson.path(folder), then load the checkpoint back.

    Returns (the model in eval mode, the history, one dict per epoch, the training seconds).
    A rerun starts a fresh metrics log (train() appends to an existing one).
    """
    from minivae.checkpoint import load_model
    from minivae.train import TrainConfig, train

    config = TrainConfig(
        model=dict(model_config), dataset=dataset, epochs=epochs, batch_size=batch_size, lr=lr,
        binarize=binarize, n_val=n_val, limit_train=limit, seed=lesson.args.seed,
        progress=not lesson.args.no_progress, fallback_dataset=True,
    )  # fmt: skip
    out = lesson.path(folder)
    stale = os.path.join(out, "metrics.jsonl")
    if os.path.exists(stale):
        os.remove(stale)
    t0 = time.perf_counter()
    history = train(config, out, log=lambda line: print("    " + line))
    seconds = time.perf_counter() - t0
    model, _ = load_model(os.path.join(out, "checkpoint.npz"), expect_kind=model_config["kind"])
    model.eval()
    return model, history, seconds


def bar_panels(path, title: str, names, panels, colours=None):
    """One row of bar charts over the same bars ``names``, each bar's value written on it.

    panels: (title, ylabel, values, fmt) per chart, fmt a format string such as "{:.1f}";
    a fifth entry, when given, draws a dashed reference line at that height.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.0 * len(panels) + 0.4, 4.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (panel_title, ylabel, values, fmt, *line) in zip(axes, panels):
        bars = ax.bar(range(len(values)), values, color=colours, alpha=0.85)
        ax.bar_label(bars, labels=[fmt.format(v) for v in values], padding=2, fontsize=9)
        ax.set_xticks(range(len(values)), names, fontsize=9)
        ax.margins(y=0.15)
        ax.set(ylabel=ylabel, title=panel_title)
        ax.grid(alpha=0.3, axis="y")
        if line and line[0] is not None:
            ax.axhline(line[0], color="0.3", linestyle="--", linewidth=1)
    fig.suptitle(title)
    return save_figure(fig, path)


# --------------------------------------------------------------------------- lesson 06 (M2)


def label_effect(decode, latent: int, n_classes: int, rng, n_styles: int = 10):
    """How much the label steers a conditional decoder: (ratio, the conditional grid).

    decode(z, y): host codes (N, latent) and labels (N,) -> host images (N, D). n_styles codes
    z ~ N(0, I) are decoded with every class; the grid is (n_classes * n_styles, D), row
    c * n_styles + j holding g(z_j, c). The ratio is mean ‖g(z, y) − g(z, y')‖² over y ≠ y'
    (same z) over mean ‖g(z, y) − g(z', y)‖² over z ≠ z' (same y): near 0 when the decoder
    ignores y, near 1 or above when y changes the image as much as z does.
    """
    z = rng.standard_normal((n_styles, latent))  # one style per column
    grid = decode(np.tile(z, (n_classes, 1)), np.repeat(np.arange(n_classes), n_styles))
    cells = grid.reshape(n_classes, n_styles, -1)  # [y, z_j]
    over_y = np.mean([np.sum((cells[a] - cells[b]) ** 2, axis=-1).mean()
                      for a in range(n_classes) for b in range(n_classes) if a != b])
    over_z = np.mean([np.sum((cells[:, a] - cells[:, b]) ** 2, axis=-1).mean()
                      for a in range(n_styles) for b in range(n_styles) if a != b])  # fmt: skip
    return float(over_y / over_z), grid


def error_bars(values: dict, references, path, title: str, ylabel: str):
    """One bar per entry of values (label -> share in [0, 1]), written on it in %, beside
    horizontal reference lines ``references``: (level, line style, legend text) each, e.g. the
    errors that papers report. Saved and, in a kernel, shown."""
    from matplotlib.figure import Figure

    colours = ["tab:blue", "tab:cyan", "tab:orange", "tab:red", "tab:gray", "tab:green"]
    fig = Figure(figsize=(11.0, 4.8), layout="constrained")
    ax = fig.add_subplot()
    bars = ax.bar(range(len(values)), list(values.values()), alpha=0.85,
                  color=[colours[i % len(colours)] for i in range(len(values))])  # fmt: skip
    ax.bar_label(bars, labels=[f"{100 * v:.1f} %" for v in values.values()], padding=2)
    for level, style, text in references:
        ax.axhline(level, color="0.35", linestyle=style, linewidth=1.1, label=text)
    ax.set_xticks(range(len(values)), list(values))
    ax.set(ylim=(0, 1.0), ylabel=ylabel, title=title)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8, loc="upper left")
    return save_figure(fig, path)


def confusion_matrices(predictions: dict, truth, n_classes: int, path, title: str):
    """One confusion matrix per entry of predictions (name -> predicted classes (N,)) against
    the true classes (N,): rows are true classes, shaded by share, with the counts written in.
    Saved and, in a kernel, shown."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.0 * len(predictions), 5.0), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(predictions)))
    for ax, (name, pred) in zip(axes, predictions.items()):
        counts = np.zeros((n_classes, n_classes), dtype=np.int64)  # [true, predicted]
        np.add.at(counts, (np.asarray(truth), np.asarray(pred)), 1)
        shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
        for i, j in zip(*np.nonzero(counts)):
            ax.text(j, i, f"{counts[i, j]}", ha="center", va="center", fontsize=6,
                    color="white" if shares[i, j] > 0.5 else "black")  # fmt: skip
        error = 1.0 - np.trace(counts) / counts.sum()
        ax.set(xticks=range(n_classes), yticks=range(n_classes), xlabel="predicted class",
               ylabel="true class", title=f"{name}: test error {100 * error:.1f} %")  # fmt: skip
    fig.colorbar(image, ax=axes, shrink=0.8, label="share of the true class's images")
    fig.suptitle(title)
    return save_figure(fig, path)
