"""Roles: the `access` dependency (authenticate, failures throttled per client address, check a role,
rate-limit the key)."""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Awaitable, Callable

from starlette.requests import Request

from service.http.errors import ProblemError
from service.http.security.keys import OPEN, Principal, authenticate
from service.http.security.limits import Limiter, rate_limited
from service.settings import Settings

log = logging.getLogger("service.security")


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


# The caller of the request being served, as the rate limiter names it (set by `access`; threads that the
# request's work runs in see it too): the formula workers hold each caller to its share of them.
caller: contextvars.ContextVar[str | None] = contextvars.ContextVar("caller", default=None)


def caller_key(request: Request, principal: Principal) -> str:
    """The caller's identity as the rate limiter sees it: its key, or its address when the service runs open."""
    return f"address:{client_address(request)}" if principal is OPEN else principal.key_id


def access(*roles: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: authenticate (failures throttled per address), check one of `roles` (grader may do
    everything), rate-limit."""
    allowed = frozenset(roles) | {"grader"}

    async def dependency(request: Request) -> Principal:
        principal = await authenticate_throttled(request)
        caller.set(caller_key(request, principal))
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
