"""Host memory: keep the memory NumPy frees inside the process while a model trains.

A training step allocates large arrays and frees them again, step after step. glibc's
malloc (the C library of most Linux systems) gives freed memory back to the system once
the free space at the top of its heap passes a threshold, and the next step then asks for
it anew: each 4 KiB page is a page fault, a page the kernel must find and zero, some 3.5 µs
each on the machine of BENCHMARKS.md. Whether a step falls over that edge depends on the
order of every allocation in the process, so it comes and goes from run to run: in fresh
processes the 784-400-20 VAE's batch-512 step took 0 page faults in some and 2,023 per
step in others (BENCHMARKS.md, "Keeping freed memory in the process").

``keep_freed_memory()`` raises glibc's two limits once for the process, so that blocks up to
32 MiB come from the heap and up to 256 MiB of its free top stay with the process for the
next step. The cost: the process keeps its peak memory rather than returning it. The
training loop (``minivae.train.train``) calls it while the fast paths are on
(``minivae.fast``; ``MINIVAE_FAST=0`` leaves malloc as it is). It changes no number, only
where memory comes from.
"""

from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD = -1  # mallopt's parameter numbers (glibc's malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed on 64-bit: smaller blocks come from the heap
TRIM_THRESHOLD = 256 << 20  # the heap's free top is kept up to this size

# Where the environment sets glibc's malloc itself, that choice stands.
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_",
                 "MALLOC_MMAP_MAX_")  # fmt: skip

_kept: bool | None = None  # the outcome of the first call


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process, once; True when they are raised.

    False, with nothing changed, where the C library is not glibc (macOS, Windows, musl),
    or where the environment already tunes glibc's malloc (``MALLOC_TRIM_THRESHOLD_`` and
    the like, or ``glibc.malloc`` in ``GLIBC_TUNABLES``).
    """
    global _kept
    if _kept is None:
        _kept = _raise_thresholds()
    return _kept


def _raise_thresholds() -> bool:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    if any(name in os.environ for name in USER_SETTINGS):
        return False
    if "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)  # the C library this process runs on
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # the mmap threshold first: setting either one turns off glibc's own adjustment of both
    if mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1:
        return False
    return mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
