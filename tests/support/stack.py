"""The real stack for a test run: embedded, or the DANGAN_* servers with a fresh database.

With DANGAN_DATABASE_URL set, the run creates its own database on that server and drops
it (and the tenant roles it made, which are cluster-wide) at the end, so runs never see
each other's data. Redis keys and the S3 bucket get a per-run namespace.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dangan.devstack import DevStack, Endpoints
from dangan.settings import Settings


def test_settings(data_dir: Path, run_id: str) -> Settings:
    return Settings(
        env="test",
        data_dir=data_dir,
        redis_namespace=f"dangan-test-{run_id}",
        s3_bucket=f"dangan-test-{run_id}",
        secret_key="test-secret-key-" + run_id * 4,
        login_max_failures=3,
        demo_customers_per_tenant=40,
    )


@contextmanager
def running_stack() -> Iterator[tuple[Settings, Endpoints]]:
    """Start what the environment does not provide; yields settings and endpoints."""
    run_id = secrets.token_hex(4)
    with tempfile.TemporaryDirectory(prefix="dangan-test-") as tmp:
        os.chmod(tmp, 0o755)  # the embedded PostgreSQL runs as an unprivileged user
        settings = test_settings(Path(tmp) / "data", run_id)
        with DevStack(settings) as endpoints:
            yield settings, endpoints


def with_database_url(endpoints: Endpoints, url: str) -> Endpoints:
    return dataclasses.replace(endpoints, database_url=url)
