"""A tenant of the alarm tests' own (its rules and alerts change under them), with staff,
partner apps and 520 customers owned by its salesperson; fresh people per test keep the
rules' windows (per actor) apart; a real webhook receiver; the alarm worker."""

from __future__ import annotations

import asyncio
import random
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from dangan.demo.seed import DEMO_STAFF
from dangan.devstack import Endpoints
from dangan.services.api_keys import create_app
from dangan.services.identifiers import make_id_number, make_mobile
from dangan.services.people import Person, create_user
from dangan.services.tokens import issue_token
from dangan.settings import Settings
from dangan.tenants.provisioning import create_tenant
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant
from dangan.workers.settings import build_alarm_worker
from tests.support.api import Api
from tests.support.archive import forget_jobs
from tests.support.tenants import drop_tenant
from tests.support.world import World

SLUG = "alarmtest"
BULK_CUSTOMERS = 520
ALL_DAY = {"starts": "00:00:00", "ends": "23:59:59.999999", "days": [1, 2, 3, 4, 5, 6, 7]}


@dataclass
class AlarmTenant:
    ref: TenantRef
    settings: Settings
    people: dict[str, Person] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    app_ids: dict[str, int] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return self.ref.slug

    async def person(self, role: str, *, customers: int = 0) -> tuple[Person, str]:
        """A new member of staff with ``role`` (and customers of their own), and a token."""
        tag = uuid.uuid4().hex[:6]
        person = await create_user(
            self.ref,
            f"{role}-{tag}@{SLUG}.test",
            [role],
            display_name=f"{SLUG}-{role}-{tag}",
            department="销售部/一组",
            password=f"{SLUG}-{tag}-password",
        )
        if customers:
            await insert_customers(self.ref, person, customers)
        token = issue_token(
            person.identity_id, SLUG, secret=self.settings.secret_key, ttl_seconds=3600
        ).token
        return person, token


async def insert_customers(tenant: TenantRef, owner: Person, count: int) -> list[uuid.UUID]:
    rng = random.Random(f"{tenant.slug}:{owner.identity_id}")
    records = [
        (
            uuid.uuid4(),
            "INDIVIDUAL",
            f"报警客户{owner.identity_id}-{index:04d}",
            make_mobile(rng),
            make_id_number(rng),
            owner.identity_id,
            owner.department_id,
        )
        for index in range(count)
    ]

    async def insert() -> None:
        await raw_connection().executemany(
            "INSERT INTO customer (id, kind, name, phone, id_number, owner_id, department_id)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)",
            records,
        )

    await run_in_tenant(tenant, insert)
    return [record[0] for record in records]


@pytest.fixture(scope="package")
async def alarm_tenant(
    world: World, settings: Settings, endpoints: Endpoints
) -> AsyncIterator[AlarmTenant]:
    await drop_tenant(SLUG)  # left over by an interrupted run
    tenant = AlarmTenant(await create_tenant(SLUG, "Alarm Test Ltd"), settings)
    staff = {**DEMO_STAFF, "admin2": ("admin", None)}
    for who, (role, department) in staff.items():
        tenant.people[who] = await create_user(
            tenant.ref,
            f"{who}@{SLUG}.test",
            [role],
            display_name=f"{SLUG}-{who}",
            department=department,
            password=f"{SLUG}-{who}-password",
        )
        tenant.tokens[who] = issue_token(
            tenant.people[who].identity_id, SLUG, secret=settings.secret_key, ttl_seconds=3600
        ).token
    for name, scopes in (("reader", ["customers:read"]), ("prober", ["customers:read"])):
        created = await create_app(tenant.ref, name, scopes)
        tenant.keys[name], tenant.app_ids[name] = created.key, created.app_id
    await insert_customers(tenant.ref, tenant.people["sales"], BULK_CUSTOMERS)

    async def quiet_off_hours() -> None:
        # Tests run at any hour: off_hours is switched on only by the test about it.
        await raw_connection().execute(
            "UPDATE alarm_rule SET enabled = false WHERE rule = 'off_hours'"
        )

    await run_in_tenant(tenant.ref, quiet_off_hours)
    yield tenant
    await drop_tenant(SLUG)
    await forget_jobs(settings, endpoints)


def worker_settings(settings: Settings, **changes: Any) -> Settings:
    """The test run's settings with webhooks to 127.0.0.1 allowed and quick retries."""
    values = {
        "alarm_webhook_allow_private": True,
        "alarm_webhook_backoff_seconds": 0.1,
        "alarm_webhook_max_tries": 3,
        **changes,
    }
    return settings.model_copy(update=values)


async def run_alarm_jobs(settings: Settings, endpoints: Endpoints) -> None:
    """The real alarm worker until its queue is empty (evaluations wait for the end of
    their slot, retries for their delay)."""
    worker = build_alarm_worker(
        settings, endpoints, connect_database=False, burst=True, poll_delay=0.05
    )
    try:
        await asyncio.wait_for(worker.main(), timeout=120)
    finally:
        await worker.close()


@pytest.fixture
def alarms(settings: Settings, endpoints: Endpoints) -> Any:
    """``await alarms()``: run the alarm worker (private webhooks allowed, quick retries)."""

    async def run(**changes: Any) -> None:
        await run_alarm_jobs(worker_settings(settings, **changes), endpoints)

    return run


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A real HTTP server on 127.0.0.1 that keeps what is POSTed to it."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[Received] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.received.append(Received(dict(self.headers.items()), body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/hooks/dangan?token=abc"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
async def client_at(app: Any) -> AsyncIterator[Callable[[str], Api]]:
    """``client_at("192.0.2.7")``: an Api whose requests come from that address."""
    clients: list[httpx.AsyncClient] = []

    def make(address: str) -> Api:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        client = httpx.AsyncClient(transport=transport, base_url="http://dangan.test")
        clients.append(client)
        return Api(client)

    yield make
    for client in clients:
        await client.aclose()


SET_SETTINGS = """mutation($input: AlarmSettingsInput!) { setAlarmSettings(input: $input) {
  webhookSecret settings { webhookUrl webhookSecretSet defaultWebhook
  workingHours { starts ends days timeZone } } } }"""
SET_RULE = """mutation($rule: String!, $input: AlarmRuleInput!) { setAlarmRule(rule: $rule, input: $input) {
  rule enabled threshold windowMinutes severity suspend description updatedBy } }"""
ALERT_FIELDS = """id rule severity status actorKind actorId actorName clientAddress summary openedAt
  occurrences firstSeq lastSeq evidence suspended suspensionActive acknowledgedAt acknowledgedBy
  acknowledgeNote closedAt closedBy closeReason reinstatedAt reinstatedBy reinstateReason
  deliveries { attempt url statusCode error outcome }"""
ALERTS = f"""query($filter: AlertFilter) {{ alerts(filter: $filter, first: 200) {{ {ALERT_FIELDS} }} }}"""
ALERT = f"query($id: Int!) {{ alert(id: $id) {{ {ALERT_FIELDS} }} }}"


async def alerts_about(
    api: Api, tenant: AlarmTenant, actor_id: int | None = None, **flt: Any
) -> list[dict[str, Any]]:
    """The tenant's alerts (as its admin sees them), of one actor if given."""
    found = (await api.post(tenant.slug, tenant.tokens["admin"], ALERTS, {"filter": flt})).ok()
    return [a for a in found["alerts"] if actor_id is None or a["actorId"] == actor_id]
