"""A restore brings the records back to the backup's moment but not the audit trail:
the events since (checkpointed to S3 meanwhile) and the alarm state numbered along them
are carried over from the replaced schema, so the chain still verifies and no number or
id is handed out twice. Without them (a table dropped by hand) the backup's trail stays
and verify says what was lost."""

from __future__ import annotations

import orjson

from dangan.audit.actions import ActionLog
from dangan.audit.checkpoints import CheckpointStore, write_checkpoint
from dangan.audit.verify import verify_tenant
from dangan.backups.loading import restore
from dangan.settings import Settings
from dangan.tenants.carrying import CARRIED_OVER
from tests.backups.filled import CUSTOMERS, Filled
from tests.backups.restores import COUNT, checksums, in_tenant, registry, take_backup
from tests.support.api import Api

_ALERT = (
    "INSERT INTO alert (rule, severity, actor_kind, actor_id, actor_name, actor_key, summary,"
    " last_seen_at, first_seq, last_seq, evidence) SELECT 'probing', 'high', 'anonymous',"
    " NULL, $1::text, 'address:' || $1::text, 'probing', now(), last_seq, last_seq, '{}'"
    " FROM audit_head RETURNING id"
)
_DELIVERY = (
    "INSERT INTO alert_delivery (alert_id, attempt, url, outcome)"
    " VALUES ($1, 1, 'https://alarms.example.com/hook', 'retrying') RETURNING id"
)
_RESTORE_EVENT = "SELECT variables FROM audit_event WHERE actions = '{backup.restore}'"


async def after_the_backup(filled: Filled, api: Api, store: CheckpointStore) -> tuple[int, int]:
    """Requests are audited, an alert opens, a checkpoint vouches for the chain, and a
    customer is deleted (the reason to restore). Returns the alert's and checkpoint's ids."""
    tenant = filled.ref
    for _ in range(3):
        (await api.post(tenant.slug, filled.tokens["admin"], COUNT)).ok()
    alert = await in_tenant(tenant, _ALERT, "10.9.8.7")
    await in_tenant(tenant, _DELIVERY, alert)
    await in_tenant(tenant, "DELETE FROM customer WHERE id = $1", filled.customers[0])
    checkpoint = await write_checkpoint(tenant, store)
    assert checkpoint is not None
    return alert, checkpoint.seq


def carried(sums: dict[str, tuple[int, str]]) -> dict[str, tuple[int, str]]:
    return {table: sums[table] for table in CARRIED_OVER}


async def test_the_audit_trail_and_alarm_state_are_carried_over(
    filled: Filled, api: Api, settings: Settings, store: CheckpointStore
) -> None:
    tenant = filled.ref
    backup = await take_backup(tenant)
    alert, checkpoint = await after_the_backup(filled, api, store)
    _, backup_head, _ = backup.table("audit_head").split(b"\t")
    assert checkpoint > int(backup_head)  # it vouches for events the backup lacks
    replaced = carried(await checksums(tenant))

    await restore(
        tenant,
        backup.snapshot,
        backup.read,
        keep_days=7,
        record=ActionLog(settings.secret_key, "cli").recorder(),
    )

    live = await registry(tenant)
    now = await checksums(live)
    # The records are the backup's again, the trail is the replaced schema's + the restore.
    assert await in_tenant(live, "SELECT count(*) FROM customer") == CUSTOMERS
    for table, sums in replaced.items():
        if table not in ("audit_event", "audit_head"):
            assert now[table] == sums, table
    assert now["audit_event"][0] == replaced["audit_event"][0] + 1
    report = await verify_tenant(live, store)
    assert report.ok, report.broken
    assert report.newest_checkpoint == checkpoint
    details = orjson.loads(await in_tenant(live, _RESTORE_EVENT))
    assert details["auditTrail"] == "carried over"
    assert details["previousHead"]["seq"] == checkpoint
    # Ids continue after the carried rows, not after the backup's.
    assert await in_tenant(live, _ALERT, "10.9.8.8") == alert + 1
    delivery = await in_tenant(live, _DELIVERY, alert + 1)
    assert delivery == await in_tenant(tenant, "SELECT max(id) FROM alert_delivery") + 1


async def test_without_its_tables_the_backups_trail_stays_and_verify_tells(
    filled: Filled, api: Api, settings: Settings, store: CheckpointStore
) -> None:
    tenant = filled.ref
    backup = await take_backup(tenant)
    _, checkpoint = await after_the_backup(filled, api, store)
    await in_tenant(tenant, "DROP TABLE audit_anchor")  # by hand

    await restore(
        tenant,
        backup.snapshot,
        backup.read,
        keep_days=7,
        record=ActionLog(settings.secret_key, "cli").recorder(),
    )

    live = await registry(tenant)
    now = await checksums(live)
    ours = {copy.table: (copy.rows, copy.sha256) for copy in backup.snapshot.tables}
    for table in CARRIED_OVER:
        if table not in ("audit_event", "audit_head"):
            assert now[table] == ours[table], table
    assert now["audit_event"][0] == ours["audit_event"][0] + 1
    details = orjson.loads(await in_tenant(live, _RESTORE_EVENT))
    assert details["auditTrail"] == "from the backup"
    # The events after the backup are in the retired schema only: the checkpoint says so.
    report = await verify_tenant(live, store)
    assert report.broken is not None and report.broken.problem == "checkpoint"
    assert report.broken.seq == checkpoint
