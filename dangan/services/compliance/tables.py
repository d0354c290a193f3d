"""The report's figures as plain tables: what the CSV and the printable page both show,
so the two always carry the same numbers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

Cell = str | int | datetime | None


@dataclass(frozen=True)
class Column:
    key: str
    en: str
    zh: str

    @property
    def heading(self) -> str:
        return f"{self.en} {self.zh}"


@dataclass(frozen=True)
class Table:
    key: str  # stable: the HTML table's id, the CSV section's tag
    en: str
    zh: str
    columns: tuple[Column, ...]
    rows: list[list[Cell]] = field(default_factory=list)
    note: str | None = None  # shown under the title (e.g. what is not available yet)

    @property
    def title(self) -> str:
        return f"{self.en} {self.zh}"


def text(value: Cell) -> str:
    """A cell as text: times in ISO 8601 to the second, nothing as empty."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)
