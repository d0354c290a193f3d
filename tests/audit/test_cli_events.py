"""``dangan`` commands record what they did in the tenant's chain — as ``system`` (or the
member they act as), with the OS user and the command — and the chain still verifies.
The commands run as subprocesses of this checkout's code, against this run's stack."""

from __future__ import annotations

import getpass
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dangan.audit.checkpoints import open_checkpoint_store
from dangan.audit.verify import verify_tenant
from dangan.devstack import Endpoints
from dangan.services.people import Person, create_user
from dangan.settings import Settings
from dangan.storage import s3_client
from dangan.tenants import provisioning
from dangan.tenants.provisioning import create_tenant
from dangan.tenants.scope import TenantRef, raw_connection, run_in_tenant
from dangan.tenants.versions import TENANT_MIGRATIONS
from tests.audit.aged import aged_chain
from tests.audit.events import as_text, events_of
from tests.support.tenants import drop_tenant
from tests.test_cli import cli_env

SLUG = "audit_cli"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Cli:
    ref: TenantRef
    admin: Person
    env: dict[str, str]
    settings: Settings
    endpoints: Endpoints

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-c", "from dangan.cli import app; app(prog_name='dangan')", *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert "Traceback" not in done.stderr, done.stderr
        return done

    async def events(self, action: str, tenant: TenantRef | None = None) -> list[dict[str, Any]]:
        """The events of ``action`` in the tenant, oldest first."""
        ref = tenant or self.ref
        rows = await run_in_tenant(
            ref,
            lambda: raw_connection().fetch(
                "SELECT request_id FROM audit_event WHERE $1 = ANY(actions) ORDER BY seq", action
            ),
        )
        return [event for row in rows for event in await events_of(ref, row["request_id"])]

    async def last(self, action: str, tenant: TenantRef | None = None) -> dict[str, Any]:
        events = await self.events(action, tenant)
        assert events, f"no {action} event"
        return events[-1]

    async def verified(self, tenant: TenantRef | None = None) -> bool:
        store = await open_checkpoint_store(s3_client(self.endpoints), self.settings)
        report = await verify_tenant(tenant or self.ref, store)
        return report.ok


def _by_operator(event: dict[str, Any], command: str) -> None:
    """The event of a command: origin cli, who ran it on this machine, which command."""
    assert event["operation_type"] == "cli"
    assert event["variables"]["osUser"] == getpass.getuser()
    assert event["variables"]["command"] == command


@pytest.fixture(scope="module")
async def cli(
    world: Any, settings: Settings, endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Cli]:
    await drop_tenant(SLUG)
    ref = await create_tenant(SLUG, "Audit CLI Ltd")
    admin = await create_user(ref, "admin@audit-cli.test", ["admin"])
    env = cli_env(settings, endpoints, tmp_path_factory.mktemp("auditcli") / "data")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    yield Cli(ref, admin, env, settings, endpoints)
    await drop_tenant(SLUG)


async def test_user_creation_and_a_role_change_are_recorded(cli: Cli) -> None:
    email = "new@audit-cli.test"
    made = cli.run("user", "create", "--tenant", SLUG, "--email", email, "--role", "sales")
    assert made.returncode == 0, made.stderr

    created = await cli.last("user.create")
    _by_operator(created, "dangan user create")
    assert (created["actor_kind"], created["outcome"]) == ("system", "ok")
    details = created["variables"]
    assert (details["account"], details["roles"], details["passwordSet"]) == (
        email,
        ["sales"],
        False,
    )

    changed = cli.run(
        "user", "create", "--tenant", SLUG, "--email", email, "--role", "manager",
        "--password", "s3cret-word",
    )  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    updated = await cli.last("user.update")
    assert updated["variables"]["rolesBefore"] == ["sales"]
    assert updated["variables"]["roles"] == ["manager"]
    assert updated["variables"]["passwordSet"] is True
    assert "s3cret-word" not in as_text(updated)
    assert await cli.verified()


async def test_token_creation_is_recorded_without_the_token(cli: Cli) -> None:
    issued = cli.run("token", "create", "--tenant", SLUG, "--email", "admin@audit-cli.test")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()

    event = await cli.last("token.create")
    _by_operator(event, "dangan token create")
    assert event["variables"]["identity"] == cli.admin.identity_id
    assert token not in as_text(event) and event["outcome"] == "ok"

    refused = cli.run("token", "create", "--tenant", SLUG, "--email", "admin@alpha.test")
    assert refused.returncode != 0 and refused.stdout == ""
    failed = await cli.last("token.create")
    assert (failed["outcome"], failed["error_codes"]) == ("error", ["FORBIDDEN"])
    assert failed["variables"]["account"] == "admin@alpha.test"
    assert await cli.verified()


async def test_an_app_key_created_and_revoked_is_recorded_without_the_key(cli: Cli) -> None:
    created = cli.run(
        "app", "create", "--tenant", SLUG, "--name", "crm", "--scopes", "customers:read"
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    revoked = cli.run("app", "revoke", "--tenant", SLUG, "--name", "crm")
    assert revoked.returncode == 0, revoked.stderr

    made, gone = await cli.last("app.create"), await cli.last("app.revoke")
    _by_operator(made, "dangan app create")
    _by_operator(gone, "dangan app revoke")
    assert made["variables"]["appName"] == gone["variables"]["appName"] == "crm"
    assert made["variables"]["app"] == gone["variables"]["app"]
    assert made["variables"]["scopes"] == ["customers:read"]
    assert key not in as_text(made) and key not in as_text(gone)
    assert gone["seq"] > made["seq"]
    assert await cli.verified()


async def test_a_policy_proposed_and_activated_is_recorded_as_the_administrator(
    cli: Cli, settings: Settings
) -> None:
    admin = ("--tenant", SLUG, "--email", "admin@audit-cli.test")
    proposed = cli.run("policy", "propose", str(settings.policy_dir), *admin, "--comment", "审计")
    assert proposed.returncode == 0, proposed.stderr
    version = re.search(r"proposed version (\d+)", proposed.stdout)
    assert version is not None
    activated = cli.run("policy", "activate", version[1], *admin)
    assert activated.returncode == 0, activated.stderr

    for action in ("policy.propose", "policy.activate"):
        event = await cli.last(action)
        _by_operator(event, f"dangan {action.replace('.', ' ')}")
        assert (event["actor_kind"], event["actor_id"]) == ("user", cli.admin.identity_id)
        assert event["actor_roles"] == ["admin"]
        assert event["variables"]["version"] == int(version[1])
    assert await cli.verified()


async def test_rating_run_and_checkpoint_commands_are_recorded(cli: Cli) -> None:
    rated = cli.run("rating", "run", "--tenant", SLUG)
    assert rated.returncode == 0, rated.stderr
    event = await cli.last("rating.run")
    _by_operator(event, "dangan rating run")
    assert (event["actor_kind"], event["variables"]["trigger"]) == ("system", "manual")

    written = cli.run("audit", "checkpoint", "--tenant", SLUG)
    assert written.returncode == 0, written.stderr
    announced = await cli.last("audit.checkpoint")
    _by_operator(announced, "dangan audit checkpoint")
    assert f"{SLUG}: checkpoint at event {announced['seq']}" in written.stdout
    assert await cli.verified()


async def test_a_command_import_is_one_event_of_the_job_as_the_member(
    cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "customers.csv"
    path.write_text("kind,name\nENTERPRISE,命令行审计1\nENTERPRISE,命令行审计2\n", encoding="utf-8")

    done = cli.run(
        "customers", "import", str(path), "--tenant", SLUG, "--email", "admin@audit-cli.test",
        "--mode", "IMPORT_VALID_ROWS",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    job = re.search(r"import ([0-9a-f-]{36}):", done.stdout)
    assert job is not None, done.stdout

    (event,) = await events_of(cli.ref, job[1])
    _by_operator(event, "dangan customers import")
    assert event["actions"] == ["import.run"]
    assert (event["actor_kind"], event["actor_id"]) == ("user", cli.admin.identity_id)
    assert (event["variables"]["rows"], event["variables"]["written"]) == (2, 2)
    assert await cli.verified()


async def test_tenant_migrate_records_what_it_applied(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    slug = "audit_cli_migrate"
    await drop_tenant(slug)
    with monkeypatch.context() as patch:  # a tenant one version behind
        patch.setattr(provisioning, "TENANT_MIGRATIONS", TENANT_MIGRATIONS[:-1])
        behind = await create_tenant(slug, "Behind Ltd")
    try:
        assert behind.schema_version == TENANT_MIGRATIONS[-2].version
        done = cli.run("tenant", "migrate", slug)
        assert done.returncode == 0, done.stderr
        assert "done: 1 migration(s) applied" in done.stdout
        event = await cli.last("tenant.migrate", behind)
        _by_operator(event, "dangan tenant migrate")
        assert event["actor_kind"] == "system"
        assert event["variables"]["fromVersion"] == TENANT_MIGRATIONS[-2].version
        assert event["variables"]["toVersion"] == TENANT_MIGRATIONS[-1].version
        assert event["variables"]["applied"] == 1
        again = cli.run("tenant", "migrate", slug)
        assert again.returncode == 0 and "done: 0 migration(s)" in again.stdout
        assert len(await cli.events("tenant.migrate", behind)) == 1  # nothing applied: no event
        assert await cli.verified(behind)
    finally:
        await drop_tenant(slug)


async def test_audit_prune_from_the_command_line(cli: Cli) -> None:
    slug = "audit_cli_prune"
    await drop_tenant(slug)
    tenant = await create_tenant(slug, "Prune Ltd")
    try:
        store = await open_checkpoint_store(s3_client(cli.endpoints), cli.settings)
        await aged_chain(tenant, store)

        dry = cli.run("audit", "prune", "--tenant", slug, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert f"{slug}: would prune 8 event(s) (1–8); the chain starts after event 8" in dry.stdout
        assert await cli.events("audit.prune", tenant) == []

        done = cli.run("audit", "prune", "--tenant", slug)
        assert done.returncode == 0, done.stderr
        assert f"{slug}: pruned 8 event(s) (1–8)" in done.stdout
        assert "old checkpoints removed: 1" in done.stdout
        event = await cli.last("audit.prune", tenant)
        _by_operator(event, "dangan audit prune")
        assert (event["variables"]["from"], event["variables"]["through"]) == (1, 8)

        verified = cli.run("audit", "verify", "--tenant", slug)
        assert verified.returncode == 0, verified.stdout
        assert "OK: 7 event(s) from event 9 (events 1–8 pruned" in verified.stdout
        assert "2 checkpoint(s) read from S3" in verified.stdout  # the anchor's and 12
        thorough = cli.run("audit", "verify", "--tenant", slug, "--thorough")
        assert thorough.returncode == 0, thorough.stdout
        assert "2 checkpoint(s) read from S3 (all)" in thorough.stdout
    finally:
        await drop_tenant(slug)


async def test_a_tenant_may_keep_its_events_longer_never_shorter(cli: Cli) -> None:
    shorter = cli.run("audit", "retention", "--tenant", SLUG, "--days", "90")
    assert shorter.returncode == 2
    assert "--days must be at least DANGAN_AUDIT_RETENTION_DAYS (180)" in shorter.stderr

    longer = cli.run("audit", "retention", "--tenant", SLUG, "--days", "400")
    assert longer.returncode == 0, longer.stderr
    assert f"{SLUG}: audit events kept 400 days (its own)" in longer.stdout
    event = await cli.last("audit.retention")
    _by_operator(event, "dangan audit retention")
    assert event["variables"]["retentionDays"] == 400

    back = cli.run("audit", "retention", "--tenant", SLUG, "--default")
    assert f"{SLUG}: audit events kept 180 days (the deployment's)" in back.stdout
    assert await cli.verified()


def test_a_retention_below_six_months_stops_every_command(cli: Cli) -> None:
    done = cli.run("tenant", "list", env={"DANGAN_AUDIT_RETENTION_DAYS": "90"})
    assert done.returncode == 2 and done.stdout == ""
    assert "configuration error: DANGAN_AUDIT_RETENTION_DAYS must be at least 180" in done.stderr
