"""API keys and roles, rate limits per key, and signed problems.

Roles: grader (everything, reveal included), student (grading without reveal, of signed problems
only), operator (/metrics). With no keys configured the service runs open (for local use) and
says so in its log at start. Keys are compared in constant time, as bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import math
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request

from service.api.errors import ProblemError
from service.settings import Settings

log = logging.getLogger("service.security")
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


def authenticate(request: Request) -> Principal:
    ring: KeyRing = request.app.state.keyring
    if ring.open:
        return OPEN
    header = request.headers.get("authorization")
    if not header:
        raise _unauthorized("Send an API key as Authorization: Bearer <key>.")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("Send an API key as Authorization: Bearer <key>.")
    try:
        presented = token.strip().encode("ascii")
    except UnicodeEncodeError:
        raise _unauthorized("The API key is not valid.") from None
    principal = ring.lookup(presented)
    if principal is None:
        raise _unauthorized("The API key is not valid.")
    return principal


# --- rate limits: a token bucket per key --------------------------------------------------------


class MemoryLimiter:
    """Token buckets in this process's memory (so, with several workers, per worker)."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    async def take(self, key: str, rate_per_s: float, burst: int) -> float:
        """0 when allowed, else the seconds to wait."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(burst), now))
            tokens = min(float(burst), tokens + (now - last) * rate_per_s)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / rate_per_s


_BUCKET_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local data = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(data[1]) or burst
local ts = tonumber(data[2]) or now
tokens = math.min(burst, tokens + (now - ts) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return tostring(wait)
"""


class RedisClient:
    """A connection to Redis (short timeouts) and the errors that mean it cannot be reached; its
    users fail closed: what cannot be checked is refused (LimiterUnavailable, a 503)."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as redis_asyncio
        from redis.exceptions import RedisError

        self._redis = redis_asyncio.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self._errors = (RedisError, OSError)

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except self._errors:
            return False

    async def close(self) -> None:
        await self._redis.aclose()


class RedisLimiter(RedisClient):
    """The same buckets in Redis: shared by every worker and replica (attempts: service.api.attempts)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._bucket = self._redis.register_script(_BUCKET_LUA)

    async def take(self, key: str, rate_per_s: float, burst: int) -> float:
        try:
            wait = await self._bucket(keys=[f"gradient:bucket:{key}"], args=[rate_per_s, burst])
        except self._errors:
            raise LimiterUnavailable() from None  # fail closed: limits that cannot be checked are not skipped
        return float(wait)


Limiter = MemoryLimiter | RedisLimiter


def make_limiter(settings: Settings) -> Limiter:
    return RedisLimiter(settings.redis_url) if settings.redis_url else MemoryLimiter()


async def app_settings(request: Request) -> Settings:
    """A dependency: the settings this app was created with (async, so it costs no thread hop)."""
    settings: Settings = request.app.state.settings
    return settings


# --- failed authentications: a token bucket per client address --------------------------------------


class AuthThrottle:
    """The client addresses that have spent their failed authentications, until when (this process only).

    The failures themselves are counted in the app's limiter (so, with Redis, across workers and
    replicas); a worker learns that an address is blocked on the first failure from it it refuses.
    """

    MAX_BLOCKED = 65_536  # addresses remembered at once: the oldest are forgotten beyond

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    def blocked_for(self, address: str) -> float:
        """The seconds this address stays blocked (0: not blocked)."""
        until = self._until.get(address)
        if until is None:
            return 0.0
        left = until - time.monotonic()
        if left <= 0:
            self._until.pop(address, None)
            return 0.0
        return left

    def block(self, address: str, seconds: float) -> None:
        now = time.monotonic()
        if len(self._until) >= self.MAX_BLOCKED:
            for stale in [a for a, until in self._until.items() if until <= now]:
                del self._until[stale]
            while len(self._until) >= self.MAX_BLOCKED:
                del self._until[next(iter(self._until))]
        self._until.pop(address, None)
        self._until[address] = now + seconds


def client_address(request: Request) -> str:
    """The TCP peer's address: behind a proxy, the proxy's (X-Forwarded-For is not trusted)."""
    return request.client.host if request.client is not None else "unknown"


def rate_limited(wait: float, what: str) -> ProblemError:
    """429 rate-limited, with Retry-After: `what` says whose limit it is ("requests for this key")."""
    retry = max(1, math.ceil(wait))
    return ProblemError(
        429,
        "rate-limited",
        f"Too many {what}: retry in {retry} s.",
        headers={"Retry-After": str(retry)},
        retry_after=retry,
    )


def _too_many_failures(wait: float) -> ProblemError:
    return rate_limited(wait, "failed authentications from this address")


async def authenticate_throttled(request: Request) -> Principal:
    """authenticate(), with the failed attempts of each client address throttled.

    An address that has spent its failures (AUTH_FAILURES_PER_MINUTE, AUTH_FAILURE_BURST) is answered
    429 on every request that needs a key, a correct key included, until its bucket refills: answering
    a correct key as usual would tell a guesser which of its guesses was right, at full speed. Requests
    without an Authorization header are not counted (no key was tried); successes never are.
    """
    settings: Settings = request.app.state.settings
    if settings.auth_failures_per_minute <= 0 or request.app.state.keyring.open:
        return authenticate(request)
    throttle: AuthThrottle = request.app.state.auth_throttle
    address = client_address(request)
    blocked = throttle.blocked_for(address)
    if blocked > 0:
        raise _too_many_failures(blocked)
    try:
        return authenticate(request)
    except ProblemError:
        if "authorization" not in request.headers:
            raise
        limiter: Limiter = request.app.state.limiter
        wait = await limiter.take(
            f"authfail:{address}", settings.auth_failures_per_minute / 60.0, settings.auth_failure_burst
        )
        if wait <= 0:
            raise
        throttle.block(address, wait)
        log.warning("failed authentications from %s throttled for %.1f s", address, wait)
        raise _too_many_failures(wait) from None


def access(*roles: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: authenticate (failures throttled per address), check one of `roles` (grader may do
    everything), rate-limit."""
    allowed = frozenset(roles) | {"grader"}

    async def dependency(request: Request) -> Principal:
        principal = await authenticate_throttled(request)
        if principal is OPEN:
            return principal
        if not principal.roles & allowed:
            raise ProblemError(
                403,
                "forbidden",
                f"This key's roles ({', '.join(sorted(principal.roles))}) may not "
                f"use {request.url.path}; it needs one of: {', '.join(sorted(allowed))}.",
            )
        settings: Settings = request.app.state.settings
        if settings.rate_limit_per_minute > 0:
            limiter: Limiter = request.app.state.limiter
            wait = await limiter.take(
                principal.key_id, settings.rate_limit_per_minute / 60.0, settings.rate_limit_burst
            )
            if wait > 0:
                raise rate_limited(wait, "requests for this key")
        return principal

    return dependency


# --- signed problems -----------------------------------------------------------------------------


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


class LimiterUnavailable(ProblemError):
    def __init__(self) -> None:
        super().__init__(
            503,
            "unavailable",
            "The shared rate limiter (Redis) cannot be reached; try again shortly.",
            headers={"Retry-After": "5"},
        )
