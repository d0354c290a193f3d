"""The ``dangan`` command (see DESIGN.md, Commands)."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Annotated, Any, TypeVar

import typer
import uvicorn
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from dangan import database
from dangan.audit.actions import ActionLog
from dangan.cli_alarms import alarms_app
from dangan.cli_audit import audit_app
from dangan.cli_backup import backup_app
from dangan.cli_config import check_configuration
from dangan.cli_customers import customers_app
from dangan.cli_policy import policy_app
from dangan.cli_purge import purge_app
from dangan.cli_rating import rating_app
from dangan.cli_records import attempt, command_log
from dangan.devstack import DevStack, Endpoints, stack_endpoints
from dangan.services.api_keys import create_app as do_create_app
from dangan.services.api_keys import revoke_app
from dangan.services.authentication import member_identity_id
from dangan.services.errors import DanganError, NotFound
from dangan.services.people import create_user
from dangan.services.tokens import issue_token
from dangan.settings import Settings, get_settings
from dangan.tenants.migrations import migrate_platform, migrate_tenant
from dangan.tenants.provisioning import create_tenant
from dangan.tenants.registry import find_tenant, list_tenants
from dangan.tenants.scope import TenantRef
from dangan.tenants.versions import LATEST_TENANT_VERSION

T = TypeVar("T")
app = typer.Typer(
    help="Dangan (档案): multi-tenant customer archives.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
tenant_app = typer.Typer(help="Tenants (subsidiaries): create, list, migrate.")
user_app = typer.Typer(help="People and their membership of a tenant.")
token_app = typer.Typer(help="Bearer tokens for people.")
apps_app = typer.Typer(help="Partner apps and their API keys.")
app.callback()(check_configuration)
app.add_typer(tenant_app, name="tenant")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(apps_app, name="app")
app.add_typer(policy_app, name="policy")
app.add_typer(rating_app, name="rating")
app.add_typer(customers_app, name="customers")
app.add_typer(audit_app, name="audit")
app.add_typer(alarms_app, name="alarms")
app.add_typer(backup_app, name="backup")
app.add_typer(purge_app, name="purge")
console = Console()
err = Console(stderr=True)


def _run_with_db(work: Callable[[Settings, Endpoints], Awaitable[T]]) -> T:
    """Run ``work`` against the configured (or a running / temporary embedded) stack."""
    settings = get_settings()

    async def main(endpoints: Endpoints) -> T:
        await database.connect(endpoints.database_url, pool_size=2)
        try:
            await migrate_platform()
            return await work(settings, endpoints)
        finally:
            await database.disconnect()

    try:
        with stack_endpoints(settings) as endpoints:
            return asyncio.run(main(endpoints))
    except DanganError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from exc


async def _tenant(slug: str) -> TenantRef:
    tenant = await find_tenant(slug)
    if tenant is None:
        raise NotFound(f"no tenant named {slug!r} (see `dangan tenant list`)")
    return tenant


@tenant_app.command("create")
def tenant_create(slug: str, name: Annotated[str, typer.Option(help="Display name")]) -> None:
    """Create a tenant: registry row, PostgreSQL role and schema, all migrations."""

    async def work(settings: Settings, endpoints: Endpoints) -> TenantRef:
        return await create_tenant(slug, name)

    tenant = _run_with_db(work)
    console.print(
        f"created tenant {tenant.slug} (schema {tenant.schema_name}, "
        f"version {tenant.schema_version})"
    )


@tenant_app.command("list")
def tenant_list() -> None:
    """List tenants with their schema version and status."""

    async def work(settings: Settings, endpoints: Endpoints) -> list[TenantRef]:
        return await list_tenants()

    table = Table("slug", "name", "schema", "version", "status")
    for t in _run_with_db(work):
        table.add_row(t.slug, t.name, t.schema_name, str(t.schema_version), t.status)
    console.print(table)


@tenant_app.command("migrate")
def tenant_migrate(
    all_: Annotated[bool, typer.Option("--all", help="Migrate every tenant")] = False,
    slug: Annotated[str | None, typer.Argument(help="One tenant")] = None,
) -> None:
    """Apply pending migrations; resumable, with a progress bar."""
    if not all_ and not slug:
        raise typer.BadParameter("give a tenant slug or --all")

    async def work(settings: Settings, endpoints: Endpoints) -> int:
        tenants = await list_tenants() if all_ else [await _tenant(slug or "")]
        log = command_log(settings, "tenant migrate")
        applied = 0
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("migrating tenants", total=len(tenants))
            for tenant in tenants:
                bar.update(task, description=f"migrating {tenant.slug}")
                applied += await _migrate(tenant, log)
                bar.advance(task)
        return applied

    applied = _run_with_db(work)
    console.print(f"done: {applied} migration(s) applied")


async def _migrate(tenant: TenantRef, log: ActionLog) -> int:
    """Migrate one tenant; what changed its schema is recorded in its audit trail
    (``tenant.migrate``; an up-to-date tenant gets no event)."""
    details = {"fromVersion": tenant.schema_version, "toVersion": LATEST_TENANT_VERSION}
    count = await attempt(
        tenant, log, "tenant.migrate", lambda: migrate_tenant(tenant), details=details
    )
    if count:
        await log.record_apart(tenant, "tenant.migrate", details={**details, "applied": count})
    return count


@user_app.command("create")
def user_create(
    tenant: Annotated[str, typer.Option(help="Tenant slug")],
    email: Annotated[str, typer.Option()],
    role: Annotated[list[str], typer.Option(help="admin, manager, sales or auditor")],
    department: Annotated[str | None, typer.Option(help="Path such as 'Sales/East'")] = None,
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
    password: Annotated[str | None, typer.Option(help="Enables the login mutation")] = None,
) -> None:
    """Create (or update) a person and make them a member of a tenant."""

    async def work(settings: Settings, endpoints: Endpoints) -> Any:
        ref = await _tenant(tenant)
        log = command_log(settings, "user create")

        async def create() -> Any:
            return await create_user(
                ref,
                email,
                role,
                display_name=name,
                department=department,
                password=password,
                record=log.recorder(),
            )

        return await attempt(ref, log, "user.create", create, details={"account": email})

    person = _run_with_db(work)
    console.print(
        f"user {person.email} (id {person.identity_id}) in {tenant} as {', '.join(person.roles)}"
    )


@token_app.command("create")
def token_create(
    tenant: Annotated[str, typer.Option(help="Tenant slug")],
    email: Annotated[str, typer.Option()],
    ttl: Annotated[int | None, typer.Option(help="Lifetime in seconds")] = None,
) -> None:
    """Print a bearer token for a member of the tenant."""

    async def work(settings: Settings, endpoints: Endpoints) -> str:
        t = await _tenant(tenant)
        log = command_log(settings, "token create")

        async def issue() -> str:
            identity_id = await member_identity_id(t, email)
            seconds = ttl or settings.token_ttl_seconds
            issued = issue_token(
                identity_id, t.slug, secret=settings.secret_key, ttl_seconds=seconds
            )
            details = {
                "identity": identity_id,
                "account": email,
                "ttlSeconds": seconds,
                "expiresAt": issued.expires_at.isoformat(),
            }
            await log.record_apart(t, "token.create", details=details)
            return issued.token

        return await attempt(t, log, "token.create", issue, details={"account": email})

    print(_run_with_db(work))


@apps_app.command("create")
def app_create(
    tenant: Annotated[str, typer.Option(help="Tenant slug")],
    name: Annotated[str, typer.Option()],
    scopes: Annotated[str, typer.Option(help="Comma-separated: customers:read,customers:write")],
) -> None:
    """Create a partner app and print its API key (shown only this once)."""

    async def work(settings: Settings, endpoints: Endpoints) -> Any:
        ref = await _tenant(tenant)
        log = command_log(settings, "app create")

        async def create() -> Any:
            return await do_create_app(ref, name, scopes.split(","), record=log.recorder())

        return await attempt(ref, log, "app.create", create, details={"appName": name})

    created = _run_with_db(work)
    err.print(
        f"app {created.name} with scopes {', '.join(created.scopes)}; "
        "store this key now, it is not shown again:"
    )
    print(created.key)


@apps_app.command("revoke")
def app_revoke(
    tenant: Annotated[str, typer.Option(help="Tenant slug")],
    name: Annotated[str, typer.Option()],
) -> None:
    """Revoke a partner app's key at once."""

    async def work(settings: Settings, endpoints: Endpoints) -> None:
        ref = await _tenant(tenant)
        log = command_log(settings, "app revoke")

        async def revoke() -> None:
            await revoke_app(ref, name, record=log.recorder())

        await attempt(ref, log, "app.revoke", revoke, details={"appName": name})

    _run_with_db(work)
    console.print(f"revoked {name}")


@app.command("demo")
def demo() -> None:
    """Seed the demo tenants and write <data dir>/demo-credentials.json."""
    from dangan.demo.seed import seed_demo, write_credentials

    async def work(settings: Settings, endpoints: Endpoints) -> Any:
        base = f"http://{settings.host}:{settings.port}"
        return await seed_demo(settings, base, progress=console.print)

    settings = get_settings()
    document = _run_with_db(work)
    path = settings.data_dir / "demo-credentials.json"
    write_credentials(path, document)
    console.print(f"credentials written to {path}")


class _Server(uvicorn.Server):
    """uvicorn, minus re-raising the stop signal once it has shut down.

    uvicorn re-raises SIGTERM after a graceful shutdown; its default action then kills
    the process on the spot, so nothing after ``serve()`` runs: the worker is not closed
    and the embedded stack is not stopped (its servers die by PR_SET_PDEATHSIG, but
    ``stack.json`` stays behind as after ``kill -9``). Here the signal has done its job
    when the server is down, and the process exits normally after cleaning up.
    """

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def _serve_config(
    settings: Settings, endpoints: Endpoints, *, own_database: bool = True
) -> uvicorn.Config:
    from dangan.app import create_app

    return uvicorn.Config(
        create_app(settings, endpoints, own_database=own_database),
        host=settings.host,
        port=settings.port,
        log_level="info",
        lifespan="on",
    )


@app.command("serve")
def serve() -> None:
    """Run the API (uvicorn)."""
    settings = get_settings()
    with stack_endpoints(settings) as endpoints:
        _Server(_serve_config(settings, endpoints)).run()


@app.command("worker")
def worker() -> None:
    """Run the arq worker."""
    from dangan.logs import configure_logging
    from dangan.workers.settings import run_worker

    settings = get_settings()
    configure_logging(settings)  # else arq's log (jobs run, failed, retried) goes nowhere
    with stack_endpoints(settings) as endpoints:
        _run_until_signal(run_worker(settings, endpoints))


def _run_until_signal(main: Awaitable[None]) -> None:
    async def runner() -> None:
        task = asyncio.ensure_future(main)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with suppress(asyncio.CancelledError):
            await task

    asyncio.run(runner())


@app.command("dev")
def dev(
    demo_data: Annotated[bool, typer.Option("--demo", help="Seed the demo first")] = False,
) -> None:
    """Embedded PostgreSQL + Redis + S3, migrations, (demo,) API and worker in one tree."""
    from dangan.demo.seed import seed_demo, write_credentials
    from dangan.workers.settings import run_worker

    settings = get_settings()
    with DevStack(settings) as endpoints:

        async def main() -> None:
            # One pool for the API and the worker: Tortoise keeps one context per process,
            # so a second Tortoise.init (each of them connecting on its own) would close
            # the other's pool, racing with its start-up.
            await database.connect(endpoints.database_url, pool_size=settings.db_pool_size)
            try:
                await migrate_platform()
                for tenant in await list_tenants():
                    await migrate_tenant(tenant)
                if demo_data:
                    base = f"http://{settings.host}:{settings.port}"
                    document = await seed_demo(settings, base, progress=console.print)
                    write_credentials(settings.data_dir / "demo-credentials.json", document)
                server = _Server(_serve_config(settings, endpoints, own_database=False))
                worker_task = asyncio.create_task(
                    run_worker(settings, endpoints, connect_database=False)
                )
                url = f"http://{settings.host}:{settings.port}"
                console.print(f"[bold]Dangan is up.[/bold] GraphiQL: {url}/t/east/graphql")
                if demo_data:
                    path = settings.data_dir / "demo-credentials.json"
                    console.print(f"Demo credentials: {path}")
                try:
                    await server.serve()
                finally:
                    worker_task.cancel()
                    with suppress(asyncio.CancelledError):
                        await worker_task
            finally:
                await database.disconnect()

        asyncio.run(main())
