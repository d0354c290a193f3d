"""Enumerations of the customer archive, as the API names them."""

from __future__ import annotations

from enum import Enum

import strawberry


@strawberry.enum(description="个人客户 / 企业客户")
class CustomerKind(Enum):
    INDIVIDUAL = "INDIVIDUAL"
    ENTERPRISE = "ENTERPRISE"
    POTENTIAL = "POTENTIAL"
    PARTNER = "PARTNER"


@strawberry.enum(description="重点客户 / 普通客户 / 潜在客户")
class CustomerTier(Enum):
    KEY = "KEY"
    ORDINARY = "ORDINARY"
    POTENTIAL = "POTENTIAL"


@strawberry.enum(description="Size of an enterprise (微型 / 小型 / 中型 / 大型)")
class CustomerScale(Enum):
    MICRO = "MICRO"
    SMALL = "SMALL"
    MEDIUM = "MEDIUM"
    LARGE = "LARGE"


@strawberry.enum(description="竞争态势: how likely a competitor is to take the customer")
class CompetitionRisk(Enum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"


@strawberry.enum(description="Lifecycle: ACTIVE, INVALID (无效), EXPIRED (过期), MERGED")
class CustomerStatus(Enum):
    ACTIVE = "ACTIVE"
    INVALID = "INVALID"
    EXPIRED = "EXPIRED"
    MERGED = "MERGED"


@strawberry.enum
class SortDirection(Enum):
    ASC = "ASC"
    DESC = "DESC"


# GraphQL field name → column it needs (owner and department need their id column).
