"""``dangan backup run | list | verify`` as an operator runs them (a subprocess against
this run's stack)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dangan.devstack import Endpoints
from dangan.settings import Settings
from dangan.storage import ObjectStore
from dangan.tenants.registry import find_tenant
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant
from tests.backups.conftest import fill
from tests.support.tenants import drop_tenant
from tests.test_cli import DANGAN, cli_env


@pytest.fixture
def env(settings: Settings, endpoints: Endpoints, tmp_path: Path) -> dict[str, str]:
    return cli_env(settings, endpoints, tmp_path / "data")


def dangan(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DANGAN), *args], env=env, capture_output=True, text=True, timeout=120
    )


async def test_run_list_and_verify_a_backup(
    env: dict[str, str], tenant: TenantRef, objects: ObjectStore
) -> None:
    await fill(tenant, objects, customers=4, files=1)

    ran = dangan(env, "backup", "run", "--tenant", tenant.slug)
    assert ran.returncode == 0, ran.stderr
    assert f"{tenant.slug}: backup m" in ran.stdout and "made" in ran.stdout
    assert "1 files" in ran.stdout
    backup = ran.stdout.split(f"{tenant.slug}: backup ")[1].split()[0]

    listed = dangan(env, "backup", "list", "--tenant", tenant.slug)
    assert listed.returncode == 0, listed.stderr
    line = next(row for row in listed.stdout.splitlines() if backup in row)
    assert line.split()[0] == tenant.slug and line.split()[-1] == "-"  # not drilled yet

    verified = dangan(env, "backup", "verify", "--tenant", tenant.slug, "--backup", backup)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.strip().startswith(f"OK: {tenant.slug} {backup}")
    listed = dangan(env, "backup", "list", "--tenant", tenant.slug)
    assert "ok 20" in next(row for row in listed.stdout.splitlines() if backup in row)


async def test_mistakes_are_named_with_exit_status_2(
    env: dict[str, str], tenant: TenantRef
) -> None:
    missing = dangan(env, "backup", "verify", "--tenant", tenant.slug, "--backup", "d20200101")
    assert missing.returncode == 2 and "has no manifest" in missing.stderr + missing.stdout
    unknown = dangan(env, "backup", "verify", "--tenant", "nobody_here", "--backup", "d20200101")
    assert (
        unknown.returncode == 2
        and "no tenant named 'nobody_here'" in unknown.stdout + unknown.stderr
    )
    bad = dangan(env, "backup", "verify", "--tenant", tenant.slug, "--backup", "yesterday")
    assert bad.returncode == 2 and "is not a backup id" in bad.stderr
    both = dangan(env, "backup", "run")
    assert both.returncode == 2 and "--tenant or --all" in both.stderr


async def test_drill_then_restore_after_a_table_is_dropped(
    env: dict[str, str], tenant: TenantRef, objects: ObjectStore
) -> None:
    await fill(tenant, objects, customers=5, files=1)
    ran = dangan(env, "backup", "run", "--tenant", tenant.slug)
    backup = ran.stdout.split(f"{tenant.slug}: backup ")[1].split()[0]

    drilled = dangan(env, "backup", "drill", "--tenant", tenant.slug)
    assert drilled.returncode == 0, drilled.stdout + drilled.stderr
    assert f"OK: {backup} of {tenant.slug} restores" in drilled.stdout

    async def drop() -> None:
        await raw_connection().execute("DROP TABLE customer CASCADE")

    await run_in_tenant(tenant, drop)
    asked = subprocess.run(
        [str(DANGAN), "backup", "restore", "--tenant", tenant.slug, "--backup", backup],
        env=env,
        input="n\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert asked.returncode == 1 and "Aborted" in asked.stdout + asked.stderr
    assert await find_tenant(tenant.slug) == tenant

    restored = dangan(
        env, "backup", "restore", "--tenant", tenant.slug, "--backup", backup, "--yes"
    )
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert f"restored {backup} into {tenant.slug}" in restored.stdout
    assert f"kept as {tenant.schema_name} until" in restored.stdout
    live = await find_tenant(tenant.slug)
    assert live is not None

    async def customers() -> int:
        return int(await raw_connection().fetchval("SELECT count(*) FROM customer"))

    assert await run_in_tenant(live, customers) == 5

    copy = f"{tenant.slug}_copy"
    try:
        beside = dangan(
            env, "backup", "restore", "--tenant", tenant.slug, "--backup", backup, "--as", copy
        )
        assert beside.returncode == 0, beside.stdout + beside.stderr
        made = await find_tenant(copy)
        assert made is not None and await run_in_tenant(made, customers) == 5
    finally:
        await drop_tenant(copy)


async def test_prune_dry_run_names_what_is_kept(env: dict[str, str], tenant: TenantRef) -> None:
    ran = dangan(env, "backup", "run", "--tenant", tenant.slug)
    backup = ran.stdout.split(f"{tenant.slug}: backup ")[1].split()[0]
    pruned = dangan(env, "backup", "prune", "--tenant", tenant.slug, "--dry-run")
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    assert f"{tenant.slug}: kept 1, would remove 0" in pruned.stdout
    assert f"keep {backup} until" in pruned.stdout and "daily" in pruned.stdout


async def test_a_tenant_gets_its_own_backup_time_then_the_default_again(
    env: dict[str, str], tenant: TenantRef
) -> None:
    shown = dangan(env, "backup", "schedule", "--tenant", tenant.slug)
    assert f"{tenant.slug}: scheduled backups daily at 00:30 UTC (the default)" in shown.stdout
    own = dangan(env, "backup", "schedule", "--tenant", tenant.slug, "--at", "02:45")
    assert "daily at 02:45 UTC (its own)" in own.stdout, own.stdout + own.stderr
    off = dangan(env, "backup", "schedule", "--tenant", tenant.slug, "--off")
    assert "off (on-demand backups only)" in off.stdout
    back = dangan(env, "backup", "schedule", "--tenant", tenant.slug, "--default")
    assert "(the default)" in back.stdout
    bad = dangan(env, "backup", "schedule", "--tenant", tenant.slug, "--at", "25:00")
    assert bad.returncode == 2 and "hour must be 0-23" in bad.stdout + bad.stderr
