"""Throwaway databases on an external PostgreSQL, for test and benchmark runs.

A run pointed at a shared server (``DANGAN_DATABASE_URL``) gets a database of its own
and, at the end, drops it together with the tenant roles it made: roles are
cluster-wide, and carry the deployment id, so only this run's are touched.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _drop(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(with_database(server_url, name))
    try:
        deployment = await conn.fetchval(
            "SELECT value FROM public.platform_meta WHERE key = 'deployment_id'"
        )
        roles = [
            row["role_name"] for row in await conn.fetch("SELECT role_name FROM public.tenant")
        ]
    except asyncpg.PostgresError:
        deployment, roles = None, []
    finally:
        await conn.close()
    await _execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    for role in roles:
        if deployment and role.endswith(deployment):
            await _execute(server_url, f'DROP ROLE IF EXISTS "{role}"')


@asynccontextmanager
async def scratch_database(server_url: str, prefix: str = "dangan_scratch") -> AsyncIterator[str]:
    """Create a fresh database next to ``server_url``'s; yields its URL; drops it after."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    await _execute(server_url, f'CREATE DATABASE "{name}"')
    try:
        yield with_database(server_url, name)
    finally:
        await _drop(server_url, name)
