"""Checkpoints: one ``.npz`` file, written atomically, checked in full before it is trusted.

Layout: ``param.<name>`` arrays (the model's state dict), ``optim.<key>`` arrays
(the optimizer's state), and ``meta``, a JSON string holding the model config,
the training config, the epoch, the metrics history and the random state. The
file is an uncompressed zip (``numpy.savez``) written by ``minivae.files``: a
temporary file in the same folder, fsync-ed, renamed into place, and the folder
fsync-ed, so an interrupted save never leaves a file that loads half.

Reading trusts nothing in the file until it is checked, in this order:

1. what the file is: a zip archive (a plain ``.npy``, a pickle, a text file are
   named as such);
2. its entries: only ``meta``, ``param.*`` and ``optim.*``, each a plain NumPy
   array (never a pickled object), stored uncompressed, whose header's shape and
   dtype account for exactly the bytes the entry holds, so no entry can ask for
   more memory than the file itself occupies;
3. the metadata: a JSON object with the expected keys and types, and a
   ``model_config`` whose ``kind`` is known and whose keys that model takes;
4. the weights: the names and shapes that the config implies, computed by
   arithmetic (``parameter_shapes``) without building anything, float32 or
   float64, every value finite.

Only then does ``load_model`` build the model, whose size is now that of the
arrays already read. Every refusal is a ``CheckpointError`` (a ValueError) that
names the file, says what was wrong and what to do.
"""

from __future__ import annotations

import inspect
import itertools
import json
import math
import os
import struct
import zipfile

from minivae import backend as B
from minivae.files import atomic_writer

np = B.np  # host-side NumPy: checkpoints are read and written on the host

FORMAT = "minivae-checkpoint-1"
MAX_ENTRIES = 10_000  # a checkpoint holds a few dozen arrays; more is not one of ours
PREFIXES = ("param.", "optim.")
# the metadata keys minivae writes, and the JSON types they must have; other keys are
# kept as they are (a lesson may store its own numbers beside the model)
META_TYPES = {
    "format": str,
    "model_config": dict,
    "train_config": dict,
    "epoch": int,
    "history": list,
    "rng_state": dict,
}
WHAT_TO_DO = (
    "Give the checkpoint.npz that `minivae train` writes into its run folder, "
    "or train again to make one."
)


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, corrupt, crafted, or for another model."""


# ----------------------------------------------------------------------------- saving


def save_checkpoint(path, model, optimizer=None, meta: dict | None = None) -> str:
    """Write model weights, optimizer state and ``meta`` (JSON-ready) to ``path`` atomically.

    Refuses (CheckpointError, nothing written) when a weight is NaN or infinite: such a
    file would be refused on loading, and must never replace a good checkpoint.
    """
    path = os.fspath(path)
    state = model.state_dict()
    for name, value in state.items():
        bad = _non_finite(value)
        if bad:
            raise CheckpointError(
                f"not saving {path}: the weight {name!r} holds {bad}; the file on disk, if "
                "any, is unchanged. Training diverged: try a smaller --lr, --clip-grad or "
                "--kl-warmup."
            )
    arrays = {f"param.{k}": v for k, v in state.items()}
    if optimizer is not None:
        arrays.update({f"optim.{k}": v for k, v in optimizer.state_dict().items()})
    info = {"format": FORMAT, "model_config": model.config, **(meta or {})}
    arrays["meta"] = np.asarray(json.dumps(info))
    with atomic_writer(path) as f:  # temp file, fsync, os.replace, folder fsync
        np.savez(f, **arrays)
    return path


# ----------------------------------------------------------------------------- reading


def read_checkpoint(path) -> tuple[dict, dict, dict]:
    """(meta, model state, optimizer state) from a checkpoint file, every check passed.

    The model state's names, shapes and dtypes match what ``meta["model_config"]``
    implies, and every weight is finite; see the module docstring for the checks.
    """
    path = os.fspath(path)
    size = _check_is_file(path)
    with open(path, "rb") as f:
        head = f.read(16)
    if not head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        raise CheckpointError(_not_a_zip(path, head))
    try:
        with zipfile.ZipFile(path) as zf:
            infos = _check_entries(path, zf)
            meta = _parse_meta(path, _read_entry(path, zf, infos.pop("meta"), size))
            params, optim = {}, {}
            for key, info in infos.items():
                array = _read_entry(path, zf, info, size)
                if key.startswith("param."):
                    params[key[len("param."):]] = array
                else:
                    optim[key[len("optim."):]] = array
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError,
            RuntimeError, NotImplementedError, struct.error) as err:  # fmt: skip
        raise CheckpointError(
            f"{path} is corrupt or not a minivae checkpoint: its archive is truncated or "
            f"damaged ({err}); it was not loaded. Use another checkpoint, or train again."
        ) from None
    _check_params(path, params, meta["model_config"])
    _check_optim(path, optim)
    return meta, params, optim


def load_model(path, expect_kind: str | None = None):
    """Rebuild the model a checkpoint was saved from and load its weights; returns (model, meta).

    Everything in the file is checked (``read_checkpoint``) before the model is built.
    """
    from minivae.models import build_model

    path = os.fspath(path)
    meta, params, _ = read_checkpoint(path)
    config = meta["model_config"]
    if expect_kind is not None and config["kind"] != expect_kind:
        raise CheckpointError(
            f"checkpoint {path} holds a {config['kind']!r} model, not {expect_kind!r}: "
            f"give a checkpoint of a {expect_kind!r} model"
        )
    try:
        model = build_model(config)
        model.load_state_dict(params)
    except (ValueError, TypeError) as err:
        raise CheckpointError(
            f"checkpoint {path}: its model_config does not describe a valid model ({err}). "
            + WHAT_TO_DO
        ) from None
    return model, meta


# ----------------------------------------------------------------------------- the file


def _check_is_file(path: str) -> int:
    """The size of the file at path, or a CheckpointError saying what is there instead."""
    if os.path.isdir(path):
        inner = os.path.join(path, "checkpoint.npz")
        hint = f"give {inner}" if os.path.isfile(inner) else WHAT_TO_DO
        raise CheckpointError(f"checkpoint {path} is a folder, not a file: {hint}")
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint {path} does not exist. " + WHAT_TO_DO)
    return os.path.getsize(path)


def _not_a_zip(path: str, head: bytes) -> str:
    """The message for a file that is not a zip archive, naming what it looks like."""
    if not head:
        what = "it is empty (a save that never finished?)"
    elif head.startswith(b"\x93NUMPY"):
        what = ("it is a single NumPy array (.npy), not a checkpoint, which holds the "
                "weights, the optimizer state and the model's config together")  # fmt: skip
    elif head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        what = ("it is a Python pickle (from pickle.dump or torch.save?), which minivae "
                "never opens: loading a pickle can run any code")  # fmt: skip
    elif head.startswith(b"\x1f\x8b"):
        what = "it is a gzip file (a data set file?), not a zip archive"
    elif _looks_like_text(head):
        what = "it holds text, not the zip archive (.npz) that a checkpoint is"
    else:
        what = "it is not a zip archive (.npz), which a checkpoint is"
    return f"{path} is corrupt or not a minivae checkpoint: {what}. " + WHAT_TO_DO


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in head


def _check_entries(path: str, zf) -> dict:
    """{key: ZipInfo} of the entries, "meta" among them, or a CheckpointError."""
    infos = zf.infolist()
    if len(infos) > MAX_ENTRIES:
        raise CheckpointError(
            f"{path} holds {len(infos)} entries, more than any minivae checkpoint "
            f"(at most {MAX_ENTRIES}); it was not loaded. " + WHAT_TO_DO
        )
    names = [info.filename for info in infos]
    foreign = [n for n in names
               if not n.endswith(".npy") or not (n == "meta.npy" or n.startswith(PREFIXES))]
    if foreign or "meta.npy" not in names:
        shown = ", ".join(repr(n.removesuffix(".npy")) for n in (foreign or names)[:6])
        more = f" and {len(foreign or names) - 6} more" if len(foreign or names) > 6 else ""
        what = f"entries {shown}{more}" if names else "no entries"
        raise CheckpointError(
            f"{path} is an .npz archive but not a minivae checkpoint: it holds {what}, "
            "where a checkpoint holds 'meta', 'param.*' and 'optim.*'. " + WHAT_TO_DO
        )
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise CheckpointError(f"{path} holds the entries {twice} twice: it was not written by "
                              "minivae (or was edited). " + WHAT_TO_DO)  # fmt: skip
    return {info.filename.removesuffix(".npy"): info for info in infos}


def _read_entry(path: str, zf, info, file_size: int):
    """One entry as a NumPy array, after checking that its header fits its stored bytes."""
    key = info.filename.removesuffix(".npy")
    if info.flag_bits & 0x1:
        raise CheckpointError(f"{path}: entry {key!r} is encrypted; minivae never writes "
                              "encrypted checkpoints. " + WHAT_TO_DO)  # fmt: skip
    if info.compress_type != zipfile.ZIP_STORED or info.file_size > file_size:
        raise CheckpointError(
            f"{path}: entry {key!r} is compressed, so it could unpack to more memory than the "
            "file holds; minivae writes checkpoints uncompressed and loads only those. "
            + WHAT_TO_DO
        )
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise CheckpointError(f"{path}: entry {key!r} is a .npy of version {version}, which "
                                  "minivae does not write. " + WHAT_TO_DO)  # fmt: skip
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
            raise CheckpointError(
                f"{path}: entry {key!r} holds Python objects ({dtype}), which can only be read "
                "by unpickling them, and minivae never does: unpickling can run any code. "
                + WHAT_TO_DO
            )
        if any(d < 0 for d in shape):
            raise CheckpointError(f"{path} is corrupt: entry {key!r} has shape {shape}")
        needed = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
        held = info.file_size - f.tell()
        if needed != held:
            raise CheckpointError(
                f"{path} is corrupt or was edited: entry {key!r} declares shape {shape} of "
                f"{dtype} ({needed} bytes) but holds {held} bytes; it was not loaded. "
                "Use another checkpoint, or train again."
            )
        data = f.read(needed)
        if len(data) != needed or f.read(1):  # reading to the end checks the CRC-32 too
            raise CheckpointError(f"{path} is corrupt: entry {key!r} has the wrong length")
    array = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    return array.copy()  # writable, and no longer tied to the bytes read


# ----------------------------------------------------------------------------- the metadata


def _parse_meta(path: str, array) -> dict:
    """The metadata dict from the 'meta' entry, its schema checked."""
    if array.dtype.kind != "U" or array.shape != ():
        raise CheckpointError(
            f"{path}: its 'meta' entry is a {array.dtype} array of shape {array.shape}, not the "
            "JSON text minivae writes: not a minivae checkpoint. " + WHAT_TO_DO
        )
    try:
        meta = json.loads(str(array[()]))
    except (json.JSONDecodeError, RecursionError) as err:
        raise CheckpointError(
            f"{path}: its metadata is not valid JSON ({type(err).__name__}: {err}). " + WHAT_TO_DO
        ) from None
    check_meta(meta, path)
    return meta


def _json_type(value) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "true/false", int: "integer",
             float: "number", type(None): "null"}  # fmt: skip
    return names.get(type(value), type(value).__name__)


def check_meta(meta, where: str = "checkpoint") -> None:
    """Check a checkpoint's metadata: a JSON object of the right format, keys of the right types.

    ``where`` names the file in the messages. Raises CheckpointError; returns nothing.
    """
    if not isinstance(meta, dict):
        raise CheckpointError(
            f"{where}: its metadata is a JSON {_json_type(meta)}, not the object (with 'format' "
            "and 'model_config') that minivae writes: not a minivae checkpoint, or edited. "
            + WHAT_TO_DO
        )
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{where} has format {meta.get('format')!r}, expected {FORMAT!r}: not a minivae "
            "checkpoint, or one from a version this minivae cannot read. " + WHAT_TO_DO
        )
    if "model_config" not in meta:
        raise CheckpointError(
            f"{where}: its metadata has no 'model_config' (the model's kind and sizes), so the "
            "model cannot be rebuilt. " + WHAT_TO_DO
        )
    for key, kind in META_TYPES.items():
        if key in meta and (not isinstance(meta[key], kind) or isinstance(meta[key], bool)):
            raise CheckpointError(
                f"{where}: its metadata's {key!r} is a JSON {_json_type(meta[key])}, expected a "
                f"JSON {_json_type(kind())}. " + WHAT_TO_DO
            )
    if meta.get("epoch", 0) < 0:
        raise CheckpointError(f"{where}: its metadata's epoch is {meta['epoch']}, below 0. "
                              + WHAT_TO_DO)  # fmt: skip
    bad_rows = [k for k, row in enumerate(meta.get("history", [])) if not isinstance(row, dict)]
    if bad_rows:
        raise CheckpointError(f"{where}: its metadata's history rows {bad_rows[:5]} are not JSON "
                              "objects. " + WHAT_TO_DO)  # fmt: skip
    check_model_config(meta["model_config"], where)


def model_arguments(kind: str) -> dict:
    """{argument: default} of the constructor of the model of this kind (the keys its config may hold)."""
    from minivae.models import MODELS

    signature = inspect.signature(MODELS[kind].__init__)
    return {name: p.default for name, p in signature.parameters.items()
            if name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD}  # fmt: skip


def check_model_config(config, where: str = "checkpoint") -> None:
    """A model config must be a dict with a known "kind" and only keys that model takes."""
    from minivae.models import MODELS

    if not isinstance(config, dict):
        raise CheckpointError(
            f"{where}: its model_config is a JSON {_json_type(config)}, not an object with the "
            "model's 'kind' and sizes. " + WHAT_TO_DO
        )
    kind = config.get("kind")
    if kind not in MODELS:
        raise CheckpointError(
            f"{where}: its model_config has kind {kind!r}, which is none of minivae's models "
            f"({', '.join(MODELS)}). " + WHAT_TO_DO
        )
    known = model_arguments(kind)
    unknown = sorted(set(config) - set(known) - {"kind"})
    if unknown:
        raise CheckpointError(
            f"{where}: its model_config has keys that a {kind!r} model does not take: "
            f"{', '.join(map(repr, unknown))} (it takes {', '.join(map(repr, known))}). Was it "
            "written by another version of minivae, or edited? " + WHAT_TO_DO
        )


# ----------------------------------------------------------------------------- the weights


def parameter_shapes(config: dict) -> dict:
    """{parameter name: shape} of the model ``build_model(config)`` would make, by arithmetic only.

    Nothing is allocated, so a config asking for a huge model costs nothing to check.
    Raises CheckpointError when a size in the config is not a positive integer. A test
    holds this equal to the shapes of the built models, for every kind.
    """
    check_model_config(config, "model_config")
    kind = config["kind"]
    c = {**model_arguments(kind), **config}
    x_dim, latent = _size(c, "x_dim"), _size(c, "latent")
    hidden = _sizes(c, "hidden")
    shapes: dict = {}
    if kind == "ae":  # x -> z -> x
        _mlp(shapes, "encoder", [x_dim, *hidden, latent])
        _mlp(shapes, "decoder", [latent, *reversed(hidden), x_dim])
        return shapes
    # the VAE family: x (+ label) -> (mu, log sigma^2); z (+ label) -> x
    label_key = {"vae": None, "cvae": "n_classes", "m2": "n_classes",
                 "ssvae-continuous": "label_dim"}  # what the networks see besides x and z
    if kind not in label_key:
        raise CheckpointError(f"model_config: no parameter shapes are known for kind {kind!r}")
    extra = _size(c, label_key[kind]) if label_key[kind] else 0
    # q's parameters: mu and log sigma^2, or (covariance="full") mu and L's D (D + 1) / 2 entries
    q_width = 2 * latent if c.get("covariance", "diagonal") != "full" else latent * (latent + 3) // 2
    _mlp(shapes, "encoder", [x_dim + extra, *hidden, q_width])
    _mlp(shapes, "decoder", [latent + extra, *reversed(hidden), x_dim])
    if c.get("likelihood") == "gaussian" and c.get("learned_sigma"):
        shapes["decoder_log_var"] = (1,)  # one shared log sigma_x^2
    if kind == "m2":  # q(y | x): x -> class logits
        inner = hidden if c.get("classifier_hidden") is None else _sizes(c, "classifier_hidden")
        _mlp(shapes, "classifier", [x_dim, *inner, _size(c, "n_classes")])
    if kind == "ssvae-continuous":  # q(y | x): x -> (mu_y, log sigma_y^2)
        inner = hidden if c.get("regressor_hidden") is None else _sizes(c, "regressor_hidden")
        _mlp(shapes, "regressor", [x_dim, *inner, 2 * _size(c, "label_dim")])
    return shapes


def _mlp(shapes: dict, prefix: str, sizes: list) -> None:
    """The parameters of ``nn.MLP(sizes)``: Linear layers at even places, activations between."""
    for k, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        shapes[f"{prefix}.layers.{2 * k}.weight"] = (n_in, n_out)
        shapes[f"{prefix}.layers.{2 * k}.bias"] = (n_out,)


def _size(config: dict, key: str) -> int:
    value = config.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CheckpointError(f"model_config[{key!r}] must be a positive integer, got {value!r}")
    return value


def _sizes(config: dict, key: str) -> list:
    value = config.get(key)
    values = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(values, (list, tuple)):
        raise CheckpointError(f"model_config[{key!r}] must be a list of layer sizes, got {value!r}")
    return [_size({key: v}, key) for v in values]


def _non_finite(array) -> str:
    """'' when every value is finite, else how many NaN and infinite values the array holds."""
    if array.dtype.kind not in "fc" or bool(np.isfinite(array).all()):
        return ""
    counts = {"NaN": int(np.isnan(array).sum()), "infinite": int(np.isinf(array).sum())}
    return " and ".join(f"{n} {what} value{'s' if n != 1 else ''}"
                        for what, n in counts.items() if n)  # fmt: skip


def _check_params(path: str, params: dict, config: dict) -> None:
    """The weights are exactly those the config implies: names, shapes, float dtypes, finite."""
    try:
        expected = parameter_shapes(config)
    except CheckpointError as err:
        raise CheckpointError(f"{path}: {err}. " + WHAT_TO_DO) from None
    missing, unexpected = sorted(set(expected) - set(params)), sorted(set(params) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: its weights do not fit its {config['kind']!r} model_config: missing "
            f"{missing or 'nothing'}, unexpected {unexpected or 'nothing'}; it was not loaded. "
            + WHAT_TO_DO
        )
    for name, shape in expected.items():
        array = params[name]
        if array.shape != shape:
            raise CheckpointError(
                f"{path}: weight {name!r} has shape {array.shape}, but its model_config needs "
                f"{shape}; it was not loaded. " + WHAT_TO_DO
            )
        if array.dtype.kind != "f" or array.dtype.itemsize not in (4, 8):
            raise CheckpointError(f"{path}: weight {name!r} is {array.dtype}, not float32 or "
                                  "float64; it was not loaded. " + WHAT_TO_DO)  # fmt: skip
        bad = _non_finite(array)
        if bad:
            raise CheckpointError(
                f"{path}: weight {name!r} holds {bad}; it was not loaded. The run that saved it "
                "diverged: use an earlier checkpoint, or train again with a smaller --lr, "
                "--clip-grad or --kl-warmup."
            )


def _check_optim(path: str, optim: dict) -> None:
    """Optimizer state: numbers only, all finite (shapes are checked by the optimizer itself)."""
    for name, array in optim.items():
        if array.dtype.kind not in "fiub":
            raise CheckpointError(f"{path}: optimizer entry {name!r} is {array.dtype}, not "
                                  "numbers; it was not loaded. " + WHAT_TO_DO)  # fmt: skip
        bad = _non_finite(array)
        if bad:
            raise CheckpointError(
                f"{path}: optimizer entry {name!r} holds {bad}; it was not loaded. "
                "Use an earlier checkpoint, or train again."
            )
