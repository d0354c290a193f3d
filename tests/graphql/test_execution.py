"""The bulk-leaf executor answers exactly what graphql-core's own executor answers."""

from __future__ import annotations

import json

import pytest
import strawberry

from dangan.graphql import endpoint
from dangan.graphql.schema import Mutation, Query
from tests.support.api import Api
from tests.support.world import World

PLAIN = strawberry.Schema(query=Query, mutation=Mutation)

QUERIES = [
    "{ customers(first: 50) { nodes { __typename id kind name phone email idNumber tier createdAt version tags consentsToSharing } } }",
    "{ customers(first: 50) { nodes { n: name p: phone annualRevenue birthday } } }",
    "{ customers(first: 50) { totalCount edges { cursor node { id kind name phone email idNumber uscc address region tier createdAt updatedAt version } } pageInfo { hasNextPage endCursor } } }",
    "{ customers(first: 50) { nodes { __typename n: name k: kind name owner { id displayName roles } department { name parentId } tier } } }",
    'query { customers(first: 3, orderBy: {field: "name", direction: DESC}) { ...Page } } fragment Page on CustomerConnection { edges { node { ...Bits ... on Customer { region } } } } fragment Bits on Customer { id name email }',
    "{ me { __typename kind id name email roles scopes departmentId tenant { slug name } } }",
    "query($skip: Boolean!) { customers(first: 5) { nodes { name phone @skip(if: $skip) email @include(if: $skip) } } }",
]


@pytest.mark.parametrize("role", ["admin", "sales", "auditor"])
@pytest.mark.parametrize("query", QUERIES)
async def test_same_answers_as_graphql_core(
    api: Api, world: World, monkeypatch: pytest.MonkeyPatch, query: str, role: str
) -> None:
    variables = {"skip": True} if "$skip" in query else None
    token = world["alpha"].tokens[role]
    fast = await api.post("alpha", token, query, variables)
    monkeypatch.setattr(endpoint, "schema", PLAIN)
    plain = await api.post("alpha", token, query, variables)
    assert fast.ok() == plain.ok()
    assert json.dumps(fast.body["data"]) == json.dumps(plain.body["data"]), "same keys, same order"
    # Only this executor reports redactions (graphql-core's own can't know of them).
    assert "extensions" not in plain.body


async def test_null_in_a_non_null_leaf_raises_like_graphql_core(
    api: Api, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dangan.graphql.customers.types import Customer

    original = Customer.from_rows

    def without_id(rows):  # a bug of ours that returns null for a non-null field
        customers = original(rows)
        for customer in customers:
            customer.id = None
        return customers

    monkeypatch.setattr(Customer, "from_rows", staticmethod(without_id))
    query = "{ customers(first: 2) { nodes { id name } } }"
    token = world["alpha"].tokens["admin"]
    fast = await api.post("alpha", token, query)
    monkeypatch.setattr(endpoint, "schema", PLAIN)
    plain = await api.post("alpha", token, query)
    assert fast.codes == plain.codes == ["INTERNAL"]
    assert fast.data == plain.data
