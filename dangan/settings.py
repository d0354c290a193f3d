"""Every knob Dangan has, read once from the environment (``DANGAN_*``).

This module is the only reader of the environment. Unset URLs mean "use the embedded
stack under ``data_dir``" (see :mod:`dangan.devstack`); each URL replaces only its own
part of that stack.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET_KEY = "dangan-dev-secret-key-change-me-in-production-0123456789"
# The Cybersecurity Law (网络安全法, art. 21) wants network logs kept at least six months.
MIN_AUDIT_RETENTION_DAYS = 180


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DANGAN_", extra="ignore")

    env: Literal["dev", "test", "prod"] = "dev"
    data_dir: Path = Path(".dangan")

    database_url: str | None = None
    redis_url: str | None = None
    s3_endpoint: str | None = None
    s3_access_key: str = "dangan"
    s3_secret_key: str = "dangan-secret"
    s3_bucket: str = "dangan"
    s3_secure: bool = False

    # Default access policies (*.polar); a tenant may activate versions of its own.
    policy_dir: Path = Path(__file__).resolve().parent.parent / "policies"

    secret_key: str = DEV_SECRET_KEY
    token_ttl_seconds: int = 12 * 3600

    # Prefix of every Redis key (queue, counters, progress): deployments or test runs
    # sharing one Redis keep apart by giving each its own.
    redis_namespace: str = "dangan"

    @property
    def queue_name(self) -> str:
        return f"{self.redis_namespace}:queue"

    @property
    def alarm_queue_name(self) -> str:
        """Alarm jobs have a queue (and a worker) of their own, so a long import never
        delays an alert."""
        return f"{self.redis_namespace}:alarms"

    host: str = "127.0.0.1"
    port: int = 8000
    db_pool_size: int = 10

    # GraphQL document limits (OWASP GraphQL cheat sheet): rejected before execution.
    max_query_depth: int = 10
    max_aliases: int = 15
    max_tokens: int = 2000
    max_query_cost: int = 50_000
    max_page_size: int = 1000

    # Login throttling: failures allowed per e-mail (and per client address) per window.
    login_max_failures: int = 5
    login_window_seconds: int = 900

    # Attachments (contract scans, ID copies …): largest file, and the types accepted.
    attachment_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    attachment_types: list[str] = Field(
        default_factory=lambda: [
            "application/pdf",
            "image/jpeg",
            "image/png",
            "image/tiff",
            "image/webp",
        ]
    )
    # Customer imports and exports (arq jobs): the largest file sent inline, rows written
    # per transaction, the export size above which an approval is needed (a tenant may
    # set its own in archive_setting), and how long a download link works.
    import_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    import_batch_size: int = Field(default=500, ge=1)
    export_approval_threshold: int = Field(default=500, ge=0)
    archive_download_seconds: int = Field(default=300, ge=10)

    # Audit events of reads commit without waiting for the disk (PostgreSQL's WAL writer
    # flushes them together within a fraction of a second; only a database crash in that
    # window could lose one). True: every read's commit waits for its event to be on disk.
    audit_flush_reads: bool = False
    # Checkpoints of each tenant's audit head, in the bucket ``<s3_bucket>-audit`` (made
    # with object lock): kept locked this many days (default: the Cybersecurity Law's six
    # months of logs), in this object-lock mode (COMPLIANCE: not even the bucket's owner
    # can shorten it).
    audit_checkpoint_retention_days: int = Field(default=180, ge=1)
    audit_object_lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] = "GOVERNANCE"
    # Audit events older than this leave the database (daily), once a checkpoint written
    # more than this many days ago covers them; never fewer than six months.
    audit_retention_days: int = MIN_AUDIT_RETENTION_DAYS

    @field_validator("audit_retention_days")
    @classmethod
    def _at_least_six_months(cls, days: int) -> int:
        if days < MIN_AUDIT_RETENTION_DAYS:
            raise ValueError(
                f"DANGAN_AUDIT_RETENTION_DAYS must be at least {MIN_AUDIT_RETENTION_DAYS}"
                f" (six months of audit events, as the Cybersecurity Law requires); got {days}"
            )
        return days

    @property
    def audit_bucket(self) -> str:
        return f"{self.s3_bucket}-audit"

    # Access alarms (dangan.alarms): an API process asks for its tenant's evaluation at
    # most once per this many seconds, run at the end of that slot — alerts open about
    # this long after the request that set them off.
    alarm_delay_seconds: float = Field(default=1.0, gt=0, le=60)
    # The webhook of tenants that configure none (and the secret signing its deliveries).
    alarm_webhook_url: str | None = None
    alarm_webhook_secret: str | None = None
    # Delivery: tries in all, the wait before the second (doubling after), per-try timeout.
    alarm_webhook_max_tries: int = Field(default=6, ge=1, le=20)
    alarm_webhook_backoff_seconds: float = Field(default=10.0, ge=0)
    alarm_webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    # A tenant's own webhook URL may not reach private, loopback or link-local addresses
    # (the platform's network) unless this is true.
    alarm_webhook_allow_private: bool = False

    @model_validator(mode="after")
    def _webhook_needs_a_secret(self) -> Settings:
        if self.alarm_webhook_url and not self.alarm_webhook_secret:
            raise ValueError("DANGAN_ALARM_WEBHOOK_URL needs DANGAN_ALARM_WEBHOOK_SECRET")
        return self

    # Backups (dangan.backups), in the bucket ``<s3_bucket>-backups`` (made with object
    # lock). Each tenant's data key is kept wrapped under the master key: 32 bytes,
    # base64, with an id recorded in every manifest. Unset: a key derived from
    # DANGAN_SECRET_KEY (fine for a laptop; in production set one and keep it outside
    # the database and the bucket). Keys of earlier ids stay readable through
    # DANGAN_BACKUP_RETIRED_MASTER_KEYS, a JSON object {id: base64 key}.
    backup_master_key: str | None = None
    backup_master_key_id: str = "k1"
    backup_retired_master_keys: dict[str, str] = Field(default_factory=dict)
    # A finished backup's objects are locked (GOVERNANCE or COMPLIANCE) this many days at
    # least; the keep-policy lengthens the lock of the weekly and monthly ones.
    backup_object_lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] = "GOVERNANCE"
    backup_lock_days: int = Field(default=7, ge=1)
    # Keep-policy: the newest backup of each of the last N days, ISO weeks and months.
    backup_keep_daily: int = Field(default=7, ge=1)
    backup_keep_weekly: int = Field(default=4, ge=0)
    backup_keep_monthly: int = Field(default=12, ge=0)
    # When the nightly backups start (UTC), and how long a schema replaced by a restore
    # is kept (renamed) before it is dropped.
    backup_hour: int = Field(default=0, ge=0, le=23)
    backup_minute: int = Field(default=30, ge=0, le=59)
    restore_keep_days: int = Field(default=7, ge=0)
    # An optional second S3 endpoint that receives a copy of every finished backup.
    backup_replica_endpoint: str | None = None
    backup_replica_access_key: str | None = None
    backup_replica_secret_key: str | None = None
    backup_replica_bucket: str | None = None
    backup_replica_secure: bool = False
    # Backup jobs (dangan.workers.backups), on a queue and a worker of their own: how
    # many run at once per worker process, how long one may take (a run still "running"
    # with no sign of life for longer is shown as interrupted), and retries of transient
    # failures (database or S3 unreachable, another backup of the tenant running): tries
    # in all, the wait before the second (four times longer each time after), its cap.
    backup_concurrency: int = Field(default=2, ge=1, le=50)
    backup_timeout_seconds: int = Field(default=2 * 3600, ge=1)
    backup_max_tries: int = Field(default=5, ge=1, le=20)
    backup_retry_seconds: float = Field(default=5.0, ge=0)
    backup_retry_max_seconds: float = Field(default=600.0, ge=0)

    @property
    def backup_bucket(self) -> str:
        return f"{self.s3_bucket}-backups"

    @property
    def backup_queue_name(self) -> str:
        """Backups have a queue (and a worker) of their own: the nightly run of every
        tenant never delays imports or exports, and runs only so many at once."""
        return f"{self.redis_namespace}:backups"

    # Where `dangan demo` writes tokens and keys; tests point it elsewhere.
    demo_customers_per_tenant: int = Field(default=1000, ge=0)

    @property
    def graphiql_enabled(self) -> bool:
        return self.env == "dev"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
