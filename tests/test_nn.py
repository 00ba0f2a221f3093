"""Layers: Linear, initialisations, MLP structure, parameter names, state dicts, train/eval."""

from __future__ import annotations

import numpy as np
import pytest

import minivae as mv
from minivae import backend as B
from minivae import nn, ops
from minivae.gradcheck import gradcheck
from minivae.tensor import Tensor


class Model(nn.Module):
    """A parameter of its own, a child module, and a list of child modules."""

    def __init__(self):
        self.scale = Tensor(np.ones(2, dtype=B.get_default_dtype()), requires_grad=True)
        self.encoder = nn.MLP([3, 4, 2])
        self.heads = [nn.Linear(2, 1), nn.Linear(2, 2, bias=False)]
        self.constant = Tensor(np.zeros(2))  # not a parameter: no requires_grad

    def forward(self, x):
        h = self.encoder(x) * self.scale
        return ops.concatenate([head(h) for head in self.heads], axis=1)


# ----------------------------------------------------------------------------- Linear


def test_linear_shapes_dtype_and_forward():
    layer = nn.Linear(4, 3)
    assert layer.weight.shape == (4, 3) and layer.bias.shape == (3,)
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
    assert layer.weight.requires_grad and layer.bias.requires_grad
    np.testing.assert_array_equal(layer.bias.numpy(), 0.0)
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    y = layer(Tensor(x))
    assert y.shape == (5, 3) and y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), x @ layer.weight.numpy(), rtol=1e-6)
    with mv.set_default_dtype("float64"):
        assert nn.Linear(2, 2).weight.dtype == np.float64


def test_linear_without_bias():
    layer = nn.Linear(4, 3, bias=False)
    assert layer.bias is None
    assert [name for name, _ in layer.named_parameters()] == ["weight"]
    assert layer(Tensor(np.ones((2, 4), dtype=np.float32))).shape == (2, 3)


def test_linear_input_width_error():
    layer = nn.Linear(4, 3)
    with pytest.raises(ValueError) as info:
        layer(Tensor(np.zeros((5, 6), dtype=np.float32)))
    assert str(info.value) == "Linear(4, 3): input has 6 features (shape (5, 6)), expected 4"


def test_linear_refuses_bad_sizes_and_inits():
    with pytest.raises(ValueError, match="sizes must be positive"):
        nn.Linear(0, 3)
    with pytest.raises(ValueError, match="unknown init 'lecun': choose one of he, xavier, uniform"):
        nn.Linear(2, 3, init="lecun")
    with pytest.raises(ValueError, match="unknown activation 'gelu': choose one of relu"):
        nn.Activation("gelu")
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        nn.MLP([3, 2], "gelu")  # no hidden layer uses it: still a mistake, said at once


@pytest.mark.parametrize(
    "init, n_in, n_out, variance",
    [("he", 1000, 800, 2.0 / 1000), ("xavier", 1000, 800, 2.0 / 1800),
     ("uniform", 1000, 800, 1.0 / 3000)],
)  # fmt: skip
def test_init_variances(init, n_in, n_out, variance):
    mv.manual_seed(0)
    w = nn.Linear(n_in, n_out, init=init).weight.numpy().astype(np.float64)
    n = w.size
    # the sample variance of n draws has relative standard error about sqrt(2 / n) (~0.16 % here)
    assert abs(w.var() / variance - 1.0) < 6 * np.sqrt(2.0 / n)
    assert abs(w.mean()) < 6 * np.sqrt(variance / n)
    if init in ("xavier", "uniform"):  # uniform on [-limit, limit]: bounded, flat (kurtosis 1.8)
        limit = np.sqrt(6.0 / (n_in + n_out)) if init == "xavier" else 1.0 / np.sqrt(n_in)
        assert np.abs(w).max() <= limit and np.abs(w).max() > 0.99 * limit
        assert abs(np.mean(w**4) / w.var() ** 2 - 1.8) < 0.02
    else:  # normal: kurtosis 3
        assert abs(np.mean(w**4) / w.var() ** 2 - 3.0) < 0.05


def test_biases_start_at_zero_except_in_pytorchs_uniform_init():
    mv.manual_seed(0)
    assert not nn.Linear(400, 300, init="he").bias.numpy().any()
    assert not nn.Linear(400, 300, init="xavier").bias.numpy().any()
    b = nn.Linear(400, 3000, init="uniform").bias.numpy().astype(np.float64)
    limit = 1.0 / np.sqrt(400)  # PyTorch's nn.Linear: U(-1/sqrt(n_in), 1/sqrt(n_in)) for b too
    assert np.abs(b).max() <= limit and np.abs(b).max() > 0.99 * limit
    assert abs(b.var() * 3 / limit**2 - 1.0) < 6 * np.sqrt(2.0 / b.size)


def test_mlp_takes_an_init_or_picks_one_by_activation():
    mv.manual_seed(0)
    relu = nn.MLP([2000, 500], "relu").layers[0].weight.numpy().std()
    tanh = nn.MLP([2000, 500], "tanh").layers[0].weight.numpy().std()
    uniform = nn.MLP([2000, 500], "relu", init="uniform").layers[0].weight.numpy().std()
    assert relu == pytest.approx(np.sqrt(2 / 2000), rel=0.01)  # He
    assert tanh == pytest.approx(np.sqrt(2 / 2500), rel=0.01)  # Xavier
    assert uniform == pytest.approx(np.sqrt(1 / 6000), rel=0.01)


def test_init_is_reproducible_with_manual_seed():
    mv.manual_seed(7)
    a = nn.MLP([5, 4, 3]).state_dict()
    mv.manual_seed(7)
    b = nn.MLP([5, 4, 3]).state_dict()
    mv.manual_seed(8)
    c = nn.MLP([5, 4, 3]).state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["layers.0.weight"], c["layers.0.weight"])


# ----------------------------------------------------------------------------- MLP and the tree


def test_mlp_structure():
    mlp = nn.MLP([784, 400, 20])
    assert [type(layer).__name__ for layer in mlp.layers] == ["Linear", "Activation", "Linear"]
    assert (mlp[0].n_in, mlp[0].n_out, mlp[2].n_in, mlp[2].n_out) == (784, 400, 400, 20)
    assert mlp[1].name == "relu" and len(mlp) == 3 and mlp.sizes == [784, 400, 20]
    assert mlp.num_parameters() == 784 * 400 + 400 + 400 * 20 + 20
    decoder = nn.MLP([2, 8, 8, 5], activation="tanh", final_activation="sigmoid")
    names = [
        layer.name if isinstance(layer, nn.Activation) else "linear" for layer in decoder.layers
    ]
    assert names == ["linear", "tanh", "linear", "tanh", "linear", "sigmoid"]
    limit = np.sqrt(6.0 / (2 + 8))  # tanh nets get Xavier: bounded weights
    assert np.abs(decoder[0].weight.numpy()).max() <= limit
    out = decoder(Tensor(np.ones((3, 2), dtype=np.float32)))
    assert out.shape == (3, 5) and np.all((out.numpy() > 0) & (out.numpy() < 1))
    with pytest.raises(ValueError, match="at least an input and an output size"):
        nn.MLP([3])


def test_named_parameters_order_and_names():
    model = Model()
    names = [name for name, _ in model.named_parameters()]
    assert names == [
        "scale",
        "encoder.layers.0.weight", "encoder.layers.0.bias",
        "encoder.layers.2.weight", "encoder.layers.2.bias",
        "heads.0.weight", "heads.0.bias",
        "heads.1.weight",
    ]  # fmt: skip
    params = dict(model.named_parameters())
    assert params["heads.1.weight"] is model.heads[1].weight
    assert model.parameters() == [p for _, p in model.named_parameters()]
    assert model.num_parameters() == 2 + (3 * 4 + 4) + (4 * 2 + 2) + (2 + 1) + 4


def test_gradients_reach_every_parameter_and_zero_grad_clears_them():
    model = Model()
    x = Tensor(np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32))
    model(x).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_mlp_gradients_pass_gradcheck():
    with mv.set_default_dtype("float64"):
        mv.manual_seed(1)
        mlp = nn.MLP([3, 5, 2], activation="tanh")
    x = np.random.default_rng(2).standard_normal((4, 3))
    assert gradcheck(mlp, [x], mode="full").ok  # d out / d x

    def with_first_layer(w, b):  # the checker's float64 leaves stand in for the parameters
        mlp[0].weight, mlp[0].bias = w, b
        return mlp(Tensor(x))

    report = gradcheck(with_first_layer, [mlp[0].weight, mlp[0].bias], mode="full")
    assert report.ok and report.checked == (15 + 5) * 8, str(report)


def test_train_and_eval_propagate():
    model = Model()
    modules = [model, model.encoder, *model.encoder.layers, *model.heads]
    assert model.eval() is model
    assert all(m.training is False for m in modules)
    assert model.train() is model
    assert all(m.training is True for m in modules)
    model.encoder.eval()
    assert model.training and not model.encoder.training and not model.encoder[0].training


def test_repr_shows_the_tree():
    text = repr(nn.MLP([3, 4, 2]))
    assert (
        "Linear(3, 4)" in text
        and "Activation('relu')" in text
        and "(layers.2): Linear(4, 2)" in text
    )


# ----------------------------------------------------------------------------- state dicts


def snapshot(model):
    return {name: p.numpy().copy() for name, p in model.named_parameters()}


def test_state_dict_round_trip():
    mv.manual_seed(0)
    a = Model()
    mv.manual_seed(1)
    b = Model()
    state = a.state_dict()
    assert list(state) == [name for name, _ in a.named_parameters()]
    assert all(isinstance(v, np.ndarray) for v in state.values())
    state["scale"][0] = 99.0  # a copy: editing it leaves the model alone
    assert a.scale.numpy()[0] == 1.0
    state["scale"][0] = 1.0
    weight_before = b.encoder[0].weight
    b.load_state_dict(state)
    assert b.encoder[0].weight is weight_before  # loaded in place: optimizers keep working
    for name, value in snapshot(b).items():
        np.testing.assert_array_equal(value, state[name], err_msg=name)
    assert b.encoder[0].weight.dtype == np.float32
    x = Tensor(np.ones((2, 3), dtype=np.float32))
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())


def test_load_state_dict_casts_to_the_parameter_dtype():
    layer = nn.Linear(2, 2)
    layer.load_state_dict({"weight": np.eye(2), "bias": np.array([1.0, 2.0])})  # float64 in
    assert layer.weight.dtype == np.float32
    np.testing.assert_array_equal(layer.bias.numpy(), [1.0, 2.0])


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s: s.pop("heads.0.bias"), r"missing \['heads\.0\.bias'\], unexpected nothing"),
        (lambda s: s.update({"heads.2.weight": np.zeros((2, 1))}),
         r"missing nothing, unexpected \['heads\.2\.weight'\]"),
        (lambda s: s.update({"heads.1.weight": np.zeros((3, 2))}),
         r"heads\.1\.weight has shape \(3, 2\) in the state but \(2, 2\) in the model"),
    ],
    ids=["missing", "unexpected", "wrong-shape"],
)  # fmt: skip
def test_load_state_dict_refuses_and_loads_nothing(edit, message):
    mv.manual_seed(0)
    source = Model()
    mv.manual_seed(1)
    target = Model()
    state = source.state_dict()
    edit(state)
    before = snapshot(target)
    with pytest.raises(ValueError, match=r"load_state_dict for Model: " + message):
        target.load_state_dict(state)
    after = snapshot(target)
    for name in before:  # never half-loaded: the earlier parameters did not change either
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    # and loading would have changed them: the check above is not vacuous
    assert not np.array_equal(before["encoder.layers.0.weight"], state["encoder.layers.0.weight"])
