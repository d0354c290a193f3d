"""The DDL of each schema version, one module per stage of the product (assembled, in
order, by :mod:`dangan.tenants.versions`). A released version is never edited."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str
