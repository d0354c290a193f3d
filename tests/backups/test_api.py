"""``backups`` and ``backupRuns`` through GraphQL: a tenant's admins and auditors read its
own catalogue; nobody else does, and no tenant sees another's."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from dangan.audit.actions import ActionLog
from dangan.backups.catalogue import fail_run, list_backups, start_run
from dangan.backups.slots import backup_id
from dangan.backups.store import BackupStore
from dangan.backups.writer import run_backup
from dangan.devstack import Endpoints
from dangan.settings import Settings
from dangan.storage import ObjectStore
from dangan.workers.settings import build_backup_worker
from tests.support.api import Api
from tests.support.world import World

BACKUPS = """{ backups(limit: 5) { id kind tables rows attachments storedBytes lockedUntil
  verifiedAt } backupRuns(limit: 5) { backupId state attempts tablesDone tables error } }"""
RUN = "mutation { runBackup { backupId kind state attempts } }"
FOLLOW = "query($id: ID!) { backupRun(id: $id) { backupId state tablesDone tables rows stage } }"


async def test_admins_and_auditors_read_their_own_tenants_backups_only(
    api: Api,
    world: World,
    settings: Settings,
    backups: BackupStore,
    objects: ObjectStore,
    log: ActionLog,
) -> None:
    alpha = world["alpha"]
    made = backup_id("manual", datetime.now(UTC))
    outcome = await run_backup(settings, backups, objects, alpha.ref, made, "manual", log)
    await start_run(alpha.ref.id, "m20000101T0000", "manual")
    await fail_run(alpha.ref.id, "m20000101T0000", "object storage refused: SlowDown")

    for who in ("admin", "auditor"):
        got = (await api.post("alpha", alpha.tokens[who], BACKUPS)).ok()
        listed = {b["id"]: b for b in got["backups"]}
        assert listed[made]["tables"] == outcome.record.tables
        assert listed[made]["rows"] == outcome.record.rows
        runs = {r["backupId"]: r for r in got["backupRuns"]}
        assert runs[made]["state"] == "complete"
        assert runs["m20000101T0000"]["error"] == "object storage refused: SlowDown"

    for who in ("sales", "manager"):
        refused = await api.post("alpha", alpha.tokens[who], BACKUPS)
        assert refused.codes == ["FORBIDDEN"] and refused.data is None
    app = await api.post("alpha", alpha.keys["reader"], BACKUPS)
    assert app.codes == ["FORBIDDEN"]

    beta = world["beta"]
    other = (await api.post("beta", beta.tokens["admin"], BACKUPS)).ok()
    betas = [(b.id, b.rows) for b in await list_backups(beta.ref.id, limit=5)]
    assert [(b["id"], b["rows"]) for b in other["backups"]] == betas
    assert "m20000101T0000" not in {r["backupId"] for r in other["backupRuns"]}
    # Alpha's token at beta's address is refused before any backup is read.
    crossed = await api.post("beta", alpha.tokens["admin"], BACKUPS)
    assert crossed.status != 200 or crossed.codes


async def test_a_bad_limit_is_named(api: Api, world: World) -> None:
    bad = await api.post("alpha", world["alpha"].tokens["admin"], "{ backups(limit: 0) { id } }")
    assert bad.codes == ["BAD_USER_INPUT"] and bad.errors[0]["extensions"]["field"] == "limit"


async def test_an_admin_asks_for_a_backup_and_follows_it_to_the_catalogue(
    api: Api, world: World, settings: Settings, endpoints: Endpoints
) -> None:
    gamma = world["gamma"]
    admin = gamma.tokens["admin"]
    first = (await api.post("gamma", admin, RUN)).ok()["runBackup"]
    again = (await api.post("gamma", admin, RUN)).ok()["runBackup"]
    assert first["kind"] == "manual" and first["state"] in ("queued", "complete")
    assert again["backupId"] == first["backupId"]  # one backup a minute, however asked

    for who in ("auditor", "sales", "manager"):
        refused = await api.post("gamma", gamma.tokens[who], RUN)
        assert refused.codes == ["FORBIDDEN"] and refused.data is None
    assert (await api.post("gamma", gamma.keys["writer"], RUN)).codes == ["FORBIDDEN"]

    worker = build_backup_worker(
        settings, endpoints, connect_database=False, burst=True, poll_delay=0.05
    )
    try:
        await asyncio.wait_for(worker.main(), timeout=120)
    finally:
        await worker.close()

    ident = {"id": first["backupId"]}
    followed = (await api.post("gamma", gamma.tokens["auditor"], FOLLOW, ident)).ok()
    run = followed["backupRun"]
    assert run["state"] == "complete" and run["tablesDone"] == run["tables"] > 0
    listed = (await api.post("gamma", admin, "{ backups(limit: 3) { id } }")).ok()["backups"]
    assert first["backupId"] in [b["id"] for b in listed]
    # Another tenant cannot follow it, and cannot tell it exists.
    beta = await api.post("beta", world["beta"].tokens["admin"], FOLLOW, ident)
    assert beta.codes == ["NOT_FOUND"]
    bad = await api.post("gamma", admin, FOLLOW, {"id": "tomorrow"})
    assert bad.codes == ["BAD_USER_INPUT"] and bad.errors[0]["extensions"]["field"] == "id"
