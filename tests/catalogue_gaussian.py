"""Catalogue entries for the Gaussian ops (reparameterization, KL), added with those ops."""

from __future__ import annotations

GAUSSIAN_CASES: list = []
