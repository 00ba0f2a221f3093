"""Checkpoints: one ``.npz`` file, written atomically, read without pickle.

Layout: ``param.<name>`` arrays (the model's state dict), ``optim.<key>`` arrays
(the optimizer's state), and ``meta``, a JSON string holding the model config,
the training config, the epoch, the metrics history and the random state.
``numpy.load(..., allow_pickle=False)`` reads it, so opening a checkpoint from
someone else cannot run code. The file is written to a temporary name in the
same folder and moved into place, so an interrupted save never leaves a file
that loads half.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile

from minivae import backend as B

FORMAT = "minivae-checkpoint-1"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, corrupt, or for another model."""


def save_checkpoint(path, model, optimizer=None, meta: dict | None = None) -> str:
    """Write model weights, optimizer state and ``meta`` (JSON-ready) to ``path`` atomically."""
    path = os.fspath(path)
    arrays = {f"param.{k}": v for k, v in model.state_dict().items()}
    if optimizer is not None:
        arrays.update({f"optim.{k}": v for k, v in optimizer.state_dict().items()})
    info = {"format": FORMAT, "model_config": model.config, **(meta or {})}
    arrays["meta"] = B.np.asarray(json.dumps(info))
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".ckpt-", suffix=".npz.tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            B.np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def read_checkpoint(path) -> tuple[dict, dict, dict]:
    """(meta, model state, optimizer state) from a checkpoint file; every array read in full."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with B.np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}  # reads (and CRC-checks) every member
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a minivae checkpoint ({err}); "
            "it was not loaded. Use another checkpoint, or train again."
        ) from None
    if "meta" not in arrays:
        raise CheckpointError(f"checkpoint {path} has no 'meta' entry: not a minivae checkpoint")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except json.JSONDecodeError as err:
        raise CheckpointError(f"checkpoint {path}: its metadata is not valid JSON ({err})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint {path} has format {meta.get('format')!r}, expected {FORMAT!r}"
        )
    params = {k[len("param."):]: v for k, v in arrays.items() if k.startswith("param.")}
    optim = {k[len("optim."):]: v for k, v in arrays.items() if k.startswith("optim.")}
    return meta, params, optim


def load_model(path, expect_kind: str | None = None):
    """Rebuild the model a checkpoint was saved from and load its weights; returns (model, meta)."""
    from minivae.models import build_model

    meta, params, _ = read_checkpoint(path)
    config = meta["model_config"]
    if expect_kind is not None and config.get("kind") != expect_kind:
        raise CheckpointError(
            f"checkpoint {path} holds a {config.get('kind')!r} model, not {expect_kind!r}"
        )
    model = build_model(config)
    try:
        model.load_state_dict(params)
    except ValueError as err:
        raise CheckpointError(f"checkpoint {path} does not fit its model: {err}") from None
    return model, meta
