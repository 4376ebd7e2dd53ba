"""A pool of worker processes that runs work on user input under a time limit and a memory limit.

Thread-based timeouts cannot stop a C call that never returns to the interpreter (SymPy's
``Integer**Integer``, ``pow(10, 10**9)``, ``sum(range(10**12))``): a signal or a thread only gets a
chance between bytecodes. A process can always be killed, so every job runs in a worker process:

- Workers are long-lived (started lazily, or all at once by :meth:`WorkerPool.start`). Each loops:
  read a request (a function, a top-level callable or a ``"module:qualname"`` string, and its
  arguments) from a pipe, run it, write back the result or a picklable description of the error.
- The memory limit is ``RLIMIT_AS``, set by the worker on itself at start (Linux), as the worker's
  address space at start plus ``memory_limit_bytes``: the baseline depends on what the worker has
  imported (numpy reserves per-thread buffers, glibc per-thread arenas), so an absolute figure would
  be either meaningless or fatal at import. A job that raises ``MemoryError`` is answered
  :class:`WorkTooBig`, and the worker exits and is replaced (its heap may be in no state to go on).
- The time limit is the parent's: when a job has not answered within it, the worker is killed
  (SIGKILL), reaped and replaced, and the caller gets :class:`WorkTooLong`. A worker that dies for
  another reason gives :class:`WorkerCrashed`.
- At most ``size`` jobs run at once; others wait for a free worker, at most ``max_waiting`` of them
  (default ``4 * size``), beyond which :class:`PoolBusy` is raised at once.
- Fair between clients: each job may name its ``client`` (the caller's identity, e.g. a key's id or
  an address). One client holds at most ``per_client`` workers at once (default ``max(1, size // 2)``)
  and at most ``per_client_waiting`` waiting jobs (default ``max_waiting // 2``); a freed worker goes
  to the next client in turn (round robin), not to the oldest job. So one client flooding the pool
  with formulas that run to the time limit occupies ``per_client`` workers and its own queue, and
  another client's job starts on one of the other workers at once, or within one time limit if
  every worker is held by distinct hostile clients. Jobs without a ``client`` (tests, the command line)
  take their turn as one client, with no share limit.
- :meth:`WorkerPool.run` is for asyncio: the result pipe is read with ``loop.add_reader`` and a
  non-blocking descriptor, and process starts and reaps run in a thread (``asyncio.to_thread``), so
  the event loop never blocks on a worker. :meth:`WorkerPool.run_sync` is the same for threads,
  tests and the command line; the pool is thread-safe and both may be used at once.
- No orphans: a worker exits when its request pipe closes (the parent closed the pool or died),
  :meth:`WorkerPool.close` kills and reaps every worker, and with the ``forkserver`` start method
  (the default) a worker also asks the kernel for SIGKILL when its parent, the fork server, exits,
  which the fork server does when this process dies; so a worker busy in a C call does not outlive
  the service either. (``fork`` is refused: a forked worker would inherit the other workers' pipes,
  and threads' locks, from a multi-threaded parent.)

Pure: the standard library only, no web framework; the API layer maps the errors to its responses.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import ctypes.util
import importlib
import multiprocessing
import multiprocessing.connection
import os
import pickle
import select
import signal
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any

__all__ = [
    "JobFailed",
    "PoolBusy",
    "PoolClosed",
    "PoolError",
    "WorkTooBig",
    "WorkTooLong",
    "WorkerCrashed",
    "WorkerPool",
]

DEFAULT_TIME_LIMIT = 2.0
DEFAULT_MEMORY_LIMIT_BYTES = 512 * 1024 * 1024
MEMORY_EXIT_CODE = 75  # a worker that could not even report its MemoryError exits with this
_HEADER = struct.Struct("!Q")
_READ_CHUNK = 1 << 16
_MESSAGE_LIMIT = 2000  # characters of an exception's message sent back
_TRACEBACK_LIMIT = 8000
_PR_SET_PDEATHSIG = 1
_START_METHODS = ("forkserver", "spawn")
_READY = _HEADER.pack(len(pickle.dumps(("ready",)))) + pickle.dumps(("ready",))
_MEMORY_REPLY = _HEADER.pack(len(pickle.dumps(("memory",)))) + pickle.dumps(("memory",))

Job = Callable[..., Any] | str


# --------------------------------------------------------------------------------------------- errors


class PoolError(Exception):
    """Base of the pool's errors."""


class WorkTooLong(PoolError):
    """The job did not finish within its time limit; its worker was killed and replaced."""

    def __init__(self, limit: float) -> None:
        super().__init__(f"the work took longer than its limit of {limit:g} s")
        self.limit = limit


class WorkTooBig(PoolError):
    """The job needed more memory than the limit; its worker was replaced."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the work needed more memory than its limit of {limit / 2**20:g} MiB")
        self.limit = limit


class WorkerCrashed(PoolError):
    """The worker died while running the job, for a reason other than the limits (a signal, a crash)."""

    def __init__(self, exitcode: int | None) -> None:
        if exitcode is not None and exitcode < 0:
            try:
                how = f"killed by {signal.Signals(-exitcode).name}"
            except ValueError:
                how = f"killed by signal {-exitcode}"
        else:
            how = f"exit code {exitcode}"
        super().__init__(f"the worker process died while running the work ({how})")
        self.exitcode = exitcode


class PoolBusy(PoolError):
    """Too many jobs are already waiting for a worker."""

    def __init__(self, waiting: int) -> None:
        super().__init__(f"the worker pool is busy: {waiting} jobs are already waiting")
        self.waiting = waiting


class PoolClosed(PoolError):
    """The pool was closed (before or while the job ran)."""

    def __init__(self) -> None:
        super().__init__("the worker pool is closed")


class JobFailed(PoolError):
    """The job raised an exception in the worker: its type's name, message and the worker's traceback."""

    def __init__(self, type_name: str, message: str, remote_traceback: str = "") -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name = type_name
        self.message = message
        self.remote_traceback = remote_traceback


# --------------------------------------------------------------------------------------------- framing


def _frame(payload: bytes) -> bytes:
    return _HEADER.pack(len(payload)) + payload


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_exactly(fd: int, n: int) -> bytes | None:
    """Blocking read of n bytes; None at end of file."""
    parts: list[bytes] = []
    while n:
        chunk = os.read(fd, min(n, _READ_CHUNK))
        if not chunk:
            return None
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


class _FrameReader:
    """Accumulates bytes read without blocking until one whole frame has arrived."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> bytes | None:
        self._buffer += data
        if len(self._buffer) < _HEADER.size:
            return None
        (length,) = _HEADER.unpack_from(self._buffer)
        if len(self._buffer) < _HEADER.size + length:
            return None
        return bytes(self._buffer[_HEADER.size : _HEADER.size + length])


class _TimedOut:
    pass


_TIMED_OUT = _TimedOut()


def _read_frame(fd: int, timeout: float) -> bytes | _TimedOut | None:
    """Blocking (for threads): one frame from a non-blocking descriptor within `timeout`; None at end of file."""
    deadline = time.monotonic() + timeout
    reader = _FrameReader()
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return _TIMED_OUT
        if not poller.poll(max(1, int(remaining * 1000) + 1)):
            continue
        try:
            data = os.read(fd, _READ_CHUNK)
        except BlockingIOError:
            continue
        if not data:
            return None
        frame = reader.feed(data)
        if frame is not None:
            return frame


# --------------------------------------------------------------------------------------------- worker


def _resolve(job: Job) -> Callable[..., Any]:
    if not isinstance(job, str):
        return job
    module_name, sep, qualname = job.partition(":")
    if not sep or not module_name or not qualname:
        raise ValueError(f"a job named by a string is 'module:qualname', not {job!r}")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"{job!r} is not callable")
    return target  # type: ignore[no-any-return]


def _describe(exc: BaseException) -> tuple[str, str, str]:
    kind = type(exc)
    name = (
        kind.__qualname__ if kind.__module__ in ("builtins", "__main__") else f"{kind.__module__}.{kind.__qualname__}"
    )
    try:
        message = str(exc)
    except Exception:
        message = "<the exception's message could not be formatted>"
    if len(message) > _MESSAGE_LIMIT:
        message = message[:_MESSAGE_LIMIT] + "…"
    try:
        remote = "".join(traceback.format_exception(exc))[-_TRACEBACK_LIMIT:]
    except Exception:
        remote = ""
    return name, message, remote


def _limit_memory(memory_limit_bytes: int | None) -> None:
    try:
        import resource
    except ImportError:  # not POSIX: no limit
        return
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if memory_limit_bytes is None:
        return
    try:
        with open("/proc/self/statm") as statm:
            baseline = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        baseline = 0
    limit = baseline + memory_limit_bytes
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _release_fork_server() -> None:
    """Close this worker's copy of the fork server's "alive" pipe (multiprocessing passes it to every child).

    The fork server exits when that pipe's last write end closes; a worker holding one would keep it alive
    after this process died, and so itself (it waits, by PR_SET_PDEATHSIG, for the fork server to exit).
    """
    from multiprocessing import forkserver

    server = forkserver._forkserver  # type: ignore[attr-defined]
    fd = getattr(server, "_forkserver_alive_fd", None)
    if isinstance(fd, int):
        with contextlib.suppress(OSError):
            os.close(fd)
        server._forkserver_alive_fd = None  # type: ignore[attr-defined]


def _die_with_parent() -> None:
    """Ask Linux for SIGKILL when the parent (the fork server) exits; exit if it already has."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        os._exit(0)


def _worker_main(
    requests: multiprocessing.connection.Connection,
    replies: multiprocessing.connection.Connection,
    memory_limit_bytes: int | None,
    die_with_parent: bool,
    imports: tuple[str, ...],
    niceness: int,
) -> None:
    """A worker's loop: one request in, one reply out, until the request pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    if niceness:
        with contextlib.suppress(OSError):
            os.nice(niceness)  # hostile work yields the CPU to the service's own requests
    if die_with_parent:
        _release_fork_server()
        _die_with_parent()
    request_fd, reply_fd = requests.fileno(), replies.fileno()
    for name in imports:
        importlib.import_module(name)
    _limit_memory(memory_limit_bytes)
    _write_all(reply_fd, _READY)  # the parent starts a job's clock only now
    while True:
        header = _read_exactly(request_fd, _HEADER.size)
        if header is None:
            return
        payload = _read_exactly(request_fd, _HEADER.unpack(header)[0])
        if payload is None:
            return
        try:
            message: bytes | None = _run_one(payload)
        except MemoryError:
            message = None
        del payload
        if message is None:  # replaced: the heap may be in no state to go on
            try:
                _write_all(reply_fd, _MEMORY_REPLY)
            finally:
                os._exit(MEMORY_EXIT_CODE)
        _write_all(reply_fd, _frame(message))
        del message


def _run_one(payload: bytes) -> bytes:
    """One request: the reply's bytes (the result, or the job's exception described); MemoryError propagates."""
    try:
        job, args, kwargs = pickle.loads(payload)
        result = _resolve(job)(*args, **kwargs)
        return pickle.dumps(("ok", result), protocol=pickle.HIGHEST_PROTOCOL)
    except MemoryError:
        raise
    except BaseException as exc:
        return pickle.dumps(("error", *_describe(exc)), protocol=pickle.HIGHEST_PROTOCOL)


# --------------------------------------------------------------------------------------------- parent


@dataclass(eq=False)
class _Slot:
    """One worker position: its process (None until started) and the parent's ends of its pipes."""

    index: int
    process: BaseProcess | None = None
    requests: multiprocessing.connection.Connection | None = None
    replies: multiprocessing.connection.Connection | None = None
    dirty: bool = False  # killed, dead or exiting: reap and start afresh before the next job

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def ready(self) -> bool:
        return self.process is not None and not self.dirty and self.process.is_alive()

    def kill(self) -> None:
        """SIGKILL, without waiting (safe on the event loop)."""
        self.dirty = True
        if self.process is not None and self.process.exitcode is None:
            with contextlib.suppress(OSError, ValueError):
                self.process.kill()

    def reap(self, wait: float = 5.0) -> int | None:
        """Wait for the process to end (killing it if it has not within `wait`), close its pipes; its exit code."""
        exitcode = None
        if self.process is not None:
            self.process.join(wait)
            if self.process.exitcode is None:
                self.process.kill()
                self.process.join()
            exitcode = self.process.exitcode
            self.process.close()
        for conn in (self.requests, self.replies):
            if conn is not None:
                conn.close()
        self.process = self.requests = self.replies = None
        self.dirty = False
        return exitcode


@dataclass(eq=False)
class _Waiter:
    client: str = ""
    event: threading.Event | None = None
    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future[None] | None = None
    slot: _Slot | None = None
    closed: bool = False


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@dataclass
class _Counters:
    started: int = 0
    too_long: int = 0
    too_big: int = 0
    crashed: int = 0
    busy: int = 0
    pids: list[int] = field(default_factory=list)


class WorkerPool:
    """Worker processes that run jobs under a time limit and a memory limit; see the module's docstring.

    >>> pool = WorkerPool(size=2, time_limit=2.0)
    >>> pool.run_sync("math:factorial", 5)   # or: await pool.run(math.factorial, 5)
    120
    >>> pool.close()
    """

    def __init__(
        self,
        size: int = 2,
        time_limit: float = DEFAULT_TIME_LIMIT,
        memory_limit_bytes: int | None = DEFAULT_MEMORY_LIMIT_BYTES,
        *,
        max_waiting: int | None = None,
        per_client: int | None = None,
        per_client_waiting: int | None = None,
        start_method: str = "forkserver",
        preload: Sequence[str] = (),
        imports: Sequence[str] = (),
        start_timeout: float = 30.0,
        niceness: int = 10,
    ) -> None:
        """`imports`: modules every worker imports when it starts, before it takes a job (so that the first job's
        time limit is not spent importing its own module); its memory limit is counted from after them.
        `start_timeout`: how long a worker may take to start before WorkerCrashed.
        `niceness`: added to the workers' nice value, so that the scheduler prefers the service's own threads
        (its event loop, its numpy work) over formulas when the CPUs are busy.

        `preload`: modules the fork server imports once, before forking workers (e.g. ``["sympy"]``), so
        that a replaced worker starts in milliseconds; it only takes effect if this process's fork server
        has not started yet (it is one per process). Ignored with ``spawn``."""
        if size < 1:
            raise ValueError("size must be at least 1")
        if time_limit <= 0:
            raise ValueError("time_limit must be positive")
        if memory_limit_bytes is not None and memory_limit_bytes <= 0:
            raise ValueError("memory_limit_bytes must be positive (or None: no limit)")
        if start_method not in _START_METHODS:
            raise ValueError(f"start_method must be one of {_START_METHODS}, not {start_method!r}")
        self.size = size
        self.time_limit = float(time_limit)
        self.memory_limit_bytes = memory_limit_bytes
        self.max_waiting = 4 * size if max_waiting is None else max_waiting
        self.per_client = max(1, size // 2) if per_client is None else per_client
        self.per_client_waiting = max(1, self.max_waiting // 2) if per_client_waiting is None else per_client_waiting
        if self.per_client < 1 or self.per_client_waiting < 1:
            raise ValueError("per_client and per_client_waiting must be at least 1")
        self.start_method = start_method
        self.imports = tuple(imports)
        self.start_timeout = float(start_timeout)
        self.niceness = niceness
        self._options = (self.imports, niceness)
        self._context = multiprocessing.get_context(start_method)
        if preload and start_method == "forkserver":
            self._context.set_forkserver_preload(list(preload))  # type: ignore[attr-defined]
        self._lock = threading.Lock()
        self._slots = [_Slot(i) for i in range(size)]
        self._idle: collections.deque[_Slot] = collections.deque(self._slots)
        # waiting jobs by client, in the order the clients take turns (a dict keeps insertion order)
        self._queues: dict[str, collections.deque[_Waiter]] = {}
        self._running: collections.Counter[str] = collections.Counter()
        self._closed = False
        self.counters = _Counters()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start every idle worker now rather than at its first job (blocking: call before serving)."""
        with self._lock:
            if self._closed:
                raise PoolClosed()
            idle = list(self._idle)
            self._idle.clear()
        try:
            for slot in idle:
                self._prepare(slot)
        finally:
            for slot in idle:
                self._release(slot)

    async def astart(self) -> None:
        await asyncio.to_thread(self.start)

    def close(self) -> None:
        """Kill and reap every worker; waiting and running jobs get PoolClosed. Idempotent."""
        with self._lock:
            self._closed = True
            waiters = [waiter for queue in self._queues.values() for waiter in queue]
            self._queues.clear()
            for waiter in waiters:
                waiter.closed = True
                self._signal(waiter)
            processes = [slot.process for slot in self._slots if slot.process is not None]
        # Kill every worker, busy or idle. A busy one's caller sees its pipe close and reaps it; an idle one
        # is reaped here. Either way every worker is dead when close returns.
        for process in processes:
            with contextlib.suppress(OSError, ValueError):  # already reaped and closed by its caller
                process.kill()
        sentinels = []
        for process in processes:
            with contextlib.suppress(ValueError):
                sentinels.append(process.sentinel)
        deadline = time.monotonic() + 5.0
        while sentinels and (remaining := deadline - time.monotonic()) > 0:
            for ready in multiprocessing.connection.wait(sentinels, remaining):
                sentinels.remove(ready)  # type: ignore[arg-type]
        with self._lock:
            idle = list(self._idle)
            self._idle.clear()
        for slot in idle:
            slot.reap()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    @property
    def closed(self) -> bool:
        return self._closed

    def pids(self) -> list[int]:
        """The worker processes' pids (those started and not yet reaped)."""
        return [pid for slot in self._slots if (pid := slot.pid) is not None]

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> WorkerPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ acquiring a worker

    def waiting(self) -> int:
        """Jobs waiting for a worker, all clients together."""
        with self._lock:
            return self._waiting()

    def _waiting(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    def _try_acquire(self, waiter: _Waiter) -> _Slot | None:
        """Under the lock: an idle slot now (if the client is under its share), or the waiter queued
        (or PoolBusy / PoolClosed)."""
        if self._closed:
            raise PoolClosed()
        client = waiter.client
        queue = self._queues.get(client)
        if self._idle and self._under_share(client) and not queue:
            self._running[client] += 1
            return self._idle.popleft()
        waiting = self._waiting()
        if waiting >= self.max_waiting or (client and queue is not None and len(queue) >= self.per_client_waiting):
            self.counters.busy += 1
            raise PoolBusy(waiting)
        if queue is None:
            queue = self._queues[client] = collections.deque()
        queue.append(waiter)
        return None

    def _under_share(self, client: str) -> bool:
        return not client or self._running[client] < self.per_client

    def _next_waiter(self) -> _Waiter | None:
        """Under the lock: the first waiting job of the first client in turn that is under its share; that
        client goes to the back of the turn."""
        for client, queue in self._queues.items():
            if self._under_share(client):
                waiter = queue.popleft()
                del self._queues[client]
                if queue:
                    self._queues[client] = queue
                return waiter
        return None

    def _signal(self, waiter: _Waiter) -> None:
        if waiter.event is not None:
            waiter.event.set()
        elif waiter.loop is not None and waiter.future is not None:
            waiter.loop.call_soon_threadsafe(_wake, waiter.future)

    def _release(self, slot: _Slot, client: str | None = None) -> None:
        """A slot is free: `client` (if any) ran on it and its share goes down; the slot goes to the next
        client in turn that waits and is under its share, or back to the idle ones."""
        with self._lock:
            if client is not None:
                self._running[client] -= 1
                if self._running[client] <= 0:
                    del self._running[client]
            if self._closed:
                closed = True
            else:
                closed = False
                while (waiter := self._next_waiter()) is not None:
                    waiter.slot = slot
                    self._running[waiter.client] += 1
                    try:
                        self._signal(waiter)
                    except RuntimeError:  # its event loop is closed: the next one
                        waiter.slot = None
                        self._running[waiter.client] -= 1
                        if self._running[waiter.client] <= 0:
                            del self._running[waiter.client]
                        continue
                    return
                self._idle.append(slot)
        if closed:
            slot.kill()
            slot.reap()

    def _abandon(self, waiter: _Waiter) -> None:
        """A waiter gives up (cancelled): out of the queue, or pass on the slot it was just given."""
        with self._lock:
            queue = self._queues.get(waiter.client)
            if queue is not None and waiter in queue:
                queue.remove(waiter)
                if not queue:
                    del self._queues[waiter.client]
                return
            slot = waiter.slot
        if slot is not None:
            self._release(slot, waiter.client)

    def _acquire_sync(self, client: str) -> _Slot:
        waiter = _Waiter(client=client, event=threading.Event())
        with self._lock:
            slot = self._try_acquire(waiter)
        if slot is not None:
            return slot
        assert waiter.event is not None
        try:
            waiter.event.wait()
        except BaseException:
            self._abandon(waiter)
            raise
        if waiter.closed or waiter.slot is None:
            raise PoolClosed()
        return waiter.slot

    async def _acquire_async(self, client: str) -> _Slot:
        loop = asyncio.get_running_loop()
        waiter = _Waiter(client=client, loop=loop, future=loop.create_future())
        with self._lock:
            slot = self._try_acquire(waiter)
        if slot is not None:
            return slot
        assert waiter.future is not None
        try:
            await waiter.future
        except BaseException:
            self._abandon(waiter)
            raise
        if waiter.closed or waiter.slot is None:
            raise PoolClosed()
        return waiter.slot

    # ------------------------------------------------------------------ starting and replacing workers

    def _prepare(self, slot: _Slot) -> None:
        """Blocking: make the slot's worker ready (reap a dead or killed one, start a fresh one)."""
        if slot.ready():
            return
        if slot.process is not None:
            slot.kill()
            slot.reap()
        if self._closed:
            raise PoolClosed()
        requests_r, requests_w = self._context.Pipe(duplex=False)
        replies_r, replies_w = self._context.Pipe(duplex=False)
        process = self._context.Process(  # type: ignore[attr-defined]
            target=_worker_main,
            args=(requests_r, replies_w, self.memory_limit_bytes, self.start_method == "forkserver", *self._options),
            name=f"formula-worker-{slot.index}",
            daemon=True,
        )
        try:
            process.start()
        finally:
            requests_r.close()  # the child's ends: only the child may hold them, for EOF to mean "gone"
            replies_w.close()
        os.set_blocking(replies_r.fileno(), False)
        slot.process, slot.requests, slot.replies, slot.dirty = process, requests_w, replies_r, False
        with self._lock:
            self.counters.started += 1
            if process.pid is not None:
                self.counters.pids.append(process.pid)
        ready = _read_frame(replies_r.fileno(), self.start_timeout)
        if not isinstance(ready, bytes) or pickle.loads(ready) != ("ready",):
            slot.kill()
            raise WorkerCrashed(slot.reap())

    def _send(self, slot: _Slot, payload: bytes) -> bool:
        """Write the request; False if the worker is gone (an idle worker died: safe to retry elsewhere)."""
        assert slot.requests is not None
        try:
            _write_all(slot.requests.fileno(), payload)
        except (BrokenPipeError, ConnectionResetError):
            slot.dirty = True
            return False
        return True

    def _outcome(self, reply: tuple[Any, ...] | None, exitcode: int | None) -> Any:
        """The job's result, or the error for its reply, or for the worker's death (None)."""
        if reply is None:
            if exitcode == MEMORY_EXIT_CODE:
                self.counters.too_big += 1
                raise WorkTooBig(self.memory_limit_bytes or 0)
            if self._closed:
                raise PoolClosed()
            self.counters.crashed += 1
            raise WorkerCrashed(exitcode)
        kind = reply[0]
        if kind == "ok":
            return reply[1]
        if kind == "memory":
            self.counters.too_big += 1
            raise WorkTooBig(self.memory_limit_bytes or 0)
        _, type_name, message, remote = reply
        raise JobFailed(type_name, message, remote)

    @staticmethod
    def _request(job: Job, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
        if not isinstance(job, str) and getattr(job, "__name__", "") == "<lambda>":
            raise TypeError("a job must be a top-level function or a 'module:qualname' string, not a lambda")
        return _frame(pickle.dumps((job, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL))

    # ------------------------------------------------------------------ running: sync

    def run_sync(
        self, job: Job, *args: Any, timeout: float | None = None, client: str | None = None, **kwargs: Any
    ) -> Any:
        """Run `job(*args, **kwargs)` in a worker and return its result (blocking; for threads, tests, CLI).
        `timeout` and `client` (whose share of the pool the job takes) are the pool's, not the job's.

        Raises WorkTooLong, WorkTooBig, WorkerCrashed, JobFailed (the job's own exception), PoolBusy, PoolClosed.
        """
        limit = self.time_limit if timeout is None else float(timeout)
        payload = self._request(job, args, kwargs)
        key = client or ""
        slot = self._acquire_sync(key)
        try:
            return self._run_on_sync(slot, payload, limit)
        finally:
            self._recycle(slot, key)

    def _run_on_sync(self, slot: _Slot, payload: bytes, limit: float) -> Any:
        self._prepare(slot)
        if not self._send(slot, payload):
            self._prepare(slot)
            if not self._send(slot, payload):
                raise WorkerCrashed(slot.reap())
        assert slot.replies is not None
        frame = _read_frame(slot.replies.fileno(), limit)
        if frame is _TIMED_OUT:
            slot.kill()
            self.counters.too_long += 1
            raise WorkTooLong(limit)
        assert not isinstance(frame, _TimedOut)
        reply = None if frame is None else pickle.loads(frame)
        exitcode = None
        if reply is None:  # the worker died: its exit code says why
            exitcode = slot.reap()
            slot.dirty = True
        elif reply[0] == "memory":  # the worker is exiting
            slot.dirty = True
        return self._outcome(reply, exitcode)

    def _recycle(self, slot: _Slot, client: str) -> None:
        """After a job: a healthy worker goes back to the pool; a killed or dead one is replaced in a thread first,
        so that the caller has its answer at once and the slot rejoins the pool when its new worker is ready
        (the client's share is held until then: a client whose jobs kill workers waits for their replacement)."""
        if not slot.dirty or self._closed:
            self._release(slot, client)
            return

        def replace() -> None:
            try:
                self._prepare_quietly(slot)
            finally:
                self._release(slot, client)

        threading.Thread(target=replace, name="formula-pool-replace", daemon=True).start()

    def _prepare_quietly(self, slot: _Slot) -> None:
        """Replace a worker now, so that the next job finds it ready; a failure is left to that job."""
        try:
            self._prepare(slot)
        except Exception:
            slot.dirty = True

    # ------------------------------------------------------------------ running: asyncio

    async def run(
        self, job: Job, *args: Any, timeout: float | None = None, client: str | None = None, **kwargs: Any
    ) -> Any:
        """Run `job(*args, **kwargs)` in a worker and return its result, without blocking the event loop.

        Raises as run_sync. If the calling task is cancelled while its job runs, the worker is killed.
        """
        limit = self.time_limit if timeout is None else float(timeout)
        payload = self._request(job, args, kwargs)
        key = client or ""
        slot = await self._acquire_async(key)
        try:
            return await self._run_on_async(slot, payload, limit)
        finally:
            self._recycle(slot, key)

    async def _run_on_async(self, slot: _Slot, payload: bytes, limit: float) -> Any:
        if not slot.ready():
            await asyncio.to_thread(self._prepare, slot)
        if not self._send(slot, payload):
            await asyncio.to_thread(self._prepare, slot)
            if not self._send(slot, payload):
                raise WorkerCrashed(await asyncio.to_thread(slot.reap))
        assert slot.replies is not None
        loop = asyncio.get_running_loop()
        fd = slot.replies.fileno()
        done: asyncio.Future[bytes | None] = loop.create_future()
        reader = _FrameReader()

        def readable() -> None:
            if done.done():
                return
            try:
                data = os.read(fd, _READ_CHUNK)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                done.set_result(None)
                return
            frame = reader.feed(data)
            if frame is not None:
                done.set_result(frame)

        loop.add_reader(fd, readable)
        try:
            async with asyncio.timeout(limit):
                frame = await done
        except TimeoutError:
            loop.remove_reader(fd)
            slot.kill()
            self.counters.too_long += 1
            raise WorkTooLong(limit) from None
        except BaseException:  # cancelled: the job may run on, so the worker goes
            loop.remove_reader(fd)
            slot.kill()
            raise
        loop.remove_reader(fd)
        reply = None if frame is None else pickle.loads(frame)
        exitcode = None
        if reply is None:  # the worker died: its exit code says why
            exitcode = await asyncio.to_thread(slot.reap)
            slot.dirty = True
        elif reply[0] == "memory":  # the worker is exiting
            slot.dirty = True
        return self._outcome(reply, exitcode)
