"""X as a .npy part: a multipart/form-data body whose matrix travels as binary, not as JSON text.

A big X costs more to send as JSON than to compute with: at 100,000 × 20 the JSON body is 40 MB,
and turning its text into numbers is most of the request's time. As NumPy's .npy format the same
matrix is 16 MB that need no parsing at all. POST /gradient, /graph, /descent and /descent/plot
therefore also take `multipart/form-data` with two parts:

- `request`: the JSON body the endpoint takes as application/json, with X left out of its data;
- `X`: the matrix as a .npy file (format 1.0 or 2.0; float64, float32 or float16 in either byte
  order; C or Fortran order; two dimensions; every entry finite).

Everything else is the JSON endpoint's: the request part is validated by the same adapter (X
stands in as a one-element placeholder while it is, as in service/http/wire/arrays.py), the matrix then
takes X's place as an array, and the same checks, limits, errors and answer follow. Errors in the
matrix are located at X's place in the request (["data", "X", i, j]); errors in the envelope
(parts missing, repeated or unknown) at the part's name.

Nothing in a .npy header is trusted before it is checked: the dtype must be a plain float type
(so no object array, no pickle, is ever read), and the data must be exactly m·n items long before
any array is made. The body's size limit bounds it all.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from service.http.errors import ProblemError
from service.http.wire.json import parse

MULTIPART = "multipart/form-data"
NPY = "application/x-npy"
PARTS = ("request", "X")
MAX_PARTS = 8  # a body of many tiny parts is refused before it costs anything
MAX_NPY_HEADER = 10_000  # numpy's own default limit for np.load
_X_MEDIA = frozenset({"", NPY, "application/octet-stream"})
_PLACEHOLDER = [[0.0]]


def _media(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def _is_json(media: str) -> bool:
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


@dataclass(frozen=True)
class RawBody:
    """A request's body as read, with its media type (JSON or multipart, checked)."""

    data: bytes | bytearray
    content_type: str

    @property
    def multipart(self) -> bool:
        return _media(self.content_type) == MULTIPART

    def __len__(self) -> int:
        return len(self.data)


async def read_body(request: Request) -> RawBody:
    """The raw body of a JSON or multipart request (415 for another media type, 400 when empty)."""
    content_type = request.headers.get("content-type", "")
    media = _media(content_type)
    if not (_is_json(media) or media == MULTIPART):
        raise ProblemError(
            415,
            "unsupported-media-type",
            "Send the body as JSON (Content-Type: application/json), or as multipart/form-data with a "
            "JSON part named request and the matrix X as a .npy part named X.",
        )
    body = await _read(request)
    if not body or body.isspace():
        raise ProblemError(400, "invalid-json", "The body is empty: send a JSON object.")
    return RawBody(body, content_type)


# Bodies declared smaller than this are read as Starlette reads them (a list of chunks, joined);
# bigger ones, and chunked ones, into one buffer that grows as they arrive. Joining always holds the
# body twice; the buffer does so only when glibc cannot grow it in place. Measured (the suite's
# big request): the 40 MB JSON body peaked at 65–103 MiB across rounds against 104 MiB every time,
# its 16 MB .npy form at 42 MiB against 64. (A buffer of the declared size at once would hold
# memory for bytes a client has only promised.)
BUFFER_MIN_BYTES = 1 << 20


async def _read(request: Request) -> bytes | bytearray:
    """The whole body, from the ASGI messages themselves (Starlette's body() adds an async
    generator and its closing, ~10 µs of a 9 KB request). ClientDisconnect if the client leaves."""
    declared = request.headers.get("content-length", "")
    buffer = None if declared.isdigit() and int(declared) < BUFFER_MIN_BYTES else bytearray()
    chunks: list[bytes] = []
    receive = request.receive
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            if buffer is not None:
                buffer += chunk
            elif chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()
    if buffer is not None:
        return buffer
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    # the part's bytes as pieces: (start, end) within the body, or bytes the parser made itself
    pieces: list[tuple[int, int] | bytes] = field(default_factory=list)

    def content(self, body: bytes | bytearray) -> memoryview | bytes:
        """The part's bytes: a view of the body when they lie in one piece of it (no copy), else joined."""
        if len(self.pieces) == 1 and isinstance(self.pieces[0], tuple):
            start, end = self.pieces[0]
            return memoryview(body)[start:end]
        return b"".join(p if isinstance(p, bytes) else body[p[0] : p[1]] for p in self.pieces)


def _invalid_multipart(detail: str) -> ProblemError:
    return ProblemError(400, "invalid-multipart", detail)


def _envelope_error(loc: str, msg: str) -> ProblemError:
    return ProblemError(
        422,
        "validation-error",
        "The multipart body does not have the parts request and X.",
        [{"loc": [loc], "msg": msg}],
    )


def split_parts(raw: RawBody) -> tuple[bytes, memoryview | bytes]:
    """(the request part's JSON, the X part's bytes) of a multipart body; 400, 415 or 422 if not those."""
    _, options = parse_options_header(raw.content_type)
    boundary = options.get(b"boundary", b"")
    if not boundary or len(boundary) > 70:  # RFC 2046: 1 to 70 characters
        raise _invalid_multipart(
            "The Content-Type has no valid boundary parameter (multipart/form-data; boundary=...)."
        )
    parts: list[_Part] = []
    header: dict[str, bytearray] = {"field": bytearray(), "value": bytearray()}
    ended = False

    def on_part_begin() -> None:
        if len(parts) >= MAX_PARTS:
            raise _envelope_error("body", f"more than {MAX_PARTS} parts; send the parts request and X")
        parts.append(_Part())

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header["value"] += data[start:end]

    def on_header_end() -> None:
        name = header["field"].decode("latin-1").strip().lower()
        parts[-1].headers[name] = header["value"].decode("latin-1").strip()
        header["field"], header["value"] = bytearray(), bytearray()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        pieces = parts[-1].pieces
        if data is not raw.data:  # the parser's own look-behind buffer
            pieces.append(bytes(data[start:end]))
        elif pieces and isinstance(pieces[-1], tuple) and pieces[-1][1] == start:
            pieces[-1] = (pieces[-1][0], end)
        else:
            pieces.append((start, end))

    def on_end() -> None:
        nonlocal ended
        ended = True

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
            "on_end": on_end,
        },
    )
    try:
        parser.write(raw.data)  # type: ignore[arg-type]  # it reads a bytearray as it reads bytes
        parser.finalize()
    except MultipartParseError as exc:
        raise _invalid_multipart(f"The multipart body cannot be read: {str(exc)[:200]}") from None
    if not ended:
        raise _invalid_multipart("The multipart body ends before its closing boundary.")

    named: dict[str, _Part] = {}
    for part in parts:
        disposition, params = parse_options_header(part.headers.get("content-disposition", ""))
        name = params.get(b"name", b"").decode("latin-1")
        if disposition != b"form-data" or not name:
            raise _envelope_error("body", "every part needs Content-Disposition: form-data; name=...")
        if name not in PARTS:
            raise _envelope_error(name[:64], "unknown part; send the parts request and X")
        if name in named:
            raise _envelope_error(name, "this part is sent twice")
        named[name] = part
    for name in PARTS:
        if name not in named:
            what = "the JSON request without X" if name == "request" else "the matrix as a .npy file"
            raise _envelope_error(name, f"missing part: {what}")
    request_media = _media(named["request"].headers.get("content-type", ""))
    if request_media and not _is_json(request_media):
        raise ProblemError(415, "unsupported-media-type", "The part request must be JSON (application/json).")
    if _media(named["X"].headers.get("content-type", "")) not in _X_MEDIA:
        raise ProblemError(415, "unsupported-media-type", f"The part X must be a .npy file ({NPY}).")
    return bytes(named["request"].content(raw.data)), named["X"].content(raw.data)


def _matrix_error(loc: list[Any], msg: str) -> ProblemError:
    return ProblemError(422, "validation-error", "The matrix X (the part X) is not usable.", [{"loc": loc, "msg": msg}])


def load_matrix(npy: memoryview | bytes, loc: list[Any]) -> np.ndarray:
    """The (m, n) float64 matrix in a .npy file, checked: 422 at `loc` (X's place) for anything else."""
    fp = io.BytesIO(bytes(npy[: 12 + MAX_NPY_HEADER]))  # the magic, the header's length and the header
    try:
        version = np.lib.format.read_magic(fp)
    except ValueError:
        raise _matrix_error(loc, "not a .npy file (it must start with \\x93NUMPY)") from None
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    if version not in readers:
        raise _matrix_error(loc, f".npy format {version[0]}.{version[1]}; send format 1.0 or 2.0 (np.save)")
    try:
        shape, fortran, dtype = readers[version](fp, max_header_size=MAX_NPY_HEADER)
    except Exception:  # numpy's header reader lets SyntaxError and tokenize's TokenError through too
        raise _matrix_error(
            loc, "the .npy header cannot be read: it must be a dict of descr, fortran_order and shape (np.save)"
        ) from None
    if dtype.kind != "f" or dtype.fields is not None or dtype.itemsize > 8 or dtype.subdtype is not None:
        raise _matrix_error(
            loc,
            f"X must hold floating-point numbers (float64, float32 or float16), not {dtype.name}; "
            "convert it first, e.g. X.astype(np.float64)",
        )
    if len(shape) != 2:
        raise _matrix_error(loc, f"X must have two dimensions (m examples × n features), not {len(shape)}")
    m, n = shape
    if m < 1:
        raise _matrix_error(loc, "List should have at least 1 item after validation, not 0")
    start = fp.tell()
    if len(npy) - start != m * n * dtype.itemsize:
        raise _matrix_error(
            loc,
            f"the .npy data holds {len(npy) - start} bytes; "
            f"its header's shape {m} × {n} needs {m * n * dtype.itemsize}",
        )
    view = np.frombuffer(npy, dtype=dtype, count=m * n, offset=start).reshape((m, n), order="F" if fortran else "C")
    # One copy, into an array of its own: native float64 (exact: every float16/32 is a float64), C order,
    # aligned and writable, whatever the file held, and the body it came in can go.
    X = np.empty((m, n), dtype=np.float64)
    X[...] = view
    finite = np.isfinite(X)
    if not finite.all():
        bad = np.argwhere(~finite)[:20]
        raise ProblemError(
            422,
            "validation-error",
            "The matrix X (the part X) is not usable.",
            [{"loc": [*loc, int(i), int(j)], "msg": "Input should be a finite number"} for i, j in bad],
        )
    return X


def _with_placeholder(adapter: Any, text: bytes, data_path: tuple[str, ...]) -> Any:
    """The request part validated as the JSON body would be, with a placeholder where X goes."""
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        return parse(adapter, text)  # not JSON (400), or beyond orjson: the usual path says what
    node = document
    for key in data_path:
        node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict):
        if "X" in node:
            raise ProblemError(
                422,
                "validation-error",
                "X is sent twice.",
                [{"loc": [*data_path, "X"], "msg": "X travels as the part X (.npy): leave it out of the part request"}],
            )
        node["X"] = _PLACEHOLDER
    return parse(adapter, orjson.dumps(document))


def parse_multipart(
    adapter: Any, raw: RawBody, data_path: tuple[str, ...], data_of: Callable[[Any], Any] | None = None
) -> Any:
    """The validated request of a multipart body, its data.X the .npy part's (m, n) float64 array.

    `data_path` is where the request's data object (the one holding X) sits in the JSON."""
    text, npy = split_parts(raw)
    request = _with_placeholder(adapter, text, data_path)
    X = load_matrix(npy, [*data_path, "X"])
    data = data_of(request) if data_of is not None else _walk(request, data_path)
    data.__dict__["X"] = X  # the model's field, now an array, as on the array path
    return request


def _walk(obj: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        obj = getattr(obj, key)
    return obj


def multipart_content(schema_ref: str, data_path: str, example: dict[str, Any] | None = None) -> dict[str, Any]:
    """The OpenAPI description of the multipart form of a request body whose JSON schema is
    `schema_ref`; `example` is a JSON body of it, shown with its X left out as the form sends it."""
    shown: dict[str, Any] = {}
    if example is not None:
        request = copy.deepcopy(example)
        holder = request
        for key in data_path.split("."):
            holder = holder[key]
        holder.pop("X", None)
        shown = {"example": {"request": request, "X": "(the .npy file of X: np.save(file, X))"}}
    return {
        **shown,
        "schema": {
            "type": "object",
            "required": list(PARTS),
            "properties": {
                "request": {
                    "$ref": schema_ref,
                    "description": f"The application/json body of this operation, with {data_path}.X left out.",
                },
                "X": {
                    "type": "string",
                    "format": "binary",
                    "contentMediaType": NPY,
                    "description": (
                        f"{data_path}.X as a .npy file (np.save; format 1.0 or 2.0): m rows of n features, "
                        "float64, float32 or float16 in either byte order, C or Fortran order, every entry finite."
                    ),
                },
            },
        },
        "encoding": {"request": {"contentType": "application/json"}, "X": {"contentType": NPY}},
    }
