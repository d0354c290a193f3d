"""POSTing a new alert to the tenant's webhook, signed, each attempt recorded.

The body is the alert as JSON. ``X-Dangan-Timestamp`` carries the Unix time of the
attempt and ``X-Dangan-Signature`` is ``sha256=`` and the hex HMAC-SHA256, under the
webhook's secret, of ``<timestamp>.<raw body>``: a receiver recomputes it, compares in
constant time, and refuses timestamps more than a few minutes old — so a captured
request can't be replayed later, nor its timestamp changed (:func:`verify_signature`).
``X-Dangan-Delivery`` stays the same across retries of one alert, for deduplication.

A tenant's own URL may not reach private, loopback or link-local addresses (the
platform's own network) unless ``DANGAN_ALARM_WEBHOOK_ALLOW_PRIVATE`` is set; the
check resolves the host just before connecting (a resolver that answers differently
the second time could still get through; network egress rules are the real fence).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import time
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from dangan.alarms.alerts import ALERT_COLUMNS
from dangan.alarms.config import AlarmSettings, load_settings, platform_webhook
from dangan.alarms.rules import RULE_SPECS
from dangan.settings import Settings
from dangan.tenants.scope import raw_connection

Outcome = Literal["delivered", "retrying", "failed"]
# Where a delivery goes: the tenant's webhook (its own, else the operators' default), or
# the operators' own copy of an alert about the platform's work (rule ``backup_failed``).
Target = Literal["tenant", "platform"]
SIGNATURE_HEADER = "X-Dangan-Signature"
TIMESTAMP_HEADER = "X-Dangan-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    tolerance_seconds: int = 300,
    now: float | None = None,
) -> bool:
    """What a receiver checks: the signature of this body and timestamp, and a recent
    timestamp."""
    try:
        age = (time.time() if now is None else now) - int(timestamp)
    except ValueError:
        return False
    if abs(age) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def alert_payload(tenant_slug: str, alert: Any) -> dict[str, Any]:
    evidence = alert["evidence"]
    return {
        "event": "alert.opened",
        "tenant": tenant_slug,
        "alert": {
            "id": alert["id"],
            "rule": alert["rule"],
            "severity": alert["severity"],
            "status": alert["status"],
            "actorKind": alert["actor_kind"],
            "actorId": alert["actor_id"],
            "actorName": alert["actor_name"],
            "clientAddress": alert["client_address"],
            "summary": alert["summary"],
            "openedAt": alert["opened_at"].isoformat(),
            "occurrences": alert["occurrences"],
            "suspended": alert["suspended"],
            "evidence": orjson.loads(evidence) if isinstance(evidence, str) else evidence,
        },
    }


def shown_url(url: str) -> str:
    """The URL as attempts record it: without user info or query (they may hold keys)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass(frozen=True)
class Delivery:
    """An alert ready to send, and where."""

    alert_id: int
    url: str
    secret: str
    tenant_owned: bool
    body: bytes
    target: Target = "tenant"


def _destination(
    rule: str, target: Target, tenant: AlarmSettings, settings: Settings
) -> tuple[str, str, bool] | None:
    """An alert about the platform goes to the operators (target ``platform``) and to the
    tenant's own webhook; an access alert to the tenant's, else the operators' default."""
    if target == "platform":
        spec = RULE_SPECS.get(rule)
        return platform_webhook(settings) if spec is not None and spec.platform else None
    if rule in RULE_SPECS and RULE_SPECS[rule].platform:
        return tenant.own_webhook()
    return tenant.webhook(settings)


async def prepare_delivery(
    tenant_slug: str, alert_id: int, settings: Settings, target: Target = "tenant"
) -> Delivery | None:
    """The alert and its webhook (inside the tenant's transaction); None: no alert by
    that id, or no webhook to send it to."""
    alert = await raw_connection().fetchrow(
        f"SELECT {ALERT_COLUMNS} FROM alert WHERE id = $1", alert_id
    )
    if alert is None:
        return None
    where = _destination(alert["rule"], target, await load_settings(), settings)
    if where is None:
        return None
    url, secret, owned = where
    body = orjson.dumps(alert_payload(tenant_slug, alert), option=orjson.OPT_SORT_KEYS)
    return Delivery(alert_id, url, secret, owned, body, target)


class BlockedAddress(Exception):
    pass


async def _check_public(url: str) -> None:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    infos = await asyncio.get_running_loop().getaddrinfo(host, port)
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise BlockedAddress(f"{host} is a private address ({address}): not allowed")


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    error: str | None
    final: bool  # no point trying again


async def post(
    client: httpx.AsyncClient, tenant_slug: str, delivery: Delivery, settings: Settings
) -> Attempt:
    """One signed POST; a 2xx answer is a delivery, anything else an error."""
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "dangan-alarms",
        "X-Dangan-Event": "alert.opened",
        "X-Dangan-Delivery": f"{tenant_slug}-{delivery.alert_id}",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(delivery.secret, timestamp, delivery.body),
    }
    try:
        if delivery.tenant_owned and not settings.alarm_webhook_allow_private:
            await _check_public(delivery.url)
        response = await client.post(
            delivery.url,
            content=delivery.body,
            headers=headers,
            timeout=settings.alarm_webhook_timeout_seconds,
        )
    except BlockedAddress as exc:
        return Attempt(None, str(exc), final=True)
    except (httpx.HTTPError, OSError) as exc:
        return Attempt(None, f"{type(exc).__name__}: {exc}"[:500], final=False)
    if 200 <= response.status_code < 300:
        return Attempt(response.status_code, None, final=False)
    return Attempt(response.status_code, f"HTTP {response.status_code}", final=False)


async def record_attempt(
    delivery: Delivery, attempt_number: int, attempt: Attempt, outcome: Outcome
) -> None:
    """Keep the attempt (inside the tenant's transaction); a rerun of one try replaces it."""
    # The operators' copy of an alert is recorded apart: the tenant reads alert_delivery.
    table = "alert_platform_delivery" if delivery.target == "platform" else "alert_delivery"
    await raw_connection().execute(
        f"INSERT INTO {table} (alert_id, attempt, url, status_code, error, outcome)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (alert_id, attempt) DO UPDATE SET"
        " url = EXCLUDED.url, attempted_at = now(), status_code = EXCLUDED.status_code,"
        " error = EXCLUDED.error, outcome = EXCLUDED.outcome",
        delivery.alert_id,
        attempt_number,
        shown_url(delivery.url),
        attempt.status_code,
        attempt.error,
        outcome,
    )


def outcome_of(attempt: Attempt, attempt_number: int, max_tries: int) -> Outcome:
    if attempt.error is None:
        return "delivered"
    return "failed" if attempt.final or attempt_number >= max_tries else "retrying"
