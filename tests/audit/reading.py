"""Queries of the audit trail's reading side, shared by its tests."""

from __future__ import annotations

from typing import Any

from tests.audit.events import post
from tests.support.api import Api, Response

EVENT = """
  seq at requestId
  actor { kind id name roles }
  clientAddress userAgent operationType operationName actions outcome errorCodes
  variables customerCount customerIds fields { type field levels } changes
"""
EVENTS = f"""query ReadAudit($filter: AuditEventFilter, $first: Int!, $after: String) {{
  auditEvents(filter: $filter, first: $first, after: $after) {{
    nodes {{ {EVENT} }}
    edges {{ cursor node {{ seq }} }}
    pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
    totalCount
  }}
}}"""
ACCESS_LOG = f"""query ReadAccessLog($customer: ID!, $first: Int!, $after: String) {{
  customerAccessLog(customerId: $customer, first: $first, after: $after) {{
    nodes {{ {EVENT} }}
    pageInfo {{ hasNextPage endCursor }}
    totalCount
  }}
}}"""
EXPORT = """mutation ExportAudit($filter: AuditEventFilter) {
  exportAuditEvents(filter: $filter) { url expiresAt events }
}"""


async def audit_events(
    api: Api,
    credential: str,
    filter: dict[str, Any] | None = None,
    *,
    first: int = 50,
    after: str | None = None,
    tenant: str = "alpha",
) -> tuple[Response, str]:
    variables = {"filter": filter, "first": first, "after": after}
    return await post(api, tenant, credential, EVENTS, variables)


async def access_log(
    api: Api,
    credential: str,
    customer: str,
    *,
    first: int = 50,
    after: str | None = None,
    tenant: str = "alpha",
) -> tuple[Response, str]:
    variables = {"customer": customer, "first": first, "after": after}
    return await post(api, tenant, credential, ACCESS_LOG, variables)


def levels(event: dict[str, Any], kind: str = "Customer") -> dict[str, list[str]]:
    """field -> its levels in ``event`` for objects of ``kind``."""
    return {f["field"]: f["levels"] for f in event["fields"] if f["type"] == kind}
