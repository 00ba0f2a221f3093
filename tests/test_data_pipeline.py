"""The data pipeline of minivae.data: the split rule, batches of each kind, binarization,
device moves, and the slant of an image (the continuous-label model's label).

The IDX reader, the lookup and the downloads are tested in test_data.py.
"""

from __future__ import annotations

import math

import pytest

from minivae import backend as B
from minivae import data as D

np = B.np


def numbered(n, d=4):
    """n host images whose pixel 0 is the row number (as a float), with labels = row % 10."""
    x = np.zeros((n, d), dtype=np.float32)
    x[:, 0] = np.arange(n)
    return x, np.arange(n) % 10


def rows(a) -> list:
    return [int(v) for v in B.to_numpy(a)[:, 0]]


# ----------------------------------------------------------------------------- the split rule


def test_split_rows_are_disjoint_complete_sorted_and_seeded():
    train, val = D.split_rows(50, 12, seed=3)
    assert len(val) == 12 and len(train) == 38
    assert not set(train.tolist()) & set(val.tolist())
    assert sorted(train.tolist() + val.tolist()) == list(range(50))
    assert list(train) == sorted(train) and list(val) == sorted(val)
    np.testing.assert_array_equal(val, D.split_rows(50, 12, seed=3)[1])
    assert not np.array_equal(val, D.split_rows(50, 12, seed=4)[1])
    train, val = D.split_rows(50, 0)  # no validation
    assert len(val) == 0 and list(train) == list(range(50))
    for bad in (-1, 50):
        with pytest.raises(ValueError, match="n_val must be in 0..49"):
            D.split_rows(50, bad)


def test_train_val_split_uses_the_same_rule():
    x, y = numbered(40)
    ds = D.Dataset(images=x, labels=y, name="mnist", split="train")
    train, val = D.train_val_split(ds, 10, seed=5)
    train_rows, val_rows = D.split_rows(40, 10, seed=5)
    assert rows(train.images) == train_rows.tolist() and rows(val.images) == val_rows.tolist()
    np.testing.assert_array_equal(val.labels, y[val_rows])


def test_first_rows_and_subset_keep_images_labels_and_factors_together():
    ds = D.make_shapes(20, seed=2)
    head = D.first_rows(ds, 5)
    assert len(head) == 5 and head.split == ds.split
    np.testing.assert_array_equal(head.factors, ds.factors[:5])
    picked = D.subset(ds, np.array([3, 7]), "val")
    np.testing.assert_array_equal(picked.images, ds.images[[3, 7]])
    np.testing.assert_array_equal(picked.labels, ds.labels[[3, 7]])
    assert picked.split == "val" and picked.image_shape == (32, 32)


# ----------------------------------------------------------------------------- batches


def test_batch_counts_both_parts():
    x, y = numbered(6)
    assert len(D.Batch(x)) == 6
    assert len(D.Batch(x[:4], x_labelled=x[:2], y_labelled=y[:2])) == 6
    assert len(D.Batch(None, x_labelled=x[:3], y_labelled=y[:3])) == 3


def test_to_device_gives_the_default_float_dtype_and_int64_labels():
    moved = D.to_device(np.arange(6, dtype=np.float64).reshape(2, 3)[:, ::2])  # not contiguous
    assert B.is_array(moved) and moved.dtype == B.get_default_dtype() and moved.shape == (2, 2)
    assert D.to_device(np.array([1, 2], dtype=np.uint8)).dtype == np.int64
    assert D.to_device([0, 1, 2]).dtype == np.int64
    with B.set_default_dtype("float64"):
        assert D.to_device(np.zeros(2, dtype=np.float32)).dtype == np.float64


def test_images_batches_hold_every_row_once_and_drop_the_last_short_batch():
    x, _ = numbered(23)
    rng = np.random.default_rng(0)
    out = list(D.epoch_batches("images", x, None, 5, rng))
    assert len(out) == 4 and all(b.y is None and b.x_labelled is None for b in out)
    seen = [r for b in out for r in rows(b.x)]
    assert len(seen) == 20 and len(set(seen)) == 20 and seen != sorted(seen)
    small = list(D.epoch_batches("images", x[:3], None, 5, rng))  # fewer rows than a batch
    assert len(small) == 1 and sorted(rows(small[0].x)) == [0, 1, 2]


def test_labelled_batches_keep_labels_aligned_with_their_images():
    x, y = numbered(30)
    for batch in D.epoch_batches("labelled", x, y, 7, np.random.default_rng(1)):
        np.testing.assert_array_equal(B.to_numpy(batch.y), np.array(rows(batch.x)) % 10)
        assert batch.y.dtype == np.int64


def test_semi_supervised_batches_draw_the_labelled_part_from_the_labelled_rows_only():
    x, y = numbered(60)
    labelled = np.array([2, 11, 23, 37, 41, 58])
    out = list(D.epoch_batches("semi-supervised", x, y, 10, np.random.default_rng(2),
                               labelled, labelled_batch_size=4))  # fmt: skip
    assert len(out) == 6
    picks = []
    for batch in out:
        assert batch.y is None and len(batch.x) == 10 and len(batch.x_labelled) == 4
        part = rows(batch.x_labelled)
        assert set(part) <= set(labelled.tolist()) and len(set(part)) == 4
        np.testing.assert_array_equal(B.to_numpy(batch.y_labelled), np.array(part) % 10)
        picks.append(part)
    # the labelled rows are cycled in fresh orders: over the epoch each one is used
    assert {r for part in picks for r in part} == set(labelled.tolist())
    with pytest.raises(ValueError, match="needs labelled rows and their labels"):
        next(D.epoch_batches("semi-supervised", x, y, 10, np.random.default_rng(2)))
    with pytest.raises(ValueError, match="unknown batch kind 'pairs'"):
        next(D.epoch_batches("pairs", x, y, 10, np.random.default_rng(2)))


def test_pick_labelled_only_for_semi_supervised_batches():
    labels = np.repeat(np.arange(10), 8)
    assert D.pick_labelled("images", labels, 20) is None
    assert D.pick_labelled("labelled", labels, 20) is None
    index = D.pick_labelled("semi-supervised", labels, 20, seed=1)
    np.testing.assert_array_equal(index, D.labelled_subset(labels, 20, seed=1))


def test_evaluation_batches_keep_the_order_and_a_last_short_batch():
    x, y = numbered(11)
    out = list(D.evaluation_batches(x, y, 4))
    assert [len(b.x) for b in out] == [4, 4, 3]
    assert [r for b in out for r in rows(b.x)] == list(range(11))
    np.testing.assert_array_equal(np.concatenate([B.to_numpy(b.y) for b in out]), y)
    assert all(b.y is None for b in D.evaluation_batches(x, None, 4))


def test_binarized_follows_the_training_option():
    p = np.full((200, 20), 0.5, dtype=np.float32)
    rng = np.random.default_rng(0)
    dynamic = D.binarized(p, "dynamic", rng)
    assert set(np.unique(dynamic)) == {0.0, 1.0}
    assert not np.array_equal(dynamic, D.binarized(p, "dynamic", rng))  # a fresh draw each call
    np.testing.assert_array_equal(D.binarized(p, "fixed", seed=4), D.binarize_fixed(p, seed=4))
    assert D.binarized(p, "none") is p
    with pytest.raises(ValueError, match="unknown binarization 'half'"):
        D.binarized(p, "half")


# ----------------------------------------------------------------------------- the slant


def bar(shear: float, size=28):
    """A one-pixel-wide vertical bar sheared by `shear` columns per row going down."""
    img = np.zeros((size, size))
    for r in range(4, size - 4):
        img[r, round(size / 2 + shear * (r - size / 2))] = 1.0
    return img.reshape(1, -1)


def test_slant_is_zero_upright_positive_leaning_right_and_the_shear_angle():
    assert D.slant_degrees(bar(0.0))[0] == pytest.approx(0.0, abs=1e-9)
    right, left = D.slant_degrees(bar(-0.25))[0], D.slant_degrees(bar(0.25))[0]
    assert right > 0 > left and right == pytest.approx(-left, rel=1e-6)
    assert right == pytest.approx(math.degrees(math.atan(0.25)), abs=1.5)  # rounding to pixels
    square = np.zeros((2, 32 * 32))
    square[:, :40] = 1.0  # any shape: one number per image
    assert D.slant_degrees(square, (32, 32)).shape == (2,)
