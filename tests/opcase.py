"""The entry type of the op catalogue (tests/catalogue.py collects the entries)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class OpCase:
    """One op to check: how to call it, what NumPy says it computes, and its input domain.

    make_inputs(rng) returns the inputs as float64 NumPy arrays (integer arrays for
    labels); fn(*tensors) calls the minivae op; reference(*arrays) computes the same
    forward in plain NumPy; torch_fn(*torch_tensors) does it in PyTorch (None when
    PyTorch has no counterpart). ``op`` is the name in minivae.ops.OPS it covers.
    """

    op: str
    fn: Callable
    reference: Callable
    make_inputs: Callable
    torch_fn: Callable | None = None
    domain: str = "real"
    tags: tuple = field(default_factory=tuple)
    id: str = ""

    def __post_init__(self):
        if not self.id:
            self.id = self.op
