"""API keys: who is calling (a Principal: a key's id and its roles), from the Authorization header.

Roles: grader (everything, reveal included), student (grading without reveal, of signed problems
only), operator (/metrics). With no keys configured the service runs open (for local use) and
says so in its log at start. Keys are compared in constant time, as bytes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from starlette.requests import Request

from service.http.errors import ProblemError

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="gradient-service"'}


@dataclass(frozen=True)
class Principal:
    """Who is calling: a short id derived from the key (never the key itself) and its roles."""

    key_id: str
    roles: frozenset[str]

    @property
    def is_student_only(self) -> bool:
        return "grader" not in self.roles and "student" in self.roles


OPEN = Principal("open", frozenset({"grader", "student", "operator"}))


class KeyRing:
    """The configured keys, as bytes, checked in constant time against every one of them."""

    def __init__(self, keys: Mapping[str, Iterable[str]]) -> None:
        self._keys = [(k.encode("utf-8"), frozenset(roles)) for k, roles in keys.items()]

    @property
    def open(self) -> bool:
        return not self._keys

    def lookup(self, presented: bytes) -> Principal | None:
        found: frozenset[str] | None = None
        for key, roles in self._keys:
            if hmac.compare_digest(presented, key):  # no early exit: the time does not tell which key
                found = roles
        if found is None:
            return None
        return Principal(hashlib.sha256(presented).hexdigest()[:12], found)


def _unauthorized(detail: str) -> ProblemError:
    return ProblemError(401, "unauthorized", detail, headers=CHALLENGE)


class NoKey(Exception):
    """The Authorization header presents no key; `detail` says what is wrong with it."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def presented_key(header: str | bytes | None) -> bytes:
    """The key an Authorization header presents ("Bearer <key>", the key ASCII); NoKey when it presents
    none. The one reading of the header, for the route's authentication and for the body limit."""
    text = header.decode("latin-1") if isinstance(header, bytes) else header  # as Starlette decodes headers
    if not text:
        raise NoKey("Send an API key as Authorization: Bearer <key>.")
    scheme, _, token = text.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NoKey("Send an API key as Authorization: Bearer <key>.")
    try:
        return token.strip().encode("ascii")
    except UnicodeEncodeError:
        raise NoKey("The API key is not valid.") from None


def authenticate(request: Request) -> Principal:
    ring: KeyRing = request.app.state.keyring
    if ring.open:
        return OPEN
    try:
        presented = presented_key(request.headers.get("authorization"))
    except NoKey as exc:
        raise _unauthorized(exc.detail) from None
    principal = ring.lookup(presented)
    if principal is None:
        raise _unauthorized("The API key is not valid.")
    return principal
