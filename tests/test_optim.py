"""Optimizers against their formulas written out by hand, clipping, and optimizer state dicts.

Tests that take ``fast_mode`` run twice: with the plain optimizers of minivae/optim.py and
with minivae.fast's Adam (tests/test_fast_paths.py holds the two against each other).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import minivae as mv
from minivae import fast, nn, optim
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


@pytest.fixture(params=[False, True], ids=["plain", "fast"])
def fast_mode(request, monkeypatch):
    """Runs a test with the plain optimizers (minivae.optim) and with minivae.fast's."""
    monkeypatch.setattr(fast, "enabled", request.param)
    return request.param


def moments(opt):
    """Adam's moments m, v: its own (plain), or (1 - b) times its decayed sums (fast)."""
    if isinstance(opt, fast.Adam):
        return [(1 - opt.b1) * a for a in opt.g_sum], [(1 - opt.b2) * a for a in opt.g2_sum]
    return opt.m, opt.v


# ----------------------------------------------------------------------------- by hand


def test_adam_one_and_two_steps_by_hand(fast_mode):
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    p = param()
    opt = optim.Adam([p], lr=lr, betas=(b1, b2), eps=eps)
    assert isinstance(opt, fast.Adam) == fast_mode
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
    # the moments it keeps (the fast one: as decayed sums M = m / (1 - b1), V = v / (1 - b2))
    np.testing.assert_allclose(moments(opt)[0][0], m, rtol=1e-14)
    np.testing.assert_allclose(moments(opt)[1][0], v, rtol=1e-14)


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


def test_plain_adam_matches_torch_over_three_steps():
    """tests/test_torch_oracle.py holds the library's Adam (the fast one by default) against
    PyTorch; this holds the plain update a learner reads in optim.py against it too."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    w0 = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(3)]
    ours, theirs = param(w0), torch.tensor(w0.copy(), requires_grad=True)
    with fast.set_enabled(False):
        opt = optim.Adam([ours], lr=0.05, betas=(0.8, 0.99), eps=1e-8)
    assert type(opt) is optim.Adam
    t_opt = torch.optim.Adam([theirs], lr=0.05, betas=(0.8, 0.99), eps=1e-8)
    for g in grads:
        ours.grad, theirs.grad = g.copy(), torch.from_numpy(g.copy())
        opt.step()
        t_opt.step()
        np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-12, atol=1e-14)
    assert not np.allclose(ours.numpy(), w0)


def test_parameters_without_gradients_are_left_alone(fast_mode):
    a, b = param(), param()
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = GRADS[0].copy()
    opt.step()
    np.testing.assert_array_equal(b.numpy(), W0)
    assert not np.array_equal(a.numpy(), W0)


def test_float32_parameters_stay_float32():
    p = Tensor(W0.astype(np.float32), requires_grad=True)
    for cls in (optim.SGD, optim.Adam, fast.Adam, optim.Adagrad):
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
def test_optimizer_state_dict_round_trip_continues_identically(make, fast_mode):
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


def test_optimizer_state_dict_is_a_copy_and_checks_shapes(fast_mode):
    key = "g_sum.0" if fast_mode else "m.0"  # fast Adam keeps decayed sums, the plain one moments
    p = param()
    opt = optim.Adam([p], lr=0.05)
    run(opt, p, GRADS[:1])
    state = opt.state_dict()
    m_before = state[f"state.{key}"].copy()
    run(opt, p, GRADS[1:2])
    np.testing.assert_array_equal(state[f"state.{key}"], m_before)  # later steps do not leak in
    other = optim.Adam([param(np.zeros(3))], lr=0.05)
    message = re.escape(f"state.{key} is missing or has the wrong shape")
    with pytest.raises(ValueError, match=message):
        other.load_state_dict(state)


# ----------------------------------------------------------------------------- bad settings


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: optim.SGD(p, lr=0.0), "learning rate must be a finite number > 0"),
        (lambda p: optim.Adam(p, lr=-1e-3), "learning rate must be a finite number > 0"),
        (lambda p: optim.Adagrad(p, lr=float("nan")), "learning rate must be a finite number > 0"),
        (lambda p: optim.Adam(p, lr=float("inf")), "learning rate must be a finite number > 0"),
        (lambda p: optim.Adam(p, lr="1e-3"), "learning rate must be a finite number > 0"),
        (lambda p: optim.Adam(p, eps=-1.0), "eps must be a finite number >= 0"),
        (lambda p: optim.Adam(p, betas=(0.9,)), r"betas is a pair \(b1, b2\)"),
        (lambda p: optim.SGD(p + p), "a parameter is listed twice"),
        (lambda p: optim.Adam(p, betas=(1.0, 0.999)), r"betas must lie in \[0, 1\)"),
        (lambda p: optim.Adam(p, betas=(0.9, -0.1)), r"betas must lie in \[0, 1\)"),
        (lambda p: optim.SGD(p, momentum=1.0), r"momentum must be in \[0, 1\)"),
        (lambda p: optim.SGD(p, momentum=-0.5), r"momentum must be in \[0, 1\)"),
        (lambda p: optim.Adam([], lr=0.1), "got no parameters"),
    ],
    ids=["sgd-lr0", "adam-lr-neg", "adagrad-lr-nan", "adam-lr-inf", "adam-lr-str", "adam-eps-neg",
         "betas-one", "duplicate", "beta1", "beta2", "momentum1", "momentum-neg", "no-params"],
)  # fmt: skip
def test_bad_settings_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make([param()])


def test_misuse_of_step_and_of_the_model_is_said():
    w = param()
    opt = optim.Adam([w], lr=1e-3)
    with pytest.raises(RuntimeError, match=r"no parameter has a gradient; call loss.backward\(\)"):
        opt.step()
    assert opt.steps == 0  # the bias correction's count did not move
    with pytest.raises(TypeError, match=r"Adam\(model.parameters\(\), ...\)"):
        optim.Adam(nn.Linear(2, 3))


@pytest.mark.parametrize("make", [optim.SGD, optim.Adam, optim.Adagrad])
def test_a_gradient_of_another_shape_set_by_hand_is_refused_before_any_update(make):
    """(1, 3) broadcasts onto a (2, 3) weight, so the update would run, wrongly."""
    w, b = param(np.ones((2, 3))), param(np.zeros(3))
    before = w.numpy().copy()
    opt = make([w, b], lr=0.1)
    w.grad, b.grad = np.ones((1, 3), dtype=w.dtype), np.ones(3, dtype=b.dtype)
    with pytest.raises(ValueError, match=r"parameter 0 has shape \(2, 3\) but its gradient "
                                         r"\(1, 3\)"):  # fmt: skip
        opt.step()
    np.testing.assert_array_equal(w.numpy(), before)
    assert opt.steps == 0


def test_a_numpy_learning_rate_is_a_learning_rate():
    assert optim.Adam([param()], lr=np.float32(1e-3)).lr == np.float32(1e-3)


def test_another_optimizers_state_is_refused():
    w = param()
    adam = optim.Adam([w], lr=1e-3)
    w.grad = np.ones_like(w.data)
    adam.step()
    with pytest.raises(ValueError, match="which this optimizer does not keep"):
        optim.SGD([param()], lr=0.1).load_state_dict(adam.state_dict())  # had taken its lr, steps
    momentum = optim.SGD([param()], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="state.velocity.0"):
        optim.Adagrad([param()]).load_state_dict(momentum.state_dict())
