"""Tiny models and data for the model tests (test_models, test_cvae, test_m2, test_metrics).

Models here are tiny (a handful of inputs, a few hidden units) and the tests run them
in float64, so gradient checks of whole losses take milliseconds.
"""

from __future__ import annotations

from minivae import Tensor
from minivae import backend as B
from minivae.data import Batch
from minivae.gradcheck import gradcheck
from minivae.models import MODELS

np = B.np
X_DIM, C = 6, 3
TINY = {"x_dim": X_DIM, "hidden": [4], "latent": 2, "activation": "tanh"}


def tiny(kind: str, **kwargs):
    """A tiny model of the kind: 6 inputs, 4 hidden units, 2 latent units, 3 classes."""
    extra = {"n_classes": C} if kind in ("cvae", "m2") else {}
    if kind == "m2":
        extra["alpha"] = 2.0
    return MODELS[kind](**{**TINY, **extra, **kwargs})


def data(n=5, seed=0):
    """(x (n, 6) binary pixels, y (n,) classes in [0, 3)) as host arrays."""
    rng = np.random.default_rng(seed)
    x = (rng.random((n, X_DIM)) > 0.5).astype(np.float64)
    y = rng.integers(0, C, n)
    return x, y


def train_batch(kind: str, n=5, seed=0) -> Batch:
    """A training Batch holding what the model's batch_kind asks for."""
    x, y = data(n, seed)
    batch_kind = MODELS[kind].batch_kind
    if batch_kind == "images":
        return Batch(x)
    if batch_kind == "labelled":
        return Batch(x, y)
    labels = y if kind == "m2" else np.random.default_rng(seed).standard_normal((n, 1))
    xu, _ = data(n - 1, seed + 1)
    return Batch(xu, x_labelled=x, y_labelled=labels)


def set_parameter(model, name: str, tensor: Tensor) -> None:
    """Put ``tensor`` in place of the parameter called ``name`` (a dotted path)."""
    *path, last = name.split(".")
    obj = model
    for part in path:
        obj = obj[int(part)] if isinstance(obj, list) else getattr(obj, part)
    setattr(obj, last, tensor)


def assert_loss_gradients(model, compute_loss):
    """gradcheck of a scalar loss with respect to every parameter, with the noise fixed."""
    names = [name for name, _ in model.named_parameters()]
    values = [p.data.copy() for _, p in model.named_parameters()]

    def fn(*params):
        for name, p in zip(names, params):
            set_parameter(model, name, p)
        B.manual_seed(3)  # the same eps at every evaluation
        return compute_loss()

    report = gradcheck(fn, values, names=names, mode="full", max_full=10_000)
    assert report.ok, str(report)
    assert report.checked >= sum(v.size for v in values)
