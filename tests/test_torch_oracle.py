"""PyTorch as an oracle, in float64: every catalogue case's value and gradients, and the optimizers.

Skipped as a whole where torch does not import. For each case, both engines get
the same inputs; the value must agree, and so must the gradient of a random
projection v . f(x) with respect to every floating input, to a relative error of
1e-10 (measured on the whole array: max |ours - torch| / max |torch|).
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from catalogue import CASES

import minivae as mv
from minivae import ops, optim
from minivae.tensor import Tensor

torch = pytest.importorskip("torch")

RTOL = 1e-10

# Ops of minivae.ops.OPS that PyTorch cannot check, each with the reason.
NO_TORCH_COUNTERPART: dict[str, str] = {}

ORACLE_CASES = [c for c in CASES if c.torch_fn is not None]


def rel_error(ours, theirs) -> float:
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    assert ours.shape == theirs.shape, f"shapes differ: {ours.shape} vs torch {theirs.shape}"
    scale = float(np.abs(theirs).max(initial=0.0))
    diff = float(np.abs(ours - theirs).max(initial=0.0))
    return diff / scale if scale > 0 else diff


def test_every_op_has_an_oracle_case_or_a_stated_reason():
    with_oracle = {c.op for c in ORACLE_CASES}
    missing = [
        name for name in ops.OPS if name not in with_oracle and name not in NO_TORCH_COUNTERPART
    ]
    assert not missing, (
        f"ops with no PyTorch oracle case: {', '.join(missing)}; give their catalogue entries a "
        "torch_fn, or list them in NO_TORCH_COUNTERPART with the reason"
    )
    stale = [name for name in NO_TORCH_COUNTERPART if name in with_oracle or name not in ops.OPS]
    assert not stale, (
        f"NO_TORCH_COUNTERPART lists ops that have an oracle or no longer exist: {stale}"
    )
    assert all(reason.strip() for reason in NO_TORCH_COUNTERPART.values())


@pytest.mark.parametrize("case", ORACLE_CASES, ids=[c.id for c in ORACLE_CASES])
def test_value_and_gradients_match_torch(case):
    rng = np.random.default_rng(zlib.crc32(case.id.encode()) + 1)
    arrays = [np.asarray(a) for a in case.make_inputs(rng)]
    floating = [a.dtype.kind == "f" for a in arrays]
    with mv.set_default_dtype("float64"):
        ours_in = [Tensor(a.copy(), requires_grad=f) for a, f in zip(arrays, floating)]
        out = case.fn(*ours_in)
        v = rng.standard_normal(out.shape)
        out.backward(v)
    theirs_in = [torch.tensor(a.copy(), requires_grad=bool(f)) for a, f in zip(arrays, floating)]
    t_out = case.torch_fn(*theirs_in)
    assert tuple(t_out.shape) == out.shape, f"{case.id}: torch shape {tuple(t_out.shape)}"
    (t_out * torch.from_numpy(v)).sum().backward()
    err = rel_error(out.numpy(), t_out.detach().numpy())
    assert err <= RTOL, f"{case.id}: value differs from torch by {err:.3g} (relative)"
    for k, (ours, theirs) in enumerate(zip(ours_in, theirs_in)):
        if not floating[k]:
            continue
        expected = theirs.grad.numpy() if theirs.grad is not None else np.zeros(arrays[k].shape)
        got = ours.grad if ours.grad is not None else np.zeros(arrays[k].shape)
        err = rel_error(got, expected)
        assert err <= RTOL, f"{case.id}: gradient of input {k} differs from torch by {err:.3g}"


# ----------------------------------------------------------------------------- optimizers


def _compare_optimizer(ours_cls, ours_kwargs, torch_cls, torch_kwargs, steps=3):
    rng = np.random.default_rng(11)
    shapes = [(3, 4), (4,)]
    inits = [rng.standard_normal(s) for s in shapes]
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(steps)]
    ours = [Tensor(w.copy(), requires_grad=True) for w in inits]
    theirs = [torch.tensor(w.copy(), requires_grad=True) for w in inits]
    opt = ours_cls(ours, **ours_kwargs)
    t_opt = torch_cls(theirs, **torch_kwargs)
    for step, gs in enumerate(grads, start=1):
        for p, t, g in zip(ours, theirs, gs):
            p.grad = g.copy()
            t.grad = torch.from_numpy(g.copy())
        opt.step()
        t_opt.step()
        for k, (p, t) in enumerate(zip(ours, theirs)):
            moved = rel_error(p.numpy() - inits[k], t.detach().numpy() - inits[k])
            err = rel_error(p.numpy(), t.detach().numpy())
            assert err <= RTOL and moved <= 1e-8, f"step {step}, param {k}: {err:.3g} / {moved:.3g}"


def test_adam_matches_torch_over_three_steps():
    _compare_optimizer(optim.Adam, {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-8},
                       torch.optim.Adam, {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-8})  # fmt: skip


def test_sgd_momentum_matches_torch_over_three_steps():
    _compare_optimizer(optim.SGD, {"lr": 0.1, "momentum": 0.9},
                       torch.optim.SGD, {"lr": 0.1, "momentum": 0.9})  # fmt: skip


def test_adagrad_matches_torch_over_three_steps():
    _compare_optimizer(optim.Adagrad, {"lr": 0.3, "eps": 1e-10},
                       torch.optim.Adagrad, {"lr": 0.3, "eps": 1e-10})  # fmt: skip
