"""``/t/{tenant}/graphql``: one HTTP request → one caller, one tenant, one transaction.

Order of checks, each with its own HTTP status:
tenant known (404) → credential valid (401) and of this tenant (403) → document within
limits and valid (400) → executed inside the tenant transaction (200), whose audit event
is written in that transaction before it commits (fail closed). The only thing an
anonymous caller may run is the ``login`` mutation. Once the response is out, a request
that left an event may ask for the tenant's alarm evaluation (dangan.alarms.signal).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import asyncpg
import orjson
import structlog
from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    get_operation_ast,
)
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from strawberry.types import ExecutionResult

from dangan.alarms.signal import AlarmSignal
from dangan.audit.collector import AuditCollector, collecting
from dangan.audit.recorder import RequestFacts, record_request
from dangan.audit.redaction import audit_key
from dangan.graphql.context import Context
from dangan.graphql.documents import parse_document, root_fields, validation_errors
from dangan.graphql.errors import error_body, error_code, format_error
from dangan.graphql.graphiql import graphiql_page
from dangan.graphql.limits import Limits, check_limits
from dangan.graphql.schema import schema
from dangan.metrics import GRAPHQL_ERRORS, GRAPHQL_LATENCY, GRAPHQL_REQUESTS
from dangan.services.authentication import authenticate
from dangan.services.callers import Caller
from dangan.services.errors import DanganError, Forbidden, Unauthenticated
from dangan.settings import Settings
from dangan.tenants.registry import find_tenant
from dangan.tenants.scope import TenantRef, run_in_tenant

log = structlog.get_logger("dangan.api")
ANONYMOUS_FIELDS = frozenset({"login", "__typename"})
_STATUS = {Unauthenticated: 401, Forbidden: 403}


class HttpFailure(Exception):
    def __init__(self, status: int, errors: list[dict[str, Any]]) -> None:
        self.status = status
        self.errors = errors


def _json(payload: Any, status: int, request_id: str) -> Response:
    return Response(
        orjson.dumps(payload),
        status_code=status,
        media_type="application/json",
        headers={"X-Request-Id": request_id},
    )


async def _read_body(request: Request) -> dict[str, Any]:
    try:
        if request.method == "GET":
            body: Any = dict(request.query_params)
            if "variables" in body:
                body["variables"] = orjson.loads(body["variables"])
        else:
            body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise HttpFailure(
            400, [error_body("the request body (or variables) is not valid JSON", "BAD_USER_INPUT")]
        ) from exc
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        raise HttpFailure(
            400, [error_body("send a JSON object with a 'query' string", "BAD_USER_INPUT")]
        )
    return body


def _parse(
    settings: Settings, body: dict[str, Any]
) -> tuple[DocumentNode, OperationDefinitionNode]:
    variables = body.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise HttpFailure(400, [error_body("variables must be a JSON object", "BAD_USER_INPUT")])
    try:
        document = parse_document(body["query"], settings.max_tokens)
    except GraphQLError as exc:
        raise HttpFailure(400, [error_body(exc.message, "BAD_USER_INPUT")]) from exc
    operation = get_operation_ast(document, body.get("operationName"))
    if operation is None:
        raise HttpFailure(
            400, [error_body("name the operation to run (operationName)", "BAD_USER_INPUT")]
        )
    return document, operation


def _validate(settings: Settings, body: dict[str, Any], document: DocumentNode) -> None:
    limits = Limits(settings.max_query_depth, settings.max_aliases, settings.max_query_cost)
    messages = [e.message for e in check_limits(document, body.get("variables") or {}, limits)]
    if not messages:
        messages = list(validation_errors(schema._schema, body["query"], settings.max_tokens))
    if messages:
        raise HttpFailure(400, [error_body(message, "BAD_USER_INPUT") for message in messages])


def _is_anonymous_allowed(operation: OperationDefinitionNode) -> bool:
    fields = operation.selection_set.selections
    return operation.operation is OperationType.MUTATION and all(
        isinstance(f, FieldNode) and f.name.value in ANONYMOUS_FIELDS for f in fields
    )


async def _caller(request: Request, tenant: TenantRef, settings: Settings) -> Caller:
    try:
        return await authenticate(
            tenant, request.headers.get("authorization"), secret=settings.secret_key
        )
    except (Unauthenticated, Forbidden) as exc:
        raise HttpFailure(_STATUS[type(exc)], [error_body(exc.message, exc.code)]) from exc


@dataclass
class Prepared:
    """What the checks before execution established, filled in as they pass: a request
    refused part-way is recorded with what was known by then."""

    tenant: TenantRef | None = None
    caller: Caller | None = None
    body: dict[str, Any] | None = None
    operation: OperationDefinitionNode | None = None
    actions: tuple[str, ...] = ()


async def _prepare(request: Request, settings: Settings, slug: str, seen: Prepared) -> None:
    """Tenant (404) → caller (401/403) → document (400): the checks before execution.

    Without a credential only a well-formed sign-in is let through; anything else from
    an anonymous caller is 401, whatever its shape.
    """
    tenant = await find_tenant(slug)
    if tenant is None or tenant.status != "active":
        raise HttpFailure(404, [error_body(f"no tenant named {slug!r}", "NOT_FOUND")])
    seen.tenant = tenant
    if request.headers.get("authorization"):
        seen.caller = await _caller(request, tenant, settings)
    seen.body = body = await _read_body(request)
    try:
        document, operation = _parse(settings, body)
    except HttpFailure:
        if seen.caller is None:
            await _caller(request, tenant, settings)
        raise
    seen.operation = operation
    seen.actions = tuple(root_fields(document, operation))
    if seen.caller is None and not _is_anonymous_allowed(operation):
        await _caller(request, tenant, settings)
    if request.method == "GET" and operation.operation is not OperationType.QUERY:
        raise HttpFailure(405, [error_body("only queries may be sent with GET", "BAD_USER_INPUT")])
    _validate(settings, body, document)


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _audit_facts(
    prepared: Prepared, request: Request, request_id: str, error_codes: list[str]
) -> RequestFacts:
    body = prepared.body or {}
    operation = prepared.operation
    name = operation.name.value if operation and operation.name else body.get("operationName")
    variables = body.get("variables")
    return RequestFacts(
        request_id=request_id,
        caller=prepared.caller,
        client_address=_client_address(request),
        user_agent=request.headers.get("user-agent"),
        operation_type=operation.operation.value if operation else "unknown",
        operation_name=name if isinstance(name, str) else None,
        document=body["query"] if isinstance(body.get("query"), str) else "",
        variables=variables if isinstance(variables, dict) else {},
        error_codes=error_codes,
        actions=prepared.actions,
    )


async def _record_refusal(
    prepared: Prepared, request: Request, request_id: str, failure: HttpFailure
) -> None:
    """The event of a request turned away before it ran (400, 401, 403, 405), in a
    transaction of its own. A request for a tenant that doesn't exist has no chain to
    go to: it is only logged. If the event can't be written the refusal still goes out
    (it carries no data) and the failure is logged."""
    if prepared.tenant is None:
        log.info("request for an unknown tenant", request_id=request_id)
        return
    facts = _audit_facts(
        prepared, request, request_id, [e["extensions"]["code"] for e in failure.errors]
    )
    facts = replace(facts, operation_type="refused")
    settings: Settings = request.app.state.settings
    try:
        await run_in_tenant(
            prepared.tenant,
            partial(record_request, facts, AuditCollector(), audit_key(settings.secret_key)),
        )
    except Exception:
        log.exception("could not record a refused request", request_id=request_id)


def _alarm_signal(request: Request, tenant: TenantRef | None) -> BackgroundTask | None:
    """After the response: ask for the tenant's alarm evaluation, at most once per slot
    (most requests get nothing to do)."""
    if tenant is None:
        return None
    signal: AlarmSignal = request.app.state.alarm_signal
    slot = signal.due(tenant)
    return BackgroundTask(signal.send, tenant, slot) if slot is not None else None


async def _after_commit(context: Context) -> None:
    """Platform work the request's commit called for (a reinstated credential). If it
    fails, the alarm job's next run converges the same state."""
    for work in context.after_commit:
        try:
            await work()
        except Exception:
            log.exception("work after the commit failed", request_id=context.request_id)


def _codes(result: ExecutionResult) -> list[str]:
    return [error_code(e) for e in result.errors or ()]


async def _execute(prepared: Prepared, context: Context, request: Request) -> ExecutionResult:
    """Execute the operation and write its audit event in the same tenant transaction
    (dangan.audit): if the event cannot be written, nothing commits and the request
    fails as INTERNAL."""
    body = prepared.body
    assert body is not None and prepared.operation is not None and prepared.tenant is not None
    settings = context.settings
    key = audit_key(settings.secret_key)

    async def execute() -> ExecutionResult:
        result = await schema.execute(
            body["query"],
            variable_values=body.get("variables") or {},
            context_value=context,
            operation_name=body.get("operationName"),
        )
        for error in result.errors or ():
            if isinstance(error.original_error, asyncpg.InvalidCachedStatementError):
                raise error.original_error  # roll back; run_in_tenant tries once more
        return result

    async def execute_and_record() -> ExecutionResult:
        with collecting() as collector:
            result = await execute()
            facts = _audit_facts(prepared, request, context.request_id, _codes(result))
            await record_request(facts, collector, key, flush_reads=settings.audit_flush_reads)
        return result

    if _is_anonymous_allowed(prepared.operation):
        # Signing in reads only platform tables, which the tenant role cannot see; its
        # event is written afterwards in a transaction of its own. A successful sign-in
        # is recorded as the person who signed in (the e-mail in the variables stays a
        # keyed hash); a failed one as anonymous, with its error code.
        with collecting() as collector:
            result = await execute()
        signed_in = replace(prepared, caller=context.signed_in or prepared.caller)
        facts = _audit_facts(signed_in, request, context.request_id, _codes(result))
        await run_in_tenant(
            prepared.tenant,
            partial(record_request, facts, collector, key, flush_reads=settings.audit_flush_reads),
        )
        return result
    return await run_in_tenant(prepared.tenant, execute_and_record)


async def graphql_endpoint(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    request_id = uuid.uuid4().hex[:16]
    slug = request.path_params["tenant"]
    started = time.perf_counter()
    operation_type = "unknown"
    status = 200
    prepared = Prepared()
    try:
        if (
            request.method == "GET"
            and settings.graphiql_enabled
            and "text/html" in request.headers.get("accept", "")
        ):
            return HTMLResponse(graphiql_page())
        await _prepare(request, settings, slug, prepared)
        assert prepared.operation is not None and prepared.tenant is not None
        operation_type = prepared.operation.operation.value
        context = Context(
            tenant=prepared.tenant,
            caller=prepared.caller,
            settings=settings,
            request_id=request_id,
            client_address=_client_address(request),
            login_throttle=request.app.state.login_throttle,
            objects=request.app.state.objects,
            jobs=request.app.state.jobs,
        )
        result = await _execute(prepared, context, request)
        await _after_commit(context)
        payload: dict[str, Any] = {"data": result.data}
        if context.redacted:
            payload["extensions"] = {"redacted": context.redacted}
        if result.errors:
            payload["errors"] = [format_error(e, request_id) for e in result.errors]
            for err in payload["errors"]:
                GRAPHQL_ERRORS.labels(err["extensions"]["code"]).inc()
        response = _json(payload, 200, request_id)
        response.background = _alarm_signal(request, prepared.tenant)
        return response
    except HttpFailure as failure:
        status = failure.status
        await _record_refusal(prepared, request, request_id, failure)
        for err in failure.errors:
            GRAPHQL_ERRORS.labels(err["extensions"]["code"]).inc()
        response = _json({"errors": failure.errors}, failure.status, request_id)
        response.background = _alarm_signal(request, prepared.tenant)
        return response
    except DanganError as exc:
        status = 400
        return _json({"errors": [error_body(exc.message, exc.code)]}, 400, request_id)
    except Exception:
        status = 500
        log.exception("request failed", request_id=request_id, tenant=slug)
        GRAPHQL_ERRORS.labels("INTERNAL").inc()
        return _json(
            {
                "errors": [
                    error_body(
                        f"internal error (request id {request_id})",
                        "INTERNAL",
                        requestId=request_id,
                    )
                ]
            },
            500,
            request_id,
        )
    finally:
        GRAPHQL_REQUESTS.labels(slug if status != 404 else "-", operation_type, str(status)).inc()
        GRAPHQL_LATENCY.labels(operation_type).observe(time.perf_counter() - started)
