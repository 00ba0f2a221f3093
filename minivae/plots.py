"""Figures for the lessons: PNG files that a learner can read without the code.

Every function here takes host NumPy arrays (callers convert device arrays and
tensors first, with ``backend.to_numpy``), draws one figure with a title, axis
labels and a legend or colorbar where one helps, writes it to ``path`` as a PNG
and returns the path as a ``pathlib.Path``.

    from minivae import plots
    plots.image_grid(x[:64], "runs/samples.png", "Samples from p(x|z), z ~ N(0, I)", ncols=8)

Conventions:

- **Atomic writes.** The PNG is written to a hidden temporary file in the target
  folder, which then replaces ``path`` (``os.replace``): a reader never sees half
  a file, and a failure leaves the previous figure in place. Parent folders are
  created.
- **No pyplot.** Figures are ``matplotlib.figure.Figure`` objects drawn on the Agg
  canvas directly: no global figure state, no GUI, nothing to close, safe in
  threads. This module never imports the autodiff engine.
- **Images** come as (N, D) rows, reshaped with ``image_shape`` (28 x 28 by
  default), or as (N, H, W), in which case ``image_shape`` is not used. Pixel
  values in [0, 1] (Bernoulli means, binarized data) are drawn on a fixed
  black (0) to white (1) scale, so figures from different epochs compare; any
  other range is stretched to its min and max and a colorbar shows the scale.
- **Latent dimensions are numbered from 0**, as NumPy indexes them, so the labels
  ($z_0$, $z_1$, ...) match the indices that lessons print.
- **Losses are in nats per example** (sums over pixels and latent dimensions,
  mean over the batch; see ``distributions.py``).
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from statistics import NormalDist

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from minivae.backend import np
from minivae.files import atomic_writer

__all__ = [
    "bar_plot",
    "histogram_plot",
    "image_grid",
    "interpolations",
    "latent_manifold",
    "latent_scatter",
    "line_plot",
    "manifold_grid",
    "rate_distortion",
    "reconstructions",
    "training_curves",
    "traversals",
]

DPI = 100
CELL_INCHES = 0.6  # the size one image of a grid gets on the page, at most
MAX_GRID_INCHES = 12.0  # a grid of images is never wider or taller than this
MAX_TICK_LABELS = 11  # more labels than this along an axis and only every k-th is shown


# ----------------------------------------------------------------------------- writing


def _check_path(path) -> Path:
    path = Path(os.fspath(path))
    if path.suffix.lower() != ".png":
        raise ValueError(f"plots write PNG files: path {str(path)!r} should end in '.png'")
    return path


def _save(fig: Figure, path: Path) -> Path:
    """Write ``fig`` to ``path`` as a PNG, atomically (``minivae.files.atomic_writer``)."""
    FigureCanvasAgg(fig)  # attaches the Agg canvas to the figure
    with atomic_writer(path) as fh:  # temp file, fsync, os.replace, folder fsync; open()'s mode
        fig.savefig(fh, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.1)
    return path


def _new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _wrap(title: str, width_inches: float, fontsize: float = 12.0) -> str:
    """Break a long title into lines that fit the figure's width."""
    chars = max(24, int(width_inches * 72 / (0.55 * fontsize)))
    return "\n".join(textwrap.fill(line, chars) for line in str(title).splitlines() or [""])


# ----------------------------------------------------------------------------- checking input


def _as_float_array(a, name: str, ndim=None) -> np.ndarray:
    """``a`` as a float NumPy array, with clear errors for device arrays, wrong rank, NaN or inf."""
    if type(a).__module__.startswith("cupy") or hasattr(a, "grad"):
        raise ValueError(
            f"{name} must be a NumPy array: convert tensors and GPU arrays first with "
            "minivae.backend.to_numpy(...)"
        )
    try:
        arr = np.asarray(a, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be numbers, got {type(a).__name__}: {err}") from err
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name} must be {want}, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}): there is nothing to plot")
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(
            f"{name} contains {bad} NaN or infinite values: there is nothing sane to plot"
        )
    return arr


def _as_images(images, image_shape, name: str = "images") -> np.ndarray:
    """(N, D) rows or (N, H, W) images -> (N, H, W) float array."""
    arr = _as_float_array(images, name, ndim=(2, 3))
    if arr.ndim == 3:
        return arr
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"image_shape must be (height, width), got {image_shape!r}")
    if arr.shape[1] != shape[0] * shape[1]:
        raise ValueError(
            f"{name} have {arr.shape[1]} values each (shape {arr.shape}) but image_shape "
            f"{shape} needs {shape[0] * shape[1]}: pass the right image_shape, or images as (N, H, W)"
        )
    return arr.reshape(arr.shape[0], *shape)


def _count(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_labels(labels, count: int, name: str, what: str) -> list[str] | None:
    if labels is None:
        return None
    labels = [str(s) for s in labels]
    if len(labels) != count:
        raise ValueError(f"{name} has {len(labels)} entries but the figure has {count} {what}")
    return labels


# ----------------------------------------------------------------------------- image grids


def _value_range(images: np.ndarray) -> tuple[float, float, bool]:
    """(vmin, vmax, is_unit): [0, 1] when the pixels fit in it, else their own min and max."""
    lo, hi = float(images.min()), float(images.max())
    if lo >= 0.0 and hi <= 1.0:
        return 0.0, 1.0, True
    if hi == lo:
        hi = lo + 1.0
    return lo, hi, False


def _tile(images: np.ndarray, nrows: int, ncols: int, fill: float, pad: int):
    """Lay (N, H, W) images out row by row on one canvas; returns it and the cell centres."""
    n, h, w = images.shape
    canvas = np.full((nrows * h + (nrows + 1) * pad, ncols * w + (ncols + 1) * pad), fill)
    for k in range(n):
        r, c = divmod(k, ncols)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        canvas[top : top + h, left : left + w] = images[k]
    row_centres = [pad + r * (h + pad) + (h - 1) / 2 for r in range(nrows)]
    col_centres = [pad + c * (w + pad) + (w - 1) / 2 for c in range(ncols)]
    return canvas, row_centres, col_centres


def _thin(labels: list[str]) -> list[str]:
    """Blank out all but every k-th label when there are too many to read."""
    step = max(1, math.ceil(len(labels) / MAX_TICK_LABELS))
    return [s if i % step == 0 or i == len(labels) - 1 else "" for i, s in enumerate(labels)]


def _draw_grid(
    images: np.ndarray,
    path: Path,
    title: str,
    ncols: int,
    row_labels=None,
    col_labels=None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    thin: bool = False,
) -> Path:
    """The one routine behind every figure made of images: tile, draw, label, save."""
    n, h, w = images.shape
    nrows = math.ceil(n / ncols)
    vmin, vmax, is_unit = _value_range(images)
    pad = max(1, round(max(h, w) / 14))
    canvas, row_centres, col_centres = _tile(images, nrows, ncols, fill=vmax, pad=pad)

    cell = min(CELL_INCHES, MAX_GRID_INCHES / max(nrows, ncols))
    width = max(4.0, ncols * cell + (1.2 if row_labels else 0.3) + (0.0 if is_unit else 0.9))
    height = nrows * cell + 0.9 + (0.3 if col_labels else 0.0) + (0.3 if xlabel else 0.0)
    fig = _new_figure(width, height)
    ax = fig.add_subplot()
    shown = ax.imshow(canvas, cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_title(_wrap(title, width))

    if row_labels:
        ax.set_yticks(row_centres, _thin(row_labels) if thin else row_labels)
    else:
        ax.set_yticks([])
    if col_labels:
        ax.set_xticks(col_centres, _thin(col_labels) if thin else col_labels)
        if thin or max(len(s) for s in col_labels) > 6:
            ax.tick_params(axis="x", labelrotation=45 if ncols > 8 else 0)
    else:
        ax.set_xticks([])
    ax.tick_params(length=0, labelsize=8)
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if not is_unit:
        fig.colorbar(shown, ax=ax, shrink=0.8, label="pixel value")
    return _save(fig, path)


def image_grid(
    images,
    path,
    title: str,
    ncols: int = 10,
    image_shape=(28, 28),
    row_labels=None,
    col_labels=None,
) -> Path:
    """A grid of images (data, or samples from the model), ``ncols`` per row.

    images: (N, D) with D = H * W, or (N, H, W). Optional ``row_labels`` (one per
    row, ceil(N / ncols) of them) and ``col_labels`` (``ncols`` of them) label the
    grid's rows and columns, e.g. classes or the value of a conditioning label.
    """
    path = _check_path(path)
    imgs = _as_images(images, image_shape)
    ncols = min(_count(ncols, "ncols"), len(imgs))
    nrows = math.ceil(len(imgs) / ncols)
    rows = _check_labels(
        row_labels, nrows, "row_labels", f"rows ({len(imgs)} images, {ncols} per row)"
    )
    cols = _check_labels(col_labels, ncols, "col_labels", "columns")
    return _draw_grid(imgs, path, title, ncols, rows, cols)


def reconstructions(
    originals,
    recons,
    path,
    title: str,
    ncols: int = 10,
    image_shape=(28, 28),
) -> Path:
    """Originals x and their reconstructions, in pairs of rows: "original" above "reconstruction".

    originals, recons: the same number of images, (N, D) or (N, H, W); recons[i]
    is the reconstruction of originals[i] (e.g. the Bernoulli means of p(x|z) at
    z = the encoder's mean, or a sample from q(z|x)).
    """
    path = _check_path(path)
    x = _as_images(originals, image_shape, "originals")
    r = _as_images(recons, image_shape, "recons")
    if x.shape != r.shape:
        raise ValueError(
            f"originals and recons must match image for image: got originals {x.shape} "
            f"and recons {r.shape}"
        )
    ncols = min(_count(ncols, "ncols"), len(x))
    chunks = range(0, len(x), ncols)
    blank = np.full((ncols, *x.shape[1:]), np.nan)
    rows = []
    for start in chunks:
        for part in (x[start : start + ncols], r[start : start + ncols]):
            row = blank.copy()
            row[: len(part)] = part
            rows.append(row)
    tiled = np.concatenate(rows)
    vmax = _value_range(np.concatenate([x, r]))[1]
    tiled = np.where(np.isnan(tiled), vmax, tiled)  # empty cells of the last pair of rows
    labels = ["original", "reconstruction"] * len(chunks)
    return _draw_grid(tiled, path, title, ncols, row_labels=labels)


def manifold_grid(n: int, lo: float = 0.05, hi: float = 0.95) -> np.ndarray:
    """(n*n, 2) latent points z = Φ⁻¹(u) for u on a uniform n x n grid in [lo, hi]².

    Kingma & Welling (2013), Fig. 4: equal steps of probability under the prior
    N(0, 1), so the grid covers the prior's mass evenly instead of wasting cells
    in its tails. Φ⁻¹ is the inverse standard normal CDF (``statistics.NormalDist``).

    Ordering, row-major as a picture is read: point k = i * n + j sits in row i
    (from the top) and column j (from the left), with z[k, 0] = z_0 growing to the
    right and z[k, 1] = z_1 growing upwards. Decode the points in this order and
    hand the images to ``latent_manifold``.
    """
    n = _count(n, "n", minimum=2)
    lo, hi = float(lo), float(hi)
    if not 0.0 < lo < hi < 1.0:
        raise ValueError(f"need 0 < lo < hi < 1 (they are probabilities), got lo={lo}, hi={hi}")
    inv_cdf = NormalDist().inv_cdf
    values = np.array([inv_cdf(u) for u in np.linspace(lo, hi, n)])  # (n,) increasing
    z0 = np.tile(values, n)  # column j -> values[j]
    z1 = np.repeat(values[::-1], n)  # row i -> values[n - 1 - i]: top row is the largest
    return np.stack([z0, z1], axis=1)


def latent_manifold(
    images,
    n: int,
    path,
    title: str,
    lo: float = 0.05,
    hi: float = 0.95,
    image_shape=(28, 28),
) -> Path:
    """The decoded n x n manifold as one picture, with the z values on the ticks.

    images: (n*n, D) or (n*n, H, W), the decoder's output at ``manifold_grid(n, lo, hi)``
    in that order (z_0 across, growing to the right; z_1 up, growing upwards).
    """
    path = _check_path(path)
    grid = manifold_grid(n, lo, hi)
    imgs = _as_images(images, image_shape)
    if len(imgs) != n * n:
        raise ValueError(f"latent_manifold needs n*n = {n * n} images for n = {n}, got {len(imgs)}")
    across = [f"{v:.2f}" for v in grid[:n, 0]]
    up = [f"{v:.2f}" for v in grid[::n, 1]]
    return _draw_grid(
        imgs,
        path,
        title,
        ncols=n,
        row_labels=up,
        col_labels=across,
        xlabel=r"$z_0 = \Phi^{-1}(u_0)$",
        ylabel=r"$z_1 = \Phi^{-1}(u_1)$",
        thin=True,
    )


def traversals(
    images,
    n_dims: int,
    n_steps: int,
    path,
    title: str,
    values=None,
    row_labels=None,
    image_shape=(28, 28),
) -> Path:
    """Latent traversals: one row per latent dimension, one column per value it is set to.

    images: (n_dims * n_steps, D) or (..., H, W), row-major: image d * n_steps + s
    decodes z with dimension d set to ``values[s]`` and the others held fixed.
    ``row_labels`` defaults to $z_0$, $z_1$, ...; pass the real indices when the
    rows traverse chosen dimensions (e.g. the active units).
    """
    path = _check_path(path)
    n_dims, n_steps = _count(n_dims, "n_dims"), _count(n_steps, "n_steps")
    imgs = _as_images(images, image_shape)
    if len(imgs) != n_dims * n_steps:
        raise ValueError(
            f"traversals needs n_dims * n_steps = {n_dims} * {n_steps} = {n_dims * n_steps} "
            f"images, got {len(imgs)}"
        )
    if values is not None:
        values = _as_float_array(values, "values", ndim=1)
        if len(values) != n_steps:
            raise ValueError(f"values has {len(values)} entries but n_steps is {n_steps}")
        cols = [f"{v:.3g}" for v in values]
    else:
        cols = None
    rows = _check_labels(row_labels, n_dims, "row_labels", "rows (n_dims)")
    if rows is None:
        rows = [f"$z_{{{d}}}$" for d in range(n_dims)]
    return _draw_grid(
        imgs,
        path,
        title,
        ncols=n_steps,
        row_labels=rows,
        col_labels=cols,
        xlabel="value given to the traversed dimension (the others held fixed)",
        ylabel="latent dimension",
    )


def interpolations(
    images,
    n_pairs: int,
    n_steps: int,
    path,
    title: str,
    image_shape=(28, 28),
    ts=None,
) -> Path:
    """Interpolations between pairs of latent codes: one row per pair, from t = 0 to t = 1.

    images: (n_pairs * n_steps, D) or (..., H, W), row-major: image p * n_steps + s
    decodes the point at ``ts[s]`` between pair p's endpoints (``ts`` defaults to
    n_steps equal steps from 0 to 1).
    """
    path = _check_path(path)
    n_pairs, n_steps = _count(n_pairs, "n_pairs"), _count(n_steps, "n_steps", minimum=2)
    imgs = _as_images(images, image_shape)
    if len(imgs) != n_pairs * n_steps:
        raise ValueError(
            f"interpolations needs n_pairs * n_steps = {n_pairs} * {n_steps} = "
            f"{n_pairs * n_steps} images, got {len(imgs)}"
        )
    ts = np.linspace(0.0, 1.0, n_steps) if ts is None else _as_float_array(ts, "ts", ndim=1)
    if len(ts) != n_steps:
        raise ValueError(f"ts has {len(ts)} entries but n_steps is {n_steps}")
    return _draw_grid(
        imgs,
        path,
        title,
        ncols=n_steps,
        row_labels=[f"pair {p + 1}" for p in range(n_pairs)],
        col_labels=[f"{t:.2f}" for t in ts],
        xlabel="t  (t = 0: first endpoint, t = 1: second endpoint)",
    )


# ----------------------------------------------------------------------------- latent space


def _class_colours(count: int):
    if count <= 10:
        return [matplotlib.colormaps["tab10"](i) for i in range(count)]
    if count <= 20:
        return [matplotlib.colormaps["tab20"](i) for i in range(count)]
    cmap = matplotlib.colormaps["viridis"]
    return [cmap(i / (count - 1)) for i in range(count)]


def _class_name(label, class_names) -> str:
    if class_names is None:
        return str(label)
    try:
        if isinstance(class_names, Mapping):
            return str(class_names[label])
        return str(class_names[int(label)])
    except (KeyError, IndexError, TypeError, ValueError) as err:
        plain = label.item() if hasattr(label, "item") else label  # np.int64(3) -> 3
        raise ValueError(f"class_names has no name for label {plain!r}") from err


def latent_scatter(
    z,
    labels,
    path,
    title: str,
    class_names=None,
    show_prior: bool = True,
) -> Path:
    """Latent codes (e.g. the encoder means μ(x)) as points, coloured by class, with a legend.

    z: (N, L) with L >= 2; when L > 2 the first two dimensions are drawn and the
    axis labels say so. labels: (N,) class of each point, or None for one colour.
    class_names: a sequence indexed by integer label, or a dict label -> name.
    show_prior draws the 1σ and 2σ circles of the prior N(0, I) for reference
    (pass False for a plain autoencoder, which has no prior).
    """
    path = _check_path(path)
    z = _as_float_array(z, "z", ndim=2)
    n, dims = z.shape
    if dims < 2:
        raise ValueError(
            f"latent_scatter needs at least 2 latent dimensions, z has shape {z.shape}; "
            "for a 1-D latent use histogram_plot"
        )
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim != 1 or len(labels) != n:
            raise ValueError(
                f"labels must give one class per point: labels has shape {labels.shape} "
                f"but z has {n} rows"
            )

    fig = _new_figure(7.0, 5.6)
    ax = fig.add_subplot()
    size = 16.0 if n <= 1000 else 6.0 if n <= 5000 else 3.0
    style = {"s": size, "alpha": 0.7, "linewidths": 0, "rasterized": True}
    if labels is None:
        ax.scatter(z[:, 0], z[:, 1], color="tab:blue", label=f"{n} codes", **style)
    else:
        classes = np.unique(labels)
        for colour, c in zip(_class_colours(len(classes)), classes):
            mask = labels == c
            ax.scatter(
                z[mask, 0], z[mask, 1], color=colour, label=_class_name(c, class_names), **style
            )
    if show_prior:
        for radius in (1.0, 2.0):
            ax.add_patch(
                Circle(
                    (0.0, 0.0),
                    radius,
                    fill=False,
                    linestyle="--",
                    linewidth=1.0,
                    color="0.35",
                    label="prior N(0, I): 1σ and 2σ" if radius == 1.0 else None,
                )
            )
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(True, alpha=0.25)
    if dims > 2:
        ax.set_xlabel(f"$z_0$  (first 2 of {dims} latent dimensions shown)")
        ax.set_ylabel(f"$z_1$  (dimensions 2 to {dims - 1} not shown)")
    else:
        ax.set_xlabel("$z_0$")
        ax.set_ylabel("$z_1$")
    ax.set_title(_wrap(title, 6.0))
    ax.legend(
        title="class" if labels is not None else None,
        loc="center left",
        bbox_to_anchor=(1.02, 0.5),
        markerscale=max(1.0, math.sqrt(30.0 / size)),
        fontsize=9,
        frameon=False,
    )
    return _save(fig, path)


# ----------------------------------------------------------------------------- training

TERM_TITLES = {
    "elbo": "ELBO, the bound on log p(x)",
    "loss": "loss (−ELBO)",
    "recon": r"reconstruction $\mathbb{E}_q[\log p(x|z)]$",
    "kl": r"$\mathrm{KL}(q(z|x)\,\|\,p(z))$",
    "nll": "negative log-likelihood",
}
SPLITS = (("train", "train", "-"), ("val", "validation", "--"), ("test", "test", ":"))


def _history_column(history, key: str) -> np.ndarray:
    """One number per epoch for ``key``; NaN where an epoch did not record it."""
    out = np.full(len(history), np.nan)
    for i, record in enumerate(history):
        value = record.get(key)
        if value is None:
            continue
        try:
            out[i] = float(value)
        except (TypeError, ValueError) as err:
            raise ValueError(f"history[{i}][{key!r}] = {value!r} is not a number") from err
    return out


def training_curves(history, path, title: str, keys=("elbo", "recon", "kl")) -> Path:
    """One panel per loss term, train and validation lines over epochs, in nats per example.

    history: a list of dicts, one per epoch, as read from a JSON-lines metrics log,
    e.g. {"epoch": 3, "train_elbo": -101.2, "val_elbo": -103.5, "train_kl": 24.9}.
    For each key the panel draws "train_<key>", "val_<key>" and "test_<key>", or the
    plain "<key>", whichever are present; epochs without a value are skipped.
    The x axis is the "epoch" entry when records have one, else 1, 2, 3, ...
    """
    path = _check_path(path)
    if isinstance(keys, str):
        keys = (keys,)
    if not keys:
        raise ValueError("keys is empty: name at least one term to plot, e.g. ('elbo',)")
    if not isinstance(history, Sequence) or len(history) == 0:
        raise ValueError("history must be a non-empty list of dicts, one per epoch")
    for i, record in enumerate(history):
        if not isinstance(record, Mapping):
            # ValueError like every other bad input here, so callers catch one kind
            raise ValueError(f"history[{i}] is a {type(record).__name__}, not a dict")  # noqa: TRY004
    epochs = _history_column(history, "epoch")
    if np.isnan(epochs).any():
        epochs = np.arange(1, len(history) + 1, dtype=float)

    panels = []  # (key, [(legend, style, x, y)])
    for key in keys:
        lines = []
        for prefix, name, style in SPLITS:
            y = _history_column(history, f"{prefix}_{key}")
            keep = np.isfinite(y)
            if keep.any():
                lines.append((name, style, epochs[keep], y[keep]))
        if not lines:
            y = _history_column(history, key)
            keep = np.isfinite(y)
            if keep.any():
                lines.append((key, "-", epochs[keep], y[keep]))
        if not lines:
            present = sorted({k for record in history for k in record})
            raise ValueError(
                f"history has no values for {key!r}: looked for train_{key}, val_{key}, "
                f"test_{key} and {key}; the records have {present}"
            )
        panels.append((key, lines))

    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = _new_figure(4.2 * ncols, 3.4 * nrows + 0.4)
    for i, (key, lines) in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        for name, style, x, y in lines:
            ax.plot(x, y, style, marker="o" if len(x) <= 30 else None, markersize=3, label=name)
        ax.set_title(TERM_TITLES.get(key, key), fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel("nats per example")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(_wrap(title, 4.2 * ncols))
    return _save(fig, path)


def rate_distortion(rates, distortions, labels, path, title: str) -> Path:
    """The rate-distortion plane of a β sweep: rate (KL, nats) across, distortion up.

    rates[i] = E[KL(q(z|x) ‖ p(z))] and distortions[i] = E[−log p(x|z)] of the model
    trained with β = labels[i] (numbers are written "β = ..."; strings as given).
    Points are joined in the order given. The dashed line R + D = const passes
    through the model with the best (lowest) −ELBO = R + D: every point on it has
    the same ELBO, which is why the ELBO alone cannot tell these models apart.
    """
    path = _check_path(path)
    r = _as_float_array(rates, "rates", ndim=1)
    d = _as_float_array(distortions, "distortions", ndim=1)
    if len(r) != len(d):
        raise ValueError(f"rates has {len(r)} values but distortions has {len(d)}")
    labels = list(labels)
    if len(labels) != len(r):
        raise ValueError(f"labels has {len(labels)} entries but there are {len(r)} points")
    texts = [
        f"β = {b:g}"
        if isinstance(b, (int, float, np.number)) and not isinstance(b, bool)
        else str(b)
        for b in labels
    ]

    fig = _new_figure(6.4, 5.0)
    ax = fig.add_subplot()
    ax.plot(r, d, "-", color="0.6", linewidth=1, zorder=1)
    ax.scatter(r, d, s=36, color="tab:blue", zorder=3, label="trained models")
    for x, y, text in zip(r, d, texts):
        ax.annotate(text, (x, y), xytext=(6, 6), textcoords="offset points", fontsize=9)

    span_r = max(float(np.ptp(r)), 1e-9 + 0.05 * abs(float(r.mean())), 1.0)
    span_d = max(float(np.ptp(d)), 1e-9 + 0.05 * abs(float(d.mean())), 1.0)
    xlim = (float(r.min()) - 0.12 * span_r, float(r.max()) + 0.2 * span_r)
    ylim = (float(d.min()) - 0.12 * span_d, float(d.max()) + 0.15 * span_d)
    best = int(np.argmin(r + d))
    total = float(r[best] + d[best])
    xs = np.linspace(*xlim, 50)
    ax.plot(
        xs,
        total - xs,
        "--",
        color="tab:red",
        linewidth=1,
        zorder=2,
        label=f"R + D = {total:.4g} nats: the best −ELBO ({texts[best]})",
    )
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xlabel(r"rate R = KL$(q(z|x)\,\|\,p(z))$  [nats per example]")
    ax.set_ylabel(r"distortion D = $-\mathbb{E}_q[\log p(x|z)]$  [nats per example]")
    ax.set_title(_wrap(title, 6.4))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    return _save(fig, path)


# ----------------------------------------------------------------------------- general plots


def _series_items(series, name: str = "series"):
    if not isinstance(series, Mapping) or len(series) == 0:
        raise ValueError(f"{name} must be a non-empty dict: legend name -> values")
    return list(series.items())


def line_plot(
    series,
    path,
    title: str,
    xlabel: str,
    ylabel: str,
    logx: bool = False,
    logy: bool = False,
) -> Path:
    """General curves, one per entry of ``series`` (its key is the legend name).

    Each value is y (x is then 1, 2, 3, ...), a tuple (x, y), or a tuple
    (x, y, err) which also shades y ± err (e.g. a standard deviation over seeds).
    Example: {"K = 1": (ks, var1), "K = 10": (ks, var10)}, logx=True, logy=True.
    """
    path = _check_path(path)
    items = _series_items(series)
    curves = []
    for name, value in items:
        if isinstance(value, tuple):
            if len(value) not in (2, 3):
                raise ValueError(
                    f"series[{name!r}] is a tuple of {len(value)}: give (x, y) or (x, y, err)"
                )
            x = _as_float_array(value[0], f"x of series[{name!r}]", ndim=1)
            y = _as_float_array(value[1], f"y of series[{name!r}]", ndim=1)
            err = None
            if len(value) == 3:
                err = _as_float_array(value[2], f"err of series[{name!r}]", ndim=1)
                if len(err) != len(y):
                    raise ValueError(
                        f"series[{name!r}] has {len(y)} y values but {len(err)} errors"
                    )
        else:
            y = _as_float_array(value, f"series[{name!r}]", ndim=1)
            x = np.arange(1, len(y) + 1, dtype=float)
            err = None
        if len(x) != len(y):
            raise ValueError(f"series[{name!r}] has {len(x)} x values but {len(y)} y values")
        if logx and np.any(x <= 0):
            raise ValueError(f"logx needs x > 0, but series[{name!r}] has x <= 0")
        if logy and np.any(y <= 0):
            raise ValueError(f"logy needs y > 0, but series[{name!r}] has y <= 0")
        curves.append((str(name), x, y, err))

    fig = _new_figure(6.4, 4.4)
    ax = fig.add_subplot()
    for name, x, y, err in curves:
        marker, size = ("o" if len(x) <= 30 else None), (3 if len(x) > 1 else 8)  # a lone point shows
        (line,) = ax.plot(x, y, marker=marker, markersize=size, label=name)
        if err is not None:
            low = y - err
            if logy:
                low = np.maximum(low, y * 1e-3)
            ax.fill_between(x, low, y + err, color=line.get_color(), alpha=0.2, linewidth=0)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(_wrap(title, 6.4))
    ax.grid(True, which="both" if (logx or logy) else "major", alpha=0.3)
    ax.legend(fontsize=9)
    return _save(fig, path)


def histogram_plot(
    series,
    path,
    title: str,
    xlabel: str,
    bins: int = 40,
    density: bool = True,
    logy: bool = False,
) -> Path:
    """Overlaid histograms on shared bins, one per entry of ``series`` (name -> 1-D values).

    E.g. the spread of importance log-weights, or of posterior variances per dimension.
    density=True scales each to unit area, so series of different sizes compare.
    """
    path = _check_path(path)
    items = _series_items(series)
    data = [(str(k), _as_float_array(v, f"series[{k!r}]", ndim=1)) for k, v in items]
    bins = _count(bins, "bins")
    edges = np.histogram_bin_edges(np.concatenate([v for _, v in data]), bins=bins)
    fig = _new_figure(6.4, 4.4)
    ax = fig.add_subplot()
    for name, values in data:
        ax.hist(
            values,
            bins=edges,
            density=density,
            histtype="stepfilled",
            alpha=0.35,
            label=f"{name} (n = {len(values)})",
        )
        ax.hist(values, bins=edges, density=density, histtype="step", linewidth=1.2)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density" if density else "count")
    ax.set_title(_wrap(title, 6.4))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=9)
    return _save(fig, path)


def bar_plot(
    values,
    labels,
    path,
    title: str,
    ylabel: str,
    xlabel: str | None = None,
    errors=None,
) -> Path:
    """One bar per label, its value written on top (e.g. active units per β, or a score per model).

    errors: optional (N,) half-widths drawn as error bars.
    """
    path = _check_path(path)
    v = _as_float_array(values, "values", ndim=1)
    names = [str(s) for s in labels]
    if len(names) != len(v):
        raise ValueError(f"labels has {len(names)} entries but values has {len(v)}")
    err = None
    if errors is not None:
        err = _as_float_array(errors, "errors", ndim=1)
        if len(err) != len(v):
            raise ValueError(f"errors has {len(err)} entries but values has {len(v)}")
    width = max(4.8, min(12.0, 0.6 * len(v) + 2.0))
    fig = _new_figure(width, 4.4)
    ax = fig.add_subplot()
    bars = ax.bar(
        range(len(v)),
        v,
        yerr=err,
        capsize=3 if err is not None else 0,
        color="tab:blue",
        alpha=0.85,
    )
    ax.bar_label(bars, labels=[f"{x:.3g}" for x in v], padding=2, fontsize=8)
    crowded = len(v) > 8 or max(map(len, names)) > 8
    ax.set_xticks(
        range(len(v)), names, rotation=45 if crowded else 0, ha="right" if crowded else "center"
    )
    ax.margins(y=0.12)
    ax.axhline(0.0, color="0.3", linewidth=0.8)
    if xlabel:
        ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(_wrap(title, width))
    ax.grid(True, axis="y", alpha=0.3)
    return _save(fig, path)
