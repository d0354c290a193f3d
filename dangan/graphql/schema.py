"""The GraphQL schema: root types wired to thin resolvers."""

from __future__ import annotations

import strawberry

from dangan.graphql.customers.mutations.create_customer import create_customer
from dangan.graphql.customers.mutations.update_customer import update_customer
from dangan.graphql.customers.queries import customer, customers_connection
from dangan.graphql.viewer import login, me


@strawberry.type
class Query:
    me = strawberry.field(resolver=me, description="Who is calling, in which tenant")
    customer = strawberry.field(resolver=customer)
    customers = strawberry.field(resolver=customers_connection)


@strawberry.type
class Mutation:
    login = strawberry.mutation(resolver=login)
    create_customer = strawberry.mutation(resolver=create_customer)
    update_customer = strawberry.mutation(resolver=update_customer)


schema = strawberry.Schema(query=Query, mutation=Mutation)
