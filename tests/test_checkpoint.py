"""Checkpoints: written atomically, and every file checked before anything in it is trusted.

Each bad file below is one a user could hand to ``minivae eval`` or ``load_model``: it
must be refused with a CheckpointError (a ValueError) that names the file and says
what to do, before any model is built, and never with NumPy's "load it unsafely" hint.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import stat
import zipfile
from pathlib import Path

import pytest

from minivae import backend as B
from minivae import models
from minivae.checkpoint import (
    FORMAT,
    CheckpointError,
    load_model,
    parameter_shapes,
    read_checkpoint,
    save_checkpoint,
)
from minivae.models import MODELS, build_model
from minivae.optim import Adam

np = B.np

SMALL_VAE = {"kind": "vae", "x_dim": 12, "hidden": [8], "latent": 3}

# configs of every kind, with the options that change which parameters exist
CONFIGS = [
    {"kind": "ae", "x_dim": 10, "hidden": [7, 5], "latent": 2},
    {"kind": "ae", "x_dim": 10, "hidden": [], "latent": 2, "likelihood": "mse"},
    {"kind": "vae", "x_dim": 12, "hidden": [8], "latent": 3},
    {"kind": "vae", "x_dim": 12, "hidden": [], "latent": 3},
    {"kind": "vae", "x_dim": 12, "hidden": 6, "latent": 3, "likelihood": "gaussian",
     "learned_sigma": True},
    {"kind": "vae", "x_dim": 12, "hidden": [8, 4], "latent": 3, "likelihood": "gaussian",
     "sigma": 0.5},
    {"kind": "cvae", "x_dim": 12, "hidden": [8], "latent": 3, "n_classes": 4},
    {"kind": "cvae", "x_dim": 12, "hidden": [8], "latent": 3},
    {"kind": "m2", "x_dim": 12, "hidden": [8], "latent": 3, "n_classes": 5},
    {"kind": "m2", "x_dim": 12, "hidden": [8], "latent": 3, "n_classes": 5,
     "classifier_hidden": [6, 4]},
    {"kind": "m2", "x_dim": 12},
    {"kind": "m2", "x_dim": 12, "hidden": [8], "latent": 3, "likelihood": "gaussian",
     "learned_sigma": "per_unit"},
    {"kind": "ssvae-continuous", "x_dim": 12, "hidden": [8], "latent": 3, "label_dim": 2},
    {"kind": "ssvae-continuous", "x_dim": 12, "hidden": [8], "latent": 3,
     "regressor_hidden": [], "likelihood": "gaussian", "learned_sigma": True},
]  # fmt: skip


# ----------------------------------------------------------------------------- helpers


def saved(tmp_path, config=SMALL_VAE, name="c.npz", optimizer=True, meta=None):
    """A genuine checkpoint of a small model (with Adam's state after one step)."""
    B.manual_seed(0)
    model = build_model(config)
    opt = None
    if optimizer:
        opt = Adam(model.parameters())
        for p in model.parameters():
            p.grad = B.xp.ones_like(p.data)
        opt.step()
    return Path(save_checkpoint(tmp_path / name, model, opt, meta or {"epoch": 1, "history": []}))


def arrays_of(path) -> dict:
    """Every entry of a genuine checkpoint (read with NumPy directly), meta as a dict."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["meta"] = json.loads(str(arrays["meta"]))
    return arrays


def write_npz(path, arrays: dict):
    """An .npz with these entries; a dict "meta" is written as minivae writes it (JSON text)."""
    arrays = dict(arrays)
    if isinstance(arrays.get("meta"), (dict, list)):
        arrays["meta"] = np.asarray(json.dumps(arrays["meta"]))
    np.savez(path, **arrays)
    return path


def tampered(tmp_path, change, name="bad.npz"):
    """A genuine checkpoint, read, changed by change(arrays) in place, and written again."""
    arrays = arrays_of(saved(tmp_path))
    change(arrays)
    return write_npz(tmp_path / name, arrays)


def npy_entry(shape, descr="<f4", payload=b"") -> bytes:
    """A .npy file's bytes: a header declaring shape and dtype, then payload as its data."""
    buffer = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + payload


def refused(path, *patterns, expect_kind=None) -> str:
    """Load path, expect a CheckpointError naming the file and matching every pattern."""
    with pytest.raises(CheckpointError) as info:
        load_model(path, expect_kind=expect_kind)
    message = str(info.value)
    assert str(path) in message, message
    for pattern in patterns:
        assert pattern in message, f"{pattern!r} not in {message!r}"
    for hint in ("unsafe", "allow_pickle"):  # never NumPy's advice to unpickle
        assert hint not in message, message
    assert isinstance(info.value, ValueError)
    return message


@pytest.fixture
def no_building(monkeypatch):
    """Fail if a model is built: a refused file must be refused before that."""

    def build(config):
        raise AssertionError(f"a model was built from an unchecked file: {config}")

    monkeypatch.setattr(models, "build_model", build)


# ----------------------------------------------------------------------------- good files


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c["kind"])
def test_parameter_shapes_are_those_of_the_built_model(config):
    built = {name: tuple(p.shape) for name, p in build_model(config).named_parameters()}
    assert parameter_shapes(config) == built


def test_every_model_kind_has_shapes_and_a_tested_config():
    assert {c["kind"] for c in CONFIGS} == set(MODELS)
    for kind in MODELS:
        assert parameter_shapes({"kind": kind})  # the defaults alone give a model


def test_a_new_model_brings_its_own_shapes(tmp_path, monkeypatch):
    """Adding a model needs no edit here: its layer_sizes give both its networks and the
    shapes a file is checked against (checkpoint.py has no rule of its own per kind)."""
    from minivae.models.common import config_size
    from minivae.models.vae import VAE
    from minivae.nn import MLP

    class CriticVAE(VAE):
        kind = "critic-vae"

        def __init__(self, x_dim=12, hidden=(8,), latent=3, critic_width=5):
            self.critic_width = critic_width  # attributes named as the arguments: vars(self)
            super().__init__(x_dim, hidden, latent)
            self.critic = MLP(self.layer_sizes(vars(self))["critic"])

        @classmethod
        def layer_sizes(cls, c):
            sizes = super().layer_sizes(c)
            sizes["critic"] = [config_size(c, "x_dim"), config_size(c, "critic_width"), 1]
            return sizes

        @property
        def config(self):
            return {"kind": self.kind, "x_dim": self.x_dim, "hidden": list(self.hidden),
                    "latent": self.latent, "critic_width": self.critic_width}  # fmt: skip

    monkeypatch.setitem(MODELS, "critic-vae", CriticVAE)
    config = {"kind": "critic-vae", "x_dim": 12, "hidden": [8], "latent": 3, "critic_width": 6}
    built = {name: tuple(p.shape) for name, p in build_model(config).named_parameters()}
    assert parameter_shapes(config) == built and built["critic.layers.0.weight"] == (12, 6)
    path = saved(tmp_path, config)
    assert load_model(path)[0].config == config
    arrays = arrays_of(path)
    arrays["meta"]["model_config"]["critic_width"] = 7  # the file's critic is 6 wide
    refused(write_npz(tmp_path / "bad.npz", arrays), "'critic.layers.0.weight' has shape (12, 6)",
            "needs (12, 7)")  # fmt: skip


def test_parameter_shapes_of_a_huge_config_cost_nothing():
    shapes = parameter_shapes({"kind": "vae", "x_dim": 10**9, "hidden": [10**9], "latent": 10**9})
    assert shapes["encoder.layers.0.weight"] == (10**9, 10**9)  # computed, never allocated


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c["kind"])
def test_round_trip_of_every_kind(tmp_path, config):
    B.manual_seed(1)
    model = build_model(config)
    path = save_checkpoint(tmp_path / "c.npz", model, meta={"epoch": 2, "note": "kept"})
    loaded, meta = load_model(path, expect_kind=config["kind"])
    assert meta["epoch"] == 2 and meta["note"] == "kept" and meta["format"] == FORMAT
    assert loaded.config == model.config
    for (n1, p1), (n2, p2) in zip(model.named_parameters(), loaded.named_parameters()):
        assert n1 == n2 and np.array_equal(B.to_numpy(p1.data), B.to_numpy(p2.data))


def test_read_returns_weights_and_optimizer_state(tmp_path):
    meta, params, optim = read_checkpoint(saved(tmp_path))
    assert set(params) == set(parameter_shapes(SMALL_VAE))
    assert int(optim["steps"]) == 1 and "lr" in optim
    assert meta["model_config"]["kind"] == "vae"


def test_float64_weights_load(tmp_path):
    with B.set_default_dtype("float64"):
        path = saved(tmp_path)
        model, _ = load_model(path)
    assert next(iter(model.parameters())).dtype == np.float64


# ----------------------------------------------------------------------------- writing


def test_checkpoint_has_the_mode_of_other_run_files(tmp_path):
    old = os.umask(0o022)
    try:
        path = saved(tmp_path)
        with open(tmp_path / "config.json", "w") as f:
            f.write("{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(tmp_path / "config.json").st_mode) == 0o644


def test_save_is_atomic_and_synced(tmp_path, monkeypatch):
    from minivae import files

    synced = []
    real = files.fsync_folder
    monkeypatch.setattr(files, "fsync_folder", lambda d: (synced.append(str(d)), real(d)))
    path = saved(tmp_path)
    assert synced == [str(tmp_path)]
    assert sorted(os.listdir(tmp_path)) == ["c.npz"]  # no temporary file left
    assert read_checkpoint(path)[0]["epoch"] == 1


def test_a_failed_save_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = saved(tmp_path)
    before = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("no space left on device")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="no space"):
        saved(tmp_path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["c.npz"]


def test_non_finite_weights_are_never_saved(tmp_path):
    path = saved(tmp_path)
    before = path.read_bytes()
    model = build_model(SMALL_VAE)
    model.decoder.layers[0].bias.data[1] = float("nan")
    with pytest.raises(CheckpointError, match=r"decoder\.layers\.0\.bias.*holds 1 NaN value;.*unchanged"):
        save_checkpoint(path, model)
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["c.npz"]


def test_non_finite_optimizer_state_is_never_saved(tmp_path):
    """Adam's second moments overflow to inf while the weights are still finite: such a file
    would be refused on loading, so it is never written (the diverging run of the issue)."""
    path = saved(tmp_path)
    before = path.read_bytes()
    model = build_model(SMALL_VAE)
    opt = Adam(model.parameters())
    for p in model.parameters():
        p.grad = B.xp.full_like(p.data, 1e30)  # squared: inf in float32
    with np.errstate(over="ignore"):
        opt.step()
    assert all(np.isfinite(B.to_numpy(p.data)).all() for p in model.parameters())
    with pytest.raises(CheckpointError, match=r"optimizer entry .* holds \d+ infinite values"):
        save_checkpoint(path, model, opt)
    assert path.read_bytes() == before


# ----------------------------------------------------------------------------- what the file is


def test_missing_file(tmp_path):
    refused(tmp_path / "nothing.npz", "does not exist", "minivae train")


def test_a_folder(tmp_path):
    saved(tmp_path, name="checkpoint.npz")
    refused(tmp_path, "is a folder", str(tmp_path / "checkpoint.npz"))


def test_empty_file(tmp_path):
    (tmp_path / "empty.npz").write_bytes(b"")
    refused(tmp_path / "empty.npz", "is empty")


def test_plain_npy(tmp_path, no_building):
    np.save(tmp_path / "weights.npy", np.zeros((3, 4), np.float32))
    refused(tmp_path / "weights.npy", "single NumPy array (.npy)", "minivae train")


def test_text_file(tmp_path, no_building):
    (tmp_path / "notes.txt").write_text("epoch 1: elbo -100\n")
    refused(tmp_path / "notes.txt", "corrupt or not a minivae checkpoint", "holds text")


def test_pickle(tmp_path, no_building):
    (tmp_path / "model.pkl").write_bytes(pickle.dumps({"weights": [1.0, 2.0]}, protocol=4))
    refused(tmp_path / "model.pkl", "Python pickle", "never opens")


def test_gzip_file(tmp_path, no_building):
    import gzip

    (tmp_path / "train-images.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01"))
    refused(tmp_path / "train-images.gz", "gzip file")


def test_binary_junk(tmp_path, no_building):
    (tmp_path / "junk.npz").write_bytes(bytes(range(256)))
    refused(tmp_path / "junk.npz", "corrupt or not a minivae checkpoint", "not a zip archive")


def test_truncated_zip(tmp_path, no_building):
    data = saved(tmp_path).read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    refused(tmp_path / "cut.npz", "corrupt", "it was not loaded")


def test_flipped_byte_in_the_weights(tmp_path, no_building):
    data = bytearray(saved(tmp_path).read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
        info = z.getinfo("param.encoder.layers.0.weight.npy")
    data[info.header_offset + 200] ^= 0xFF  # inside the stored array data
    (tmp_path / "flipped.npz").write_bytes(bytes(data))
    refused(tmp_path / "flipped.npz", "corrupt", "CRC")


# ----------------------------------------------------------------------------- entries


def test_npz_from_somewhere_else(tmp_path, no_building):
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((2, 3)), y_train=np.zeros(2))
    refused(tmp_path / "mnist.npz", "not a minivae checkpoint", "'x_train'", "'meta', 'param.*'")


def test_npz_with_extra_entries(tmp_path, no_building):
    def add(arrays):
        arrays["embedding"] = np.zeros(3)

    refused(tampered(tmp_path, add), "'embedding'", "not a minivae checkpoint")


def test_npz_without_meta(tmp_path, no_building):
    refused(tampered(tmp_path, lambda a: a.pop("meta")), "not a minivae checkpoint")


def test_a_pytorch_zip(tmp_path, no_building):
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"w": 1}))
        z.writestr("archive/version", "3\n")
    refused(path, "not a minivae checkpoint", "'archive/data.pkl'")


def test_pickled_object_array(tmp_path, no_building):
    np.savez(tmp_path / "pickled.npz", meta=np.array([{"format": FORMAT}], dtype=object))
    refused(tmp_path / "pickled.npz", "Python objects", "never")


def test_compressed_entries(tmp_path, no_building):
    arrays = arrays_of(saved(tmp_path))
    arrays["meta"] = np.asarray(json.dumps(arrays["meta"]))
    np.savez_compressed(tmp_path / "zipped.npz", **arrays)
    refused(tmp_path / "zipped.npz", "compressed", "uncompressed")


def test_entry_header_claiming_a_huge_array(tmp_path, no_building):
    """The 71 PiB case at the entry level: a header's shape cannot exceed the entry's bytes."""
    arrays = arrays_of(saved(tmp_path))
    path = tmp_path / "huge.npz"
    write_npz(path, {k: v for k, v in arrays.items() if k != "param.decoder.layers.2.bias"})
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("param.decoder.layers.2.bias.npy",
                   npy_entry((10**9, 10**9), payload=b"\x00" * 48))  # fmt: skip
    refused(path, "'param.decoder.layers.2.bias'", "declares shape (1000000000, 1000000000)",
            "holds 48 bytes")  # fmt: skip


def test_duplicate_entries(tmp_path, no_building):
    path = saved(tmp_path)
    with pytest.warns(UserWarning, match="Duplicate"), zipfile.ZipFile(path, "a") as z:
        z.writestr("param.decoder.layers.2.bias.npy", npy_entry((12,), payload=b"\x00" * 48))
    refused(path, "twice")


def test_meta_not_a_string(tmp_path, no_building):
    def change(arrays):
        arrays["meta"] = np.arange(3.0)

    refused(tampered(tmp_path, change), "'meta' entry is a float64 array")


def test_meta_not_json(tmp_path, no_building):
    def change(arrays):
        arrays["meta"] = np.asarray("{'format': 'python dict'}")

    refused(tampered(tmp_path, change), "metadata is not valid JSON")


def test_meta_nested_too_deep(tmp_path, no_building):
    def change(arrays):
        arrays["meta"] = np.asarray("[" * 100_000 + "]" * 100_000)

    refused(tampered(tmp_path, change), "not valid JSON", "RecursionError")


# ----------------------------------------------------------------------------- metadata


def test_meta_as_a_json_list(tmp_path, no_building):
    def change(arrays):
        arrays["meta"] = [arrays["meta"]]

    refused(tampered(tmp_path, change), "metadata is a JSON list", "'model_config'")


def test_meta_of_another_format(tmp_path, no_building):
    refused(tampered(tmp_path, lambda a: a["meta"].update(format="other-2")),
            "format 'other-2'", FORMAT)  # fmt: skip


def test_meta_without_model_config(tmp_path, no_building):
    refused(tampered(tmp_path, lambda a: a["meta"].pop("model_config")),
            "no 'model_config'", "cannot be rebuilt")  # fmt: skip


@pytest.mark.parametrize("key, value, said", [
    ("model_config", [1, 2], "'model_config' is a JSON list, expected a JSON object"),
    ("epoch", "three", "'epoch' is a JSON string, expected a JSON integer"),
    ("epoch", True, "'epoch' is a JSON true/false"),
    ("epoch", -1, "epoch is -1, below 0"),
    ("history", {"epoch": 1}, "'history' is a JSON object, expected a JSON list"),
    ("history", [{"epoch": 1}, 7], "history rows [1]"),
    ("train_config", None, "'train_config' is a JSON null"),
    ("rng_state", "seed", "'rng_state' is a JSON string"),
])  # fmt: skip
def test_meta_fields_of_the_wrong_type(tmp_path, no_building, key, value, said):
    refused(tampered(tmp_path, lambda a: a["meta"].update({key: value})), said)


def test_unknown_kind(tmp_path, no_building):
    refused(tampered(tmp_path, lambda a: a["meta"]["model_config"].update(kind="gan")),
            "kind 'gan'", "vae")  # fmt: skip


def test_unknown_config_key(tmp_path, no_building):
    def change(arrays):
        arrays["meta"]["model_config"].update(dropout=0.5, attention=True)

    refused(tampered(tmp_path, change), "does not take: 'attention', 'dropout'", "'latent'")


def test_size_that_is_not_a_positive_integer(tmp_path, no_building):
    refused(tampered(tmp_path, lambda a: a["meta"]["model_config"].update(latent=2.5)),
            "model_config['latent'] must be a positive integer, got 2.5")  # fmt: skip
    refused(tampered(tmp_path, lambda a: a["meta"]["model_config"].update(hidden=["8"]),
                     name="bad2.npz"), "model_config['hidden'] must be a positive integer")


def test_config_asking_for_a_huge_model_is_refused_before_building(tmp_path, no_building):
    """The crafted config of the issue: 71 PiB of weights asked for, a few bytes held."""

    def change(arrays):
        arrays["meta"]["model_config"].update(x_dim=10**8, hidden=[10**8], latent=10**7)

    refused(tampered(tmp_path, change), "weight 'encoder.layers.0.weight' has shape (12, 8)",
            "needs (100000000, 100000000)")  # fmt: skip


def test_valid_shapes_but_an_invalid_option(tmp_path):
    def change(arrays):  # the shapes do not depend on likelihood: only building can tell
        arrays["meta"]["model_config"].update(likelihood="poisson")

    refused(tampered(tmp_path, change), "does not describe a valid model", "poisson")


def test_wrong_kind_expected(tmp_path):
    refused(saved(tmp_path), "holds a 'vae' model, not 'cvae'", expect_kind="cvae")


# ----------------------------------------------------------------------------- weights


def test_missing_weight(tmp_path, no_building):
    refused(tampered(tmp_path, lambda a: a.pop("param.encoder.layers.2.bias")),
            "missing ['encoder.layers.2.bias']")  # fmt: skip


def test_weight_of_another_shape(tmp_path, no_building):
    def change(arrays):
        arrays["param.encoder.layers.0.bias"] = arrays["param.encoder.layers.0.bias"][:-1]

    refused(tampered(tmp_path, change), "'encoder.layers.0.bias' has shape (7,)", "needs (8,)")


def test_integer_weight(tmp_path, no_building):
    def change(arrays):
        arrays["param.encoder.layers.0.bias"] = np.zeros(8, dtype=np.int64)

    refused(tampered(tmp_path, change), "'encoder.layers.0.bias' is int64")


@pytest.mark.parametrize("value, said", [(float("nan"), "1 NaN value;"),
                                         (float("inf"), "1 infinite value;")])
def test_non_finite_weight(tmp_path, no_building, value, said):
    def change(arrays):
        arrays["param.decoder.layers.2.weight"][0, 3] = value

    refused(tampered(tmp_path, change), "'decoder.layers.2.weight'", said, "diverged")


def test_non_finite_optimizer_state(tmp_path, no_building):
    def change(arrays):
        key = next(k for k in arrays if k.startswith("optim.state."))
        arrays[key].reshape(-1)[0] = float("nan")

    message = refused(tampered(tmp_path, change), "optimizer entry 'state.", "NaN")
    with pytest.raises(CheckpointError):
        read_checkpoint(tmp_path / "bad.npz")  # resume reads the same way
    assert "earlier checkpoint" in message


def test_string_optimizer_entry(tmp_path, no_building):
    def change(arrays):
        arrays["optim.lr"] = np.asarray("fast")

    refused(tampered(tmp_path, change), "optimizer entry 'lr'", "not numbers")
