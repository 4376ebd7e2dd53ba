"""The array path: a big request's X parsed in row chunks straight into one numpy array.

Validating a whole body at once builds X as Python lists of Python floats, and the JSON parser's
own tree beside them: about four times the body in memory, at 100,000 × 20. Here X's text is cut
out of the body and parsed a chunk of rows at a time, by the same strict pydantic validator the
schema uses for X (JSON numbers only, finite, no booleans, no strings), into a preallocated array;
the rest of the body (the "skeleton", with a one-element X in X's place) is validated by the
request's own adapter. Memory stays near the body plus the array.

It is an optimisation, never a second set of rules. It takes the common shape of a body (one "X"
key, no escaped characters, a plain matrix of numbers) and gives up, returning None, at anything
else: any validation error, a ragged or empty row, a size over the limits, X not where the
schema puts it. The caller then validates the whole body the usual way, which gives the answer
(and the error messages) the service always gave. A test feeds both paths the same bodies.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
from pydantic import ConfigDict, TypeAdapter, ValidationError

# X as the schemas declare it (service/http/schemas/gradient.py: Strict config, Matrix)
_ROWS: TypeAdapter[list[list[float]]] = TypeAdapter(
    list[list[float]], config=ConfigDict(strict=True, allow_inf_nan=False)
)
_PLACEHOLDER = b"[[0]]"
_WS = b" \t\n\r"
# Parsed in chunks of about this many bytes. Measured at 100,000 × 20 (the whole array path):
# 16 KiB 0.26 s, 64 KiB 0.23 s, 256 KiB 0.34 s, 512 KiB 0.36 s; validating all of X at once took
# 0.48 s for the validation alone (smaller working sets, faster allocation).
CHUNK_BYTES = 1 << 16

SizeCheck = Callable[[int, int, Any], bool]  # (m, n, validated skeleton) -> within the limits


def _skip_ws(body: bytes | bytearray, i: int) -> int:
    while i < len(body) and body[i] in _WS:
        i += 1
    return i


def _data(request: Any) -> Any:
    return getattr(request, "data", None)


def parse_with_matrix(
    adapter: TypeAdapter[Any], body: bytes | bytearray, within_limits: SizeCheck, data_of: Callable[[Any], Any] = _data
) -> Any | None:
    """The validated request with data.X as an (m, n) float64 array, or None to take the usual path.

    `data_of` finds the object that holds X in a validated request (request.data by default)."""
    key = body.find(b'"X"')
    if key < 0:
        return None
    colon = _skip_ws(body, key + 3)
    if colon >= len(body) or body[colon] != ord(":"):
        return None
    start = _skip_ws(body, colon + 1)
    if start >= len(body) or body[start] != ord("["):
        return None
    # X's text holds no quote, and whatever follows X starts with a key's quote or a "}": X ends at
    # the last "]]" before the first quote after it (or the body's end). Both searches are memchr-fast;
    # a forward search for "]]" through 40 MB took 60 ms. (A spaced "] ]" takes the usual path.)
    quote = body.find(b'"', start + 1)
    stop = body.rfind(b"]]", start + 1, quote if quote >= 0 else len(body))
    if stop < 0:
        return None
    skeleton = body[:start] + _PLACEHOLDER + body[stop + 2 :]
    # One "X" key, and no escapes, which could spell a key ("\u0058") or hide a quote.
    if skeleton.count(b'"X"') != 1 or b"\\" in skeleton:
        return None
    try:
        request = adapter.validate_json(skeleton)
    except ValidationError:
        return None
    data = data_of(request)
    if data is None or getattr(data, "X", None) != [[0.0]]:
        return None  # the cut was not data.X
    lo, hi = start + 1, stop + 1  # body[lo:hi] is "[..], [..], …, [..]", read in place (not copied)
    m = body.count(b"[", lo, hi)
    first = body.find(b"]", lo, hi)
    n = body.count(b",", lo, first) + 1
    if m < 1 or not within_limits(m, n, request):
        return None
    X = _rows(body, lo, hi, m, n)
    if X is None:
        return None
    data.__dict__["X"] = X  # the model's field, now an array (the same numbers the lists would hold)
    return request


PLACEHOLDER_X = [[0.0]]


def request_json(request: Any, *, placeholder: bool = False) -> dict[str, Any]:
    """A validated /gradient request as JSON data. Its data.X may be an array (from this path or a
    .npy part), which pydantic would not serialise as the lists the field declares: it comes out as
    lists, or as a one-element placeholder where the caller puts the array back itself."""
    X = request.data.X
    if not isinstance(X, np.ndarray):
        dump: dict[str, Any] = request.model_dump(mode="json", by_alias=True, exclude_none=True)
        return dump
    dump = request.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"data": {"X"}})
    dump["data"]["X"] = PLACEHOLDER_X if placeholder else X.tolist()
    return dump


def _rows(body: bytes | bytearray, lo: int, hi: int, m: int, n: int) -> np.ndarray | None:
    """The rows of numbers in body[lo:hi], parsed CHUNK_BYTES at a time into an (m, n) array; None
    unless they are exactly that."""
    out = np.empty((m, n), dtype=np.float64)
    view = memoryview(body)
    done = 0
    pos = _skip_ws(body, lo)
    while pos < hi:
        cut = pos + CHUNK_BYTES
        stop = hi if cut >= hi else body.find(b"]", cut, hi) + 1
        if stop <= 0:
            stop = hi
        try:
            rows = _ROWS.validate_json(b"".join((b"[", view[pos:stop], b"]")))  # one copy of the chunk
        except ValidationError:
            return None
        count = len(rows)
        if count == 0 or done + count > m or set(map(len, rows)) != {n}:
            return None
        block = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.float64, count=count * n)
        out[done : done + count] = block.reshape(count, n)
        done += count
        pos = _skip_ws(body, stop)
        if pos < hi:  # the next row must follow a comma, as in the body
            if body[pos] != ord(","):
                return None
            pos = _skip_ws(body, pos + 1)
            if pos >= hi:  # a trailing comma
                return None
    return out if done == m else None
