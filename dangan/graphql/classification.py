"""Classification dictionaries and the regions list: ``classificationValues``,
``regions``, and the administrators' ``add/rename/retire/restoreClassificationValue``."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from dangan.services import classification
from dangan.services.cities import CITIES
from dangan.services.regions import REGIONS


@strawberry.enum(description="Which classification: kind and tier are fixed by the regulations")
class ClassificationDimension(Enum):
    KIND = "kind"
    TIER = "tier"
    CATEGORY = "category"
    INDUSTRY = "industry"
    BUILDING = "building"


@strawberry.type(description="One value of a classification dictionary")
class ClassificationValue:
    dimension: ClassificationDimension
    code: str = strawberry.field(description="What customer records hold, e.g. RETAIL")
    label: str
    builtin: bool
    position: int
    retired: bool = strawberry.field(description="No longer settable; kept on old records")
    retired_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> ClassificationValue:
        return cls(
            dimension=ClassificationDimension(row["dimension"]),
            code=row["code"],
            label=row["label"],
            builtin=row["builtin"],
            position=row["position"],
            retired=row["retired_at"] is not None,
            retired_at=row["retired_at"],
        )


@strawberry.type(description="A province-level region (GB/T 2260) and its cities")
class Region:
    name: str
    code: str
    cities: list[str]


async def classification_values(
    info: Info, dimension: ClassificationDimension, include_retired: bool = False
) -> list[ClassificationValue]:
    """The values of one dictionary, in order; retired ones only if asked for."""
    rows = await classification.list_values(
        info.context.require_caller(), dimension.value, include_retired
    )
    return [ClassificationValue.from_row(row) for row in rows]


def regions(info: Info) -> list[Region]:
    """Province-level regions with their prefecture-level cities (for region and city)."""
    info.context.require_caller()
    return [
        Region(name=name, code=code, cities=list(CITIES[name]))
        for name, code in sorted(REGIONS.items(), key=lambda item: item[1])
    ]


async def add_classification_value(
    info: Info, dimension: ClassificationDimension, code: str, label: str
) -> ClassificationValue:
    """A new category, industry or building value (administrators)."""
    row = await classification.add_value(
        info.context.require_caller(), dimension.value, code, label
    )
    return ClassificationValue.from_row(row)


async def rename_classification_value(
    info: Info, dimension: ClassificationDimension, code: str, label: str
) -> ClassificationValue:
    """A new label; records keep the code (administrators)."""
    row = await classification.rename_value(
        info.context.require_caller(), dimension.value, code, label
    )
    return ClassificationValue.from_row(row)


async def retire_classification_value(
    info: Info, dimension: ClassificationDimension, code: str
) -> ClassificationValue:
    """No longer settable; records that have it keep it (administrators)."""
    row = await classification.retire_value(info.context.require_caller(), dimension.value, code)
    return ClassificationValue.from_row(row)


async def restore_classification_value(
    info: Info, dimension: ClassificationDimension, code: str
) -> ClassificationValue:
    """Settable again (administrators)."""
    row = await classification.restore_value(info.context.require_caller(), dimension.value, code)
    return ClassificationValue.from_row(row)
