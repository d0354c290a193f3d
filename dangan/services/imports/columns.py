"""The columns of an import file: API field names, or the Chinese titles people put in
their spreadsheets, and how a cell becomes a value ``check_customer_values`` accepts.

Cells are text in a CSV and text, numbers or dates in a workbook; an empty cell means
"not given". Choices may be written as the API spells them (``INDIVIDUAL``) or in
Chinese (``个人客户``); tags are separated by ``;`` (or ``；``); booleans are
true/false, yes/no, 1/0 or 是/否.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from dangan.services.customers.inputs import api_name
from dangan.services.customers.writes import WRITABLE
from dangan.services.errors import BadUserInput

# API field name → column, for every column an import may set.
API_COLUMNS: dict[str, str] = {api_name(column): column for column in WRITABLE}

# Chinese column titles (one mapping for the whole product) → API field name.
CHINESE_TITLES: dict[str, str] = {
    "客户类型": "kind",
    "客户名称": "name",
    "手机号": "phone",
    "电话": "phone",
    "电子邮箱": "email",
    "邮箱": "email",
    "身份证号": "idNumber",
    "统一社会信用代码": "uscc",
    "地址": "address",
    "地区": "region",
    "省份": "region",
    "客户等级": "tier",
    "负责人ID": "ownerId",
    "部门ID": "departmentId",
    "微信": "wechat",
    "生日": "birthday",
    "性别": "gender",
    "信用等级": "creditRating",
    "支付能力": "paymentCapacity",
    "年营业额": "annualRevenue",
    "备注": "remarks",
    "标签": "tags",
    "同意共享": "consentsToSharing",
}

_VALUE_ALIASES: dict[str, dict[str, str]] = {
    "kind": {
        "个人": "INDIVIDUAL",
        "个人客户": "INDIVIDUAL",
        "企业": "ENTERPRISE",
        "企业客户": "ENTERPRISE",
    },
    "tier": {"重点客户": "KEY", "普通客户": "ORDINARY", "潜在客户": "POTENTIAL"},
    "gender": {"男": "MALE", "女": "FEMALE"},
}
_TRUE = {"true", "yes", "1", "是", "y"}
_FALSE = {"false", "no", "0", "否", "n"}
_INTEGERS = frozenset({"owner_id", "department_id"})


def field_for_title(title: str) -> str | None:
    """The API field name a header cell means, or None if it means nothing we know."""
    title = title.strip()
    if title in API_COLUMNS:
        return title
    return CHINESE_TITLES.get(title)


def _text(cell: Any) -> str:
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()


def cell_value(column: str, cell: Any) -> Any:
    """The value of one cell for ``column``; None for an empty cell. Raises BadUserInput
    (naming the field) for a cell that can't be that kind of value at all."""
    if cell is None or (isinstance(cell, str) and not cell.strip()):
        return None
    name = api_name(column)
    if column == "birthday" and isinstance(cell, datetime | date):
        return cell.date() if isinstance(cell, datetime) else cell
    text = _text(cell)
    if column in _VALUE_ALIASES:
        return _VALUE_ALIASES[column].get(text, text.upper())
    if column in _INTEGERS:
        if not text.isdigit() or len(text) > 9:
            raise BadUserInput(f"{name} must be a whole number", field=name)
        return int(text)
    if column == "consents_to_sharing":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise BadUserInput(f"{name} must be true or false", field=name)
    if column == "tags":
        return [tag for tag in text.replace("；", ";").split(";") if tag.strip()]
    if column == "birthday":
        return text[:10] if len(text) > 10 and text[10] in " T" else text
    return text
