"""Reading the audit trail: ``auditEvents``, ``customerAccessLog`` and
``exportAuditEvents`` — for callers whose policy says ``can_read_audit``
(``policies/audit.polar``); everyone else, and every partner app, gets FORBIDDEN."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from dangan.graphql.customers.types import PageInfo
from dangan.graphql.selection import is_selected
from dangan.services import audit_export, audit_log
from dangan.services.errors import BadUserInput

MAX_PAGE = 200
MAX_IDS = audit_log.CUSTOMER_IDS_WITH_EVENT


@strawberry.enum(description="Who acted: a person, a partner app, nobody signed in, or the system")
class AuditActorKind(Enum):
    USER = "user"
    APP = "app"
    ANONYMOUS = "anonymous"
    SYSTEM = "system"


@strawberry.enum(
    description="A GraphQL query or mutation, a request refused before it ran, a job, "
    "or a `dangan` command"
)
class AuditOperationType(Enum):
    QUERY = "query"
    MUTATION = "mutation"
    REFUSED = "refused"
    JOB = "job"
    CLI = "cli"


@strawberry.enum
class AuditOutcome(Enum):
    OK = "ok"
    ERROR = "error"


@strawberry.enum(description="How a field's values went out")
class AuditFieldLevel(Enum):
    FULL = "full"
    MASKED = "masked"
    HIDDEN = "hidden"


@strawberry.type
class AuditActor:
    kind: AuditActorKind
    id: int | None
    name: str | None
    roles: list[str] = strawberry.field(
        description="The person's roles, or the app's scopes, when they acted"
    )


@strawberry.type(description="One field of one type that the request sent out, and how")
class AuditFieldAccess:
    type: str
    field: str = strawberry.field(description="As named in the API (idNumber, phone …)")
    levels: list[AuditFieldLevel] = strawberry.field(
        description="Several when it varied by record (say, full for some customers and "
        "masked for others)"
    )


def _field_accesses(summary: dict[str, dict[str, str]]) -> list[AuditFieldAccess]:
    return [
        AuditFieldAccess(
            type=kind,
            field=name,
            levels=[AuditFieldLevel(level) for level in levels.split(",")],
        )
        for kind, names in summary.items()
        for name, levels in names.items()
    ]


@strawberry.type(description="审计: one recorded request, job or command, as it was written")
class AuditEvent:
    seq: int = strawberry.field(description="Its number in the tenant's chain")
    at: datetime
    request_id: str = strawberry.field(description="As in the response's X-Request-Id")
    actor: AuditActor
    client_address: str | None
    user_agent: str | None
    operation_type: AuditOperationType
    operation_name: str | None
    actions: list[str] = strawberry.field(
        description="Root fields of the operation, or the job's or command's action"
    )
    outcome: AuditOutcome
    error_codes: list[str]
    variables: JSON = strawberry.field(
        description="As sent, sensitive values replaced by keyed hashes (hmac:…)"
    )
    customer_count: int = strawberry.field(description="How many customers it returned")
    fields: list[AuditFieldAccess] = strawberry.field(
        description="Per type, the fields it sent out: in full, masked or hidden"
    )
    changes: JSON = strawberry.field(
        description="The change records a mutation wrote, sensitive values as keyed hashes"
    )
    head_ids: strawberry.Private[list[str]]

    @strawberry.field(
        description=f"Ids of the customers it returned, from offset on (first: 1 to {MAX_IDS})"
    )
    async def customer_ids(
        self, info: Info, first: int = MAX_IDS, offset: int = 0
    ) -> list[strawberry.ID]:
        if not 1 <= first <= MAX_IDS:
            raise BadUserInput(f"first must be between 1 and {MAX_IDS}", field="first")
        if offset < 0:
            raise BadUserInput("offset must not be negative", field="offset")
        end = min(offset + first, self.customer_count)
        if end <= len(self.head_ids):
            return [strawberry.ID(i) for i in self.head_ids[offset:end]]
        caller = info.context.require_caller()
        ids = await audit_log.customer_ids(caller, self.seq, offset=offset, count=first)
        return [strawberry.ID(str(i)) for i in ids]

    @classmethod
    def from_record(cls, record: audit_log.AuditRecord) -> AuditEvent:
        changes: Any = record.changes  # a list of change records, as JSON
        return cls(
            seq=record.seq,
            at=record.at,
            request_id=record.request_id,
            actor=AuditActor(
                kind=AuditActorKind(record.actor_kind),
                id=record.actor_id,
                name=record.actor_name,
                roles=record.actor_roles,
            ),
            client_address=record.client_address,
            user_agent=record.user_agent,
            operation_type=AuditOperationType(record.operation_type),
            operation_name=record.operation_name,
            actions=record.actions,
            outcome=AuditOutcome(record.outcome),
            error_codes=record.error_codes,
            variables=record.variables,
            customer_count=record.customer_count,
            fields=_field_accesses(record.fields),
            changes=changes,
            head_ids=[str(i) for i in record.customer_ids],
        )


@strawberry.type
class AuditEventEdge:
    cursor: str
    node: AuditEvent


@strawberry.type(description="A page of audit events, newest first (Relay connection)")
class AuditEventConnection:
    edges: list[AuditEventEdge]
    nodes: list[AuditEvent]
    page_info: PageInfo
    total_count: int | None = strawberry.field(
        description="How many events match (null unless asked for)"
    )


@strawberry.input
class AuditActorFilter:
    kind: AuditActorKind | None = None
    id: int | None = strawberry.field(default=None, description="Needs the kind")
    name: str | None = strawberry.field(default=None, description="The name as recorded")


@strawberry.input(description="Conditions an event must meet, all of them")
class AuditEventFilter:
    actor: AuditActorFilter | None = None
    customer_id: strawberry.ID | None = strawberry.field(
        default=None, description="Events that returned this customer"
    )
    action: str | None = strawberry.field(
        default=None, description="A root field (customers, revealField …) or a job's action"
    )
    operation_type: AuditOperationType | None = None
    outcome: AuditOutcome | None = None
    from_: datetime | None = strawberry.field(name="from", default=None, description="Inclusive")
    to: datetime | None = strawberry.field(default=None, description="Exclusive")


@strawberry.type
class AuditExportLink:
    url: str = strawberry.field(description="A short-lived link to the CSV file")
    expires_at: datetime
    events: int


def _filter(given: AuditEventFilter | None) -> audit_log.AuditFilter:
    if given is None:
        return audit_log.AuditFilter()
    actor = given.actor or AuditActorFilter()
    return audit_log.AuditFilter(
        actor_kind=actor.kind.value if actor.kind else None,
        actor_id=actor.id,
        actor_name=actor.name,
        customer=str(given.customer_id) if given.customer_id is not None else None,
        action=given.action,
        operation_type=given.operation_type.value if given.operation_type else None,
        outcome=given.outcome.value if given.outcome else None,
        start=given.from_,
        end=given.to,
    )


def _connection(info: Info, page: audit_log.EventPage) -> AuditEventConnection:
    nodes = [AuditEvent.from_record(record) for record in page.records]
    selections = info.selected_fields[0].selections
    edges = []
    if is_selected(selections, "edges"):
        edges = [
            AuditEventEdge(cursor=page.cursor(record), node=node)
            for record, node in zip(page.records, nodes, strict=True)
        ]
    return AuditEventConnection(
        edges=edges,
        nodes=nodes,
        total_count=page.total,
        page_info=PageInfo.of(page, page.records),
    )


def _with_total(info: Info) -> bool:
    return is_selected(info.selected_fields[0].selections, "totalCount")


async def audit_events(
    info: Info, filter: AuditEventFilter | None = None, first: int = 50, after: str | None = None
) -> AuditEventConnection:
    """The tenant's audit trail, newest first; ``first`` is 1 to 200."""
    page = await audit_log.list_events(
        info.context.require_caller(),
        _filter(filter),
        first=first,
        after=after,
        limit=MAX_PAGE,
        with_total=_with_total(info),
    )
    return _connection(info, page)


async def customer_access_log(
    info: Info, customer_id: strawberry.ID, first: int = 50, after: str | None = None
) -> AuditEventConnection:
    """Who saw this customer, when, and which of its fields at which level: the events
    that returned it, newest first (kept after the customer is gone)."""
    page = await audit_log.customer_access_log(
        info.context.require_caller(),
        str(customer_id),
        first=first,
        after=after,
        limit=MAX_PAGE,
        with_total=_with_total(info),
    )
    return _connection(info, page)


async def export_audit_events(
    info: Info, filter: AuditEventFilter | None = None
) -> AuditExportLink:
    """The events meeting the filter as a CSV file, behind a short-lived link."""
    context = info.context
    export = await audit_export.export_audit_events(
        context.require_caller(),
        context.objects,
        _filter(filter),
        link_seconds=context.settings.archive_download_seconds,
    )
    return AuditExportLink(url=export.url, expires_at=export.expires_at, events=export.events)
