"""Masked forms (脱敏) of customer values, computed in SQL so that full values never leave
the database for a caller who may only see them masked.

Each rule turns a column expression into the masked text. A field whose spec has no rule
has no masked form: "masked" then means hidden (fail closed).
"""

from __future__ import annotations

from collections.abc import Callable

MaskRule = Callable[[str], str]

MASK_RULES: dict[str, MaskRule] = {
    # 13812345678 → 138****5678
    "mobile": lambda c: f"left({c}, 3) || '****' || right({c}, 4)",
    # 110101199003071234 → 110101********1234
    "id_number": lambda c: f"left({c}, 6) || '********' || right({c}, 4)",
    # 91350100M000100Y43 → 91350100******0Y43
    "uscc": lambda c: f"left({c}, 8) || '******' || right({c}, 4)",
    # zhang.san@example.com → z***@example.com
    "email": lambda c: f"left(split_part({c}, '@', 1), 1) || '***@' || split_part({c}, '@', 2)",
    # 张三明 → 张*明, 张三 → 张*
    "person_name": lambda c: (
        f"CASE WHEN char_length({c}) <= 2 THEN left({c}, 1) || '*'"
        f" ELSE left({c}, 1) || repeat('*', char_length({c}) - 2) || right({c}, 1) END"
    ),
    # 浙江省杭州市西湖区文三路 90 号 → 浙江省杭州市****
    "address": lambda c: f"left({c}, 6) || '****'",
    "wechat": lambda c: f"left({c}, 2) || '****'",
    # 1990-03-07 → 1990-**-**
    "birthday": lambda c: f"to_char({c}, 'YYYY') || '-**-**'",
    # AAA, AA, A → A** (the letter only: the length would give the rating away)
    "rating": lambda c: f"left({c}, 1) || '**'",
    # an amount → the range it falls in
    "amount": lambda c: (
        f"CASE WHEN {c} < 100000 THEN '< 100,000'"
        f" WHEN {c} < 1000000 THEN '100,000 – 1,000,000'"
        f" WHEN {c} < 10000000 THEN '1,000,000 – 10,000,000'"
        f" ELSE '≥ 10,000,000' END"
    ),
    # free text → withheld
    "text": lambda c: "'[withheld]'",
}


def masked_sql(rule: str | None, column_sql: str) -> str | None:
    """The SQL of the masked form, or None when the field has no masked form."""
    if rule is None:
        return None
    # An empty value stays empty: no range for a missing amount, no "[withheld]" for
    # notes that were never written.
    return f"CASE WHEN {column_sql} IS NULL THEN NULL ELSE {MASK_RULES[rule](column_sql)} END"
