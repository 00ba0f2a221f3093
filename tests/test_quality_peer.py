"""The PyTorch peer of benchmarks/quality_vae.py computes minivae's VAE, so that the benchmark
compares like with like: on the same weights and noise both give the same bound, and each
side's initialisation is the one its --init names. Skipped where torch does not import."""

from __future__ import annotations

import math

import numpy as np
import pytest
from benchmark_loader import load_benchmark

import minivae as mv
from minivae.models import VAE

torch = pytest.importorskip("torch")


def load_peer():
    return load_benchmark("quality_vae_torch.py")


def copy_weights(vae, peer) -> None:
    """minivae's W (n_in, n_out) into torch's (n_out, n_in), layer by layer."""
    ours = [m for net in (vae.encoder, vae.decoder) for m in net.layers if hasattr(m, "weight")]
    theirs = [m for m in peer.modules() if isinstance(m, torch.nn.Linear)]
    assert len(ours) == len(theirs) == 4
    with torch.no_grad():
        for a, b in zip(ours, theirs):
            b.weight.copy_(torch.from_numpy(a.weight.numpy().T.astype(np.float64)))
            b.bias.copy_(torch.from_numpy(a.bias.numpy().astype(np.float64)))


def test_the_peer_computes_minivaes_bound_on_the_same_weights_and_noise():
    mv.manual_seed(0)
    with mv.set_default_dtype("float64"):
        vae = VAE(x_dim=12, hidden=(7,), latent=3, init="uniform")
    peer = load_peer().TorchVAE(x_dim=12, hidden=7, latent=3).double()
    copy_weights(vae, peer)
    rng = np.random.default_rng(1)
    x = (rng.random((5, 12)) < 0.4).astype(np.float64)  # binary pixels, (B, D)
    eps = rng.standard_normal((5, 3))  # (B, J)
    ours = -vae.elbo(x, eps=eps)["elbo"].numpy()
    theirs = peer.neg_elbo(torch.from_numpy(x), eps=torch.from_numpy(eps)).detach().numpy()
    np.testing.assert_allclose(theirs, ours, rtol=1e-12)
    # the importance-sampled log p(x) is a bound above the ELBO's mean, as minivae's is
    torch.manual_seed(0)
    log_px = peer.log_px(torch.from_numpy(x), k=2000).numpy()
    assert np.all(np.isfinite(log_px)) and log_px.mean() > -ours.mean()


@pytest.mark.parametrize("init", ["default", "he"])
def test_the_peers_init_is_the_one_its_switch_names(init):
    torch.manual_seed(0)
    layer = next(m for m in load_peer().TorchVAE(init=init).modules()
                 if isinstance(m, torch.nn.Linear))  # fmt: skip
    w, b = layer.weight.detach().numpy(), layer.bias.detach().numpy()  # (400, 784), (400,)
    if init == "he":  # minivae's: N(0, 2 / n_in), zero biases
        assert w.std() == pytest.approx(math.sqrt(2 / 784), rel=0.01) and not b.any()
    else:  # PyTorch's: U(-1/sqrt(n_in), 1/sqrt(n_in)) for both, as minivae's init="uniform"
        limit = 1 / math.sqrt(784)
        assert np.abs(w).max() <= limit and w.std() == pytest.approx(limit / math.sqrt(3), rel=0.01)
        assert b.any() and np.abs(b).max() <= limit
