"""``customer(id)`` and ``customers(first, after, where, search, orderBy)``."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from dangan.graphql.customers.enums import SortDirection
from dangan.graphql.customers.inputs import CustomerCondition, CustomerOrder
from dangan.graphql.customers.types import (
    FIELD_COLUMNS,
    Customer,
    CustomerConnection,
    CustomerEdge,
    PageInfo,
)
from dangan.graphql.selection import child_names, is_selected
from dangan.services import customers
from dangan.services.errors import BadUserInput


def columns_for(names: set[str]) -> list[str]:
    return [FIELD_COLUMNS[name] for name in names if name in FIELD_COLUMNS]


def conditions_from(where: list[CustomerCondition] | None) -> list[customers.Condition]:
    if where is not None and len(where) > 20:
        raise BadUserInput("at most 20 conditions", field="where")
    return [
        customers.Condition(
            name=c.field,
            column=FIELD_COLUMNS.get(c.field),
            op=c.op.value,
            values=tuple(
                c.values if c.values is not None else [c.value] if c.value is not None else []
            ),
            label=f"where[{index}]",
        )
        for index, c in enumerate(where or [])
    ]


async def customer(info: Info, id: strawberry.ID) -> Customer:
    """One customer; NOT_FOUND if it doesn't exist or you may not see it."""
    columns = columns_for(child_names(info.selected_fields, ("customer",)))
    row = await customers.get_customer_for_caller(info.context.require_caller(), id, columns)
    return Customer.from_row(row)


async def customers_connection(
    info: Info,
    first: int = 50,
    after: str | None = None,
    where: list[CustomerCondition] | None = None,
    search: str | None = None,
    order_by: CustomerOrder | None = None,
) -> CustomerConnection:
    """A page of the customers you may see, oldest first by default; ``first`` is 1 to
    1,000. ``where`` conditions all apply; ``search`` finds part of the name."""
    limit = info.context.settings.max_page_size
    if not 1 <= first <= limit:
        raise BadUserInput(f"first must be between 1 and {limit}", field="first")
    selected = info.selected_fields
    names = child_names(selected, ("customers", "edges", "node")) | child_names(
        selected, ("customers", "nodes")
    )
    order_name = order_by.field if order_by else None
    order = customers.Order(
        field=FIELD_COLUMNS.get(order_name or "createdAt", f"?{order_name}"),
        descending=bool(order_by and order_by.direction is SortDirection.DESC),
    )
    page = await customers.list_customers(
        info.context.require_caller(),
        first=first,
        after=after,
        conditions=conditions_from(where),
        search=search,
        order=order,
        order_name=order_name,
        columns=columns_for(names),
        with_total=is_selected(selected[0].selections, "totalCount"),
    )
    nodes = Customer.from_rows(page.rows)
    edges: list[CustomerEdge] = []
    if is_selected(selected[0].selections, "edges"):
        # Cursors cost a few µs each: make them only when they are asked for.
        with_cursor = "cursor" in child_names(selected, ("customers", "edges"))
        edges = [
            CustomerEdge(cursor=page.cursor(row) if with_cursor else "", node=node)
            for row, node in zip(page.rows, nodes, strict=True)
        ]
    return CustomerConnection(
        edges=edges,
        nodes=nodes,
        total_count=page.total,
        page_info=PageInfo.of(page, page.rows),
    )
