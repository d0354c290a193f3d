"""``customer(id)`` and ``customers(first, after, filter, orderBy)``."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from dangan.graphql.customers.types import (
    FIELD_COLUMNS,
    Customer,
    CustomerConnection,
    CustomerEdge,
    CustomerFilter,
    CustomerOrder,
    PageInfo,
    SortDirection,
)
from dangan.graphql.selection import child_names, is_selected
from dangan.services import customers
from dangan.services.errors import BadUserInput


def _columns(names: set[str]) -> list[str]:
    return [FIELD_COLUMNS[name] for name in names if name in FIELD_COLUMNS]


def _service_filter(flt: CustomerFilter | None) -> customers.CustomerFilter:
    if flt is None:
        return customers.CustomerFilter()
    return customers.CustomerFilter(
        kind=flt.kind.value if flt.kind else None,
        tier=flt.tier.value if flt.tier else None,
        region=flt.region,
        owner_id=flt.owner_id,
        department_id=flt.department_id,
        search=flt.search,
        created_after=flt.created_after,
        created_before=flt.created_before,
    )


async def customer(info: Info, id: strawberry.ID) -> Customer:
    """One customer; NOT_FOUND if it doesn't exist or you may not see it."""
    columns = _columns(child_names(info.selected_fields, ("customer",)))
    row = await customers.get_customer_for_caller(info.context.require_caller(), id, columns)
    return Customer.from_row(row)


async def customers_connection(
    info: Info,
    first: int = 50,
    after: str | None = None,
    filter: CustomerFilter | None = None,
    order_by: CustomerOrder | None = None,
) -> CustomerConnection:
    """A page of customers, newest last by default; ``first`` is 1 to 1,000."""
    limit = info.context.settings.max_page_size
    if not 1 <= first <= limit:
        raise BadUserInput(f"first must be between 1 and {limit}", field="first")
    selected = info.selected_fields
    names = child_names(selected, ("customers", "edges", "node")) | child_names(
        selected, ("customers", "nodes")
    )
    order = customers.Order(
        field=order_by.field.value if order_by else "created_at",
        descending=bool(order_by and order_by.direction is SortDirection.DESC),
    )
    page = await customers.list_customers(
        info.context.require_caller(),
        first=first,
        after=after,
        flt=_service_filter(filter),
        order=order,
        columns=_columns(names),
        with_total=is_selected(selected[0].selections, "totalCount"),
    )
    nodes = [Customer.from_row(row) for row in page.rows]
    edges: list[CustomerEdge] = []
    if is_selected(selected[0].selections, "edges"):
        # Cursors cost a few µs each: make them only when they are asked for.
        with_cursor = "cursor" in child_names(selected, ("customers", "edges"))
        edges = [
            CustomerEdge(cursor=page.cursor(row) if with_cursor else "", node=node)
            for row, node in zip(page.rows, nodes, strict=True)
        ]
    rows = page.rows
    return CustomerConnection(
        edges=edges,
        nodes=nodes,
        total_count=page.total,
        page_info=PageInfo(
            has_next_page=page.has_next,
            has_previous_page=page.has_previous,
            start_cursor=page.cursor(rows[0]) if rows else None,
            end_cursor=page.cursor(rows[-1]) if rows else None,
        ),
    )
