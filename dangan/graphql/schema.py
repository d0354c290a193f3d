"""The GraphQL schema: root types wired to thin resolvers."""

from __future__ import annotations

import strawberry
from strawberry.extensions import DisableValidation, ParserCache

from dangan.graphql import policies as policy_api
from dangan.graphql import rating as rating_api
from dangan.graphql.customers.mutations.create_customer import create_customer
from dangan.graphql.customers.mutations.reveal_field import reveal_field
from dangan.graphql.customers.mutations.update_customer import update_customer
from dangan.graphql.customers.queries import customer, customers_connection
from dangan.graphql.execution import BulkLeafExecutor
from dangan.graphql.sharing import resolvers as sharing
from dangan.graphql.viewer import login, me


@strawberry.type
class Query:
    me = strawberry.field(resolver=me, description="Who is calling, in which tenant")
    customer = strawberry.field(resolver=customer)
    customers = strawberry.field(resolver=customers_connection)
    share_requests = strawberry.field(resolver=sharing.share_requests)
    policy_versions = strawberry.field(resolver=policy_api.policy_versions)
    rating_history = strawberry.field(resolver=rating_api.rating_history)
    rating_criteria = strawberry.field(resolver=rating_api.rating_criteria)
    rating_job = strawberry.field(resolver=rating_api.rating_job)


@strawberry.type
class Mutation:
    login = strawberry.mutation(resolver=login)
    create_customer = strawberry.mutation(resolver=create_customer)
    update_customer = strawberry.mutation(resolver=update_customer)
    reveal_field = strawberry.mutation(resolver=reveal_field)
    request_share = strawberry.mutation(resolver=sharing.request_share)
    approve_share = strawberry.mutation(resolver=sharing.approve_share)
    reject_share = strawberry.mutation(resolver=sharing.reject_share)
    revoke_share = strawberry.mutation(resolver=sharing.revoke_share)
    propose_policy = strawberry.mutation(resolver=policy_api.propose_policy)
    activate_policy = strawberry.mutation(resolver=policy_api.activate_policy)
    set_rating_criteria = strawberry.mutation(resolver=rating_api.set_rating_criteria)
    recompute_rating = strawberry.mutation(resolver=rating_api.recompute_rating)


# The endpoint parses and validates every document before it gets here (with limits and
# caches of its own, dangan.graphql.documents), so Strawberry reuses the parsed document
# and skips validating it a second time: run documents through the endpoint.
schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    execution_context_class=BulkLeafExecutor,
    extensions=[lambda: ParserCache(maxsize=1024), DisableValidation],
)
