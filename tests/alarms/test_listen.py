"""``dangan alarms listen`` accepts a delivery signed with its secret and refuses one
that isn't (so the sender retries it)."""

from __future__ import annotations

import time

import httpx
import orjson

from dangan.alarms.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from dangan.cli_alarms import receiver

BODY = orjson.dumps({"event": "alert.opened", "tenant": "east", "alert": {"id": 1}})


async def _deliver(secret: str, timestamp: str) -> int:
    app = receiver("s3cret")
    headers = {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, BODY)}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return (await client.post("/hook", content=BODY, headers=headers)).status_code


async def test_a_signed_delivery_is_accepted() -> None:
    assert await _deliver("s3cret", str(int(time.time()))) == 204


async def test_a_wrong_secret_or_an_old_timestamp_is_refused() -> None:
    assert await _deliver("guess", str(int(time.time()))) == 401
    assert await _deliver("s3cret", str(int(time.time()) - 3600)) == 401
