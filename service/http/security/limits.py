"""Rate limits: a token bucket per key, in this process's memory or shared in Redis (which fails closed)."""

from __future__ import annotations

import math
import threading
import time

from service.http.errors import ProblemError
from service.settings import Settings


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
    """The same buckets in Redis: shared by every worker and replica (attempts: service.http.security.attempts)."""

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


class LimiterUnavailable(ProblemError):
    def __init__(self) -> None:
        super().__init__(
            503,
            "unavailable",
            "The shared rate limiter (Redis) cannot be reached; try again shortly.",
            headers={"Retry-After": "5"},
        )
