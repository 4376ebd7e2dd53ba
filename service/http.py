"""The HTTP/1.1 protocol `python -m service serve` runs: uvicorn's httptools one, with a bound on the
request line and headers, and its own refusals (unparsable request, headers too large) as problem+json.

httptools (llhttp) has no limit of its own on the size of a request's headers: it hands each header
over whole, so a client sending one 50 MB header made the worker hold 50 MB. Here the bytes received
while a request's head is incomplete are counted as they arrive (so at most MAX_HEADER_BYTES plus one
read, 64–256 KiB, is ever held), and the head's exact size is checked once it is complete; above the
limit the answer is a 431 problem and the connection is closed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from service.api.errors import PROBLEM_JSON, problem_body
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
        self._head_bytes = 0  # received since the last head was complete, while the next one is not
        self._in_head = True
        self._head_exact = 0  # the request line's and headers' own bytes, as parsed
        self._refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and not self._refused and self._head_bytes > self.max_header_bytes:
            self._refuse_headers()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_exact = 0

    def on_url(self, url: bytes) -> None:
        self._head_exact += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_exact += len(name) + len(value) + 4  # ": " and CRLF
        if self._head_exact > self.max_header_bytes:
            raise HeadersTooLarge()
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        if self._head_exact > self.max_header_bytes:
            raise HeadersTooLarge()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True  # what comes next is the next request's head

    def _refuse_headers(self) -> None:
        self._refused = True
        self.logger.warning("Request headers over %d bytes refused.", self.max_header_bytes)
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
