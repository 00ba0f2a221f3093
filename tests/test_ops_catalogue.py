"""Every op of the catalogue, forward against NumPy and backward against central differences.

Each check runs on the cpu and, where CuPy and a CUDA device are present, again on
the gpu (the ``device`` fixture). Inputs are drawn with a seed of their own per
case, so a failure reproduces alone.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from catalogue import CASES

import minivae as mv
from minivae import backend as B
from minivae import ops
from minivae.gradcheck import gradcheck

IDS = [c.id for c in CASES]


def case_rng(case):
    return np.random.default_rng(zlib.crc32(case.id.encode()))


def to_device(arrays, dtype=None):
    """Backend arrays: floating inputs in ``dtype`` (as they are when None), integers as they are."""
    out = []
    for a in arrays:
        a = np.asarray(a)
        out.append(B.from_numpy(a, dtype=dtype if a.dtype.kind == "f" else None))
    return out


def is_float(a) -> bool:
    return (a.dtype if hasattr(a, "dtype") else np.asarray(a).dtype).kind == "f"  # a device array too


# ----------------------------------------------------------------------------- meta-tests


def test_every_op_has_a_case():
    covered = {c.op for c in CASES}
    missing = [name for name in ops.OPS if name not in covered]
    assert not missing, f"ops without a catalogue entry in tests/catalogue.py: {', '.join(missing)}"


def test_every_case_names_a_known_op_and_ids_are_unique():
    unknown = sorted({c.op for c in CASES} - set(ops.OPS))
    assert not unknown, f"catalogue entries for names not in minivae.ops.OPS: {unknown}"
    seen, repeated = set(), set()
    for c in CASES:
        (repeated if c.id in seen else seen).add(c.id)
    assert not repeated, f"catalogue ids used twice: {sorted(repeated)}"


def test_every_op_function_is_exported():
    absent = [name for name in ops.OPS if not callable(getattr(ops, name, None))]
    assert not absent, f"names in OPS with no function in minivae.ops: {absent}"


def test_the_catalogue_has_large_cases_for_projection_checks():
    large = [c for c in CASES if "large" in c.tags]
    assert large
    for c in large:
        sizes = [np.asarray(a).size for a in c.make_inputs(case_rng(c))]
        assert max(sizes) > 400, f"{c.id} is tagged large but its inputs are small: {sizes}"


# ----------------------------------------------------------------------------- forward


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_float64_matches_numpy(case, device):
    arrays = [np.asarray(a) for a in case.make_inputs(case_rng(case))]
    with mv.set_default_dtype("float64"):
        out = case.fn(*[mv.Tensor(a) for a in to_device(arrays)])
    expected = np.asarray(case.reference(*arrays))
    assert isinstance(out, mv.Tensor)
    assert B.array_device(out.data) == device
    assert out.dtype == np.float64
    assert out.shape == expected.shape, f"{case.id}: shape {out.shape}, NumPy says {expected.shape}"
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-11, atol=1e-12, err_msg=case.id)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float32_smoke(case, device):
    """Default dtype float32: values, output dtype, and gradients close to float64's."""
    rng = case_rng(case)
    arrays = [np.asarray(a) for a in case.make_inputs(rng)]
    arrays32 = [a.astype(np.float32) if is_float(a) else a for a in arrays]
    with mv.set_default_dtype("float32"):
        tensors = [mv.Tensor(a, requires_grad=is_float(a)) for a in to_device(arrays32, np.float32)]
        out = case.fn(*tensors)
        assert out.dtype == np.float32, f"{case.id}: float32 inputs gave {out.dtype}"
        v = rng.standard_normal(out.shape).astype(np.float32)
        out.backward(B.from_numpy(v))
    # the float64 reference on the same (rounded) inputs
    rounded = [a.astype(np.float64) if is_float(a) else a for a in arrays32]
    expected = np.asarray(case.reference(*rounded))
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-4, atol=1e-5 * scale, err_msg=case.id)
    with mv.set_default_dtype("float64"):
        t64 = [mv.Tensor(a, requires_grad=is_float(a)) for a in to_device(rounded)]
        case.fn(*t64).backward(B.from_numpy(v.astype(np.float64)))
    for k, (t32, t) in enumerate(zip(tensors, t64)):
        if not t.requires_grad:
            continue
        assert t32.grad is not None and t32.grad.dtype == np.float32, f"{case.id}: input {k}"
        g32, g64 = B.to_numpy(t32.grad), B.to_numpy(t.grad)
        gscale = max(1.0, float(np.abs(g64).max(initial=0.0)))
        np.testing.assert_allclose(
            g32, g64, rtol=1e-3, atol=1e-4 * gscale, err_msg=f"{case.id} grad {k}"
        )


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradcheck(case, device):
    """Central differences in float64: the full Jacobian for small inputs, projections for large."""
    arrays = to_device(case.make_inputs(case_rng(case)))
    mode = "projection" if "large" in case.tags else "full"
    report = gradcheck(case.fn, arrays, mode=mode, rtol=1e-6)
    assert report.mode == mode
    assert report.checked > 0
    assert report.ok, f"{case.id}\n{report}"


@pytest.mark.parametrize(
    "case", [c for c in CASES if "large" not in c.tags][:1], ids=lambda c: c.id
)
def test_gradcheck_auto_picks_full_for_small_inputs(case):
    report = gradcheck(case.fn, case.make_inputs(case_rng(case)))
    assert report.mode == "full" and report.ok, str(report)


@pytest.mark.parametrize("case", [c for c in CASES if "large" in c.tags], ids=lambda c: c.id)
def test_gradcheck_auto_picks_projection_for_large_inputs(case):
    report = gradcheck(case.fn, case.make_inputs(case_rng(case)))
    assert report.mode == "projection" and report.ok, str(report)
