"""The hash chain: gap-free under concurrency, one per tenant, and every tampering done
directly in SQL is found by ``verify_chain``, which names the first broken event."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from dangan.audit.chain import AuditEvent, append_event
from dangan.audit.collector import AuditCollector
from dangan.audit.recorder import RequestFacts, record_request
from dangan.audit.verify import verify_chain
from dangan.tenants.provisioning import create_tenant
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant
from tests.audit.events import events_of, head_of, post
from tests.support.api import Api
from tests.support.tenants import drop_tenant
from tests.support.world import TENANTS, World

SCRATCH = "audit_chain"
EVENTS = 8
QUERY = "query Concurrent { customers(first: 3) { nodes { id name } } }"


async def test_concurrent_requests_make_a_gap_free_valid_chain(api: Api, world: World) -> None:
    tenant = world["alpha"].ref
    before, _ = await head_of(tenant)
    tokens = [world["alpha"].tokens[who] for who in ("admin", "sales", "auditor", "manager")]

    replies = await asyncio.gather(
        *(post(api, "alpha", tokens[i % len(tokens)], QUERY) for i in range(50))
    )

    assert all(reply.status == 200 for reply, _ in replies)
    seqs = []
    for _, request_id in replies:
        (event,) = await events_of(tenant, request_id)
        seqs.append(event["seq"])
    after, _ = await head_of(tenant)
    assert sorted(seqs) == list(range(before + 1, before + 51)) and after == before + 50
    report = await verify_chain(tenant, batch_size=7)  # several batches
    assert report.ok and report.events == after == report.head_seq


async def test_each_tenant_has_a_chain_of_its_own(api: Api, world: World) -> None:
    heads = {slug: await head_of(world[slug].ref) for slug in TENANTS}

    _, request_id = await post(api, "beta", world["beta"].tokens["admin"], QUERY)

    assert await events_of(world["alpha"].ref, request_id) == []
    (event,) = await events_of(world["beta"].ref, request_id)
    assert event["seq"] == heads["beta"][0] + 1 and event["prev_hash"] == heads["beta"][1]
    assert await head_of(world["alpha"].ref) == heads["alpha"]
    assert await head_of(world["gamma"].ref) == heads["gamma"]
    for slug in TENANTS:
        assert (await verify_chain(world[slug].ref)).ok


@pytest.fixture(scope="module")
async def scratch(world: World) -> AsyncIterator[TenantRef]:
    await drop_tenant(SCRATCH)
    yield await create_tenant(SCRATCH, "Audit Chain Ltd")
    await drop_tenant(SCRATCH)


@pytest.fixture
async def chain(scratch: TenantRef) -> TenantRef:
    """A fresh chain of ``EVENTS`` events in the scratch tenant."""

    async def rebuild() -> None:
        conn = raw_connection()
        await conn.execute(
            "TRUNCATE audit_event CASCADE;"
            " UPDATE audit_head SET last_seq = 0, last_hash = repeat('0', 64)"
        )
        for n in range(1, EVENTS + 1):
            await append_event(conn, _event(n))

    await run_in_tenant(scratch, rebuild)
    assert (await verify_chain(scratch)).events == EVENTS
    return scratch


def _event(n: int) -> AuditEvent:
    return AuditEvent(
        request_id=f"req{n}",
        actor_kind="user",
        actor_id=n,
        actor_name=f"user {n}",
        client_address="10.0.0.1",
        user_agent="tests",
        operation_type="query",
        operation_name="Op",
        document_sha256="0" * 64,
        variables={"first": n, "nested": {"amount": 1.5e20}},
        outcome="ok",
        error_codes=[],
        customers=uuid.UUID(int=n).bytes + uuid.UUID(int=n + 100).bytes,
        fields={"Customer": {"name": "full"}},
        changes=[],
        actions=["customers"] if n % 2 else [],
        actor_roles=["sales"],
    )


async def _tamper(tenant: TenantRef, *statements: str) -> None:
    async def run() -> None:
        for sql in statements:
            await raw_connection().execute(sql)

    await run_in_tenant(tenant, run)


REHASH = (
    "UPDATE audit_event e SET hash = audit_event_hash(e, encode(sha256(e.customers), 'hex'))"
    " WHERE seq = {seq}"
)


@pytest.mark.parametrize(
    ("statements", "seq", "problem"),
    [
        # An event's content changed.
        (["UPDATE audit_event SET actor_id = 99 WHERE seq = 3"], 3, "edited"),
        (["UPDATE audit_event SET variables = '{\"first\": 4}' WHERE seq = 4"], 4, "edited"),
        (["UPDATE audit_event SET actions = '{}' WHERE seq = 5"], 5, "edited"),
        (["UPDATE audit_event SET actions = '{customers}' WHERE seq = 4"], 4, "edited"),
        (["UPDATE audit_event SET actor_roles = '{admin}' WHERE seq = 2"], 2, "edited"),
        (["UPDATE audit_event SET at = at + interval '1 second' WHERE seq = 2"], 2, "edited"),
        (
            ["UPDATE audit_event SET customers = substring(customers FROM 17) WHERE seq = 6"],
            6,
            "edited",
        ),
        # …and its hash made to fit: the next event no longer follows it.
        (
            ["UPDATE audit_event SET operation_name = 'Other' WHERE seq = 5", REHASH.format(seq=5)],
            6,
            "unlinked",
        ),
        # An event deleted, in the middle or at the end.
        (["DELETE FROM audit_event WHERE seq = 4"], 4, "missing"),
        ([f"DELETE FROM audit_event WHERE seq = {EVENTS}"], EVENTS, "missing"),
        # A forged event inserted in the middle, consistent in itself and linked to the
        # one before: the events after it had to be renumbered.
        (
            [
                "UPDATE audit_event SET seq = seq + 1000 WHERE seq >= 4",
                "UPDATE audit_event SET seq = seq - 999 WHERE seq >= 1004",
                "INSERT INTO audit_event SELECT 4, at, 'forged', actor_kind, actor_id,"
                " actor_name, client_address, user_agent, operation_type, operation_name,"
                " document_sha256, variables, outcome, error_codes, customers, fields, changes,"
                " hash, '' FROM audit_event WHERE seq = 3",
                REHASH.format(seq=4),
                "UPDATE audit_head SET last_seq = last_seq + 1",
            ],
            5,
            "edited",
        ),
        # A forged event appended without moving the head.
        (
            [
                f"INSERT INTO audit_event SELECT {EVENTS + 1}, at, 'forged', actor_kind,"
                " actor_id, actor_name, client_address, user_agent, operation_type,"
                " operation_name, document_sha256, variables, outcome, error_codes, customers,"
                f" fields, changes, hash, '' FROM audit_event WHERE seq = {EVENTS}",
                REHASH.format(seq=EVENTS + 1),
            ],
            EVENTS + 1,
            "inserted",
        ),
        # Two events swapped.
        (
            [
                "UPDATE audit_event SET seq = seq + 100 WHERE seq IN (2, 3)",
                "UPDATE audit_event SET seq = CASE seq WHEN 102 THEN 3 ELSE 2 END WHERE seq > 100",
            ],
            2,
            "edited",
        ),
        # The head rewritten.
        (["UPDATE audit_head SET last_hash = repeat('f', 64)"], EVENTS, "head"),
    ],
)
async def test_verify_names_the_first_broken_event(
    chain: TenantRef, statements: list[str], seq: int, problem: str
) -> None:
    await _tamper(chain, *statements)

    report = await verify_chain(chain, batch_size=3)

    assert report.broken is not None
    assert (report.broken.seq, report.broken.problem) == (seq, problem), report.broken
    assert report.events == seq - 1 or problem == "head"


async def test_an_untouched_chain_verifies_with_progress(chain: TenantRef) -> None:
    seen: list[tuple[int, int]] = []

    report = await verify_chain(chain, batch_size=3, on_progress=lambda *p: seen.append(p))

    assert report.ok and report.events == report.head_seq == EVENTS
    assert seen == [(3, EVENTS), (6, EVENTS), (8, EVENTS)]


async def test_a_read_commits_without_waiting_for_the_flush_a_write_waits(
    chain: TenantRef,
) -> None:
    async def append(flush: bool) -> str:
        conn = raw_connection()
        await append_event(conn, _event(EVENTS + 1), flush_at_commit=flush)
        setting: str = await conn.fetchval("SHOW synchronous_commit")
        return setting

    assert await run_in_tenant(chain, lambda: append(False)) == "off"
    assert await run_in_tenant(chain, lambda: append(True)) == "on"
    assert (await verify_chain(chain)).events == EVENTS + 2


async def test_reads_can_be_made_to_wait_for_the_flush_too(chain: TenantRef) -> None:
    """DANGAN_AUDIT_FLUSH_READS: a query's event is on disk before its answer leaves."""
    facts = RequestFacts(
        request_id="r-flush",
        caller=None,
        client_address=None,
        user_agent=None,
        operation_type="query",
        operation_name=None,
        document="{ me { id } }",
        variables={},
        error_codes=[],
    )

    async def record(flush_reads: bool) -> str:
        await record_request(facts, AuditCollector(), b"k" * 32, flush_reads=flush_reads)
        setting: str = await raw_connection().fetchval("SHOW synchronous_commit")
        return setting

    assert await run_in_tenant(chain, lambda: record(False)) == "off"
    assert await run_in_tenant(chain, lambda: record(True)) == "on"


async def test_events_without_actions_or_roles_keep_their_version_7_hash(chain: TenantRef) -> None:
    """Version 8 added actions and roles to the hash only where they hold something, so
    events written before it still verify."""
    version_7 = (
        "SELECT encode(sha256(convert_to(e.prev_hash || jsonb_build_object("
        "'seq', e.seq, 'at', extract(epoch FROM e.at), 'request_id', e.request_id,"
        "'actor_kind', e.actor_kind, 'actor_id', e.actor_id, 'actor_name', e.actor_name,"
        "'client_address', e.client_address, 'user_agent', e.user_agent,"
        "'operation_type', e.operation_type, 'operation_name', e.operation_name,"
        "'document_sha256', e.document_sha256, 'variables', e.variables,"
        "'outcome', e.outcome, 'error_codes', e.error_codes,"
        "'customers', encode(sha256(e.customers), 'hex'),"
        "'fields', e.fields, 'changes', e.changes)::text, 'UTF8')), 'hex') = e.hash"
        " FROM audit_event e WHERE seq = 2"
    )

    async def compare() -> bool:
        conn = raw_connection()
        await conn.execute("UPDATE audit_event SET actor_roles = '{}' WHERE seq = 2")
        await conn.execute(
            "UPDATE audit_event e SET hash = audit_event_hash(e, encode(sha256(e.customers),"
            " 'hex')) WHERE seq = 2"
        )
        return bool(await conn.fetchval(version_7))

    assert await run_in_tenant(chain, compare)
