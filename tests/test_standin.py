"""The CuPy code path without a GPU: the stand-in itself, the library on the device, and transfers.

Three parts:
1. tests/fake_cupy.py is strict where CuPy is (implicit conversion to NumPy, host arrays
   mixed into device work, its own random generator, only the API minivae calls), and
   counts every host <-> device crossing.
2. The library on the device: training, optimizers, checkpoints, metrics, data and the
   command line, each through the ``device`` fixture, so these run on the cpu always, on
   the stand-in with ``--gpu-standin``, and on CuPy where a GPU is present.
3. What a training step moves between host and device, counted on the stand-in (these
   install it themselves and run in every pass): the numbers are the ones measured when
   the tests were written; a new crossing fails them and names the line that made it.

The stand-in checks the CuPy code path's discipline; it is not a GPU and says nothing
about CUDA's numerics or speed.
"""

from __future__ import annotations

import json
import math
from collections import Counter

import fake_cupy as cp
import numpy as np
import pytest
from conftest import GPU_SKIP_REASON, gpu_available
from lesson_loader import LESSONS, run_script

import minivae as mv
from minivae import backend as B
from minivae import data as D
from minivae import metrics, ops
from minivae.checkpoint import load_model, save_checkpoint
from minivae.cli import main as cli_main
from minivae.data import Batch
from minivae.gradcheck import assert_gradcheck
from minivae.models import build_model
from minivae.optim import OPTIMIZERS, clip_grad_norm
from minivae.train import TrainConfig, train


@pytest.fixture
def transfers():
    """The stand-in's transfer counts, zeroed."""
    cp.transfers.reset()
    return cp.transfers


@pytest.fixture
def standin(transfers):
    """The backend's gpu on the stand-in, whatever the pass; yields the zeroed transfer counts."""
    with B.use_gpu_module(cp, cp.cupyx), B.set_device("gpu"):
        transfers.reset()
        yield transfers


def device_array(values, dtype=np.float64):
    return cp.asarray(np.asarray(values, dtype=dtype))


# ============================================================================ 1. the stand-in


def test_implicit_conversion_to_numpy_is_refused_as_cupy_refuses_it():
    d = device_array([[1.0, 2.0], [3.0, 4.0]])
    for convert in (np.asarray, np.array, lambda a: a.__array__()):
        with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
            convert(d)


@pytest.mark.parametrize(
    "call",
    [
        lambda d, h: np.exp(d),  # a NumPy ufunc on a device array
        lambda d, h: np.add(d, h),  # ... mixing in a host array
        lambda d, h: d + h,  # an operator with a host array on either side
        lambda d, h: h * d,
        lambda d, h: np.concatenate([d, h]),  # a NumPy function
        lambda d, h: np.sum(d),
        lambda d, h: cp.exp(h),  # the device module on a host array
        lambda d, h: cp.concatenate([d, h]),
        lambda d, h: cp.exp([1.0, 2.0]),  # a list where CuPy wants an array
    ],
    ids=["np-ufunc", "np-ufunc-mixed", "op-host-right", "op-host-left", "np-function-mixed",
         "np-function", "cp-ufunc-host", "cp-function-host", "cp-ufunc-list"],
)  # fmt: skip
def test_device_and_host_arrays_do_not_mix(call):
    with pytest.raises(TypeError):
        call(device_array([1.0, 2.0]), np.array([3.0, 4.0]))


def test_scalars_mix_freely_and_results_stay_on_the_device(transfers):
    d = device_array([1.0, 2.0], np.float32)
    for out in (np.float32(2) * d, d * np.float64(3), 2.0 * d, d / 2, -d, abs(d), d**2):
        assert isinstance(out, cp.ndarray) and out.shape == (2,)
    assert (np.float32(2) * d).dtype == np.float32
    assert cp.asnumpy(np.float32(2) * d).tolist() == [2.0, 4.0]


def test_reductions_and_indexing_give_0d_device_arrays_like_cupy(transfers):
    d = device_array([[1.0, 5.0], [3.0, 4.0]])
    transfers.reset()
    for out in (d.sum(), d.max(), d[0, 1], cp.argmax(d), d.mean(axis=None)):
        assert isinstance(out, cp.ndarray) and out.ndim == 0
    assert isinstance(d[0], cp.ndarray) and d[0].shape == (2,)
    assert transfers.total == 0


def test_reading_one_value_is_allowed_and_counted(transfers):
    d = device_array([[1.5, 2.0]])
    transfers.reset()
    assert float(d[0, 0]) == 1.5 and int(d[0, 1]) == 2 and bool(d[0, 0] > 1)
    assert d[0, 0].item() == 1.5 and f"{d.sum():.1f}" == "3.5"
    assert transfers.counts == {"scalar": 5}
    with pytest.raises(ValueError, match="ambiguous"):
        bool(d > 0)
    with pytest.raises(TypeError, match="one element"):
        float(d)


def test_transfers_go_through_asarray_and_asnumpy_and_are_counted(transfers):
    host = np.arange(6.0).reshape(2, 3)
    d = cp.asarray(host)
    assert transfers.counts == {"to_device": 1}
    host[0, 0] = 99.0  # the device holds a copy
    assert cp.asarray(d) is d and transfers.counts == {"to_device": 1}  # already there
    back = cp.asnumpy(d)
    assert isinstance(back, np.ndarray) and back[0, 0] == 0.0
    assert isinstance(d.get(), np.ndarray)
    assert transfers.counts == {"to_device": 1, "to_host": 2}
    d[np.array([0, 1])]  # a host index array is copied over
    d[d > 2]  # a boolean mask: CuPy reads the number of hits back
    assert transfers.counts == {"to_device": 2, "to_host": 2, "sync": 1}
    event = transfers.events[0]
    assert event.kind == "to_device" and event.file.endswith("test_standin.py")
    assert event.function == "test_transfers_go_through_asarray_and_asnumpy_and_are_counted"


def test_in_place_operations_and_out_keep_the_device_array(transfers):
    a = device_array([1.0, -2.0])
    same = a
    a += 1.0
    a *= device_array([2.0, 2.0])
    assert a is same and cp.asnumpy(a).tolist() == [4.0, -2.0]
    out = cp.empty_like(a)
    assert cp.multiply(a, a, out=out) is out and cp.asnumpy(out).tolist() == [16.0, 4.0]
    mask = cp.empty((2,), dtype=bool)
    cp.less(a, 0.0, out=mask)
    cp.copyto(a, 0, where=mask)
    assert cp.asnumpy(a).tolist() == [4.0, 0.0]


def test_scatter_add_adds_repeated_indices():
    target = cp.zeros(3)
    cp.cupyx.scatter_add(target, device_array([0, 2, 0], np.int64), device_array([1.0, 2.0, 3.0]))
    assert cp.asnumpy(target).tolist() == [4.0, 0.0, 2.0]


def test_only_the_api_minivae_calls_is_there():
    with pytest.raises(AttributeError, match=r"cupy\.fft is not in the CuPy stand-in"):
        cp.fft  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'tofile'"):
        device_array([1.0]).tofile  # noqa: B018


def test_figures_refuse_device_arrays_by_name_as_they_refuse_cupys(tmp_path):
    from minivae import plots

    with pytest.raises(ValueError, match="convert tensors and GPU arrays first"):
        plots.image_grid(cp.zeros((4, 784)), tmp_path / "grid.png", "device images")


def test_the_device_generator_is_cupys_not_numpys():
    draws = cp.random.default_rng(0).standard_normal((4,), dtype=np.float32)
    assert isinstance(draws, cp.ndarray) and draws.dtype == np.float32
    again = cp.random.default_rng(0).standard_normal((4,), dtype=np.float32)
    assert cp.asnumpy(draws).tolist() == cp.asnumpy(again).tolist()  # seeded
    numpys = np.random.default_rng(0).standard_normal(4, dtype=np.float32)
    assert not np.array_equal(cp.asnumpy(draws), numpys)  # a bit stream of its own
    gen = cp.random.default_rng(0)
    for missing in ("normal", "permutation", "choice", "shuffle"):  # not in CuPy's Generator
        with pytest.raises(AttributeError, match=missing):
            getattr(gen, missing)
    with pytest.raises(TypeError, match="Unsupported dtype int64"):
        gen.standard_normal((2,), dtype=np.int64)


# ============================================================================ 2. on the device

TINY = {"latent": 2, "hidden": [16]}


# M2 draws one labelled example per class from the training rows: enough rows for that
ROWS_PER_STEP = {"m2": 40}


def tiny_config(kind: str, steps: int = 2, batch: int = 8, **changes) -> TrainConfig:
    """A run of ``steps`` steps of ``batch`` on the built-in Fashion-MNIST subset, 8 held out."""
    settings = {"model": {"kind": kind, **TINY}, "dataset": "fashion-mnist-builtin", "epochs": 1,
                "batch_size": batch, "n_val": 8, "limit_train": batch * steps + 8, "n_labelled": 10,
                "labelled_batch_size": 5, "progress": False}  # fmt: skip
    return TrainConfig(**{**settings, **changes})


@pytest.mark.parametrize("kind", ["ae", "vae", "cvae", "m2"])
def test_training_checkpoints_and_resuming_run_on_the_device(device, kind, tmp_path):
    rows = {"batch": ROWS_PER_STEP.get(kind, 8)}
    history = train(tiny_config(kind, epochs=2, **rows), tmp_path, log=lambda *a: None)
    assert len(history) == 2 and all(math.isfinite(v) for v in history[-1].values())
    more = train(tiny_config(kind, epochs=3, **rows), tmp_path, resume=True, log=lambda *a: None)
    assert [row["epoch"] for row in more] == [1, 2, 3]
    model, meta = load_model(tmp_path / "checkpoint.npz", expect_kind=kind)
    assert meta["epoch"] == 3
    assert all(B.array_device(p.data) == device for p in model.parameters())


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizers_step_on_the_device_as_on_the_cpu(device, name):
    """Three steps with clipping from the same weights and gradients: the cpu's numbers."""
    gen = np.random.default_rng(1)
    w0, grads = gen.standard_normal((3, 4)), [gen.standard_normal((3, 4)) for _ in range(3)]

    def run():
        w = mv.Tensor(B.from_numpy(w0), requires_grad=True)
        opt = OPTIMIZERS[name]([w], lr=0.1)
        for g in grads:
            w.grad = B.from_numpy(g)
            clip_grad_norm([w], 2.0)
            opt.step()
        state = opt.state_dict()
        again = OPTIMIZERS[name]([mv.Tensor(B.from_numpy(w0), requires_grad=True)], lr=0.1)
        again.load_state_dict(state)  # host arrays back onto the device
        assert all(B.array_device(a) == B.get_device() for a in again.state_arrays().values())
        return B.to_numpy(w.data), state

    with B.set_default_dtype("float64"):
        w_here, state_here = run()
        with B.set_device("cpu"):
            w_cpu, state_cpu = run()
    np.testing.assert_allclose(w_here, w_cpu, rtol=1e-10, atol=1e-12)
    assert state_here.keys() == state_cpu.keys()
    for key in state_cpu:
        np.testing.assert_allclose(state_here[key], state_cpu[key], rtol=1e-10, atol=1e-12, err_msg=key)


def builtin_batch(n: int = 6):
    ds = D.load_dataset("fashion-mnist-builtin", "train")
    return ds.images[:n], ds.labels[:n]


def test_metrics_sampling_and_data_helpers_on_the_device(device):
    images, labels = builtin_batch()
    x, y = B.from_numpy(images, dtype=B.get_default_dtype()), B.from_numpy(labels)
    B.manual_seed(0)
    vae = build_model({"kind": "vae", **TINY})
    m2 = build_model({"kind": "m2", **TINY})
    cvae = build_model({"kind": "cvae", **TINY})

    ll = metrics.importance_sampled_log_likelihood(vae, x, k=8, chunk=3)
    assert isinstance(ll, B.np.ndarray) and ll.shape == (6,) and np.isfinite(ll).all()
    bound = metrics.iwae_bound(vae, x, k=4)
    assert B.array_device(bound.data) == device and bound.shape == (6,)
    error = metrics.classification_error(m2, x, y, batch_size=4)
    assert 0.0 <= error <= 1.0
    assert 0 <= metrics.active_units(vae.encode(x)[0]) <= 2

    for sample in (vae.sample(5), cvae.sample(5, y=1), cvae.sample(4)):
        assert B.array_device(sample.data) == device and sample.shape[-1] == 784
    binary = D.binarize(x)
    assert B.array_device(binary) == device
    assert set(np.unique(B.to_numpy(binary))) <= {0.0, 1.0}
    fixed = D.binarize_fixed(x, seed=3)
    assert B.array_device(fixed) == device
    np.testing.assert_array_equal(B.to_numpy(fixed), D.binarize_fixed(images, seed=3))
    xb, yb = next(D.batches(images, 4, labels, rng=np.random.default_rng(0)))
    assert B.array_device(xb) == device and yb.dtype == np.int64


def test_checkpoints_move_weights_between_host_and_device(device, tmp_path):
    B.manual_seed(0)
    model = build_model({"kind": "cvae", **TINY})
    path = save_checkpoint(tmp_path / "m.npz", model)
    again, _ = load_model(path)
    for (name, p), q in zip(model.named_parameters(), again.parameters()):
        assert B.array_device(q.data) == device, name
        np.testing.assert_array_equal(B.to_numpy(p.data), B.to_numpy(q.data), err_msg=name)


def test_gradcheck_runs_on_the_device(device):
    with B.set_default_dtype("float64"):
        x = mv.Tensor(B.from_numpy(np.linspace(-1.0, 1.0, 6).reshape(2, 3)), requires_grad=True)
        assert_gradcheck(lambda t: ops.tanh(t) * t, [x])  # full Jacobian
        big = mv.Tensor(B.from_numpy(np.linspace(-1.0, 1.0, 600).reshape(20, 30)), requires_grad=True)
        assert_gradcheck(lambda t: (ops.tanh(t) * t).sum(axis=1), [big])  # projections


def test_the_command_line_trains_evaluates_and_samples_on_the_device(device, tmp_path, capsys):
    common = ["--device", device]
    code = cli_main(["train", "m2", "--dataset", "fashion-mnist-builtin", "--hidden", "16",
                     "--latent", "2", "--epochs", "1", "--batch-size", "20", "--n-val", "20",
                     "--limit-train", "80", "--labels", "10", "--out", str(tmp_path),
                     "--name", "run", "--no-progress", *common])  # fmt: skip
    assert code == 0
    ckpt = str(tmp_path / "run" / "checkpoint.npz")
    capsys.readouterr()
    assert cli_main(["eval", ckpt, "--nll-samples", "3", "--limit", "30", *common]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["n_examples"] == 30 and math.isfinite(out["test_nll_k3"])
    assert 0.0 <= out["test_error"] <= 1.0
    target = tmp_path / "s.png"
    assert cli_main(["sample", ckpt, "-n", "6", "--label", "2", "--out", str(target), *common]) == 0
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow  # minutes on the stand-in: python -m pytest --gpu-standin -m "gpu and slow"
@pytest.mark.gpu
@pytest.mark.parametrize("filename", sorted(p.name for p in LESSONS.glob("[0-9][0-9]_*.py")))
def test_every_lesson_runs_quick_on_the_gpu(filename, tmp_path):
    if not gpu_available():
        pytest.skip(GPU_SKIP_REASON)
    folder, summary, _, _ = run_script(tmp_path, filename, "--device", "gpu",
                                      "--dataset", "fashion-mnist-builtin", "--no-progress")  # fmt: skip
    assert summary["quick"] is True and len(summary) > 5
    assert any(folder.glob("*.png")), f"{filename} drew no figure"


# ============================================================================ 3. transfers

# Where the loop and the models read numbers only to log them (float(loss), the terms): these
# reads are the logging the issue allows; every other crossing inside a step is counted.
LOGGING = {
    ("minivae/train.py", "train"),  # value = float(loss.data): logged, and checked for NaN
    ("minivae/models/common.py", "_mean"),  # scalar_stats: each term as a Python float
    ("minivae/models/common.py", "semi_supervised_loss"),  # the same for M2's terms
    ("minivae/models/common.py", "<genexpr>"),
}


def is_logging(event) -> bool:
    return event.kind == "scalar" and (event.file, event.function) in LOGGING


def per_step(events_short, events_long, extra_steps: int) -> tuple[Counter, Counter]:
    """(non-logging, logging) crossings per step: the difference of two runs over the extra steps."""
    counts = []
    for events in (events_short, events_long):
        counts.append(Counter(((e.kind, e.file, e.function), is_logging(e)) for e in events))
    short, long = counts
    step, logging = Counter(), Counter()
    for key in set(short) | set(long):
        n, rem = divmod(long[key] - short[key], extra_steps)
        assert rem == 0, f"{key}: {long[key] - short[key]} crossings over {extra_steps} steps"
        if n:
            (logging if key[1] else step)[key[0]] = n
    return step, logging


def train_events(transfers, kind: str, steps: int, tmp_path) -> list:
    transfers.reset()
    config = tiny_config(kind, steps=steps, batch=ROWS_PER_STEP.get(kind, 8))
    train(config, tmp_path / f"{kind}{steps}", log=lambda *a: None)
    return list(transfers.events)


def show(counter: Counter) -> str:
    return "; ".join(f"{n} x {kind} at {file} ({fn})" for (kind, file, fn), n in sorted(counter.items()))


# Measured per training step of train() on the stand-in. The one crossing of a VAE step is
# its minibatch: the training set stays on the host, where it is shuffled and binarized
# each epoch. M2's step moves its two minibatches and the labels, reads the labels' range
# once per check (five label checks in the model, one in cross_entropy: a bad label must be
# an error, not a silent wrap-around on the GPU) and reads back how many (class, example)
# pairs the fast sum over y keeps (B.xp.nonzero).
PER_STEP = {
    "vae": {("to_device", "minivae/data.py", "to_device"): 1},
    "ae": {("to_device", "minivae/data.py", "to_device"): 1},
    "cvae": {("to_device", "minivae/data.py", "to_device"): 2,
             ("scalar", "minivae/models/common.py", "check_labels"): 3},
    "m2": {("to_device", "minivae/data.py", "to_device"): 3,
           ("scalar", "minivae/models/common.py", "check_labels"): 5,
           ("scalar", "minivae/ops/losses.py", "forward"): 1,
           ("sync", "minivae/models/m2.py", "_expected_over_kept_classes"): 1},
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(PER_STEP))
def test_a_training_step_moves_only_its_minibatch_and_the_counted_checks(standin, kind, tmp_path):
    step, logging = per_step(train_events(standin, kind, 2, tmp_path),
                             train_events(standin, kind, 4, tmp_path), extra_steps=2)  # fmt: skip
    assert step == Counter(PER_STEP[kind]), (
        f"{kind}: per step {show(step)}; measured when this test was written: "
        f"{show(Counter(PER_STEP[kind]))}"
    )
    # logging: float(loss) and one read per loss term, all single numbers
    assert 1 <= sum(logging.values()) <= 11 and {k[0] for k in logging} == {"scalar"}, show(logging)


def test_a_vae_step_on_device_data_crosses_only_to_log(standin):
    """Model, loss, backward, clipping and Adam on a batch already on the device: the loss
    terms read as Python floats and the gradient norm, nothing else."""
    B.manual_seed(0)
    model = build_model({"kind": "vae", **TINY})  # relu, He init: standard_normal on the device
    optimizer = OPTIMIZERS["adam"](model.parameters(), lr=1e-3)
    x = (cp.random.default_rng(1).random((8, 784), dtype=np.float32) < 0.5).astype(np.float32)
    for _ in range(2):
        standin.reset()
        loss, terms = model.loss(Batch(x))
        optimizer.zero_grad()
        loss.backward()
        clip_grad_norm(model.parameters(), 1e6)
        optimizer.step()
        crossings = [e for e in standin.events if not is_logging(e)]
        # clip_grad_norm reads the global gradient norm: one number, to decide whether to scale
        assert [(e.kind, e.function) for e in crossings] == [("scalar", "clip_grad_norm")], (
            "\n".join(map(str, crossings))
        )
        assert len(standin.events) - len(crossings) == len(terms)
