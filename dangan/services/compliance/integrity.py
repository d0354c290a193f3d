"""Can the trail be trusted: the audit chain verified now, against its S3 checkpoints."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dangan.audit.checkpoints import CheckpointStore
from dangan.audit.verify import verify_open_tenant
from dangan.services.compliance.tables import Column, Table


@dataclass(frozen=True)
class ChainSection:
    ok: bool
    events_verified: int  # sound events, in order, before the first broken one
    head_seq: int  # events the head counts
    broken_seq: int | None  # the first broken event
    problem: str | None  # missing | edited | unlinked | inserted | head | checkpoint | s3
    message: str | None
    checkpoints: int  # checkpoints read from S3 and checked (as by dangan audit verify)
    last_checkpoint_seq: int | None
    verified_at: datetime

    def tables(self) -> list[Table]:
        columns = (Column("figure", "figure", "项目"), Column("value", "value", "结果"))
        result = "OK 完整" if self.ok else "BROKEN 已损坏"
        rows: list[list[Any]] = [
            ["result 结果", result],
            ["events verified 已核验事件", self.events_verified],
            ["events counted by the head 链头事件数", self.head_seq],
            ["first broken event 首个损坏事件", self.broken_seq],
            ["problem 问题", self.problem],
            ["details 说明", self.message],
            ["checkpoints checked 已核对检查点", self.checkpoints],
            ["last checkpoint 最新检查点", self.last_checkpoint_seq],
            ["verified at 核验时间", self.verified_at],
        ]
        return [Table("audit_chain", "Audit chain verification", "审计链核验", columns, rows)]


async def chain_section(checkpoints: CheckpointStore) -> ChainSection:
    """Verify the tenant's chain now (inside the open tenant transaction), from its
    anchor, against its checkpoints in S3, as ``dangan audit verify`` does."""
    report = await verify_open_tenant(checkpoints)
    broken = report.broken
    return ChainSection(
        ok=report.ok,
        events_verified=report.events,
        head_seq=report.head_seq,
        broken_seq=broken.seq if broken else None,
        problem=broken.problem if broken else None,
        message=broken.message if broken else None,
        checkpoints=report.checkpoints_checked,
        last_checkpoint_seq=report.newest_checkpoint,
        verified_at=datetime.now(UTC),
    )
