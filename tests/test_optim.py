"""Optimizers against their formulas written out by hand, clipping, and optimizer state dicts."""

from __future__ import annotations

import numpy as np
import pytest

import minivae as mv
from minivae import optim
from minivae.tensor import Tensor

W0 = np.array([[0.5, -1.0], [2.0, 0.25]])
GRADS = [  # the gradient handed to the optimizer at steps 1, 2, 3
    np.array([[0.1, -0.2], [0.3, 0.0]]),
    np.array([[-0.4, 0.5], [0.05, 1.0]]),
    np.array([[0.2, 0.2], [-0.3, -0.1]]),
]


def param(values=W0):
    return Tensor(np.array(values, dtype=np.float64), requires_grad=True)


def run(opt, p, grads):
    for g in grads:
        p.grad = g.copy()
        opt.step()
    return p.numpy()


# ----------------------------------------------------------------------------- by hand


def test_adam_one_and_two_steps_by_hand():
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    p = param()
    opt = optim.Adam([p], lr=lr, betas=(b1, b2), eps=eps)
    g1, g2 = GRADS[0], GRADS[1]
    # step 1
    m = (1 - b1) * g1
    v = (1 - b2) * g1**2
    m_hat, v_hat = m / (1 - b1**1), v / (1 - b2**1)
    w1 = W0 - lr * m_hat / (np.sqrt(v_hat) + eps)
    np.testing.assert_allclose(run(opt, p, [g1]), w1, rtol=1e-14, atol=1e-16)
    # the first Adam step moves each weight by about lr * sign(g)
    np.testing.assert_allclose(np.abs(w1 - W0)[g1 != 0], lr, rtol=1e-5)
    # step 2
    m = b1 * m + (1 - b1) * g2
    v = b2 * v + (1 - b2) * g2**2
    m_hat, v_hat = m / (1 - b1**2), v / (1 - b2**2)
    w2 = w1 - lr * m_hat / (np.sqrt(v_hat) + eps)
    np.testing.assert_allclose(run(opt, p, [g2]), w2, rtol=1e-14, atol=1e-16)
    assert opt.steps == 2
    # the decayed sums it keeps are the moments up to (1 - b): m = (1 - b1) M, v = (1 - b2) V
    np.testing.assert_allclose(opt.m[0], m, rtol=1e-14)
    np.testing.assert_allclose(opt.v[0], v, rtol=1e-14)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_with_and_without_momentum_by_hand(momentum):
    lr = 0.1
    p = param()
    opt = optim.SGD([p], lr=lr, momentum=momentum)
    w, velocity = W0.copy(), np.zeros_like(W0)
    for g in GRADS:
        velocity = momentum * velocity + g  # v <- mu v + g
        w = w - lr * velocity  # w <- w - lr v
        np.testing.assert_allclose(run(opt, p, [g]), w, rtol=1e-14, atol=1e-16)


def test_adagrad_by_hand():
    lr, eps = 0.5, 1e-10
    p = param()
    opt = optim.Adagrad([p], lr=lr, eps=eps)
    w, sum_sq = W0.copy(), np.zeros_like(W0)
    for g in GRADS:
        sum_sq = sum_sq + g**2  # s <- s + g^2
        w = w - lr * g / (np.sqrt(sum_sq) + eps)  # w <- w - lr g / (sqrt(s) + eps)
        np.testing.assert_allclose(run(opt, p, [g]), w, rtol=1e-14, atol=1e-16)


def test_parameters_without_gradients_are_left_alone():
    a, b = param(), param()
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = GRADS[0].copy()
    opt.step()
    np.testing.assert_array_equal(b.numpy(), W0)
    assert not np.array_equal(a.numpy(), W0)


def test_float32_parameters_stay_float32():
    p = Tensor(W0.astype(np.float32), requires_grad=True)
    for cls in (optim.SGD, optim.Adam, optim.Adagrad):
        opt = cls([p], lr=0.01)
        p.grad = GRADS[0].astype(np.float32)
        opt.step()
        assert p.dtype == np.float32, cls.__name__


def test_zero_grad():
    a, b = param(), param()
    a.grad, b.grad = GRADS[0].copy(), GRADS[1].copy()
    opt = optim.SGD([a, b], lr=0.1)
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_optimizers_take_a_real_backward():
    with mv.set_default_dtype("float64"):
        p = param()
        opt = optim.SGD([p], lr=0.25)
        for _ in range(3):
            opt.zero_grad()
            ((p * p).sum() * 0.5).backward()  # gradient w
            opt.step()
    np.testing.assert_allclose(p.numpy(), W0 * 0.75**3, rtol=1e-14)


# ----------------------------------------------------------------------------- clipping


def test_clip_grad_norm_scales_to_max_norm_and_returns_the_norm_before():
    a, b = param([3.0, 0.0]), param([0.0, 0.0])
    a.grad, b.grad = np.array([3.0, 0.0]), np.array([4.0, 12.0])  # global norm 13
    norm = optim.clip_grad_norm([a, b], max_norm=6.5)
    assert norm == pytest.approx(13.0, rel=1e-15)
    np.testing.assert_allclose(a.grad, [1.5, 0.0], rtol=1e-10)
    np.testing.assert_allclose(b.grad, [2.0, 6.0], rtol=1e-10)
    after = np.sqrt((a.grad**2).sum() + (b.grad**2).sum())
    assert after == pytest.approx(6.5, rel=1e-10)


def test_clip_grad_norm_leaves_small_gradients_and_shared_arrays_alone():
    a, b, c = param([1.0, 1.0]), param([1.0, 1.0]), param([1.0, 1.0])
    small = np.array([0.3, 0.4])
    a.grad = small
    assert optim.clip_grad_norm([a, c], max_norm=1.0) == pytest.approx(0.5)
    assert a.grad is small and c.grad is None
    shared = np.array([3.0, 4.0])  # a + b hands both the same gradient array
    a.grad = b.grad = shared
    norm = optim.clip_grad_norm([a, b], max_norm=1.0)
    assert norm == pytest.approx(np.sqrt(50.0))
    np.testing.assert_array_equal(shared, [3.0, 4.0])  # not scaled in place (nor twice)
    np.testing.assert_allclose(a.grad, shared / np.sqrt(50.0), rtol=1e-10)
    np.testing.assert_allclose(b.grad, shared / np.sqrt(50.0), rtol=1e-10)
    with pytest.raises(ValueError, match="max_norm must be positive"):
        optim.clip_grad_norm([a], max_norm=0.0)


def test_clip_after_a_real_backward_with_shared_gradients():
    with mv.set_default_dtype("float64"):
        a, b = param([[3.0, 4.0]]), param([[0.0, 0.0]])
        ((a + b) * 10.0).sum().backward()  # both get gradient 10
    assert optim.clip_grad_norm([a, b], max_norm=1.0) == pytest.approx(20.0)
    np.testing.assert_allclose(a.grad, 0.5, rtol=1e-10)
    np.testing.assert_allclose(b.grad, 0.5, rtol=1e-10)


# ----------------------------------------------------------------------------- state dicts


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: optim.Adam(ps, lr=0.05),
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
        lambda ps: optim.SGD(ps, lr=0.1),
        lambda ps: optim.Adagrad(ps, lr=0.3),
    ],
    ids=["adam", "sgd-momentum", "sgd", "adagrad"],
)
def test_optimizer_state_dict_round_trip_continues_identically(make):
    p = param()
    opt = make([p])
    run(opt, p, GRADS[:2])
    saved_w, saved_opt = p.numpy().copy(), opt.state_dict()
    expected = run(opt, p, GRADS[2:] + GRADS[:1])  # the original goes on
    assert saved_opt["steps"] == 2
    # a fresh parameter and optimizer, loaded, go on identically
    q = param(saved_w)
    fresh = make([q])
    fresh.load_state_dict(saved_opt)
    assert fresh.steps == 2
    np.testing.assert_array_equal(run(fresh, q, GRADS[2:] + GRADS[:1]), expected)


def test_optimizer_state_dict_is_a_copy_and_checks_shapes():
    p = param()
    opt = optim.Adam([p], lr=0.05)
    run(opt, p, GRADS[:1])
    state = opt.state_dict()
    m_before = state["state.g_sum.0"].copy()
    run(opt, p, GRADS[1:2])
    np.testing.assert_array_equal(state["state.g_sum.0"], m_before)  # later steps do not leak in
    other = optim.Adam([param(np.zeros(3))], lr=0.05)
    with pytest.raises(ValueError, match=r"state\.g_sum\.0 is missing or has the wrong shape"):
        other.load_state_dict(state)


# ----------------------------------------------------------------------------- bad settings


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: optim.SGD(p, lr=0.0), "learning rate must be positive"),
        (lambda p: optim.Adam(p, lr=-1e-3), "learning rate must be positive"),
        (lambda p: optim.Adagrad(p, lr=float("nan")), "learning rate must be positive"),
        (lambda p: optim.Adam(p, betas=(1.0, 0.999)), r"betas must lie in \[0, 1\)"),
        (lambda p: optim.Adam(p, betas=(0.9, -0.1)), r"betas must lie in \[0, 1\)"),
        (lambda p: optim.SGD(p, momentum=1.0), r"momentum must be in \[0, 1\)"),
        (lambda p: optim.SGD(p, momentum=-0.5), r"momentum must be in \[0, 1\)"),
        (lambda p: optim.Adam([], lr=0.1), "got no parameters"),
    ],
    ids=["sgd-lr0", "adam-lr-neg", "adagrad-lr-nan", "beta1", "beta2", "momentum1", "momentum-neg",
         "no-params"],
)  # fmt: skip
def test_bad_settings_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make([param()])


# ----------------------------------------------------------------------------- subnormals


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_zeroes_a_first_moment_that_decays_below_the_normal_range(dtype, monkeypatch):
    """After one gradient and then zeros, M = b1^t g decays by 0.9 a step and would sit among
    the subnormal numbers (slow arithmetic) for about 150 steps; Adam sets it to 0 instead,
    and the weights come out bit for bit as those of the same steps without the flush."""
    tiny = np.finfo(dtype).tiny
    steps = int(np.ceil(np.log(tiny / 1e-3) / np.log(0.9))) + 5  # M(1e-3) is below tiny by then

    def train():
        w = Tensor(np.array([0.5, 1.0, -1.0], dtype=dtype), requires_grad=True)
        opt = optim.Adam([w], lr=1e-3)
        w.grad = np.array([1e-3, 0.0, 2.0], dtype=dtype)
        opt.step()
        for _ in range(steps):
            w.grad = np.zeros(3, dtype=dtype)
            opt.step()
        return w.numpy(), opt.g_sum[0].copy()

    w, m = train()
    with monkeypatch.context() as patch:
        patch.setattr(optim, "flush_subnormal", lambda a, tmp, mask: None)
        plain_w, plain_m = train()
    assert 0.0 < plain_m[0] < tiny and m[0] == 0.0  # subnormal without the flush, 0 with it
    assert m[2] == plain_m[2] >= tiny  # a moment that is still normal is kept as it is
    assert not np.any((m != 0) & (np.abs(m) < tiny))
    np.testing.assert_array_equal(w, plain_w)


def test_flush_subnormal_keeps_normal_numbers_and_zeros_only_subnormal_ones():
    a = np.array([1.0, -1e-30, 1e-39, -1e-40, 0.0, 2e-38], dtype=np.float32)  # tiny = 1.18e-38
    optim.flush_subnormal(a, np.empty_like(a), np.empty(a.shape, dtype=bool))
    np.testing.assert_array_equal(a, np.array([1.0, -1e-30, 0.0, 0.0, 0.0, 2e-38], np.float32))
