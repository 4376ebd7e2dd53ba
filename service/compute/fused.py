"""Loss and gradients of a single-layer model in one pass over X.

`evaluate` (models.py) keeps every per-example array, for the breakdown, grading and checks. When
only J and its gradients are wanted, this module reads X once: rows are taken in blocks small
enough to stay in a core's cache, and on each block the forward pass (z = X_b w + b, the pairing's
kernel) and the backward products (X_bᵀ ∂L/∂z, Σ ∂L/∂z) run back to back, while the block is
still cached. Blocks are spread over threads: numpy's BLAS calls and ufuncs release the GIL.

The per-example mathematics is the pairing's own kernel, the same code `evaluate` runs. Sums are
combined per block and then across blocks in block order, so the result does not depend on the
number of threads. Anything that is not finite (an overflowing z, f, L or ∂L/∂z, or a sum) makes
`summarize` return None: the caller then runs `evaluate`, which names the quantity and examples.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from service.compute.activations import ActivationName
from service.compute.losses import LossName
from service.compute.pairings import Pairing
from service.compute.stable import Array

# Bytes of X per block, and at most MAX_BLOCK_ROWS rows (the kernel's ~10 temporaries are as long
# as the block): X_b stays in a cache between the forward and the backward product (one core's L2
# on a 4 MiB-L2 machine; on a 512 KiB-L2 one with 32 MiB of shared L3, in L3), and each block's
# ~25 numpy calls are spread over enough rows. Measured at m = 10⁶: 2 MiB beat 128 and 512 KiB at
# n = 10 and n = 100 (pairing kernels); with the sums-only kernels at n = 100 (2·10⁵ rows,
# callgrind), 4 MiB blocks took 378 instructions per example against 414 for 2 MiB.
BLOCK_BYTES = 1 << 22
MAX_BLOCK_ROWS = 16384
# Below this many elements of X a problem runs as one block on the calling thread: handing blocks
# to a pool costs tens of microseconds, more than such a problem takes.
PARALLEL_MIN_ELEMENTS = 1 << 18
MIN_BLOCK_ROWS = 256


def _default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


_lock = threading.Lock()
_threads = _default_threads()
_pool: ThreadPoolExecutor | None = None
_controller: ThreadpoolController | None = None


def set_threads(threads: int | None) -> None:
    """How many threads one problem may use (None: the CPUs this process may run on)."""
    global _threads, _pool
    value = _default_threads() if threads is None else int(threads)
    if value < 1:
        raise ValueError("threads must be at least 1")
    with _lock:
        if value != _threads and _pool is not None:
            _pool.shutdown(wait=False)
            _pool = None
        _threads = value


def threads() -> int:
    return _threads


def _get_pool() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=_threads, thread_name_prefix="fused")
        return _pool


_limited = 0  # how many summaries are inside _one_blas_thread now
_saved_threads: list[tuple[Any, int]] = []  # (BLAS library, its thread count before the first one in)


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """While blocks run on the pool, each BLAS call uses one thread: the pool is the parallelism,
    and a multithreaded BLAS inside each pool thread would oversubscribe the cores.

    The limit is process-wide, so concurrent summaries count themselves in and out: the first one
    in sets it and the last one out restores what was there before."""
    global _controller, _limited
    with _lock:
        if _controller is None:
            _controller = ThreadpoolController()
        if _limited == 0:
            _saved_threads[:] = [(lib, lib.num_threads) for lib in _controller.select(user_api="blas").lib_controllers]
            for lib, _ in _saved_threads:
                lib.set_num_threads(1)
        _limited += 1
    try:
        yield
    finally:
        with _lock:
            _limited -= 1
            if _limited == 0:
                for lib, count in _saved_threads:
                    lib.set_num_threads(count)
                _saved_threads.clear()


@dataclass(frozen=True)
class Sums:
    """Σ L, Xᵀ ∂L/∂z and Σ ∂L/∂z over all examples (not yet divided by m)."""

    loss: float
    grad_w: Array
    grad_b: Array


def block_rows(n: int, k: int) -> int:
    """Rows per block for X with n columns and k outputs."""
    return max(MIN_BLOCK_ROWS, min(MAX_BLOCK_ROWS, BLOCK_BYTES // (8 * n * max(k, 1))))


_add = np.add.reduce

# From this many columns of X (n·k) on, a big problem whose pairing has no sums-only kernel (below)
# takes `_split`: reading X twice with every core in BLAS beat one read in blocks whose products
# run one BLAS thread each, with the pairing kernel's ~25 numpy calls per block. Measured at
# m = 10⁶: at n = 10 blocks took 36 ms and the split 53 ms; at n = 100 blocks 164 ms, the split 97 ms.
# The canonical pairings' sums-only kernels always take blocks: at n = 100 they used 170-188 ms
# of CPU time in blocks against 234-254 ms split (2 threads, a loaded machine).
SPLIT_MIN_COLUMNS = 32
KERNEL_ROWS = 16384  # examples per piece of the element-wise stage of `_split`


def _kernel(pairing: Pairing, z: Array, y: Array) -> tuple[Array, float] | None:
    """The pairing's kernel on z = X w + b: (∂L/∂z, Σ L), or None if z, f or L is anywhere not finite.

    Callers ignore overflow and invalid operations (np.errstate) around it."""
    f, L, r = pairing.forward_backward(z, y)
    checks = (float(_add(z, axis=None)), float(_add(f, axis=None)), float(_add(L)))
    # A non-finite element makes its sum non-finite (inf − inf and inf·0 give nan): one test per array.
    # (A sum that overflows although its terms do not only sends the problem to evaluate as well.)
    return (r, checks[2]) if all(map(math.isfinite, checks)) else None


def _finite(loss: float, grad_w: Array, grad_b: Array) -> Sums | None:
    """The sums, or None if any is not finite (tested through each array's sum, as in _kernel: one
    reduction each, where isfinite().all() takes two calls and a temporary)."""
    if not (math.isfinite(loss) and math.isfinite(float(_add(grad_w, axis=None)))):
        return None
    if not math.isfinite(float(_add(grad_b, axis=None))):
        return None
    return Sums(loss, grad_w, np.asarray(grad_b))


def _split(X: Array, y: Array, w: Array, b: Array, pairing: Pairing, nthreads: int) -> Sums | None:
    """z = X w + b and Xᵀ ∂L/∂z as whole products (BLAS on every core; each reads X once), and the
    pairing's kernel between them in pieces of KERNEL_ROWS examples spread over the pool."""
    m = X.shape[0]
    with np.errstate(over="ignore", invalid="ignore"):
        z = X @ w
        z += b
    r = np.empty_like(z)
    rows = max(MIN_BLOCK_ROWS, KERNEL_ROWS // max(1, z.size // m))

    def piece(start: int) -> float | None:
        stop = min(start + rows, m)
        with np.errstate(over="ignore", invalid="ignore"):  # per thread: the pool's threads too
            out = _kernel(pairing, z[start:stop], y[start:stop])
        if out is None:
            return None
        r[start:stop] = out[0]
        return out[1]

    starts = range(0, m, rows)
    losses = list(_get_pool().map(piece, starts)) if nthreads > 1 else [piece(s) for s in starts]
    done = [loss for loss in losses if loss is not None]
    if len(done) < len(losses):
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        return _finite(float(np.sum(done)), X.T @ r, _add(r, axis=0))


def _block(X: Array, y: Array, w: Array, b: Array, pairing: Pairing, start: int, stop: int) -> Sums | None:
    Xb = X[start:stop]
    sums = _SUMS.get(pairing.key)
    with np.errstate(over="ignore", invalid="ignore"):  # one context for the block: 2 µs each
        if sums is not None:
            return sums(Xb, y[start:stop], w, b)
        z = Xb @ w
        z += b
        out = _kernel(pairing, z, y[start:stop])
        if out is None:
            return None
        r, loss = out
        return _finite(loss, Xb.T @ r, _add(r, axis=0))


# --- kernels for sums only -------------------------------------------------------------------
# The canonical pairings' kernels again, for a block whose f and L are summed and never kept: the
# same operations on the same operands in the same order, so every L_i and ∂L/∂z_i has the bits
# the pairing's kernel gives (tests compare the two paths), but in per-thread buffers reused from
# block to block, without the arrays only a breakdown needs, and with one finiteness test: each
# kernel's Σ L is non-finite whenever any z_i is (inf − inf, 0·inf) or any L_i overflows, and its
# f and ∂L/∂z are finite where z is. Measured on blocks of 16,384 × 10 (one thread, in cache),
# the logistic kernel took 30 ns per example against the pairing kernel's 35–40.

_local = threading.local()


def _scratch(rows: int, count: int) -> list[Array]:
    """`count` float64 buffers of `rows` entries, this thread's own, kept for the next block (and
    the views of the last size asked for: blocks but the last have one size)."""
    last: tuple[int, int, list[Array]] | None = getattr(_local, "last", None)
    if last is not None and last[0] == rows and last[1] == count:
        return last[2]
    bufs: Array | None = getattr(_local, "buffers", None)
    if bufs is None or bufs.shape[0] < count or bufs.shape[1] < rows:
        bufs = np.empty((count, rows))
        _local.buffers = bufs
    views = [bufs[i, :rows] for i in range(count)]
    _local.last = (rows, count, views)
    return views


def _sums_sigmoid_bce(Xb: Array, y: Array, w: Array, b: Array) -> Sums | None:
    # pairings._sigmoid_bce step by step: e = e^(−|z|); σ(z) is 1/(1+e) where z ≥ 0 and e/(1+e)
    # elsewhere, taken here as max(e, [z ≥ 0])/(1+e) since 0 ≤ e ≤ 1 (no np.where: a pass and a
    # temporary fewer); σ(−z) likewise with [z < 0]; L = log1p(e) + (1−y) z⁺ + y z⁻, r = (1−y) σ(z) − y σ(−z).
    z, e, u, s, sn, zp, t = _scratch(Xb.shape[0], 7)
    np.matmul(Xb, w, out=z)
    z += b
    np.abs(z, out=e)
    np.negative(e, out=e)
    np.exp(e, out=e)
    np.add(e, 1.0, out=u)
    np.greater_equal(z, 0.0, out=sn, casting="unsafe")  # 1.0 where z ≥ 0, else 0.0
    np.maximum(e, sn, out=s)
    s /= u  # σ(z)
    np.subtract(1.0, sn, out=sn)
    np.maximum(e, sn, out=sn)
    sn /= u  # σ(−z)
    L = np.log1p(e, out=e)
    omy = np.subtract(1.0, y, out=u)
    np.maximum(z, 0.0, out=zp)
    L += np.multiply(omy, zp, out=t)
    np.subtract(zp, z, out=zp)  # z⁻
    zp *= y
    L += zp
    r = np.multiply(omy, s, out=s)
    sn *= y
    r -= sn
    return _sums_of(Xb, L, r)


def _sums_identity_squared_error(Xb: Array, y: Array, w: Array, b: Array) -> Sums | None:
    # pairings._identity_squared_error: r = z − y, L = ½ r r.
    r, L = _scratch(Xb.shape[0], 2)
    np.matmul(Xb, w, out=r)
    r += b
    r -= y
    np.multiply(0.5, r, out=L)
    L *= r
    return _sums_of(Xb, L, r)


def _sums_exp_poisson(Xb: Array, y: Array, w: Array, b: Array) -> Sums | None:
    # pairings._exp_poisson: f = e^z, L = f − y z, r = f − y.
    z, f, L = _scratch(Xb.shape[0], 3)
    np.matmul(Xb, w, out=z)
    z += b
    np.exp(z, out=f)
    np.multiply(y, z, out=L)
    np.subtract(f, L, out=L)
    r = np.subtract(f, y, out=f)
    return _sums_of(Xb, L, r)


def _sums_softmax_cce(Xb: Array, y: Array, w: Array, b: Array) -> Sums | None:
    # pairings._softmax_cce, whose L takes e^(z − max) a second time (stable.log1p_others): here the
    # first one serves both, once f is taken from it. A z_l = −∞ leaves L finite where y_l = 0, so
    # z is tested through Σ (z − max) as well (−∞ or NaN if any z is).
    rows, k = Xb.shape[0], w.shape[1]
    z, e, f, t = (a.reshape(rows, k) for a in _scratch(rows * k, 4))
    np.matmul(Xb, w, out=z)
    z += b
    arg = np.argmax(z, axis=1)
    index = np.arange(rows)
    shifted = np.subtract(z, z[index, arg][:, None], out=z)
    if not math.isfinite(float(_add(shifted, axis=None))):
        return None
    np.exp(shifted, out=e)
    np.divide(e, np.sum(e, axis=1, keepdims=True), out=f)
    np.negative(shifted, out=t)
    t *= y
    np.copyto(t, 0.0, where=y == 0.0)
    L = np.sum(t, axis=1)
    e[index, arg] = 0.0
    L += np.log1p(np.sum(e, axis=1))
    r = np.subtract(f, y, out=t)
    hard = y[index, arg] == 1.0
    if np.any(hard):  # f_k − 1 = −Σ_{l≠k} f_l at a dominant true class, which f − 1 would cancel
        others = f[hard]
        others[np.arange(others.shape[0]), arg[hard]] = 0.0
        r[index[hard], arg[hard]] = -np.sum(others, axis=1)
    return _sums_of(Xb, L, r)


def _sums_of(Xb: Array, L: Array, r: Array) -> Sums | None:
    loss = float(_add(L))
    if not math.isfinite(loss):
        return None
    return _finite(loss, Xb.T @ r, _add(r, axis=0))


_SUMS: dict[tuple[ActivationName, LossName], Callable[[Array, Array, Array, Array], Sums | None]] = {
    (ActivationName.SIGMOID, LossName.BINARY_CROSS_ENTROPY): _sums_sigmoid_bce,
    (ActivationName.IDENTITY, LossName.SQUARED_ERROR): _sums_identity_squared_error,
    (ActivationName.EXP, LossName.POISSON): _sums_exp_poisson,
    (ActivationName.SOFTMAX, LossName.CATEGORICAL_CROSS_ENTROPY): _sums_softmax_cce,
}


def _blocks_in_parallel(
    X: Array, y: Array, w: Array, b: Array, pairing: Pairing, rows: int, nthreads: int
) -> list[Sums | None]:
    """Every block's sums, in block order, from `nthreads` threads (the caller and nthreads − 1 of
    the pool) that each take the next block until none is left (or one is not finite).

    One task per thread rather than per block: a task handed to the pool and its future cost more
    than a block's numpy calls, and tasks as large as one thread's share would stall on the slowest
    core. Which thread computes a block does not change its sums."""
    m = X.shape[0]
    count = -(-m // rows)
    parts: list[Sums | None] = [None] * count
    taken = itertools.count()
    lock = threading.Lock()
    failed = False

    def work() -> None:
        nonlocal failed
        while not failed:
            with lock:
                i = next(taken)
            if i >= count:
                return
            start = i * rows
            part = _block(X, y, w, b, pairing, start, min(start + rows, m))
            if part is None:
                failed = True
            parts[i] = part

    pool = _get_pool()
    helpers = [pool.submit(work) for _ in range(nthreads - 1)]
    try:
        work()
    finally:
        for helper in helpers:
            helper.result()
    return [None] if failed else parts


def summarize(
    X: Array, y: Array, w: Array, b: Array, pairing: Pairing, *, max_threads: int | None = None
) -> Sums | None:
    """Σ L(f(x_i w + b), y_i), Xᵀ ∂L/∂z and Σ ∂L/∂z in one pass over X; None if anything is not finite.

    X is (m, n); w (n,) or (n, k); y shaped like f (class indices already one-hot).
    """
    m, n = X.shape
    k = 1 if w.ndim == 1 else w.shape[1]
    rows = block_rows(n, k)
    if m <= rows:
        return _block(X, y, w, b, pairing, 0, m)
    if n * k >= SPLIT_MIN_COLUMNS and X.size >= PARALLEL_MIN_ELEMENTS and pairing.key not in _SUMS:
        return _split(X, y, w, b, pairing, _threads if max_threads is None else max_threads)
    starts = range(0, m, rows)
    nthreads = min(_threads if max_threads is None else max_threads, len(starts))
    if nthreads <= 1 or X.size < PARALLEL_MIN_ELEMENTS:
        parts = [_block(X, y, w, b, pairing, s, min(s + rows, m)) for s in starts]
    else:
        with _one_blas_thread():
            parts = _blocks_in_parallel(X, y, w, b, pairing, rows, nthreads)
    done = [p for p in parts if p is not None]
    if len(done) < len(parts):
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        return _finite(
            float(np.sum([p.loss for p in done])),
            np.sum(np.stack([p.grad_w for p in done]), axis=0),
            np.sum(np.stack([p.grad_b for p in done]), axis=0),
        )
