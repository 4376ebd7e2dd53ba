"""Process-wide tuning of the C allocator, which numpy's arrays come from.

glibc's malloc returns the top of its heap to the system whenever more than M_TRIM_THRESHOLD bytes
are free there, and serves allocations above M_MMAP_THRESHOLD with fresh mmaps. Both thresholds
start at 128 KiB and adjust themselves only partly. A gradient over 10⁶ examples makes thousands
of block-sized temporaries (128 KiB to a few MiB): with the defaults, freeing one shrinks the heap
and making the next one grows it again, page fault by page fault: the thresholds below about halve
the time of the blocked kernels (docs/performance.md, "Measured choices in the code").

The cost: up to TRIM_THRESHOLD bytes of freed memory stay with the process for reuse instead of
going back to the system (arrays above MMAP_THRESHOLD are still mapped and unmapped one by one).
Setting MALLOC_TRIM_THRESHOLD_ and MALLOC_MMAP_THRESHOLD_ in the environment does the same for a
process started with them; this does it from inside, for the process that is already running.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value on 64-bit systems
TRIM_THRESHOLD = 64 << 20

_tuned: bool | None = None


def tune_allocator() -> bool:
    """Set glibc's thresholds once per process; False where the C library is not glibc."""
    global _tuned
    if _tuned is not None:
        return _tuned
    _tuned = False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl (Alpine) has no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _tuned = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _tuned
