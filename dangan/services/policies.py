"""Policy versions of a tenant: propose (validated, tested, impact measured), activate,
roll back by activating an older one. Every version is kept.

A proposal that doesn't load (Polar errors name file, line and column; unknown classes,
fields or rules) or fails its test cases is refused and nothing is stored, so a broken
policy can never become active. The versions live in the tenant's schema: they belong
to the tenant, move with it, and the request path (tenant role) can read them.
"""

from __future__ import annotations

from typing import Any

import orjson

from dangan.authz.adapter import PolicyError
from dangan.authz.capabilities import check_allowed
from dangan.authz.engine import PolicyEngine
from dangan.authz.policy_tests import load_cases, run_cases
from dangan.authz.store import POLICIES, polar_sources, test_sources
from dangan.services.callers import Caller
from dangan.services.errors import BadUserInput, Conflict, NotFound
from dangan.services.policy_impact import impact_report
from dangan.tenants.scope import raw_connection

MAX_FILES = 20
MAX_FILE_BYTES = 200_000
_COLUMNS = (
    "id, files, status, comment, report, proposed_by, proposed_at, activated_by, activated_at"
)


def check_files(files: dict[str, str]) -> PolicyEngine:
    """Load and test a set of files; raises BadUserInput saying exactly what is wrong."""
    if not polar_sources(files):
        raise BadUserInput("give at least one .polar file", field="files")
    if len(files) > MAX_FILES or any(len(t.encode()) > MAX_FILE_BYTES for t in files.values()):
        raise BadUserInput(f"at most {MAX_FILES} files of 200 kB each", field="files")
    for name in files:
        if not (name.endswith(".polar") or (name.startswith("tests/") and name.endswith(".yaml"))):
            raise BadUserInput(f"{name}: files are *.polar or tests/*.yaml", field="files")
    try:
        engine = PolicyEngine(polar_sources(files), version="proposal")
        if engine.warnings:
            raise PolicyError("; ".join(engine.warnings))
        failures = run_cases(engine, load_cases(test_sources(files)))
    except PolicyError as exc:
        raise BadUserInput(f"the policy does not load: {exc}", field="files") from exc
    if failures:
        shown = "; ".join(str(f) for f in failures[:20])
        raise BadUserInput(f"{len(failures)} policy test(s) fail: {shown}", field="files")
    return engine


async def active_files() -> dict[str, str]:
    raw = await raw_connection().fetchval(
        "SELECT files FROM policy_version WHERE status = 'active'"
    )
    return orjson.loads(raw) if raw is not None else dict(POLICIES.default_files)


async def propose_policy(caller: Caller, files: dict[str, str], comment: str) -> Any:
    check_allowed(caller, "policy.manage")
    comment = " ".join(comment.split())
    if not 1 <= len(comment) <= 500:
        raise BadUserInput("comment must be 1 to 500 characters", field="comment")
    if not test_sources(files):  # no tests of its own: it must pass the active ones
        files = {**files, **test_sources(await active_files())}
    proposed = check_files(files)
    current = await POLICIES.engine_for(caller.tenant_id)
    report = await impact_report(current, proposed)
    return await raw_connection().fetchrow(
        f"INSERT INTO policy_version (files, comment, report, proposed_by)"
        f" VALUES ($1::jsonb, $2, $3::jsonb, $4) RETURNING {_COLUMNS}",
        orjson.dumps(files).decode(),
        comment,
        orjson.dumps(report).decode(),
        caller.id,
    )


async def activate_policy(caller: Caller, version_id: int) -> Any:
    """Make a proposed (or older) version the active one; the others are retired."""
    check_allowed(caller, "policy.manage")
    async with raw_connection().savepoint():
        row = await raw_connection().fetchrow(
            f"SELECT {_COLUMNS} FROM policy_version WHERE id = $1 FOR UPDATE", version_id
        )
        if row is None:
            raise NotFound("no policy version with this id", field="version")
        if row["status"] == "active":
            raise Conflict("this version is already active", field="version")
        check_files(orjson.loads(row["files"]))  # still loads with today's code
        await raw_connection().execute(
            "UPDATE policy_version SET status = 'retired' WHERE status = 'active'"
        )
        return await raw_connection().fetchrow(
            f"UPDATE policy_version SET status = 'active', activated_by = $2,"
            f" activated_at = now() WHERE id = $1 RETURNING {_COLUMNS}",
            version_id,
            caller.id,
        )


async def policy_versions(caller: Caller) -> list[Any]:
    check_allowed(caller, "policy.manage")
    return list(
        await raw_connection().fetch(
            f"SELECT {_COLUMNS} FROM policy_version ORDER BY id DESC LIMIT 200"
        )
    )
