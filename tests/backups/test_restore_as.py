"""Restoring into a new tenant, to look at a backup beside the live tenant: its own
registry row, role and schema, the backup's data, nobody let in until someone is made a
member — and nothing at all if the backup does not restore."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dangan.audit.actions import ActionLog
from dangan.audit.checkpoints import CheckpointStore
from dangan.audit.verify import verify_tenant
from dangan.backups.loading import RestoreError, restore_as
from dangan.services.errors import Conflict
from dangan.services.people import create_user
from dangan.services.tokens import issue_token
from dangan.settings import Settings
from dangan.tenants.names import schema_for
from dangan.tenants.registry import find_tenant
from tests.backups.filled import CUSTOMERS, Filled
from tests.backups.restores import (
    COUNT,
    assert_untouched,
    checksums,
    in_tenant,
    platform,
    schemas_of,
    take_backup,
)
from tests.support.api import Api

CHAIN = {"audit_event", "audit_head"}  # the new tenant's chain records its restore


async def test_a_backup_restored_as_a_new_tenant(
    filled: Filled,
    slugs: Callable[[], str],
    api: Api,
    settings: Settings,
    store: CheckpointStore,
) -> None:
    source = filled.ref
    backup = await take_backup(source)
    source_before = await checksums(source)
    slug = slugs()

    loaded = await restore_as(
        slug,
        "Restore Ltd (backup of today)",
        backup.snapshot,
        backup.read,
        record=ActionLog(settings.secret_key, "cli").recorder(),
    )

    copy = await find_tenant(slug)
    assert copy is not None and copy == loaded.schema
    assert (copy.status, copy.schema_name) == ("active", schema_for(slug))
    assert copy.id != source.id and copy.role_name != source.role_name
    assert await schemas_of(copy) == [copy.schema_name]
    restored = await checksums(copy)
    for table, (rows, sha) in source_before.items():
        if table not in CHAIN:
            assert restored[table] == (rows, sha), table
    assert restored["audit_event"][0] == source_before["audit_event"][0] + 1
    assert (await verify_tenant(copy, store)).ok
    # Nobody is a member: the source's admin, holding a token for it, is refused.
    assert await platform("SELECT * FROM public.membership WHERE tenant_id = $1", copy.id) == []
    admin = filled.people["admin"]
    token = issue_token(admin.identity_id, slug, secret=settings.secret_key, ttl_seconds=600)
    refused = await api.post(slug, token.token, COUNT)
    assert refused.status == 403 and refused.data is None
    # Made a member (as `dangan user create` does), she sees the backup's customers.
    await create_user(copy, admin.email, ["admin"])
    data = (await api.post(slug, token.token, COUNT)).ok()
    assert data["customers"]["totalCount"] == CUSTOMERS
    # The source was only read.
    assert await checksums(source) == source_before
    assert await in_tenant(source, "SELECT count(*) FROM customer") == CUSTOMERS


async def test_a_failed_restore_as_leaves_no_tenant(
    filled: Filled, slugs: Callable[[], str]
) -> None:
    source = filled.ref
    backup = await take_backup(source)
    source_before = await checksums(source)
    backup.data["member"] = backup.table("member").replace(b"admin", b"nimda")
    slug = slugs()

    with pytest.raises(RestoreError, match="table member does not match"):
        await restore_as(slug, "Broken Ltd", backup.snapshot, backup.read)

    assert await find_tenant(slug) is None
    assert await platform("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema_for(slug)) == []
    assert await platform("SELECT 1 FROM pg_roles WHERE rolname LIKE $1", f"t_{slug}\\_%") == []
    await assert_untouched(source, source_before)
    with pytest.raises(Conflict):  # and an existing slug is refused before any work
        await restore_as(source.slug, "Again", backup.snapshot, backup.read)
