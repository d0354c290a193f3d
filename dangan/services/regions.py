"""Province-level regions of China by name (GB/T 2260 two-digit codes)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from dangan.services.identifiers import PROVINCE_CODES

REGIONS: Final[Mapping[str, str]] = MappingProxyType(
    {name: code for code, name in PROVINCE_CODES.items()}
)
