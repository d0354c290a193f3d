"""``duplicateCandidates``, ``mergeCustomers`` and ``undoMerge`` (administrators)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from dangan.graphql.customers.queries import columns_for
from dangan.graphql.customers.types import Customer, PageInfo
from dangan.graphql.people import Staff
from dangan.graphql.selection import child_names
from dangan.services import customers
from dangan.services.customers.duplicate_candidates import list_duplicate_candidates
from dangan.services.customers.inputs import api_name
from dangan.services.customers.merges import merge_customers as do_merge
from dangan.services.customers.merges import undo_merge as do_undo


@strawberry.type(description="Customers that are probably one and the same")
class DuplicateCandidate:
    matched_on: str = strawberry.field(description="idNumber, uscc, phone or name")
    certain: bool = strawberry.field(description="Same ID number or USCC")
    similarity: float | None = strawberry.field(description="Of the names (name pairs only)")
    customers: list[Customer]


@strawberry.type
class DuplicateCandidateEdge:
    cursor: str
    node: DuplicateCandidate


@strawberry.type(description="A page of likely duplicates, most certain first")
class DuplicateCandidateConnection:
    edges: list[DuplicateCandidateEdge]
    nodes: list[DuplicateCandidate]
    page_info: PageInfo


@strawberry.type(description="Customers merged into a survivor; undoable until undoUntil")
class CustomerMerge:
    id: strawberry.ID
    merged_ids: list[strawberry.ID]
    merged_at: datetime
    undo_until: datetime
    undone_at: datetime | None
    survivor_id: strawberry.Private[uuid.UUID]
    merged_by_id: strawberry.Private[int]

    @strawberry.field(description="The customer the others were merged into")
    async def survivor(self, info: Info) -> Customer:
        columns = columns_for(child_names(info.selected_fields, ("survivor",)))
        caller = info.context.require_caller()
        row = await customers.get_customer_for_caller(caller, str(self.survivor_id), columns)
        return Customer.from_row(row)

    @strawberry.field
    async def merged_by(self, info: Info) -> Staff | None:
        row = await info.context.members.load(self.merged_by_id)
        return Staff.from_row(row) if row is not None else None

    @classmethod
    def from_row(cls, row: Any) -> CustomerMerge:
        return cls(
            id=strawberry.ID(str(row["id"])),
            merged_ids=[strawberry.ID(str(uid)) for uid in row["merged_ids"]],
            merged_at=row["merged_at"],
            undo_until=row["undo_until"],
            undone_at=row["undone_at"],
            survivor_id=row["survivor_id"],
            merged_by_id=row["merged_by"],
        )


async def duplicate_candidates(
    info: Info, first: int = 50, after: str | None = None
) -> DuplicateCandidateConnection:
    """Likely duplicates among the customers you see (administrators): groups with the
    same ID number, USCC or mobile number, then pairs of similar names."""
    path = ("duplicateCandidates", "nodes", "customers")
    edge_path = ("duplicateCandidates", "edges", "node", "customers")
    names = child_names(info.selected_fields, path) | child_names(info.selected_fields, edge_path)
    page = await list_duplicate_candidates(
        info.context.require_caller(), first=first, after=after, columns=columns_for(names)
    )
    nodes = [
        DuplicateCandidate(
            matched_on=api_name(group.matched_on),
            certain=group.certain,
            similarity=group.similarity,
            customers=Customer.from_rows(
                [page.customers[uid] for uid in group.customer_ids if uid in page.customers]
            ),
        )
        for group in page.groups
    ]
    cursors = [page.cursor(index) for index in range(len(nodes))]
    return DuplicateCandidateConnection(
        edges=[
            DuplicateCandidateEdge(cursor=cursor, node=node)
            for cursor, node in zip(cursors, nodes, strict=True)
        ],
        nodes=nodes,
        page_info=PageInfo(
            has_next_page=page.has_next,
            has_previous_page=page.has_previous,
            start_cursor=cursors[0] if cursors else None,
            end_cursor=cursors[-1] if cursors else None,
        ),
    )


async def merge_customers(
    info: Info, survivor_id: strawberry.ID, other_ids: list[strawberry.ID], reason: str
) -> CustomerMerge:
    """Merge duplicates into ``survivorId`` (administrators): their records move to it,
    its empty fields are filled from them, and they are marked MERGED. Undo with
    ``undoMerge`` within 30 days."""
    row = await do_merge(info.context.require_caller(), survivor_id, other_ids, reason)
    return CustomerMerge.from_row(row)


async def undo_merge(info: Info, merge_id: strawberry.ID, reason: str) -> CustomerMerge:
    """Undo a merge (once, within 30 days): the moved records go back, the merged
    customers return, the fields the merge filled are emptied again."""
    row = await do_undo(info.context.require_caller(), merge_id, reason)
    return CustomerMerge.from_row(row)
