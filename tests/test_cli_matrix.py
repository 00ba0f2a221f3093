"""Every model trains, evaluates and samples through the command on every data set.

One short epoch per cell (tiny networks, a few hundred images), then ``eval`` and
``sample`` on its checkpoint. The figures must be drawn in the data set's own image
shape (28 x 28, or 32 x 32 for shapes): a spy on the plotting functions records the
shape each figure was drawn with. The data sets are loaded once for the module (the
command loads them by name each time), so a cell costs its training and its figures.
MNIST and Fashion-MNIST cells skip, saying why, where their files are not found.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from minivae import data as D
from minivae import plots
from minivae.cli import main
from minivae.models import MODELS

DATASETS = ("mnist", "fashion-mnist", "fashion-mnist-builtin", "shapes")
SHAPES = {"mnist": (28, 28), "fashion-mnist": (28, 28), "fashion-mnist-builtin": (28, 28),
          "shapes": (32, 32)}  # fmt: skip


@pytest.fixture(scope="module")
def loaded():
    """load_dataset, remembered for this module: each data set is read or generated once."""
    cache: dict = {}
    plain = D.load_dataset

    def load(name, split="train"):
        key = (D.canonical_name(name), split)
        if key not in cache:
            cache[key] = plain(name, split)
        return cache[key]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(D, "load_dataset", load)
        yield


@pytest.fixture
def drawn(monkeypatch):
    """The image shape of every figure of images drawn: [(function, image_shape)].

    The training curves (drawn by the same code for every cell, and most of a cell's
    time) are checked here for what they are asked to draw, and drawn for real by the
    tests of test_cli.py and test_plots.py.
    """
    calls = []
    for name in ("image_grid", "reconstructions"):
        plain = getattr(plots, name)

        def spy(*args, _plain=plain, _name=name, **kwargs):
            calls.append((_name, tuple(kwargs.get("image_shape", (28, 28)))))
            return _plain(*args, **kwargs)

        monkeypatch.setattr(plots, name, spy)

    def curves(history, path, title, keys=("elbo", "recon", "kl")):
        assert keys and all(f"train_{k}" in row for row in history for k in keys), (keys, history)
        Path(path).write_bytes(b"\x89PNG\r\n\x1a\n")
        return Path(path)

    monkeypatch.setattr(plots, "training_curves", curves)
    return calls


def files_missing(dataset: str) -> bool:
    found = D.locate(dataset)
    return bool(found) and not all(found.values())


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("model", tuple(MODELS))
def test_every_model_trains_evaluates_and_samples_on_every_dataset(
    model, dataset, loaded, drawn, tmp_path, capsys
):
    if files_missing(dataset):
        pytest.skip(f"the {dataset} files are not found (set MINIVAE_DATA to a folder holding "
                    f"{dataset}/, or run `minivae download {dataset}`)")  # fmt: skip
    n_classes = D.dataset_info(dataset)["n_classes"]
    argv = ["train", model, "--dataset", dataset, "--hidden", "8", "--latent", "2",
            "--epochs", "1", "--limit-train", "240", "--batch-size", "200", "--n-val", "40",
            "--out", str(tmp_path), "--name", "run", "--no-progress"]  # fmt: skip
    if model in ("m2", "ssvae-continuous"):  # semi-supervised: a labelled subset
        argv += ["--labels", str(2 * n_classes)]
    assert main(argv) == 0, capsys.readouterr().err
    folder = tmp_path / "run"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs"] == 1
    has_prior = MODELS[model].has_prior
    expected = ["reconstructions.png", "training_curves.png"] + (["samples.png"] if has_prior else [])
    assert sorted(p.name for p in folder.glob("*.png")) == sorted(expected)
    shape = SHAPES[dataset]
    assert drawn and all(s == shape for _, s in drawn), drawn

    capsys.readouterr()
    ckpt = str(folder / "checkpoint.npz")
    eval_argv = ["eval", ckpt, "--limit", "20"] + (["--nll-samples", "2"] if has_prior else [])
    assert main(eval_argv) == 0, capsys.readouterr().err
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["n_examples"] == 20
    assert ("test_nll_k2" in out) == has_prior
    drawn.clear()
    code = main(["sample", ckpt, "-n", "4"])
    if has_prior:
        assert code == 0 and (folder / "sample-n4-seed0.png").exists()
        assert drawn == [("image_grid", shape)]
    else:  # an autoencoder has no prior: a message, not a figure of noise
        assert code == 2 and "no prior p(z) to sample from" in capsys.readouterr().err
