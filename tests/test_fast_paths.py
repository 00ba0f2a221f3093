"""Every fast path of minivae.fast against the plain version it stands in for, and the switch.

Tolerances: bit for bit where the arithmetic is the same; otherwise stated per test in
units of the dtype's eps. The op catalogue (tests/catalogue.py) also runs each op with a
fast version a second time with the fast paths off ("-plain" cases), so the plain ops get
the forward, gradient, float32 and PyTorch checks too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from catalogue import CASES

import minivae as mv
from minivae import fast, ops, optim
from minivae.ops import elementwise
from minivae.tensor import Tensor

REPO = Path(__file__).resolve().parents[1]
DTYPES = ["float32", "float64"]


@pytest.fixture
def fast_on(monkeypatch):
    monkeypatch.setattr(fast, "enabled", True)


def logits_and_targets(dtype, shape=(3, 16, 20), seed=1):
    """Logits (L, B, D) over both tails and at +-1e4, and 0/1 targets (B, D)."""
    rng = np.random.default_rng(seed)
    logits = (rng.normal(size=shape) * 8).astype(dtype)
    logits.reshape(-1)[:6] = [-60.0, 60.0, -1e4, 1e4, 0.0, -0.0]
    x = (rng.random(shape[-2:]) < 0.4).astype(dtype)
    return logits, x


def run_op(fn, flag: bool, dtype, *arrays, grad=True):
    """fn's value and the gradients of its floating inputs (for a random upstream gradient)."""
    with fast.set_enabled(flag), mv.set_default_dtype(dtype):
        ts = [Tensor(a.copy(), requires_grad=grad) for a in arrays]
        out = fn(*ts)
        if grad:
            up = np.random.default_rng(9).normal(size=out.shape).astype(dtype)
            out.backward(up)
    return out, [t.grad for t in ts]


# ----------------------------------------------------------------------------- the switch


def test_the_switch_picks_fast_or_plain_functions_for_exactly_the_listed_ops():
    """With the switch on, an op builds a minivae.fast Function exactly when fast.OPS lists it."""
    rng = np.random.default_rng(0)
    seen = set()
    for case in CASES:
        if case.id.endswith("-plain"):
            continue
        arrays = [np.asarray(a) for a in case.make_inputs(rng)]
        kinds = {}
        for flag in (True, False):
            with fast.set_enabled(flag), mv.set_default_dtype("float64"):
                tensors = [Tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
                kinds[flag] = type(case.fn(*tensors)._ctx)
        assert kinds[False].__module__.startswith("minivae.ops."), case.id
        if case.op in fast.OPS:
            assert kinds[True].__module__ == "minivae.fast", case.id
            assert kinds[True].__name__ == kinds[False].__name__, case.id  # the same op, twice
            seen.add(case.op)
        else:
            assert kinds[True] is kinds[False], case.id
    assert seen == set(fast.OPS)  # every listed op has a case, and was checked


def test_adam_builds_the_fast_version_while_the_switch_is_on():
    p = [Tensor(np.zeros(3), requires_grad=True)]
    with fast.set_enabled(True):
        assert type(optim.Adam(p)) is fast.Adam
        assert type(optim.OPTIMIZERS["adam"](p)) is fast.Adam
        with fast.set_enabled(False):
            assert type(optim.Adam(p)) is optim.Adam
        assert fast.enabled  # the context put the setting back
    assert isinstance(fast.Adam(p), optim.Adam)


def _python(code: str, value):
    env = {k: v for k, v in os.environ.items() if k != "MINIVAE_FAST"}
    if value is not None:
        env["MINIVAE_FAST"] = value
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=60, check=False)  # fmt: skip


def test_minivae_fast_environment_variable_sets_the_start_value():
    code = "import minivae.fast as f; print(f.enabled)"
    assert _python(code, None).stdout.strip() == "True"
    assert _python(code, "0").stdout.strip() == "False"
    # any other value: the import succeeds, the first op that reads the switch says why
    bad = _python(code + "\nimport minivae as mv\nmv.ops.softplus(mv.Tensor([1.0]))", "off")
    assert bad.returncode != 0 and bad.stdout.startswith("<unset: MINIVAE_FAST='off'")
    assert "ValueError: MINIVAE_FAST='off': set it to 1" in bad.stderr
    chosen = _python("import minivae as mv, minivae.fast as f\nf.set_enabled(False)\n"
                     "print(mv.ops.softplus(mv.Tensor([0.0])).data, f.ENVIRONMENT_ERROR)", "off")  # fmt: skip
    assert chosen.returncode == 0, chosen.stderr
    assert chosen.stdout.split() == ["[0.6931472]", "None"]


# ----------------------------------------------------------------------------- raw kernels


@pytest.mark.parametrize("dtype", DTYPES)
def test_log1p_from_the_vectorized_log_matches_log1p(dtype):
    """log1p_by_log (log with one correction step) against NumPy's log1p on [0, 1] and its tail."""
    rng = np.random.default_rng(3)
    tiny = np.finfo(dtype).tiny
    e = np.concatenate([
        rng.random(20000), 10.0 ** rng.uniform(-45, 0, 20000), [0.0, 1.0, tiny, 1e-30, 0.5],
    ]).astype(dtype)  # fmt: skip
    got, want = fast.log1p_by_log(e), np.log1p(e)
    assert got.dtype == e.dtype
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(got, want, rtol=4 * eps, atol=0)  # a few units in the last place
    np.testing.assert_allclose(fast.log1p_unit(e), want, rtol=4 * eps, atol=0)
    assert got[-5] == 0.0 and got[-3] == e[-3]  # log(1 + 0) = 0; log(1 + tiny) = tiny exactly
    plain = np.log(1.0 + e)  # what the correction step repairs: relative error 1 in the tail
    assert np.max(np.abs(plain - want) / np.maximum(want, tiny)) > 0.5


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_from_exp_is_the_plain_sigmoid_bit_for_bit(dtype):
    """max(e, [x >= 0]) / (1 + e) against the plain where-form, in both tails, at 0, and for NaN."""
    rng = np.random.default_rng(4)
    special = [0.0, -0.0, -1e4, 1e4, -40.0, np.nan]
    x = np.concatenate([rng.normal(size=5000) * 30, special]).astype(dtype)
    got = fast.sigmoid_from_exp(x, np.exp(-np.abs(x)))
    plain = elementwise.stable_sigmoid(x)
    assert got.dtype == plain.dtype == x.dtype
    np.testing.assert_array_equal(got, plain)  # NaN where NaN, equal elsewhere
    assert np.isnan(got[-1])
    assert got[-4] == 0.0 and got[-3] == 1.0 and got[-2] > 0  # sigmoid(-40) ~ 4e-18 is kept


@pytest.mark.parametrize("dtype", DTYPES)
def test_softplus_and_exp_matches_the_plain_softplus(dtype):
    """Bit for bit in float64 (both use log1p); within 4 eps relative in float32 (log1p_by_log)."""
    x = logits_and_targets(dtype)[0].reshape(-1)
    y, e = fast.softplus_and_exp(x)
    np.testing.assert_array_equal(e, np.exp(-np.abs(x)))
    plain = elementwise.stable_softplus(x)
    assert y.dtype == plain.dtype == x.dtype
    if dtype == "float64":
        np.testing.assert_array_equal(y, plain)
    else:
        np.testing.assert_allclose(y, plain, rtol=4 * np.finfo(dtype).eps, atol=0)
    np.testing.assert_array_equal(x, logits_and_targets(dtype)[0].reshape(-1))  # x is untouched


@pytest.mark.parametrize("width", [1, 2, 3, 5, 16, 20, 31, 784, 1023])
def test_sum_log_by_products_is_the_sum_of_the_logs(width):
    """The logs of products of (up to 81) entries against a float64 sum of logs, on rows of every
    parity pattern; u = 2 everywhere (the largest products) overflows nothing."""
    rng = np.random.default_rng(5)
    u = (1.0 + rng.random((3, 7, width))).astype(np.float32)  # (..., width) in [1, 2)
    u[0, 0] = 2.0
    u[0, 1] = 1.0
    kept = u.copy()
    got = fast.sum_log_by_products(u)
    want = np.log(u.astype(np.float64)).sum(axis=-1)
    assert got.shape == (3, 7) and got.dtype == np.float32
    np.testing.assert_array_equal(u, kept)  # u is left as it is
    # each multiply rounds by 2^-24 relative: at most width * 2^-24 in all, plus the float32
    # rounding of the logs and of their sum (a few eps of the result)
    eps = np.finfo(np.float32).eps
    np.testing.assert_allclose(got, want, rtol=4 * eps, atol=width * 2.0**-24 + 1e-7)
    assert got[0, 0] == pytest.approx(width * np.log(2.0), rel=1e-6)  # no overflow at 2^81
    assert got[0, 1] == 0.0


@pytest.mark.parametrize("pixels", ["binary", "grey", "confident"])
def test_float32_likelihood_on_mnist_rows_is_as_close_to_float64_as_the_per_pixel_log(pixels):
    """The training forward of the float32 Bernoulli likelihood (logs of products, without the
    log's correction term) against the exact float64 sum, on 784-pixel rows of 0/1 or grey
    values: within the error of the form it replaced (a log per pixel), which is float32's
    rounding of a sum of about 500 nats. "confident": a trained decoder's regime, every logit
    of size 8 to 16 on the side of its pixel, so that each term is below 3.4e-4 and a row sums
    to about 0.03 nats: there the left-out correction is as large as it gets next to the sum."""
    rng = np.random.default_rng(6)
    logits = (rng.standard_normal((256, 784)) * 6).astype(np.float32)
    x = rng.random((256, 784)).astype(np.float32)  # grey values in [0, 1)
    if pixels != "grey":
        x = (x < 0.2).astype(np.float32)
    if pixels == "confident":
        logits = (rng.uniform(8, 16, x.shape) * np.where(x == 1, 1, -1)).astype(np.float32)
    exact = (x * logits.astype(np.float64) - np.logaddexp(0.0, logits.astype(np.float64))).sum(-1)
    got, e = fast._bernoulli_rows(logits, x, keep_e=True)
    per_pixel = fast._bernoulli_rows_per_pixel(logits, x, keep_e=False)[0]  # the form replaced
    np.testing.assert_array_equal(e, np.exp(-np.abs(logits)))  # kept for the backward
    err, err_per_pixel = np.abs(got - exact), np.abs(per_pixel - exact)
    if pixels == "confident":
        assert np.abs(exact).max() < 0.1
        assert err.max() < 2 * err_per_pixel.max() + 1e-6 and err.max() < 784 * 2.0**-24
    else:
        assert err.max() < 2 * err_per_pixel.max() + 1e-5
        assert err.max() < 4e-7 * np.abs(exact).max()


@pytest.mark.parametrize("pixels", ["binary", "grey", "confident"])
def test_float64_likelihood_rows_are_as_close_to_the_exact_sums_as_the_per_pixel_log1p(pixels):
    """Float64 on the cpu takes the row sums as logs of products too. Against sums in extended
    precision (numpy.longdouble, 64-bit mantissas on x86), within twice the error of log1p per
    pixel, and at float64's rounding of the sum."""
    if np.finfo(np.longdouble).eps >= np.finfo(np.float64).eps:
        pytest.skip("numpy.longdouble is float64 on this platform: no exact reference")
    rng = np.random.default_rng(7)
    x = rng.random((64, 784))
    if pixels != "grey":
        x = (x < 0.2).astype(np.float64)
    logits = rng.standard_normal((64, 784)) * 6
    if pixels == "confident":
        logits = rng.uniform(8, 16, x.shape) * np.where(x == 1, 1, -1)
    lg, xg = logits.astype(np.longdouble), x.astype(np.longdouble)
    exact = (xg * lg - np.logaddexp(np.longdouble(0), lg)).sum(-1)
    got = fast._bernoulli_rows(logits, x, keep_e=False)[0]
    per_pixel = fast._bernoulli_rows_per_pixel(logits, x, keep_e=False)[0]
    err = np.abs(got - exact).astype(np.float64)
    err_per_pixel = np.abs(per_pixel - exact).astype(np.float64)
    assert err.max() <= 2 * err_per_pixel.max() + 784 * 2.0**-53
    assert err.max() < 1e-14 * max(float(np.abs(exact).max()), 1.0)


# ----------------------------------------------------------------------------- ops


def assert_fast_matches_plain(fast_out, plain_out, dtype, values_bitwise: bool,
                              float64_bitwise: bool = True):  # fmt: skip
    """Gradients bit for bit (the same arithmetic on the same sigmoid); values bit for bit in
    float64 (unless float64_bitwise is False) and where asked, else within 8 eps relative or
    8 eps times the largest value."""
    (fv, fg), (pv, pg) = fast_out, plain_out
    assert fv.shape == pv.shape and fv.dtype == pv.dtype
    if values_bitwise or (dtype == "float64" and float64_bitwise):
        np.testing.assert_array_equal(fv.numpy(), pv.numpy())
    else:
        eps = np.finfo(dtype).eps
        scale = float(np.abs(pv.numpy()).max())
        np.testing.assert_allclose(fv.numpy(), pv.numpy(), rtol=8 * eps, atol=8 * eps * scale)
    for a, b in zip(fg, pg):
        if b is not None:
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fast_softplus_matches_the_plain_op(dtype):
    x = logits_and_targets(dtype)[0]
    f, p = run_op(ops.softplus, True, dtype, x), run_op(ops.softplus, False, dtype, x)
    assert_fast_matches_plain(f, p, dtype, values_bitwise=False)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fast_bernoulli_log_prob_matches_the_plain_op_and_the_composition(dtype):
    logits, x = logits_and_targets(dtype)  # (L, B, D) logits, x (B, D) broadcast over L
    f = run_op(ops.bernoulli_log_prob, True, dtype, logits, x)
    p = run_op(ops.bernoulli_log_prob, False, dtype, logits, x)
    assert f[0].shape == (3, 16, 20)
    assert_fast_matches_plain(f, p, dtype, values_bitwise=False)
    # and both are x l - softplus(l) built from the plain ops
    comp = run_op(lambda l, t: t * l - ops.softplus(l), False, dtype, logits, x)
    tol = 1e-6 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(f[0].numpy(), comp[0].numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(f[1][0], comp[1][0], rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("grad", [True, False], ids=["training", "no-grad"])
def test_fast_bernoulli_log_likelihood_matches_the_plain_op(dtype, grad):
    """Values within 8 eps in both dtypes (each row's log terms are summed as logs of
    products), gradients bit for bit; without gradients the sums run over blocks."""
    logits, x = logits_and_targets(dtype)
    f = run_op(ops.bernoulli_log_likelihood, True, dtype, logits, x, grad=grad)
    p = run_op(ops.bernoulli_log_likelihood, False, dtype, logits, x, grad=grad)
    assert f[0].shape == (3, 16)
    assert_fast_matches_plain(f, p, dtype, values_bitwise=False, float64_bitwise=False)


@pytest.mark.parametrize("shape", [(700, 300), (40, 700, 300), (5, 2, 30)])
def test_blockwise_bernoulli_likelihood_matches_the_plain_sum(shape, monkeypatch):
    """Without gradients the fast per-example likelihood runs in blocks (many here, the last one
    ragged); the sums agree with the plain op's to 1e-12 relative in float64."""
    monkeypatch.setattr(fast, "BLOCK_ELEMENTS", 4096)
    rng = np.random.default_rng(2)
    logits = rng.normal(size=shape) * 5
    x = (rng.random(shape[-2:]) < 0.3).astype(np.float64)
    with mv.set_default_dtype("float64"), mv.no_grad():
        with fast.set_enabled(True):
            blocks = ops.bernoulli_log_likelihood(logits, x)
        with fast.set_enabled(False):
            plain = ops.bernoulli_log_likelihood(logits, x)
            elementwise_sum = ops.bernoulli_log_prob(logits, x).sum(axis=-1)
    assert blocks.shape == plain.shape == shape[:-1]
    np.testing.assert_allclose(blocks.numpy(), plain.numpy(), rtol=1e-12)
    np.testing.assert_allclose(plain.numpy(), elementwise_sum.numpy(), rtol=1e-12)


def test_both_likelihoods_name_the_shapes_that_do_not_fit():
    for flag in (True, False):
        message = r"logits of shape \(3, 5\) do not end with the shape of x \(3, 4\)"
        with fast.set_enabled(flag), pytest.raises(ValueError, match=message):
            ops.bernoulli_log_likelihood(np.zeros((3, 5)), np.zeros((3, 4)))


# ----------------------------------------------------------------------------- Adam


def adam_problem(dtype, steps=20):
    """Start weights for three arrays and a gradient per step, of mixed scales (1e-3 to 10)."""
    rng = np.random.default_rng(0)
    shapes = [(300, 50), (50,), (7, 3)]
    start = [rng.normal(size=s).astype(dtype) for s in shapes]
    grads = [[(rng.normal(size=s) * rng.choice([1e-3, 1.0, 10.0])).astype(dtype) for s in shapes]
             for _ in range(steps)]  # fmt: skip
    return start, grads


def adam_steps(opt, params, grads):
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = g
        opt.step()
    return [p.numpy() for p in params]


def adam_run(flag: bool, dtype, steps=20):
    """Adam (fast or plain) over adam_problem: the weights after the steps and the optimizer."""
    start, grads = adam_problem(dtype, steps)
    params = [Tensor(a.copy(), requires_grad=True) for a in start]
    with fast.set_enabled(flag):
        opt = optim.Adam(params, lr=1e-2)
    return adam_steps(opt, params, grads), opt


@pytest.mark.parametrize("dtype", DTYPES)
def test_fast_adam_matches_the_plain_adam(dtype):
    """20 steps: the weights (of order 1) within 8 eps of each other (2 eps measured), and the
    decayed sums the fast one keeps are the plain moments: m = (1 - b1) M, v = (1 - b2) V."""
    (wf, of), (wp, op) = adam_run(True, dtype), adam_run(False, dtype)
    assert type(of) is fast.Adam and type(op) is optim.Adam
    eps = np.finfo(dtype).eps
    for a, b in zip(wf, wp):
        assert a.dtype == b.dtype == np.dtype(dtype)
        np.testing.assert_allclose(a, b, rtol=0, atol=8 * eps * max(1.0, float(np.abs(b).max())))
    assert not np.allclose(wf[0], adam_run(True, dtype, steps=0)[0][0])  # they moved
    for M, m in zip(of.g_sum, op.m):  # m can cancel to near 0: measure against its array's scale
        scale = float(np.abs(m).max())
        np.testing.assert_allclose((1 - of.b1) * M, m, rtol=0, atol=64 * eps * scale)
    for V, v in zip(of.g2_sum, op.v):
        np.testing.assert_allclose((1 - of.b2) * V, v, rtol=16 * eps, atol=0)


def test_adam_state_moves_between_the_fast_and_the_plain_version():
    """A state dict saved by one loads into the other (m = (1 - b1) M) and training goes on as
    in the run that did not switch: the weights (of order 1) within 8 eps in float64."""
    _, grads = adam_problem("float64", steps=6)
    for saver, loader in ((True, False), (False, True)):
        straight, _ = adam_run(saver, "float64", steps=6)
        weights, opt = adam_run(saver, "float64", steps=3)
        state = opt.state_dict()
        assert ("state.g_sum.0" in state) == saver and ("state.m.0" in state) == (not saver)
        params = [Tensor(w.copy(), requires_grad=True) for w in weights]
        with fast.set_enabled(loader):
            other = optim.Adam(params, lr=1e-2)
        assert type(other) is (fast.Adam if loader else optim.Adam)
        other.load_state_dict(state)
        assert other.steps == 3
        for a, b in zip(adam_steps(other, params, grads[3:]), straight):
            atol = 8 * np.finfo(np.float64).eps * max(1.0, np.abs(b).max())
            np.testing.assert_allclose(a, b, rtol=0, atol=atol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_adam_zeroes_a_first_moment_that_decays_below_the_normal_range(dtype, monkeypatch):
    """After one gradient and then zeros, M = b1^t g decays by 0.9 a step and would sit among
    the subnormal numbers (slow arithmetic) for about 150 steps; fast Adam sets it to 0 instead
    at its next flush (every FLUSH_EVERY steps), and the weights come out bit for bit as those
    of the same steps without the flush."""
    tiny = np.finfo(dtype).tiny
    below = int(np.ceil(np.log(tiny / 1e-3) / np.log(0.9))) + 5  # M(1e-3) is below tiny by then
    every = fast.FLUSH_EVERY
    steps = (below // every + 1) * every - 1  # the first step and these end on a flush

    def train():
        w = Tensor(np.array([0.5, 1.0, -1.0], dtype=dtype), requires_grad=True)
        opt = fast.Adam([w], lr=1e-3)
        w.grad = np.array([1e-3, 0.0, 2.0], dtype=dtype)
        opt.step()
        for _ in range(steps):
            w.grad = np.zeros(3, dtype=dtype)
            opt.step()
        return w.numpy(), opt.g_sum[0].copy()

    w, m = train()
    with monkeypatch.context() as patch:
        patch.setattr(fast, "flush_subnormal", lambda a, tmp, mask: None)
        plain_w, plain_m = train()
    assert 0.0 < plain_m[0] < tiny and m[0] == 0.0  # subnormal without the flush, 0 with it
    assert m[2] == plain_m[2] >= tiny  # a moment that is still normal is kept as it is
    assert not np.any((m != 0) & (np.abs(m) < tiny))
    np.testing.assert_array_equal(w, plain_w)


def test_flush_subnormal_keeps_normal_numbers_and_zeros_only_subnormal_ones():
    a = np.array([1.0, -1e-30, 1e-39, -1e-40, 0.0, 2e-38], dtype=np.float32)  # tiny = 1.18e-38
    fast.flush_subnormal(a, np.empty_like(a), np.empty(a.shape, dtype=bool))
    np.testing.assert_array_equal(a, np.array([1.0, -1e-30, 0.0, 0.0, 0.0, 2e-38], np.float32))


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_on_decayed_sums_over_blocks_is_bit_identical_to_whole_arrays(dtype):
    """The kernel is elementwise, so running it block by block (as benchmarks/elementwise.py
    does for its "blocks vs whole arrays" row) changes no bit."""
    rng = np.random.default_rng(5)
    w, g = rng.normal(size=(2, 10000)).astype(dtype)
    state = [w.copy(), np.zeros_like(w), np.zeros_like(w)]
    blocks = [w.copy(), np.zeros_like(w), np.zeros_like(w)]
    constants = (0.9, 0.999, 1e-3, 1e-8)  # b1, b2, step, eps
    for _ in range(3):
        fast.adam_on_decayed_sums(*state[:1], g, *state[1:], np.empty_like(w), *constants)
        for s in range(0, w.size, 4096):
            part = slice(s, s + 4096)
            w_part, m_part, v_part = (a[part] for a in blocks)
            tmp = np.empty_like(w_part)
            fast.adam_on_decayed_sums(w_part, g[part], m_part, v_part, tmp, *constants)
    assert not np.array_equal(state[0], w)
    for a, b in zip(state, blocks):
        np.testing.assert_array_equal(a, b)


def test_fast_adam_flushes_every_flush_every_steps_and_only_then():
    """A subnormal first moment stays until the step count is a multiple of FLUSH_EVERY,
    then is 0; the normal entries are never touched."""
    every = fast.FLUSH_EVERY
    assert every > 1
    w = Tensor(np.array([0.5, 1.0], dtype=np.float32), requires_grad=True)
    opt = fast.Adam([w], lr=1e-3)
    w.grad = np.zeros(2, dtype=np.float32)
    opt.g_sum[0][...] = np.array([1e-39, 1e-3], dtype=np.float32)  # a subnormal M, a normal one
    normal = np.float32(1e-3)
    for step in range(1, 2 * every + 1):
        opt.step()
        m = opt.g_sum[0]
        if step < every:
            assert 0.0 < m[0] < np.finfo(np.float32).tiny, step  # not flushed yet
        else:
            assert m[0] == 0.0, step  # flushed at step FLUSH_EVERY, and 0 stays 0
        normal = normal * np.float32(0.9)  # M <- b1 M + 0, in float32
        assert m[1] == normal, step  # untouched by the flush
