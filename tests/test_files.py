"""Atomic writes and strict JSON (minivae.files): whole files or none, one mode, no NaN in JSON."""

from __future__ import annotations

import json
import os
import stat

import pytest

from minivae import backend as B
from minivae import files

np = B.np


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def leftovers(folder) -> list:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_every_writer_gives_the_same_mode_as_open(tmp_path, umask_022):
    with open(tmp_path / "plain.txt", "w") as f:
        f.write("x")
    files.atomic_write_bytes(tmp_path / "a.bin", b"\x00\x01")
    files.atomic_write_text(tmp_path / "b.txt", "text")
    files.atomic_write_json(tmp_path / "c.json", {"a": 1})
    files.atomic_append_text(tmp_path / "d.jsonl", "{}\n")
    modes = {name: mode(tmp_path / name) for name in ("plain.txt", "a.bin", "b.txt", "c.json", "d.jsonl")}
    assert set(modes.values()) == {0o644}, modes


def test_mode_follows_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        files.atomic_write_text(tmp_path / "private.txt", "secret")
    finally:
        os.umask(old)
    assert mode(tmp_path / "private.txt") == 0o600


def test_replacing_a_file_keeps_no_temporary_and_writes_the_new_content(tmp_path):
    path = tmp_path / "config.json"
    files.atomic_write_json(path, {"epoch": 1})
    files.atomic_write_json(path, {"epoch": 2})
    assert json.loads(path.read_text()) == {"epoch": 2}
    assert leftovers(tmp_path) == []


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "summary.json"
    path.write_text("old content")
    with pytest.raises(RuntimeError, match="disk on fire"), files.atomic_writer(path) as f:
        f.write(b"half of the new cont")
        raise RuntimeError("disk on fire")
    assert path.read_text() == "old content"
    assert leftovers(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_a_value_json_cannot_hold_leaves_the_old_file(tmp_path):
    path = tmp_path / "summary.json"
    path.write_text('{"old": true}')
    with pytest.raises(TypeError, match="object.*at x"):
        files.atomic_write_json(path, {"x": object()})
    assert path.read_text() == '{"old": true}' and leftovers(tmp_path) == []


def test_a_failed_rename_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "fig.png"
    path.write_bytes(b"old")

    def broken_replace(src, dst):
        raise OSError("rename refused")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="rename refused"):
        files.atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old" and leftovers(tmp_path) == []


def test_the_folder_is_synced_after_the_rename(tmp_path, monkeypatch):
    calls = []
    real_replace, real_fsync_folder = os.replace, files.fsync_folder
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append("replace"), real_replace(a, b)))
    monkeypatch.setattr(files, "fsync_folder",
                        lambda d: (calls.append(("fsync_folder", str(d))), real_fsync_folder(d)))
    files.atomic_write_text(tmp_path / "sub" / "x.txt", "hi")
    assert calls == ["replace", ("fsync_folder", str(tmp_path / "sub"))]
    assert (tmp_path / "sub" / "x.txt").read_text() == "hi"  # the parent folder was made


def test_append_adds_to_the_end(tmp_path):
    path = tmp_path / "metrics.jsonl"
    files.atomic_append_text(path, '{"epoch": 1}\n')
    files.atomic_append_text(path, '{"epoch": 2}\n')
    assert path.read_text().splitlines() == ['{"epoch": 1}', '{"epoch": 2}']


def test_non_finite_numbers_become_null_and_are_reported(tmp_path):
    value = {"elbo": float("nan"), "lr": 1e-3, "history": [{"loss": float("inf")}, {"loss": 2.0}],
             "kl": np.float32("-inf"), "epoch": np.int64(3), "ok": True, "shape": (28, 28)}
    path = tmp_path / "summary.json"
    replaced = files.atomic_write_json(path, value)
    assert replaced == ["elbo", "history[0].loss", "kl"]
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    back = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON: {c}"))
    assert back == {"elbo": None, "lr": 1e-3, "history": [{"loss": None}, {"loss": 2.0}],
                    "kl": None, "epoch": 3, "ok": True, "shape": [28, 28]}
    assert isinstance(back["epoch"], int)


def test_finite_json_reports_nothing_and_keeps_values(tmp_path):
    value = {"a": [1, 2.5, -0.0, None, "nan"], "b": {"c": 1e308}}
    assert files.atomic_write_json(tmp_path / "x.json", value) == []
    assert json.loads((tmp_path / "x.json").read_text()) == value


def test_a_bare_non_finite_value_is_reported():
    text, replaced = files.dumps_json(float("nan"))
    assert text == "null" and replaced == ["(the value itself)"]


def test_non_string_keys_are_refused():
    with pytest.raises(TypeError, match="keys must be strings"):
        files.dumps_json({1: 2})


def test_figures_checkpoints_and_json_share_one_mode(tmp_path, umask_022):
    from minivae import plots
    from minivae.checkpoint import save_checkpoint
    from minivae.models import build_model

    figure = plots.bar_plot([1, 2], ["a", "b"], tmp_path / "fig.png", "t", "v")
    ckpt = save_checkpoint(tmp_path / "checkpoint.npz",
                           build_model({"kind": "vae", "x_dim": 4, "hidden": [3], "latent": 2}))
    files.atomic_write_json(tmp_path / "summary.json", {"elbo": -1.0})
    modes = {mode(p) for p in (figure, ckpt, tmp_path / "summary.json")}
    assert modes == {0o644}
    assert leftovers(tmp_path) == []


def test_a_folder_for_a_file_is_refused_by_its_own_name(tmp_path):
    """The rename at the end would fail naming the temporary file; said first, and nothing left."""
    (tmp_path / "a_folder").mkdir()
    with pytest.raises(IsADirectoryError, match=r"a_folder is a folder; give the path of a file"):
        files.atomic_write_text(tmp_path / "a_folder", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_folder"]


def test_missing_folders_lists_the_new_ones_deepest_first(tmp_path):
    target = tmp_path / "a" / "b" / "c"
    assert files.missing_folders(target) == [str(target), str(tmp_path / "a" / "b"),
                                             str(tmp_path / "a")]  # fmt: skip
    assert files.missing_folders(tmp_path) == []
