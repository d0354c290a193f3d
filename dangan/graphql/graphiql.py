"""GraphiQL, served on GET in development only (DANGAN_ENV=dev)."""

from __future__ import annotations

from functools import lru_cache

from strawberry.http.ides import get_graphql_ide_html


@lru_cache(maxsize=1)
def graphiql_page() -> str:
    """The page posts to the URL it was loaded from; add the bearer token under Headers."""
    return get_graphql_ide_html("graphiql")
