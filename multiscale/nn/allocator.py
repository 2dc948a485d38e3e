"""Keep glibc from handing large tensor buffers back to the kernel after every operator.

PyTorch's CPU tensors come from malloc. glibc serves blocks above its mmap threshold with fresh
mmap()s and trims the heap top when enough is free, so each activation buffer of a training step
(the (N, H, L, S) attention matrices are a few MB) is page-faulted in again on first touch: about
4000 minor page faults and 7-10 ms of kernel time per CPU training step of the matched
configuration (docs/performance.md). Raising the mmap and trim thresholds lets freed buffers be
reused. The same as exporting ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_``;
allocations above the threshold (the input arrays of an in-memory weaver dataset) still use mmap.

Applied once when ``multiscale.nn`` is imported (the weaver network config imports it), on glibc
only, and not when the user set those variables or ``MULTISCALE_MALLOC_TUNING=0``.
"""

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 64 << 20  # glibc's own dynamic threshold tops out at 32 MB
TRIM_THRESHOLD = 256 << 20

_state = {"applied": None}


def tune_malloc() -> bool:
    """Raise glibc's mmap and trim thresholds; True if applied (idempotent)."""
    if _state["applied"] is not None:
        return _state["applied"]
    applied = False
    if (
        os.environ.get("MULTISCALE_MALLOC_TUNING", "1") != "0"
        and "MALLOC_MMAP_THRESHOLD_" not in os.environ
        and "MALLOC_TRIM_THRESHOLD_" not in os.environ
    ):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to do
            mallopt = None
        if mallopt is not None:
            applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    _state["applied"] = applied
    return applied
