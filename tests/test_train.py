"""The training loop, checkpoints and the NaN guard, on small built-in data so they run in seconds."""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict

import numpy as np
import pytest

import minivae as mv
from minivae import backend as B
from minivae import data as D
from minivae.checkpoint import CheckpointError, load_model, read_checkpoint, save_checkpoint
from minivae.models import MODELS, build_model
from minivae.tensor import is_grad_enabled
from minivae.train import (
    ResumeMismatch,
    TrainConfig,
    TrainingDiverged,
    check_writable,
    kl_weight,
    learning_rate,
    prepare_data,
    resume_differences,
    train,
)

SMALL_VAE = {"kind": "vae", "x_dim": 784, "hidden": [32], "latent": 4}


def small_config(**overrides) -> TrainConfig:
    base = {"model": dict(SMALL_VAE), "dataset": "fashion-mnist-builtin", "epochs": 2,
            "batch_size": 50, "n_val": 200, "limit_train": 1200, "progress": False, "seed": 3}
    base.update(overrides)
    return TrainConfig(**base)


def tiny_config(**overrides) -> TrainConfig:
    """Two steps of a tiny VAE per epoch: for the tests of the loop's bookkeeping."""
    base = {"model": {"kind": "vae", "x_dim": 784, "hidden": [8], "latent": 2},
            "limit_train": 300, "n_val": 60, "batch_size": 120}
    return small_config(**{**base, **overrides})


def quiet(*_args, **_kwargs):
    pass


def test_training_writes_metrics_checkpoint_and_config(tmp_path):
    history = train(small_config(), tmp_path, log=quiet)
    assert [row["epoch"] for row in history] == [1, 2]
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == 2
    for key in ("train_elbo", "train_recon", "train_kl", "val_elbo", "val_recon", "val_kl"):
        assert np.isfinite(rows[-1][key]), key
    # the ELBO is recon - kl, so both terms must be consistent with it
    assert rows[-1]["val_elbo"] == pytest.approx(rows[-1]["val_recon"] - rows[-1]["val_kl"], rel=1e-5)
    assert rows[1]["train_elbo"] > rows[0]["train_elbo"]  # it learns
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model"]["latent"] == 4
    meta, params, optim = read_checkpoint(tmp_path / "checkpoint.npz")
    assert meta["epoch"] == 2 and len(meta["history"]) == 2
    assert set(params) == {name for name, _ in build_model(SMALL_VAE).named_parameters()}
    assert int(optim["steps"]) == 2 * (1000 // 50)


def test_on_epoch_sees_the_model_in_eval_mode_and_adds_to_the_metrics(tmp_path):
    calls = []

    def on_epoch(model, epoch):
        calls.append((epoch, model.training))
        return {"probe": 10.0 * epoch}

    history = train(small_config(), tmp_path, log=quiet, on_epoch=on_epoch)
    assert calls == [(1, False), (2, False)]
    assert [row["probe"] for row in history] == [10.0, 20.0]
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [row["probe"] for row in rows] == [10.0, 20.0]


def test_resume_is_bit_identical(tmp_path):
    """N epochs straight == k epochs, stop, resume for N - k: same weights to the bit."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(small_config(epochs=3), straight, log=quiet)
    train(small_config(epochs=1), split, log=quiet)
    train(small_config(epochs=3), split, resume=True, log=quiet)
    _, a, oa = read_checkpoint(straight / "checkpoint.npz")
    _, b, ob = read_checkpoint(split / "checkpoint.npz")
    for name in a:
        assert np.array_equal(a[name], b[name]), name
    for name in oa:
        assert np.array_equal(oa[name], ob[name]), name
    # and a different seed really gives different weights (the comparison can fail)
    other = tmp_path / "other"
    train(small_config(epochs=1, seed=4), other, log=quiet)
    _, c, _ = read_checkpoint(other / "checkpoint.npz")
    _, d, _ = read_checkpoint(split / "checkpoint.npz")
    assert not all(np.array_equal(c[n], d[n]) for n in c)


def test_resume_refuses_another_model(tmp_path):
    train(small_config(epochs=1), tmp_path, log=quiet)
    bigger = small_config(epochs=2, model={**SMALL_VAE, "latent": 5})
    with pytest.raises(ValueError, match="cannot resume"):
        train(bigger, tmp_path, resume=True, log=quiet)


def test_resume_accepts_a_checkpoint_saved_before_an_argument_was_added(tmp_path):
    """A config saved without tc_beta (older checkpoints) means the default, tc_beta = 1."""
    from minivae.optim import Adam

    train(small_config(epochs=1), tmp_path, log=quiet)
    path = tmp_path / "checkpoint.npz"
    meta, params, optim_state = read_checkpoint(path)
    model = build_model(meta["model_config"])
    model.load_state_dict(params)
    opt = Adam(model.parameters())
    opt.load_state_dict(optim_state)
    old = {k: v for k, v in meta["model_config"].items() if k != "tc_beta"}
    save_checkpoint(path, model, opt, {**meta, "model_config": old})
    assert "tc_beta" not in read_checkpoint(path)[0]["model_config"]
    history = train(small_config(epochs=2), tmp_path, resume=True, log=quiet)
    assert [row["epoch"] for row in history] == [1, 2]


def test_nan_guard_names_step_and_keeps_last_good_checkpoint(tmp_path):
    # the learning rate jumps from 1e-3 to 1e9 in epoch 2
    config = tiny_config(epochs=3, lr_schedule="exponential", lr_decay=1e12)
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged) as info:
        train(config, tmp_path, log=quiet)
    assert re.search(r"at epoch 2, step \d+ \(.*elbo=.*The last good checkpoint, .*checkpoint"
                     r"\.npz \(epoch 1\), is kept", str(info.value)), str(info.value)  # fmt: skip
    assert info.value.epoch == 1 and info.value.last_good == str(tmp_path / "checkpoint.npz")
    meta, _, _ = read_checkpoint(tmp_path / "checkpoint.npz")  # loads: all finite
    assert meta["epoch"] == 1
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows == meta["history"]


def test_nan_guard_checks_the_validation_bound(tmp_path, monkeypatch):
    """A finite training loss with a NaN validation bound (one step per epoch, say): stopped
    after that epoch, and the epoch is never saved."""
    import minivae.train as T

    plain = T.evaluate

    def evaluate(model, x, y=None, batch_size=1000):
        out = plain(model, x, y, batch_size)
        return {**out, "elbo": float("nan")} if len(calls) else calls.append(1) or out

    calls: list = []
    monkeypatch.setattr(T, "evaluate", evaluate)
    with pytest.raises(TrainingDiverged, match=r"after epoch 2, the validation bound became "
                                               r"non-finite \(val_elbo=nan\)"):  # fmt: skip
        train(tiny_config(epochs=3), tmp_path, log=quiet)
    assert read_checkpoint(tmp_path / "checkpoint.npz")[0]["epoch"] == 1


def test_a_run_diverging_before_its_first_checkpoint_leaves_nothing(tmp_path):
    folder = tmp_path / "run"
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged, match="No checkpoint was "
                                                                          "written"):  # fmt: skip
        train(tiny_config(epochs=2, lr=1e9, batch_size=300), folder, log=quiet)
    assert not folder.exists()
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with np.errstate(all="ignore"), pytest.raises(TrainingDiverged):
        train(tiny_config(epochs=2, lr=1e9, batch_size=300), folder, log=quiet)
    assert os.listdir(folder) == ["notes.txt"]  # what the user put there stays


def test_resume_refuses_other_training_settings(tmp_path):
    train(tiny_config(epochs=1), tmp_path, log=quiet)
    before = (tmp_path / "config.json").read_bytes()
    changed = tiny_config(epochs=2, optimizer="sgd", batch_size=7, lr=0.5, seed=9,
                           dataset="mnist", lr_schedule="cosine", n_val=100)  # fmt: skip
    with pytest.raises(ResumeMismatch) as info:
        train(changed, tmp_path, resume=True, log=quiet)
    names = [name for name, _, _ in info.value.differences]
    # epochs too: under the cosine schedule asked for now, it is the schedule's length
    assert names == ["dataset", "batch_size", "optimizer", "lr", "lr_schedule", "n_val", "seed",
                     "epochs"]  # fmt: skip
    assert ("optimizer", "adam", "sgd") in info.value.differences
    assert "only epochs and progress may change" in str(info.value)
    assert (tmp_path / "config.json").read_bytes() == before
    assert resume_differences({}, tiny_config()) == [  # a setting not saved means its default
        ("dataset", "mnist", "fashion-mnist-builtin"), ("batch_size", 128, 120),
        ("n_val", 10000, 60), ("limit_train", None, 300), ("seed", 0, 3)]  # fmt: skip
    assert resume_differences(asdict(tiny_config(epochs=7, progress=True)), tiny_config()) == []
    cosine = tiny_config(lr_schedule="cosine")  # its length is part of the schedule
    assert resume_differences(asdict(tiny_config(epochs=7, lr_schedule="cosine")), cosine) == [
        ("epochs", 7, 2)]  # fmt: skip


def test_resume_rewrites_the_metrics_log_from_the_checkpoint(tmp_path):
    """The checkpoint is the record: a log with a row too many (a crash after the row was
    written) or one too few is made equal to its history on resume."""
    train(tiny_config(epochs=2), tmp_path, log=quiet)
    path = tmp_path / "metrics.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[-1], '{"epoch": 9'[:7]]) + "\n")  # a torn line too
    history = train(tiny_config(epochs=3), tmp_path, resume=True, log=quiet)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows == history and [r["epoch"] for r in rows] == [1, 2, 3]
    path.write_text(lines[0] + "\n")
    history = train(tiny_config(epochs=4), tmp_path, resume=True, log=quiet)
    assert [json.loads(x) for x in path.read_text().splitlines()] == history
    assert len(history) == 4


def test_metrics_rows_are_strict_json_with_a_note_for_nulls(tmp_path):
    history = train(tiny_config(epochs=1), tmp_path, log=quiet,
                    on_epoch=lambda model, epoch: {"probe": float("inf")})  # fmt: skip
    text = (tmp_path / "metrics.jsonl").read_text()
    assert "Infinity" not in text and "NaN" not in text
    row = json.loads(text)
    assert row["probe"] is None and row["null_because_not_finite"] == ["probe"]
    assert history[0]["probe"] == float("inf")  # the caller still gets the number itself


@pytest.mark.parametrize("kind", ["ae", "cvae", "m2", "ssvae-continuous"])
def test_every_model_trains_one_epoch(tmp_path, kind):
    model = {"kind": kind, "x_dim": 784, "hidden": [32], "latent": 4}
    if kind in ("cvae", "m2"):
        model["n_classes"] = 10
    config = small_config(model=model, epochs=1, n_labelled=20, labelled_batch_size=20)
    history = train(config, tmp_path, log=quiet)
    row = history[0]
    assert np.isfinite(row["train_loss"])
    if kind == "m2":
        assert 0.0 <= row["val_error"] <= 1.0
        assert config.model["n_labelled"] == 20 and config.model["n_total"] == 1000
    if kind == "ssvae-continuous":  # its label: each image's slant, standardized
        assert row["val_label_mse"] > 0 and np.isfinite(row["train_regression_loss"])
        assert config.model["label_std"] > 0
    loaded, meta = load_model(tmp_path / "checkpoint.npz", expect_kind=kind)
    assert meta["epoch"] == 1 and loaded.config == build_model(config.model).config


def test_schedules_and_warmup():
    c = small_config(epochs=10, lr=1.0, lr_schedule="exponential", lr_decay=0.5)
    assert learning_rate(c, 0) == 1.0 and learning_rate(c, 3) == 0.125
    c = small_config(epochs=10, lr=2.0, lr_schedule="cosine")
    assert learning_rate(c, 0) == pytest.approx(2.0) and learning_rate(c, 5) == pytest.approx(1.0)
    c = small_config(kl_warmup_epochs=2)
    assert kl_weight(c, 0, 0, 10) == 0.0
    assert kl_weight(c, 1, 0, 10) == pytest.approx(0.5)
    assert kl_weight(c, 1, 5, 10) == pytest.approx(0.75)  # it rises step by step, not per epoch
    assert kl_weight(c, 3, 0, 10) == 1.0


@pytest.mark.parametrize("field,value,message", [
    ("optimizer", "rmsprop", "unknown optimizer 'rmsprop'"),
    ("epochs", 0, "epochs must be a positive whole number, got 0"),
    ("epochs", 2.5, "epochs must be a positive whole number, got 2.5"),
    ("lr", -1.0, "lr must be a finite number > 0, got -1.0"),
    ("lr", float("inf"), "lr must be a finite number > 0, got inf"),
    ("lr_decay", -1.0, "lr_decay must be a finite number > 0"),
    ("kl_warmup_epochs", float("nan"), "kl_warmup_epochs must be a finite number >= 0, got nan"),
    ("binarize", "sometimes", "unknown binarize"),
    ("clip_grad", 0.0, "clip_grad must be a finite number > 0"),
    ("seed", -1, "seed must be a whole number >= 0, got -1"),
    ("n_val", -5, "n_val must be a whole number >= 0"),
    ("n_labelled", 0, "n_labelled must be a positive whole number"),
    ("limit_train", 0, "limit_train must be a positive whole number"),
])  # fmt: skip
def test_bad_config_is_refused(tmp_path, field, value, message):
    with pytest.raises(ValueError, match=message):
        train(small_config(**{field: value}), tmp_path, log=quiet)


@pytest.mark.parametrize("lr,decay,reached", [(1e-300, 1e200, "inf"), (1e-3, 1e-200, "0.0")])
def test_an_exponential_schedule_that_leaves_the_float_range_is_refused(tmp_path, lr, decay, reached):
    config = small_config(epochs=3, lr=lr, lr_schedule="exponential", lr_decay=decay)
    with pytest.raises(ValueError, match=f"learning rate from {lr} to {reached} by epoch 3"):
        train(config, tmp_path / "r", log=quiet)
    assert not (tmp_path / "r").exists()
    small_config(epochs=3, lr_schedule="exponential", lr_decay=1e100).validate()  # 1e197: usable


def test_unknown_model_lists_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="unknown model 'gan'.*ae.*vae.*cvae.*m2"):
        train(small_config(model={"kind": "gan"}), tmp_path, log=quiet)


def test_the_continuous_label_is_the_slant_standardized_on_the_labelled_images(tmp_path):
    config = small_config(model={"kind": "ssvae-continuous", "x_dim": 784, "hidden": [8],
                                 "latent": 2}, n_labelled=30)  # fmt: skip
    splits = prepare_data(config)
    slants = D.slant_degrees(splits.x_train, splits.image_shape)  # (N,) degrees
    labelled = slants[splits.labelled]
    assert config.model["label_mean"] == pytest.approx(labelled.mean())
    assert config.model["label_std"] == pytest.approx(labelled.std())
    np.testing.assert_allclose(splits.y_train[:, 0], (slants - labelled.mean()) / labelled.std())
    assert splits.y_val.shape == (len(splits.x_val), 1)


def indexed_dataset(n=300, d=16):
    """A data set whose image i carries its own row number: pixel 0 = i / n, the rest 0.5."""
    images = np.full((n, d), 0.5, dtype=np.float32)
    images[:, 0] = np.arange(n) / n
    labels = np.arange(n) % 10
    return D.Dataset(images=images, labels=labels, name="mnist", split="train",
                     image_shape=(4, 4), source="rows numbered in pixel 0")  # fmt: skip


def rows_of(x, n=300):
    return set(np.rint(B.to_numpy(x)[:, 0] * n).astype(int).tolist())


@pytest.mark.parametrize("kind", ["vae", "m2"])
def test_the_loop_trains_on_no_validation_row(tmp_path, monkeypatch, kind):
    """Where the loop gets its data: every row a training batch holds (labelled parts too) is
    outside the validation rows, and validation sees exactly its own rows."""
    monkeypatch.setattr(D, "load_dataset", lambda name, split="train": indexed_dataset())
    model = {"kind": kind, "x_dim": 16, "hidden": [4], "latent": 2}
    if kind == "m2":
        model["n_classes"] = 10
    config = small_config(model=model, epochs=2, batch_size=20, n_val=60, limit_train=None,
                          binarize="none", n_labelled=20, labelled_batch_size=10)  # fmt: skip
    seen, evaluated = set(), set()
    cls = MODELS[kind]
    plain_loss, plain_evaluate = cls.loss, cls.evaluate

    def spy_loss(self, batch, *args, **kwargs):
        if is_grad_enabled():  # a training step (evaluation runs without a graph)
            for part in (batch.x, batch.x_labelled):
                if part is not None:
                    seen.update(rows_of(part))
        return plain_loss(self, batch, *args, **kwargs)

    def spy_evaluate(self, batch):
        evaluated.update(rows_of(batch.x))
        return plain_evaluate(self, batch)

    monkeypatch.setattr(cls, "loss", spy_loss)
    monkeypatch.setattr(cls, "evaluate", spy_evaluate)
    splits = prepare_data(config)
    train(config, tmp_path, log=quiet)
    val_rows = set(splits.val_rows.tolist())
    assert len(val_rows) == 60 and evaluated == val_rows
    assert seen and not seen & val_rows
    assert seen == set(splits.train_rows.tolist())  # and every training row is used
    assert set(splits.train_rows.tolist()) | val_rows == set(range(300))


def test_prepare_data_splits_with_the_data_modules_rule():
    config = small_config(n_val=200, limit_train=1200)
    splits = prepare_data(config)
    train_rows, val_rows = D.split_rows(1200, 200, seed=config.seed)
    np.testing.assert_array_equal(splits.train_rows, train_rows)
    np.testing.assert_array_equal(splits.val_rows, val_rows)
    ds = D.load_dataset("fashion-mnist-builtin", "train")
    np.testing.assert_array_equal(splits.x_train, ds.images[train_rows])
    np.testing.assert_array_equal(splits.x_val, D.binarize_fixed(ds.images[val_rows],
                                                                 seed=config.seed + 1))  # fmt: skip
    assert splits.y_train is None and splits.labelled is None  # a VAE needs no labels
    none = prepare_data(small_config(n_val=0))
    assert len(none.x_val) == 0 and len(none.x_train) == 1200


def test_cli_runs_have_figures_in_the_datas_image_shape(tmp_path):
    """write_figures on the shapes data (32 x 32): reconstructions and samples in that shape."""
    from minivae.train import write_figures

    config = small_config(model={"kind": "cvae", "x_dim": 1024, "hidden": [8], "latent": 2,
                                 "n_classes": 3}, dataset="shapes", limit_train=300,
                          n_val=60, epochs=1)  # fmt: skip
    train(config, tmp_path, log=quiet)
    model, _ = load_model(tmp_path / "checkpoint.npz")
    paths = write_figures(model, "shapes", tmp_path)
    assert [p.name for p in paths] == ["reconstructions.png", "samples.png"]
    ae = build_model({"kind": "ae", "x_dim": 1024, "hidden": [8], "latent": 2})
    assert [p.name for p in write_figures(ae, "shapes", tmp_path / "ae")] == ["reconstructions.png"]


def test_unwritable_output_is_reported_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match="cannot write to the output directory"):
        check_writable(blocker / "run")


def test_checkpoint_round_trip_and_atomic_write(tmp_path):
    mv.manual_seed(0)
    model = build_model(SMALL_VAE)
    path = save_checkpoint(tmp_path / "c.npz", model, meta={"epoch": 7})
    assert os.listdir(tmp_path) == ["c.npz"]  # no temporary file left behind
    loaded, meta = load_model(path)
    assert meta["epoch"] == 7
    for (n1, p1), (n2, p2) in zip(model.named_parameters(), loaded.named_parameters()):
        assert n1 == n2 and np.array_equal(p1.numpy(), p2.numpy())


def test_corrupt_or_foreign_checkpoints_are_refused(tmp_path):
    mv.manual_seed(0)
    path = save_checkpoint(tmp_path / "c.npz", build_model(SMALL_VAE))
    data = path_bytes = (tmp_path / "c.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_model(tmp_path / "truncated.npz")
    flipped = bytearray(path_bytes)
    flipped[len(flipped) // 3] ^= 0xFF
    (tmp_path / "flipped.npz").write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError):
        load_model(tmp_path / "flipped.npz")
    with pytest.raises(CheckpointError, match="holds a 'vae' model, not 'cvae'"):
        load_model(path, expect_kind="cvae")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "missing.npz")
    # a pickled object array is never loaded (allow_pickle=False)
    np.savez(tmp_path / "pickled.npz", meta=np.array([{"format": 1}], dtype=object))
    with pytest.raises(CheckpointError):
        load_model(tmp_path / "pickled.npz")


def test_checkpoint_from_another_shape_is_refused(tmp_path):
    mv.manual_seed(0)
    path = save_checkpoint(tmp_path / "c.npz", build_model(SMALL_VAE))
    _, params, _ = read_checkpoint(path)
    params = {k: (v[:-1] if k.endswith("bias") else v) for k, v in params.items()}
    model = build_model(SMALL_VAE)
    with pytest.raises(ValueError, match="shape"):
        model.load_state_dict(params)


def test_training_says_how_many_epochs_in_good_english(tmp_path):
    lines: list = []
    train(tiny_config(epochs=1), tmp_path, log=lines.append)
    assert " for 1 epoch; writing to " in lines[0]
    train(tiny_config(epochs=3), tmp_path, resume=True, log=lines.append)
    assert " for 2 epochs more (to 3); " in lines[-3]


def test_a_fresh_run_starts_a_fresh_metrics_log(tmp_path):
    train(small_config(epochs=1), tmp_path, log=quiet)
    train(small_config(epochs=1), tmp_path, log=quiet)  # same folder, not resumed
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 1
    train(small_config(epochs=2), tmp_path, resume=True, log=quiet)  # resumed: appends
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2


def test_training_without_validation(tmp_path):
    history = train(small_config(epochs=1, n_val=0), tmp_path, log=quiet)
    assert "train_elbo" in history[0] and not any(k.startswith("val_") for k in history[0])
