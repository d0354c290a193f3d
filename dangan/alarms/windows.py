"""Sliding windows in Redis: one sorted set per tenant, rule and actor.

Members are what is counted — customer ids for distinct customers, event numbers for
events — scored by the event's time; each addition trims what fell out of the window
and reads the count. Adding the same member again only moves its time, so evaluating
an event twice (a job rerun after a crash) counts it once. A batch of events is one
pipeline (one round trip). Windows age by the events' own times, not the clock, so a
backlog evaluated late counts as it happened. Keys expire a minute after their window.
"""

from __future__ import annotations

from collections.abc import Mapping

from redis.asyncio import Redis


def window_key(namespace: str, tenant_id: int, rule: str, actor_key: str) -> str:
    return f"{namespace}:alarm:{tenant_id}:{rule}:{actor_key}"


class WindowBatch:
    """Window updates queued in order; :meth:`counts` sends them and returns, per
    :meth:`add`, the window's size right after that addition."""

    def __init__(self, redis: Redis) -> None:
        self._pipe = redis.pipeline(transaction=False)
        self._positions: list[int] = []
        self._commands = 0

    def add(self, key: str, members: Mapping[bytes, float], at: float, window_seconds: int) -> int:
        """Queue ``members`` at time ``at``; returns the handle of the count."""
        self._pipe.zadd(key, dict(members))
        self._pipe.zremrangebyscore(key, "-inf", f"({at - window_seconds}")
        self._pipe.zcard(key)
        self._pipe.expire(key, window_seconds + 60)
        self._positions.append(self._commands + 2)
        self._commands += 4
        return len(self._positions) - 1

    async def counts(self) -> list[int]:
        if not self._positions:
            return []
        results = await self._pipe.execute()
        return [int(results[position]) for position in self._positions]
