"""Explanations a salesperson understands, rendered from the facts a rating recorded.

Facts carry the class of the record column they come from: the profit amount is made of
purchase costs (financial), open opportunities' amounts are business. A fact the reader
may not see is removed in SQL before it leaves the database (see :mod:`.views`), and the
sentence is then written without it — so an explanation never says more than the
reader could see on the customer.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

# JSON paths of facts in ``customer_rating.criteria`` that need more than the rating
# itself: (path, table, column) — shown only where that record column is shown in full.
GUARDED_FACTS = (
    ("{profit,facts,profit}", "purchase", "cost"),
    ("{profit,facts,profit}", "purchase", "amount"),
    ("{potential,facts,open_amount}", "opportunity", "expected_amount"),
)


def _yuan(text: str) -> str:
    return f"¥{Decimal(text):,.0f}"


def _profit(facts: dict[str, Any]) -> str:
    if not facts.get("bought"):
        return "no purchases in the last 12 months"
    better = f"better than {facts.get('percentile', 0)}% of customers"
    if "profit" not in facts:
        return f"profit of the last 12 months {better} (amount withheld)"
    return f"profit {_yuan(facts['profit'])} in the last 12 months: {better}"


def _loyalty(facts: dict[str, Any]) -> str:
    orders = int(facts.get("orders") or 0)
    noun = "order" if orders == 1 else "orders"
    return f"{orders} {noun} in the last 12 months, customer for {facts.get('years', 0)} years"


def _potential(facts: dict[str, Any]) -> str:
    assessment = facts.get("assessment")
    text = (
        f"staff assessment {assessment}/5"
        if assessment is not None
        else "not assessed by staff (counted as average)"
    )
    count = int(facts.get("open_opportunities") or 0)
    if count == 0:
        return f"{text}; no open opportunities"
    noun = "opportunity" if count == 1 else "opportunities"
    amount = facts.get("open_amount")
    worth = f" worth {_yuan(amount)}" if "open_amount" in facts and amount is not None else ""
    return f"{text}; {count} open {noun}{worth}"


def _competition(facts: dict[str, Any]) -> str:
    risk = facts.get("risk")
    if risk is None:
        return "competition risk not assessed (counted as neutral)"
    return f"competition risk {str(risk).lower()}"


_WRITERS = {
    "profit": _profit,
    "loyalty": _loyalty,
    "potential": _potential,
    "competition": _competition,
}


def explanation(criterion: str, facts: dict[str, Any]) -> str:
    """One sentence on why ``criterion`` scored what it did."""
    return _WRITERS[criterion](facts)
