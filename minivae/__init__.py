"""minivae: variational autoencoders from scratch on NumPy (and CuPy), for learners.

    import minivae as mv
    x = mv.Tensor([[1.0, 2.0]], requires_grad=True)
    y = (x * x).sum()
    y.backward()        # x.grad == 2x
"""

from minivae import backend, ops
from minivae.backend import (
    get_default_dtype,
    get_device,
    manual_seed,
    set_default_dtype,
    set_device,
    to_numpy,
)
from minivae.tensor import Tensor, detect_anomaly, no_grad, set_detect_anomaly

__version__ = "0.1.0"

__all__ = [  # noqa: RUF022 - the engine first, then the switches
    "Tensor", "no_grad", "detect_anomaly", "set_detect_anomaly", "ops", "backend",
    "set_device", "get_device", "manual_seed", "set_default_dtype", "get_default_dtype",
    "to_numpy", "__version__",
]  # fmt: skip
