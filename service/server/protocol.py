"""The HTTP/1.1 protocol `python -m service serve` runs: uvicorn's httptools one, with a bound on the
request line and headers, and its own refusals (unparsable request, headers too large) as problem+json.

httptools (llhttp) has no limit of its own on the size of a request's headers: it hands each header
over whole, so a client sending one 50 MB header made the worker hold 50 MB (a chunked body's
trailers too). Here the bytes received since the parser last made progress (a complete head, a piece
of body) are counted as they arrive, so at most MAX_HEADER_BYTES plus one read (64–256 KiB) is ever
held, and the head's exact size is checked once it is complete; above the limit the answer is a 431
problem and the connection is closed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from service.http.errors import PROBLEM_JSON, problem_body
from service.settings import get_settings


class HeadersTooLarge(Exception):
    """Raised from a parser callback: httptools then stops and raises HttpParserCallbackError."""


def refusal(status: int, slug: str, detail: str, default_headers: Iterable[tuple[bytes, bytes]] = ()) -> bytes:
    """A whole HTTP/1.1 response, problem+json, closing the connection."""
    body = orjson.dumps(problem_body(status, slug, detail))
    head = [
        STATUS_LINE[status],
        *(name + b": " + value + b"\r\n" for name, value in default_headers),
        b"content-type: " + PROBLEM_JSON.encode("ascii") + b"\r\n",
        b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
        b"connection: close\r\n",
        b"\r\n",
    ]
    return b"".join(head) + body


class ServiceHttpProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # read in each worker (the class, not its settings, is what reaches a spawned worker)
        self.max_header_bytes = get_settings().max_header_bytes
        # received since the parser last made progress (a complete head, a piece of body): what it may
        # be holding, a header or a trailer it has not handed over yet
        self._pending_bytes = 0
        self._head_exact = 0  # the last request's line and headers, as parsed
        self._refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._pending_bytes += len(data)
        super().data_received(data)
        if not self._refused and self._pending_bytes > self.max_header_bytes:
            self._refuse_headers()

    def on_headers_complete(self) -> None:
        self._pending_bytes = 0
        # the exact size, once per request (counting in on_url and on_header cost more per request)
        self._head_exact = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if self._head_exact > self.max_header_bytes:
            raise HeadersTooLarge()
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._pending_bytes = 0
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._pending_bytes = 0
        super().on_message_complete()

    def _refuse_headers(self) -> None:
        self._refused = True
        self.logger.warning("Request headers over %d bytes refused.", self.max_header_bytes)
        if self.cycle is not None and not self.cycle.response_complete:
            # a request is in progress (its trailers too large, or a pipelined head): no answer can be
            # put between its response's bytes, the connection is closed (the request sees a disconnect)
            self.transport.close()
            return
        self.transport.write(
            refusal(
                431,
                "headers-too-large",
                f"The request line and headers are over {self.max_header_bytes} bytes.",
                self.server_state.default_headers,
            )
        )
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request httptools cannot parse (or to a callback's exception)."""
        if self._refused:
            return
        if self._head_exact > self.max_header_bytes:
            self._refuse_headers()
            return
        self._refused = True
        self.transport.write(
            refusal(400, "invalid-request", "The HTTP request cannot be parsed.", self.server_state.default_headers)
        )
        self.transport.close()
