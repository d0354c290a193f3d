"""Tenant slugs and the identifiers derived from them.

Only names that passed :func:`check_slug` (or were read back from the registry, where a
CHECK constraint holds the same pattern) are ever put into SQL, and always quoted.
"""

from __future__ import annotations

import re

from dangan.services.errors import BadUserInput

SLUG_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,40}$")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_slug(slug: str) -> str:
    if not SLUG_PATTERN.fullmatch(slug):
        raise BadUserInput(
            "slug must be 2-41 characters: a lower-case letter, then lower-case letters, "
            "digits or underscores",
            field="slug",
        )
    return slug


def schema_for(slug: str) -> str:
    return f"t_{check_slug(slug)}"


def role_for(slug: str, deployment_id: str) -> str:
    """Roles are cluster-wide, so they carry the deployment's id (several databases
    — or test runs — may share one PostgreSQL cluster)."""
    return f"t_{check_slug(slug)}_{deployment_id}"


def quote_ident(name: str) -> str:
    """Quote a name we generated ourselves; anything else is a programming error."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"refusing to use {name!r} as an SQL identifier")
    return f'"{name}"'
