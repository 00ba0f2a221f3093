"""The model family, one file each: AE -> VAE (beta-VAE via beta) -> CVAE -> M2 -> continuous M2.

Every model follows the model protocol of ``minivae.models.common`` (``batch_kind``,
``loss(batch)``, ``evaluate(batch)``, ``figure_samples``, the data hooks), which is all
the training loop, the metrics and the CLI use. Adding a model is one file (a subclass
of ``Model``, or of a model here) plus one line in ``MODELS`` below.

    model.config                    JSON-serialisable dict: "kind" and every constructor argument
    build_model(config)             the same model again (fresh parameters)
    model.loss(batch, kl_weight=1.0)
                                    (scalar Tensor to minimise, dict of floats in nats per example)
    model.elbo(x[, y])              dict of per-example Tensors (B,): "recon", "kl", "elbo"
    model.encode(x[, y])            (mu, log_var), each (B, latent)  (the AE: (code, None))
    model.decode(z[, y])            data-space means (sigmoid probabilities for Bernoulli)
    model.decode_logits(z[, y])     the decoder's raw output
    model.reconstruct(x[, y]), model.sample(n[, y]), model.classify(x) (M2)
    model.log_importance_weights(x, K[, y])   (K, B) log p(x, z_k) - log q(z_k | x), for metrics

Reductions (sums per example, mean over the batch, nats per example) are defined
once in ``minivae.distributions``.
"""

from __future__ import annotations

from minivae.models.autoencoder import Autoencoder
from minivae.models.common import Model
from minivae.models.cvae import ConditionalVAE
from minivae.models.m2 import SemiSupervisedVAE
from minivae.models.ssvae_continuous import ContinuousSemiSupervisedVAE
from minivae.models.vae import VAE

MODELS = {"ae": Autoencoder, "vae": VAE, "cvae": ConditionalVAE, "m2": SemiSupervisedVAE,
          "ssvae-continuous": ContinuousSemiSupervisedVAE}


def model_class(config: dict):
    """The class of ``config["kind"]``, or a ValueError naming the kinds there are."""
    if not isinstance(config, dict) or "kind" not in config:
        raise ValueError(f"build_model: config must be a dict with a 'kind' key, got {config!r}")
    kind = config["kind"]
    if kind not in MODELS:
        raise ValueError(f"unknown model {kind!r}: choose one of {', '.join(MODELS)}")
    return MODELS[kind]


def build_model(config: dict):
    """A new model from ``model.config`` (a dict with "kind" and the constructor arguments)."""
    kwargs = {key: value for key, value in config.items() if key != "kind"}
    return model_class(config)(**kwargs)


__all__ = ["MODELS", "VAE", "Autoencoder", "ConditionalVAE", "ContinuousSemiSupervisedVAE",
           "Model", "SemiSupervisedVAE", "build_model", "model_class"]
