"""Writing files so that a crash never leaves half of one: atomic writes and strict JSON.

Every file minivae writes (run configs, summaries, metrics logs, checkpoints, figures,
downloads) goes through ``atomic_writer``:

1. the bytes go to a hidden temporary file in the target's own folder (same file
   system, so the rename below is atomic);
2. the temporary file is flushed and ``fsync``-ed, so its bytes are on the disk;
3. ``os.replace`` puts it in place of the target in one step: a reader sees the
   old file or the new one, never a mix;
4. the folder is ``fsync``-ed, so the rename itself survives a power cut.

If anything fails before step 3, the temporary file is removed and the old file
stays as it was. Every file is created with mode 0o666 less the umask (0644 under
the usual umask 022), as ``open(path, "w")`` would create it, whatever wrote it.

JSON is written strictly: NaN and Infinity are not JSON (``json.dumps`` writes them
by default, and strict readers refuse the file), so ``to_json_safe`` replaces every
non-finite float by null and says where it did, and the caller can record why.
"""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
import secrets
from pathlib import Path

FILE_MODE = 0o666  # less the umask, as open() does


@contextlib.contextmanager
def atomic_writer(path, binary: bool = True, encoding: str = "utf-8"):
    """``with atomic_writer(path) as f: f.write(...)``: the file appears whole at exit, or not at all.

    The parent folder is created if needed. On an exception inside the block the
    target is left untouched, the temporary file is removed and the exception goes on.
    """
    path = Path(os.fspath(path))
    if path.is_dir():  # said now: the rename at the end would fail with the temporary name
        raise IsADirectoryError(f"{path} is a folder; give the path of a file to write")
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    # O_EXCL: never reuse an existing file; the mode honours the umask, like open(path, "w")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), FILE_MODE)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": encoding})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    fsync_folder(folder)


def missing_folders(path) -> list:
    """path and those of its parents that do not exist yet, deepest first (absolute paths);
    the parent of the last one is the nearest folder that exists."""
    missing, folder = [], os.path.abspath(os.fspath(path))
    while not os.path.exists(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    return missing


def fsync_folder(folder) -> None:
    """Flush a folder's entries (a rename in it) to the disk; a no-op where folders cannot be opened."""
    if not hasattr(os, "O_DIRECTORY"):  # Windows: a folder cannot be opened for fsync
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_writer(path) as f:
        f.write(data)
    return Path(os.fspath(path))


def atomic_write_text(path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; returns the path."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_append_text(path, text: str, encoding: str = "utf-8") -> Path:
    """Append ``text`` to ``path`` (created if missing) by rewriting the whole file atomically.

    A crash leaves the file with or without the new text, never with part of it. Each
    call copies the old content, which suits small logs (a metrics row per epoch).
    """
    path = Path(os.fspath(path))
    old = path.read_bytes() if path.exists() else b""
    return atomic_write_bytes(path, old + text.encode(encoding))


# ----------------------------------------------------------------------------- strict JSON


def to_json_safe(value, where: str = "") -> tuple:
    """(a copy of value with every non-finite float as None, the places replaced).

    Places are written like ``history[3].val_elbo``. NumPy scalars become Python
    numbers (integers stay integers); tuples become lists; dict keys must be strings.
    """
    replaced: list = []
    return _safe(value, where, replaced), replaced


def _safe(value, where: str, replaced: list):
    if isinstance(value, (str, bool)) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if math.isfinite(value):
            return value
        replaced.append(where or "(the value itself)")
        return None
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"JSON keys must be strings, got {key!r} at {where or 'the top'}")
            out[key] = _safe(item, f"{where}.{key}" if where else key, replaced)
        return out
    if isinstance(value, (list, tuple)):
        return [_safe(item, f"{where}[{k}]", replaced) for k, item in enumerate(value)]
    raise TypeError(f"cannot write {type(value).__name__} as JSON (at {where or 'the top'})")


def dumps_json(value, **kwargs) -> tuple:
    """(JSON text without NaN or Infinity, the places where a non-finite number became null)."""
    safe, replaced = to_json_safe(value)
    return json.dumps(safe, allow_nan=False, **kwargs), replaced


def atomic_write_json(path, value, indent: int | None = 2) -> list:
    """Write ``value`` as strict JSON (non-finite numbers as null), atomically.

    Returns the places where a non-finite number was replaced by null (empty when
    none was), so that the caller can add a field saying why.
    """
    text, replaced = dumps_json(value, indent=indent)
    atomic_write_text(path, text + "\n")
    return replaced
