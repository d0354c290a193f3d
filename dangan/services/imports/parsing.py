"""Reading an import file into a header and numbered rows.

Line numbers are the ones the person sees in their spreadsheet: the header is line 1,
the first customer line 2 (a CSV record spanning lines inside quotes counts once).
CSV is UTF-8, with or without a byte-order mark, else GB18030 (what Excel on a Chinese
Windows saves); XLSX is read from its first sheet, streaming (openpyxl read-only).
Rows with no value at all are skipped but keep their numbers for the rest.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dangan.services.errors import BadUserInput

FORMATS = ("CSV", "XLSX")
XLSX_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class Sheet:
    header: list[str]
    rows: list[tuple[int, Sequence[Any]]]  # (line, cells), blank rows left out


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return data.decode("gb18030")
        except UnicodeDecodeError as exc:
            raise BadUserInput(
                "the CSV file is neither UTF-8 nor GB18030 text", field="contentBase64"
            ) from exc


def _blank(cells: Sequence[Any]) -> bool:
    return all(cell is None or (isinstance(cell, str) and not cell.strip()) for cell in cells)


def _sheet(records: Any) -> Sheet:
    header: list[str] | None = None
    rows: list[tuple[int, Sequence[Any]]] = []
    for line, cells in enumerate(records, start=1):
        if header is None:
            header = ["" if cell is None else str(cell).strip() for cell in cells]
            continue
        if not _blank(cells):
            rows.append((line, cells))
    if header is None or not any(header):
        raise BadUserInput("the file has no header line", field="contentBase64")
    return Sheet(header, rows)


def read_csv(data: bytes) -> Sheet:
    try:
        return _sheet(csv.reader(io.StringIO(_decode(data), newline="")))
    except csv.Error as exc:
        raise BadUserInput(f"the CSV file can't be read: {exc}", field="contentBase64") from exc


def read_xlsx(data: bytes) -> Sheet:
    from openpyxl import load_workbook  # only import jobs need it

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise BadUserInput(
            "the file is not a readable XLSX workbook", field="contentBase64"
        ) from exc
    try:
        sheet = book.worksheets[0]
        return _sheet(sheet.iter_rows(values_only=True))
    finally:
        book.close()


def read_sheet(format: str, data: bytes) -> Sheet:
    """The file's header and rows; BadUserInput if it can't be read as ``format``."""
    return read_xlsx(data) if format == "XLSX" else read_csv(data)
