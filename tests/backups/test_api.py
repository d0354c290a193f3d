"""``backups`` and ``backupRuns`` through GraphQL: a tenant's admins and auditors read its
own catalogue; nobody else does, and no tenant sees another's."""

from __future__ import annotations

from datetime import UTC, datetime

from dangan.audit.actions import ActionLog
from dangan.backups.catalogue import fail_run, list_backups, start_run
from dangan.backups.slots import backup_id
from dangan.backups.store import BackupStore
from dangan.backups.writer import run_backup
from dangan.settings import Settings
from dangan.storage import ObjectStore
from tests.support.api import Api
from tests.support.world import World

BACKUPS = """{ backups(limit: 5) { id kind tables rows attachments storedBytes lockedUntil
  verifiedAt } backupRuns(limit: 5) { backupId status attempts tablesDone tables error } }"""


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
        assert runs[made]["status"] == "complete"
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
