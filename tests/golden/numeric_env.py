"""One floating-point environment for the golden answers, whatever the machine.

The last bit of a dot product or an exp depends on the machine: OpenBLAS picks its kernels for the
CPU at start (DYNAMIC_ARCH) and numpy its SIMD loops (AVX2 or AVX-512), and each sums in its own
order. The golden answers are recorded and replayed with both pinned to the x86-64 AVX2 + FMA paths
(OpenBLAS's Haswell kernels, numpy's AVX-512 loops disabled) and one BLAS thread, so that the same
code gives the same bytes on any x86-64 machine with AVX2. Variables set before numpy is imported:
the recording and the replay run in processes started with them (`pinned_env`).
"""

from __future__ import annotations

import os
from pathlib import Path

NUMERIC_ENV = {
    "OPENBLAS_CORETYPE": "Haswell",
    "NPY_DISABLE_CPU_FEATURES": "AVX512F AVX512CD AVX512_KNL AVX512_KNM AVX512_SKX AVX512_CLX AVX512_CNL "
    "AVX512_ICL AVX512_SPR",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
}


def pinned_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in NUMERIC_ENV}
    env.update(NUMERIC_ENV)
    return env


def is_pinned() -> bool:
    return all(os.environ.get(k) == v for k, v in NUMERIC_ENV.items())


def machine_problem() -> str | None:
    """Why this machine cannot take the pinned paths (None if it can): they need x86-64 with AVX2 and FMA."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "no /proc/cpuinfo: cannot tell whether the CPU has AVX2 and FMA"
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    missing = [f for f in ("avx2", "fma") if f not in flags]
    return f"the CPU lacks {', '.join(missing)}: the golden answers are pinned to AVX2 + FMA paths" if missing else None
