"""Fixed-window failure counters in Redis (login throttling)."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from dangan.services.errors import RateLimited


class FailureLimiter:
    """Counts failures per key; refuses once ``max_failures`` happened in the window."""

    def __init__(self, redis: Redis, *, prefix: str, max_failures: int, window_seconds: int):
        self.redis = redis
        self.prefix = prefix
        self.max_failures = max_failures
        self.window = window_seconds

    def _key(self, key: str) -> str:
        return f"{self.prefix}:{key}"

    async def check(self, key: str) -> None:
        count = await self.redis.get(self._key(key))
        if count is not None and int(count) >= self.max_failures:
            ttl = await self.redis.ttl(self._key(key))
            raise RateLimited("too many failed sign-ins; try again later", retry_after=max(ttl, 1))

    async def record_failure(self, key: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            # The window starts at the first failure (works on Redis 6.2 and 7).
            pipe.set(self._key(key), 0, ex=self.window, nx=True)
            pipe.incr(self._key(key))
            await pipe.execute()

    async def reset(self, key: str) -> None:
        await self.redis.delete(self._key(key))


@dataclass(frozen=True)
class LoginThrottle:
    """Failures count per account and, with a higher ceiling (offices share addresses
    behind NAT), per client address."""

    by_account: FailureLimiter
    by_address: FailureLimiter

    @classmethod
    def create(
        cls, redis: Redis, namespace: str, *, max_failures: int, window_seconds: int
    ) -> LoginThrottle:
        return cls(
            FailureLimiter(
                redis,
                prefix=f"{namespace}:login-failures:account",
                max_failures=max_failures,
                window_seconds=window_seconds,
            ),
            FailureLimiter(
                redis,
                prefix=f"{namespace}:login-failures:address",
                max_failures=max_failures * 10,
                window_seconds=window_seconds,
            ),
        )
