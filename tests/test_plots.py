"""Tests for minivae.plots: every figure is a readable PNG, written atomically, with clear errors."""

from __future__ import annotations

import ast
import inspect
import re
from statistics import NormalDist

import matplotlib.image
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

from minivae import plots
from minivae.backend import np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
Z95 = NormalDist().inv_cdf(0.95)  # ≈ 1.6449


# ----------------------------------------------------------------------------- helpers


@pytest.fixture
def figures(monkeypatch):
    """The Figure objects handed to plots._save, in order, so tests can read their text."""
    captured = []
    real_save = plots._save

    def spy(fig, path):
        captured.append(fig)
        return real_save(fig, path)

    monkeypatch.setattr(plots, "_save", spy)
    return captured


def texts(fig: Figure) -> list[str]:
    """Every piece of text drawn in the figure: titles, labels, tick labels, legends, notes."""
    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def names_its_rows(ax) -> bool:
    """Its y tick labels name rows ("pair 1"), not the numbers of a value axis: every axis has
    tick labels once drawn, so only names stand in for a y label."""
    number = r"[-+\u2212]?[\d.]+(e[-+]?\d+)?|\$\\mathdefault\{.*\}\$"
    shown = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    return any(not re.fullmatch(number, label) for label in shown)


def assert_png(path) -> np.ndarray:
    """A PNG on disk: right signature, non-empty pixels, more than a couple of colours."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG (starts with {data[:8]!r})"
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 50 and pixels.shape[1] > 50
    rgba = np.round(pixels * 255).astype(np.uint8)
    if rgba.shape[-1] == 3:
        rgba = np.concatenate([rgba, np.full_like(rgba[..., :1], 255)], axis=-1)
    colours = np.unique(np.ascontiguousarray(rgba).view(np.uint32))  # one number per colour
    assert len(colours) > 2, f"{path.name} is blank ({len(colours)} colours)"
    return pixels


def assert_only(folder, *names):
    """The folder holds exactly these files: no temporary file left behind."""
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)


def digits(n, h=8, w=8, seed=0):
    """n synthetic grey images in [0, 1], each a bright square at a different place."""
    rng = np.random.default_rng(seed)
    imgs = rng.uniform(0.0, 0.2, size=(n, h, w))
    for k in range(n):
        r, c = divmod(k, 4)
        imgs[k, r % (h - 2) : r % (h - 2) + 3, c : c + 3] = 1.0
    return imgs


HISTORY = [
    {"epoch": e, "train_elbo": -200.0 + 10 * e, "train_recon": 180.0 - 9 * e, "train_kl": 20.0 + e}
    | (
        {"val_elbo": -205.0 + 10 * e, "val_recon": 184.0 - 9 * e, "val_kl": 21.0 + e}
        if e % 2 == 0
        else {}
    )
    for e in range(1, 7)
]


# One call per kind of figure: (make(path), title, words the figure must show).
CASES = {
    "image_grid": (
        lambda p: plots.image_grid(
            digits(10).reshape(10, 64),
            p,
            "Samples",
            ncols=4,
            image_shape=(8, 8),
            col_labels=list("abcd"),
        ),
        "Samples",
        ["a", "d"],
    ),
    "reconstructions": (
        lambda p: plots.reconstructions(digits(6), digits(6, seed=1), p, "Recons", ncols=3),
        "Recons",
        ["original", "reconstruction"],
    ),
    "latent_scatter": (
        lambda p: plots.latent_scatter(
            np.random.default_rng(0).normal(size=(60, 2)),
            np.arange(60) % 3,
            p,
            "Latents",
            class_names=["zero", "one", "two"],
        ),
        "Latents",
        ["$z_0$", "$z_1$", "zero", "two", "class"],
    ),
    "latent_manifold": (
        lambda p: plots.latent_manifold(digits(16), 4, p, "Manifold"),
        "Manifold",
        [r"$z_0 = \Phi^{-1}(u_0)$", "-1.64", "1.64"],
    ),
    "traversals": (
        lambda p: plots.traversals(digits(12), 3, 4, p, "Traversals", values=[-2, -1, 1, 2]),
        "Traversals",
        ["$z_{0}$", "$z_{2}$", "-2", "2", "latent dimension"],
    ),
    "interpolations": (
        lambda p: plots.interpolations(digits(10), 2, 5, p, "Interp"),
        "Interp",
        ["pair 1", "pair 2", "0.00", "1.00"],
    ),
    "training_curves": (
        lambda p: plots.training_curves(HISTORY, p, "Curves"),
        "Curves",
        ["epoch", "nats per example", "train", "validation"],
    ),
    "rate_distortion": (
        lambda p: plots.rate_distortion([30, 20, 10], [80, 85, 100], [0.5, 1, 4], p, "RD"),
        "RD",
        ["β = 0.5", "β = 4"],
    ),
    "line_plot": (
        lambda p: plots.line_plot(
            {"a": ([1, 10, 100], [3.0, 2.0, 1.0], [0.1, 0.1, 0.1]), "b": [1.0, 4.0, 2.0]},
            p,
            "Lines",
            "K",
            "variance",
            logx=True,
        ),
        "Lines",
        ["K", "variance", "a", "b"],
    ),
    "histogram_plot": (
        lambda p: plots.histogram_plot(
            {"q": np.random.default_rng(1).normal(size=300)}, p, "Hist", "log-weight"
        ),
        "Hist",
        ["log-weight", "density", "q (n = 300)"],
    ),
    "bar_plot": (
        lambda p: plots.bar_plot(
            [5, 3, 1], ["β = 1", "β = 4", "β = 16"], p, "Bars", "active units"
        ),
        "Bars",
        ["active units", "β = 16", "5", "1"],
    ),
}


# ----------------------------------------------------------------------------- every figure


@pytest.mark.parametrize("kind", sorted(CASES))
def test_each_figure_is_a_readable_png_with_title_and_labels(kind, tmp_path, figures):
    make, title, words = CASES[kind]
    target = tmp_path / f"{kind}.png"
    returned = make(target)
    assert returned == target
    assert_png(target)
    assert_only(tmp_path, target.name)
    assert len(figures) == 1
    shown = texts(figures[0])
    assert title in shown
    for word in words:
        assert word in shown, f"{kind}: {word!r} missing from {shown}"
    for ax in figures[0].axes:
        if ax.get_label() != "<colorbar>" and ax.get_xlabel() and kind != "image_grid":
            assert ax.get_ylabel() or names_its_rows(ax), f"{kind}: an axis has no y label"


def test_every_public_function_is_exercised():
    drawn = {name for name in plots.__all__ if name != "manifold_grid"}
    assert drawn == set(CASES)


def test_plots_imports_neither_numpy_nor_the_engine():
    tree = ast.parse(inspect.getsource(plots))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert not any(m == "numpy" or m.startswith("numpy.") for m in imported)
    assert not any(m.startswith(("minivae.tensor", "minivae.ops")) for m in imported)
    assert "matplotlib.pyplot" not in imported


# ----------------------------------------------------------------------------- writing


def test_creates_parent_folders_and_replaces_an_old_figure(tmp_path):
    target = tmp_path / "a" / "b" / "fig.png"
    plots.bar_plot([1, 2], ["x", "y"], target, "first", "v")
    first = target.read_bytes()
    plots.bar_plot([2, 1, 3], ["x", "y", "z"], target, "second", "v")
    assert target.read_bytes() != first
    assert_png(target)
    assert_only(target.parent, "fig.png")


def test_a_failed_save_keeps_the_old_figure_and_leaves_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "fig.png"
    plots.bar_plot([1, 2], ["x", "y"], target, "good", "v")
    good = target.read_bytes()

    def broken_savefig(self, fh, **kwargs):
        fh.write(b"half a png")
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="disk full"):
        plots.bar_plot([3, 4], ["x", "y"], target, "bad", "v")
    assert target.read_bytes() == good
    assert_only(tmp_path, "fig.png")


def test_path_must_be_a_png(tmp_path):
    with pytest.raises(ValueError, match=r"\.png"):
        plots.bar_plot([1], ["x"], tmp_path / "fig.pdf", "t", "v")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- images


def test_image_grid_places_each_image_row_by_row(tmp_path, figures):
    imgs = digits(7)  # 7 images, 3 per row -> 3 rows, two empty cells
    plots.image_grid(imgs, tmp_path / "g.png", "grid", ncols=3)
    canvas = np.asarray(figures[0].axes[0].images[0].get_array())
    pad = 1
    for k in range(7):
        r, c = divmod(k, 3)
        top, left = pad + r * (8 + pad), pad + c * (8 + pad)
        np.testing.assert_array_equal(canvas[top : top + 8, left : left + 8], imgs[k])
    assert canvas.shape == (3 * 8 + 4 * pad, 3 * 8 + 4 * pad)


def test_image_grid_keeps_unit_range_fixed_and_shows_a_colorbar_otherwise(tmp_path, figures):
    plots.image_grid(digits(4) * 0.5, tmp_path / "a.png", "dim", ncols=2)
    assert figures[0].axes[0].images[0].get_clim() == (0.0, 1.0)
    assert len(figures[0].axes) == 1
    plots.image_grid(digits(4) * 5 - 1, tmp_path / "b.png", "wide", ncols=2)
    assert len(figures[1].axes) == 2  # image and colorbar
    assert "pixel value" in texts(figures[1])


def test_image_size_not_matching_image_shape_names_both(tmp_path):
    with pytest.raises(ValueError, match=r"100 values each.*\(28, 28\).*784"):
        plots.image_grid(np.zeros((3, 100)), tmp_path / "g.png", "t")
    with pytest.raises(ValueError, match=r"2-D or 3-D"):
        plots.image_grid(np.zeros((2, 8, 8, 3)), tmp_path / "g.png", "t")
    assert list(tmp_path.iterdir()) == []


def test_image_grid_rejects_bad_labels_and_nan(tmp_path):
    with pytest.raises(ValueError, match=r"row_labels has 1 entries.*2 rows"):
        plots.image_grid(digits(6), tmp_path / "g.png", "t", ncols=3, row_labels=["r"])
    with pytest.raises(ValueError, match=r"col_labels has 2 entries.*3 columns"):
        plots.image_grid(digits(6), tmp_path / "g.png", "t", ncols=3, col_labels=["a", "b"])
    bad = digits(2)
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        plots.image_grid(bad, tmp_path / "g.png", "t")
    with pytest.raises(ValueError, match="ncols"):
        plots.image_grid(digits(2), tmp_path / "g.png", "t", ncols=0)


def test_tensor_like_input_is_sent_to_to_numpy(tmp_path):
    class FakeTensor:
        grad = None
        data = np.zeros((2, 64))

    with pytest.raises(ValueError, match="to_numpy"):
        plots.image_grid(FakeTensor(), tmp_path / "g.png", "t", image_shape=(8, 8))


def test_reconstructions_pairs_rows_and_checks_shapes(tmp_path, figures):
    plots.reconstructions(digits(5), digits(5, seed=2), tmp_path / "r.png", "t", ncols=3)
    labels = [t.get_text() for t in figures[0].axes[0].get_yticklabels()]
    assert labels == ["original", "reconstruction"] * 2
    with pytest.raises(ValueError, match=r"originals \(5, 8, 8\).*recons \(4, 8, 8\)"):
        plots.reconstructions(digits(5), digits(4), tmp_path / "r.png", "t")


def test_traversals_and_interpolations_check_counts(tmp_path):
    with pytest.raises(ValueError, match=r"3 \* 4 = 12 images, got 11"):
        plots.traversals(digits(11), 3, 4, tmp_path / "t.png", "t")
    with pytest.raises(ValueError, match="values has 3 entries but n_steps is 4"):
        plots.traversals(digits(12), 3, 4, tmp_path / "t.png", "t", values=[1, 2, 3])
    with pytest.raises(ValueError, match="row_labels has 2 entries"):
        plots.traversals(digits(12), 3, 4, tmp_path / "t.png", "t", row_labels=["a", "b"])
    with pytest.raises(ValueError, match=r"2 \* 5 = 10 images, got 9"):
        plots.interpolations(digits(9), 2, 5, tmp_path / "i.png", "t")
    with pytest.raises(ValueError, match="ts has 2 entries"):
        plots.interpolations(digits(10), 2, 5, tmp_path / "i.png", "t", ts=[0, 1])


# ----------------------------------------------------------------------------- manifold


def test_manifold_grid_is_the_inverse_normal_cdf_of_a_uniform_grid():
    n = 5
    g = plots.manifold_grid(n)
    assert g.shape == (n * n, 2)
    assert Z95 == pytest.approx(1.6449, abs=1e-4)
    rows = g.reshape(n, n, 2)
    # corners: top-left (-Φ⁻¹(.95), +Φ⁻¹(.95)), bottom-right (+, -)
    np.testing.assert_allclose(rows[0, 0], [-Z95, Z95], rtol=1e-12)
    np.testing.assert_allclose(rows[-1, -1], [Z95, -Z95], rtol=1e-12)
    np.testing.assert_allclose(rows[0, 0, 0], NormalDist().inv_cdf(0.05), rtol=1e-12)
    # z_0 grows to the right and is the same down each column; z_1 falls row by row
    assert np.all(np.diff(rows[:, :, 0], axis=1) > 0)
    assert np.all(np.diff(rows[:, :, 1], axis=0) < 0)
    np.testing.assert_array_equal(rows[:, :, 0], np.broadcast_to(rows[0, :, 0], (n, n)))
    # symmetric about 0, with the middle point at the origin for odd n
    values = rows[0, :, 0]
    np.testing.assert_allclose(values, -values[::-1], atol=1e-12)
    np.testing.assert_allclose(rows[n // 2, n // 2], [0.0, 0.0], atol=1e-12)
    # the u values are equally spaced: Φ(z) recovers the uniform grid
    np.testing.assert_allclose([NormalDist().cdf(v) for v in values], np.linspace(0.05, 0.95, n))


def test_manifold_grid_rejects_bad_arguments():
    with pytest.raises(ValueError, match="lo < hi"):
        plots.manifold_grid(4, lo=0.0, hi=0.9)
    with pytest.raises(ValueError, match="lo < hi"):
        plots.manifold_grid(4, lo=0.6, hi=0.4)
    with pytest.raises(ValueError, match="n must be an integer >= 2"):
        plots.manifold_grid(1)


def test_latent_manifold_needs_n_squared_images(tmp_path):
    with pytest.raises(ValueError, match=r"n\*n = 16 images for n = 4, got 15"):
        plots.latent_manifold(digits(15), 4, tmp_path / "m.png", "t")


# ----------------------------------------------------------------------------- latent scatter


def test_latent_scatter_says_when_only_two_dims_are_shown(tmp_path, figures):
    z = np.random.default_rng(3).normal(size=(40, 5))
    plots.latent_scatter(z, None, tmp_path / "s.png", "t", show_prior=False)
    ax = figures[0].axes[0]
    assert "first 2 of 5" in ax.get_xlabel()
    assert not any("prior" in s for s in texts(figures[0]))
    np.testing.assert_array_equal(ax.collections[0].get_offsets(), z[:, :2])


def test_latent_scatter_rejects_bad_input(tmp_path):
    z = np.zeros((10, 2))
    with pytest.raises(ValueError, match=r"labels has shape \(9,\) but z has 10 rows"):
        plots.latent_scatter(z, np.zeros(9), tmp_path / "s.png", "t")
    with pytest.raises(ValueError, match="at least 2 latent dimensions"):
        plots.latent_scatter(np.zeros((10, 1)), np.zeros(10), tmp_path / "s.png", "t")
    with pytest.raises(ValueError, match="no name for label 3"):
        plots.latent_scatter(
            z, np.arange(10) % 4, tmp_path / "s.png", "t", class_names=["a", "b", "c"]
        )
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- training and sweeps


def test_training_curves_draw_validation_only_where_recorded(tmp_path, figures):
    plots.training_curves(HISTORY, tmp_path / "c.png", "t", keys=("kl",))
    (ax,) = figures[0].axes
    train, val = ax.get_lines()
    np.testing.assert_array_equal(train.get_xdata(), [1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(val.get_xdata(), [2, 4, 6])
    np.testing.assert_array_equal(val.get_ydata(), [23.0, 25.0, 27.0])
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "nats per example"


def test_training_curves_reject_bad_history(tmp_path):
    with pytest.raises(ValueError, match=r"no values for 'beta'.*train_beta.*'train_elbo'"):
        plots.training_curves(HISTORY, tmp_path / "c.png", "t", keys=("elbo", "beta"))
    with pytest.raises(ValueError, match="non-empty list"):
        plots.training_curves([], tmp_path / "c.png", "t")
    with pytest.raises(ValueError, match=r"history\[1\] is a list"):
        plots.training_curves([{"train_elbo": 1.0}, [1, 2]], tmp_path / "c.png", "t")
    with pytest.raises(ValueError, match="is not a number"):
        plots.training_curves([{"train_elbo": "lots"}], tmp_path / "c.png", "t")


def test_rate_distortion_marks_the_best_elbo(tmp_path, figures):
    plots.rate_distortion(
        [30, 20, 10], [80, 85, 100], ["β=0.5", "β=1", "β=4"], tmp_path / "r.png", "t"
    )
    assert any("R + D = 105" in s and "β=1" in s for s in texts(figures[0]))
    with pytest.raises(ValueError, match="rates has 3 values but distortions has 2"):
        plots.rate_distortion([1, 2, 3], [1, 2], [1, 2, 3], tmp_path / "r.png", "t")
    with pytest.raises(ValueError, match="labels has 2 entries but there are 3 points"):
        plots.rate_distortion([1, 2, 3], [1, 2, 3], [1, 2], tmp_path / "r.png", "t")


def test_line_plot_reads_y_only_and_x_y_err(tmp_path, figures):
    plots.line_plot(
        {"y only": [5.0, 6.0, 7.0], "band": ([1, 2], [1.0, 2.0], [0.5, 0.5])},
        tmp_path / "l.png",
        "t",
        "x",
        "y",
    )
    ax = figures[0].axes[0]
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [1, 2, 3])
    assert len(ax.collections) == 1  # the shaded ± err band


def test_line_hist_bar_reject_bad_input(tmp_path):
    p = tmp_path / "f.png"
    with pytest.raises(ValueError, match=r"logy needs y > 0.*'b'"):
        plots.line_plot({"a": [1.0, 2.0], "b": [1.0, 0.0]}, p, "t", "x", "y", logy=True)
    with pytest.raises(ValueError, match="3 x values but 2 y values"):
        plots.line_plot({"a": ([1, 2, 3], [1, 2])}, p, "t", "x", "y")
    with pytest.raises(ValueError, match=r"tuple of 4"):
        plots.line_plot({"a": ([1], [1], [1], [1])}, p, "t", "x", "y")
    with pytest.raises(ValueError, match="non-empty dict"):
        plots.histogram_plot({}, p, "t", "x")
    with pytest.raises(ValueError, match="labels has 2 entries but values has 3"):
        plots.bar_plot([1, 2, 3], ["a", "b"], p, "t", "y")
    with pytest.raises(ValueError, match="errors has 1 entries"):
        plots.bar_plot([1, 2], ["a", "b"], p, "t", "y", errors=[0.1])
    assert list(tmp_path.iterdir()) == []
