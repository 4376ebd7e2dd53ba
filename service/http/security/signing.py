"""Signed problems: HMAC-SHA256 tokens over the canonical problem, its scoring options and expiry."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

import orjson

from service.http.errors import ProblemError
from service.settings import Settings


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_PROCESS_SECRET = secrets.token_bytes(32)


class Signer:
    """HMAC-SHA256 over the canonical problem (sorted keys, compact JSON) and its expiry."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @classmethod
    def from_settings(cls, settings: Settings) -> Signer:
        if settings.signing_secret is not None:
            return cls(settings.signing_secret.get_secret_value().encode("utf-8"))
        return cls(_PROCESS_SECRET)  # the app warns at start that tokens then live only in this process

    def sign(self, problem: dict[str, Any], expires_at: int, grading: dict[str, Any] | None = None) -> str:
        body: dict[str, Any] = {"exp": expires_at, "problem": problem}
        if grading is not None:
            body["grading"] = grading
        payload = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        mac = hmac.new(self._secret, payload, hashlib.sha256).digest()
        return _b64(payload) + "." + _b64(mac)

    def verify(self, token: str) -> Sealed:
        """The sealed problem, its grading options and expiry; ProblemError 403 when the token was
        tampered with, has expired, or carries a payload this service cannot read."""
        forbidden = ProblemError(
            403, "forbidden", "The problem token is not valid (it was altered or not signed by this service)."
        )
        if not isinstance(token, str):
            raise forbidden
        try:
            payload_b64, mac_b64 = token.split(".")
            payload, mac = _unb64(payload_b64), _unb64(mac_b64)
        except ValueError:
            raise forbidden from None
        if _b64(payload) != payload_b64 or _b64(mac) != mac_b64:
            raise forbidden  # one spelling per token: a respelt one must not count as a new problem
        expected = hmac.new(self._secret, payload, hashlib.sha256).digest()
        if not hmac.compare_digest(mac, expected):
            raise forbidden
        # signed by this secret, yet possibly not by this service's code (a shared secret, an older
        # release): its content is checked as strictly as a request's, never trusted to be well formed
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            data = None
        exp = data.get("exp") if isinstance(data, dict) else None
        problem = data.get("problem") if isinstance(data, dict) else None
        grading = data.get("grading") if isinstance(data, dict) else None
        if (
            not isinstance(data, dict)
            or set(data) - {"exp", "problem", "grading"}
            or not isinstance(exp, int)
            or isinstance(exp, bool)
            or not isinstance(problem, dict)
            or not (grading is None or isinstance(grading, dict))
        ):
            raise MalformedToken()
        if exp < time.time():
            raise ProblemError(403, "forbidden", "The problem token has expired: ask for a new one.")
        return Sealed(problem, grading, exp)


@dataclass(frozen=True)
class Sealed:
    """What a verified problem token holds: the problem, the grader's scoring options (None in tokens
    signed before options were sealed: the defaults apply) and the expiry (Unix seconds)."""

    problem: dict[str, Any]
    grading: dict[str, Any] | None
    expires: int


class MalformedToken(ProblemError):
    def __init__(self) -> None:
        super().__init__(
            403,
            "forbidden",
            "The problem token is not valid: its content is not a problem this service can read (ask for a new one).",
        )


def token_digest(token: str) -> str:
    """Identifies a (verified, canonically spelt) token, for counting attempts."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()[:24]
