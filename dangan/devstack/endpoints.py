"""Where the app finds its database, Redis and S3: settings first, embedded ports otherwise."""

from __future__ import annotations

from dataclasses import dataclass, field

from dangan.settings import Settings


@dataclass(frozen=True)
class Endpoints:
    """Where the app finds its database, Redis and S3 (embedded or external)."""

    database_url: str  # what the app connects with
    admin_database_url: str | None  # superuser URL of the embedded PG; None when external
    redis_url: str
    s3_endpoint: str  # "host:port", minio-client style
    s3_access_key: str
    s3_secret_key: str = field(repr=False)
    s3_secure: bool


def endpoints_for(s: Settings, pg: int | None, redis: int | None, s3: int | None) -> Endpoints:
    """The configured URLs, with the embedded servers' ports for those left unset."""
    admin = f"postgresql://postgres@127.0.0.1:{pg}/postgres"
    return Endpoints(
        database_url=s.database_url or f"postgresql://dangan@127.0.0.1:{pg}/dangan",
        admin_database_url=None if s.database_url else admin,
        redis_url=s.redis_url or f"redis://127.0.0.1:{redis}/0",
        s3_endpoint=s.s3_endpoint or f"127.0.0.1:{s3}",
        s3_access_key=s.s3_access_key,
        s3_secret_key=s.s3_secret_key,
        s3_secure=s.s3_secure if s.s3_endpoint else False,
    )
