"""What every model shares: the model protocol (``Model``) and the small checks and helpers.

THE MODEL PROTOCOL
------------------
The training loop (``minivae.train``), the evaluation (``minivae.metrics``) and the
``minivae`` command talk to a model only through these names, so none of them asks
which model it holds, and adding a model is one file plus one line in
``minivae/models/__init__.py``:

    kind                        the registry name ("vae"), saved in ``config``
    batch_kind                  what a Batch (``minivae.data.Batch``) must hold:
                                  "images"           x
                                  "labelled"         x and its labels y
                                  "semi-supervised"  x (unlabelled) plus x_labelled, y_labelled
    has_prior                   False where there is no p(z) to sample from (the plain AE)
    config                      JSON-serialisable dict: "kind" and every constructor argument
    loss(batch, kl_weight=1.0)  (scalar Tensor to minimise, dict of floats in nats per example)
    evaluate(batch)             dict of floats for an evaluation Batch (x with its labels y):
                                the loss terms, plus an error where the model predicts labels
    condition(batch)            the labels its densities p(x | ...) are conditioned on, or None
    figure_samples(n, label)    (images Tensor (n, x_dim), caption, columns) for a sample figure
    log_importance_weights(x, K[, y])   (K, B), for importance-sampled log-likelihoods

and the class-level hooks used before a model exists:

    config_from(options, info)        a config from generic options (``minivae train``'s
                                      flags) and the data set's info (x_dim, n_classes)
    data_config(train, labelled)      config entries that follow from the training data
                                      (M2's dataset sizes, the scale of a continuous label)
    dataset_labels(ds, config)        the labels a Batch of this data set carries (host
                                      array) or None: the class for class-conditional
                                      models, a property computed from the images otherwise
    layer_sizes(c)                    {network attribute: its MLP's layer sizes} from the
                                      constructor's arguments: the constructor builds its
                                      networks from it, and ``parameter_shapes(config)``
                                      derives every weight's shape from it by arithmetic,
                                      which the checkpoint reader checks a file against
                                      before anything is built
    extra_parameter_shapes(c)         {name: shape} of parameters outside those MLPs

Reductions (sums per example, mean over the batch, nats per example) are defined
once in ``minivae.distributions``.
"""

from __future__ import annotations

import inspect
import itertools
import math
import numbers

from minivae import backend as B
from minivae.data import Batch
from minivae.nn import Module
from minivae.tensor import Tensor

BATCH_KINDS = ("images", "labelled", "semi-supervised")

# ----------------------------------------------------------------------------- checks


def check_positive_int(owner: str, name: str, value) -> int:
    """value as an int (Python or NumPy integer), or a ValueError naming it and the valid range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{owner}: {name} must be a positive integer (>= 1), got {value!r}")
    return int(value)


def check_hidden(owner: str, hidden) -> tuple:
    """Hidden layer sizes as a tuple of positive ints; () means no hidden layer (linear maps)."""
    if isinstance(hidden, int) and not isinstance(hidden, bool):
        hidden = (hidden,)
    try:
        sizes = tuple(hidden)
    except TypeError:
        raise ValueError(f"{owner}: hidden must be a list of layer sizes, got {hidden!r}") from None
    return tuple(check_positive_int(owner, "every hidden size", h) for h in sizes)


def check_choice(owner: str, name: str, value, choices) -> str:
    if value not in choices:
        raise ValueError(f"{owner}: {name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_non_negative(owner: str, name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        raise ValueError(f"{owner}: {name} must be a number >= 0, got {value!r}")
    return float(value)


def check_positive(owner: str, name: str, value) -> float:
    """value as a float if it is a finite number > 0, else a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not 0 < value < math.inf:  # fmt: skip
        raise ValueError(f"{owner}: {name} must be a finite number > 0, got {value!r}")
    return float(value)


def config_size(c: dict, key: str) -> int:
    """c[key] as a positive int, or a ValueError naming ``model_config[key]``."""
    value = c.get(key)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"model_config[{key!r}] must be a positive integer, got {value!r}")
    return int(value)


def config_sizes(c: dict, key: str) -> list:
    """c[key] as a list of positive ints (one int is a list of one), or an error naming it."""
    value = c.get(key)
    one = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    values = [value] if one else value
    if not isinstance(values, (list, tuple)):
        raise TypeError(f"model_config[{key!r}] must be a list of layer sizes, got {value!r}")
    return [config_size({key: v}, key) for v in values]


def mlp_parameter_shapes(name: str, sizes) -> dict:
    """{parameter name: shape} of ``nn.MLP(sizes)`` held as attribute ``name``: its Linear
    layers sit at the even places of ``layers`` (activations between them)."""
    shapes = {}
    for k, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        shapes[f"{name}.layers.{2 * k}.weight"] = (n_in, n_out)
        shapes[f"{name}.layers.{2 * k}.bias"] = (n_out,)
    return shapes


def check_batch(owner: str, batch) -> Batch:
    """batch itself when it is a ``minivae.data.Batch``, else a TypeError saying how to make one."""
    if not isinstance(batch, Batch):
        raise TypeError(
            f"{owner}: loss() and evaluate() take a minivae.data.Batch, got "
            f"{type(batch).__name__}: wrap the images as Batch(x), Batch(x, y), or "
            "Batch(x, x_labelled=..., y_labelled=...)"
        )
    return batch


def model_dtype(model: Module):
    """The floating dtype of the model's parameters (inputs are cast to it).

    Parameters keep the dtype they were made with (loading a state casts into them),
    so it is looked up once per model and remembered.
    """
    dtype = model.__dict__.get("_param_dtype")
    if dtype is None:
        first = next(model.named_parameters(), None)
        dtype = first[1].dtype if first is not None else B.get_default_dtype()
        model.__dict__["_param_dtype"] = dtype
    return dtype


def as_input(model: Module, x, x_dim: int) -> Tensor:
    """x as a (B, x_dim) Tensor of the model's dtype, or a ValueError naming both widths."""
    owner = type(model).__name__
    t = x if isinstance(x, Tensor) else Tensor(x)
    if t.ndim != 2 or t.shape[1] != x_dim:
        shape = tuple(t.shape)
        if t.ndim == 0:
            fix = "a single number is no input"
        elif t.ndim == 1:
            fix = f"one example? Give a batch of one: x.reshape(1, -1), shape (1, {shape[0]})"
        elif t.ndim > 2:
            fix = "images? Flatten each one: x.reshape(len(x), -1)"
        else:
            fix = "build the model for the data's width, or give it the data it was built for"
        width = shape[-1] if t.ndim else "no"
        raise ValueError(f"{owner}: input of shape {shape} has width {width}, expected "
                         f"(batch, {x_dim}) with x_dim={x_dim}: {fix}")  # fmt: skip
    if t.dtype.kind in "iu" and t.size and int(t.data.max()) > 1:  # one read, integer input only
        raise ValueError(
            f"{owner}: input of integers up to {int(t.data.max())}: the likelihoods read pixel "
            "intensities in [0, 1]; divide 8-bit images by 255 (x / 255.0)"
        )
    dtype = model_dtype(model)
    if t.dtype != dtype:  # 0/1 integers, float64 arrays: compute in the model's dtype
        t = Tensor(t.data.astype(dtype), requires_grad=False) if not t.requires_grad else t
    return t


def check_labels(owner: str, y, n_classes: int, batch: int | None = None):
    """Integer class labels as a device array (B,), each in [0, n_classes), or a ValueError."""
    data = y.data if isinstance(y, Tensor) else y
    if isinstance(data, numbers.Integral) and not isinstance(data, bool):
        data = [int(data)]
    data = B.xp.asarray(data)
    if data.dtype.kind not in "iu":
        raise ValueError(f"{owner}: labels must be integers, got dtype {data.dtype} ({data!r})")
    if data.ndim != 1 or (batch is not None and data.shape[0] != batch):
        expected = f"({batch},)" if batch is not None else "(batch,)"
        raise ValueError(f"{owner}: labels of shape {tuple(data.shape)}, expected {expected}")
    if data.size and not bool(((data >= 0) & (data < n_classes)).all()):  # one device read
        low, high = int(data.min()), int(data.max())
        bad = low if low < 0 else high
        if low < 0 or high >= n_classes:
            raise ValueError(
                f"{owner}: label {bad} is outside the valid range [0, {n_classes}) "
                f"(n_classes={n_classes})"
            )
    return data.astype(B.xp.int64)


# ----------------------------------------------------------------------------- helpers


def one_hot(labels, n_classes: int, dtype) -> Tensor:
    """A constant (B, C) Tensor with a one in each row's label column: column c means class c."""
    return Tensor(B.xp.eye(n_classes, dtype=dtype)[labels])


def flatten_samples(z: Tensor) -> tuple:
    """z (..., D) -> (N, D) for the MLPs, and the leading shape to restore afterwards."""
    lead = z.shape[:-1]
    if z.ndim == 2:
        return z, lead
    return z.reshape(-1, z.shape[-1]), lead


def restore_samples(h: Tensor, lead: tuple) -> Tensor:
    """(N, F) -> (*lead, F): undo flatten_samples."""
    if len(lead) == 1:
        return h
    return h.reshape(*lead, h.shape[-1])


def mean_over_samples(a: Tensor, batch_ndim: int = 1) -> Tensor:
    """Average the leading Monte-Carlo sample axes: (S, B) -> (B,); (B,) stays."""
    extra = a.ndim - batch_ndim
    return a.mean(axis=tuple(range(extra))) if extra > 0 else a


def scalar_stats(terms: dict) -> dict:
    """Per-example means of (B,) Tensors as Python floats (nats per example)."""
    return {name: _mean(t.data) if isinstance(t, Tensor) else float(t) for name, t in terms.items()}


def _mean(a) -> float:
    """The mean of an array as a Python float (its sum over its size: cheaper than a.mean())."""
    return float(a.sum()) / a.size if a.size else float("nan")


def grid_columns(n: int, wanted: int) -> int:
    """Columns of a sample figure: ``wanted`` (one per class, say), but never more than n."""
    return max(1, min(n, wanted))


# ----------------------------------------------------------------------------- the protocol


class Model(Module):
    """The base of every model: the protocol of the module docstring, with its defaults."""

    kind = ""  # the registry name, set by each model
    batch_kind = "images"  # what a Batch must hold (BATCH_KINDS)
    has_prior = True  # figure_samples draws from p(z); False for the plain autoencoder

    @property
    def config(self) -> dict:  # pragma: no cover - every model defines it
        raise NotImplementedError(f"{type(self).__name__} defines no config")

    # --- class-level hooks: what the loop needs before the model exists -------------------
    @classmethod
    def arguments(cls) -> tuple:
        """The names of the constructor's arguments (the keys of ``config`` besides "kind")."""
        return tuple(p for p in inspect.signature(cls.__init__).parameters if p != "self")

    @classmethod
    def argument_defaults(cls) -> dict:
        """{argument: default} of the constructor (what a config leaving a key out means)."""
        signature = inspect.signature(cls.__init__)
        return {name: p.default for name, p in signature.parameters.items()
                if name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD}  # fmt: skip

    @classmethod
    def layer_sizes(cls, c: dict) -> dict:  # pragma: no cover - every model defines it
        """{network attribute: the layer sizes of its MLP} from the constructor's arguments c.

        c is a config (defaults filled in), or ``vars(self)`` in the constructor, whose
        attributes carry the arguments' names. Sizes are read with ``config_size`` and
        ``config_sizes``, so a bad value is an error naming its key."""
        raise NotImplementedError(f"{cls.__name__} defines no layer_sizes")

    @classmethod
    def extra_parameter_shapes(cls, c: dict) -> dict:
        """{name: shape} of the parameters outside the MLPs of ``layer_sizes``: none by default."""
        return {}

    @classmethod
    def parameter_shapes(cls, config: dict) -> dict:
        """{parameter name: shape} of ``build_model(config)``, by arithmetic only.

        Nothing is allocated, so a config asking for a huge model costs nothing to check;
        a size that is not a positive integer is a ValueError naming its key. A test holds
        this equal to the built models' shapes for every kind.
        """
        c = {**cls.argument_defaults(), **{k: v for k, v in config.items() if k != "kind"}}
        shapes = {}
        for name, sizes in cls.layer_sizes(c).items():
            shapes.update(mlp_parameter_shapes(name, sizes))
        shapes.update(cls.extra_parameter_shapes(c))
        return shapes

    @classmethod
    def config_from(cls, options: dict, info: dict) -> dict:
        """A config from generic options (names of constructor arguments) and a data set's info.

        Options set to None are left to the model's defaults. x_dim and n_classes come from
        ``info`` (``minivae.data.dataset_info``) where the model takes them. An option the
        model does not take is a ValueError naming it.
        """
        taken = cls.arguments()
        config = {"kind": cls.kind}
        for name in ("x_dim", "n_classes"):
            if name in taken:
                config[name] = info[name]
        for name, value in options.items():
            if value is None:
                continue
            if name not in taken:
                raise ValueError(f"{cls.kind}: takes no option {name!r} (it takes "
                                 f"{', '.join(taken)})")  # fmt: skip
            config[name] = value
        return config

    DATA_CONFIG_KEYS: tuple = ()  # the entries data_config sets (a resume compares the others early)

    @classmethod
    def data_config(cls, train, labelled) -> dict:
        """Config entries that follow from the training split (a ``Dataset``) and its labelled
        rows (indices, or None): none for most models."""
        return {}

    @classmethod
    def dataset_labels(cls, ds, config: dict):
        """The labels a Batch of ``ds`` carries (host array), or None when the model needs none."""
        return

    # --- the protocol ------------------------------------------------------------------------
    def loss(self, batch, kl_weight: float = 1.0):  # pragma: no cover - every model defines it
        raise NotImplementedError(f"{type(self).__name__} defines no loss")

    def evaluate(self, batch) -> dict:
        """Numbers for an evaluation Batch (x and its labels y): the loss terms, nats per example."""
        return self.loss(check_batch(type(self).__name__, batch))[1]

    def condition(self, batch):
        """The labels that every density of the model is conditioned on: none by default."""
        return

    def figure_samples(self, n: int, label=None):
        """(n samples as a Tensor (n, x_dim), a caption, columns of the grid) for a figure.

        label=None samples the model's own way; a label asks a conditional model for it.
        """
        name = type(self).__name__
        n = check_positive_int(name, "n", n)
        if label is not None:
            raise ValueError(f"{name}: label={label!r} was given, but the model is not "
                             "conditioned on a label (cvae, m2 and ssvae-continuous are)")  # fmt: skip
        return self.sample(n), "samples from the prior, z ~ N(0, I)", grid_columns(n, 8)


# ----------------------------------------------------------------------------- semi-supervised


class SemiSupervised:
    """The part of the protocol the semi-supervised models share (M2 and the continuous one).

    A training Batch holds an unlabelled part x and a labelled part x_labelled,
    y_labelled; the model's ``_loss_parts(x_unlabelled, x_labelled, y_labelled,
    kl_weight, **noise)`` weighs them into one objective (either part may be None). An
    evaluation Batch (x with its labels y) is scored with both bounds on the same images,
    plus the model's ``label_error(x, y)`` (a dict: M2's "error", the continuous
    model's "label_mse").
    """

    batch_kind = "semi-supervised"

    def loss(self, batch, kl_weight: float = 1.0, **noise):
        """(-J / (B_u + B_l), stats) of a Batch: x unlabelled, x_labelled with y_labelled.

        noise: the model's keyword arguments that fix its noise (tests and lessons).
        """
        owner = type(self).__name__
        batch = check_batch(owner, batch)
        if batch.y is not None:  # labels beside x would be dropped without a word
            raise ValueError(
                f"{owner}.loss trains on x as unlabelled data and on x_labelled with y_labelled: "
                "Batch(x, y) gives labels it would ignore. Give the labelled examples as "
                "Batch(x_unlabelled, x_labelled=x, y_labelled=y); model.evaluate(Batch(x, y)) "
                "scores labelled data"
            )
        return self._loss_parts(batch.x, batch.x_labelled, batch.y_labelled, kl_weight, **noise)

    def evaluate(self, batch) -> dict:
        """The loss of x as unlabelled and as labelled data, plus the label's error."""
        batch = check_batch(type(self).__name__, batch)
        if batch.y is None:  # images without labels: the unlabelled bound only
            return self._loss_parts(batch.x, None, None)[1]
        out = self._loss_parts(batch.x, batch.x, batch.y)[1]
        out.update(self.label_error(batch.x, batch.y))
        return out


def semi_supervised_loss(owner: str, objective: list, bounds: list, stats: dict):
    """(loss, stats) of a semi-supervised model from its labelled and unlabelled parts.

    objective: the summed objective of each part present (Tensors); bounds: each part's
    dict of per-example bounds ("elbo", "recon", "kl"); stats: per-part extras. The loss is
    minus the objective per example of the batch; "elbo", "recon", "kl" are per-example
    means over both parts.
    """
    if not objective:
        raise ValueError(f"{owner}: loss() needs x (unlabelled), or x_labelled with y_labelled")
    count = sum(b["elbo"].shape[0] for b in bounds)
    loss = -(objective[0] if len(objective) == 1 else objective[0] + objective[1]) / count
    out = scalar_stats(stats)
    for key in ("elbo", "recon", "kl"):
        out[key] = sum(float(b[key].data.sum()) for b in bounds) / count
    out["loss"] = float(loss.data)
    return loss, out


def squared_error_mean(a, b) -> float:
    """mean over rows of ||a - b||^2 for two device arrays (B, k): a per-example mean."""
    diff = a - b
    return float((diff * diff).sum()) / diff.shape[0] if diff.shape[0] else math.nan
