"""What each retention rule applies to, in SQL, one set-based statement per rule.

``subjects`` selects every record the rule applies to at a moment (``$1``, the run's
clock) under its retention (``$2`` months), leaving out what a legal hold protects,
optionally restricted to some record ids (``$3``, NULL for all). Its columns:
``record_type, record_id, customer_id, owner_id, basis_at, reason`` — ``basis_at`` is
the date the rule counts from and ``reason`` says it in words. The same statement marks
candidates, finds the ones that no longer apply, and re-checks each one in the
transaction that destroys it.

``state`` tells why a record no longer applies (``$1``: record ids): whether it still
exists, whether a hold now protects it, a condition other than the date that stopped
holding (``state``), and its current ``basis_at``.
"""

from __future__ import annotations

from dataclasses import dataclass

_CUTOFF = "$1::timestamptz - make_interval(months => $2::integer)"
_RESTRICT = "($3::uuid[] IS NULL OR {column} = ANY($3::uuid[]))"
_DAY = "to_char({value} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
_HELD = (
    "EXISTS (SELECT 1 FROM legal_hold h WHERE h.customer_id = {column} AND h.released_at IS NULL)"
)
_SHARE_HELD = (
    "EXISTS (SELECT 1 FROM share_request_customer rc JOIN legal_hold h"
    " ON h.customer_id = rc.customer_id AND h.released_at IS NULL WHERE rc.request_id = r.id)"
)
# The latest sign of life of customer c: its creation, a status change, any change
# record (or its decision), and the newest record of every kind it holds.
LAST_ACTIVITY = """GREATEST(
    c.created_at, c.status_changed_at,
    (SELECT max(GREATEST(x.at, x.decided_at)) FROM customer_change x WHERE x.customer_id = c.id),
    (SELECT max(GREATEST(x.occurred_at, x.created_at)) FROM communication x
      WHERE x.customer_id = c.id),
    (SELECT max(GREATEST(x.purchased_on::timestamptz, x.created_at)) FROM purchase x
      WHERE x.customer_id = c.id),
    (SELECT max(x.created_at) FROM opportunity x WHERE x.customer_id = c.id),
    (SELECT max(GREATEST(x.signed_on::timestamptz, x.created_at)) FROM contract x
      WHERE x.customer_id = c.id),
    (SELECT max(GREATEST(x.paid_on::timestamptz, x.created_at)) FROM payment_record x
      WHERE x.customer_id = c.id),
    (SELECT max(x.created_at) FROM contact_person x WHERE x.customer_id = c.id),
    (SELECT max(x.recorded_at) FROM customer_need x WHERE x.customer_id = c.id),
    (SELECT max(GREATEST(x.received_at, x.created_at)) FROM complaint x
      WHERE x.customer_id = c.id),
    (SELECT max(GREATEST(x.surveyed_on::timestamptz, x.created_at)) FROM satisfaction_survey x
      WHERE x.customer_id = c.id),
    (SELECT max(x.created_at) FROM attachment x WHERE x.customer_id = c.id))"""
_POTENTIAL = "(c.kind = 'POTENTIAL' OR c.tier = 'POTENTIAL')"
_POTENTIAL_STATUS = "c.status IN ('ACTIVE', 'EXPIRED')"


@dataclass(frozen=True)
class RuleQuery:
    subjects: str
    state: str
    moved: str  # why a later basis_at ended it: "{day}" is that date


_INVALID = RuleQuery(
    subjects=f"""
SELECT 'customer' AS record_type, c.id AS record_id, c.id AS customer_id, c.owner_id,
       COALESCE(c.status_changed_at, c.updated_at) AS basis_at,
       'status INVALID since ' || {_DAY.format(value="COALESCE(c.status_changed_at, c.updated_at)")}
           AS reason
  FROM customer c
 WHERE c.status = 'INVALID'
   AND COALESCE(c.status_changed_at, c.updated_at) <= {_CUTOFF}
   AND {_RESTRICT.format(column="c.id")}
   AND NOT {_HELD.format(column="c.id")}""",
    state=f"""
SELECT k.id AS record_id, c.id IS NOT NULL AS present, {_HELD.format(column="c.id")} AS held,
       CASE WHEN c.status <> 'INVALID' THEN 'its status is now ' || c.status END AS state,
       COALESCE(c.status_changed_at, c.updated_at) AS basis_at
  FROM unnest($1::uuid[]) AS k(id) LEFT JOIN customer c ON c.id = k.id""",
    moved="its status was set again on {day}",
)

_INACTIVE_POTENTIAL = RuleQuery(
    subjects=f"""
SELECT 'customer' AS record_type, c.id AS record_id, c.id AS customer_id, c.owner_id,
       a.last_at AS basis_at,
       'potential customer, no activity since ' || {_DAY.format(value="a.last_at")} AS reason
  FROM customer c CROSS JOIN LATERAL (SELECT {LAST_ACTIVITY} AS last_at) a
 WHERE {_POTENTIAL} AND {_POTENTIAL_STATUS}
   AND a.last_at <= {_CUTOFF}
   AND {_RESTRICT.format(column="c.id")}
   AND NOT {_HELD.format(column="c.id")}""",
    state=f"""
SELECT k.id AS record_id, c.id IS NOT NULL AS present, {_HELD.format(column="c.id")} AS held,
       CASE WHEN NOT {_POTENTIAL_STATUS} THEN 'its status is now ' || c.status
            WHEN NOT {_POTENTIAL} THEN 'it is no longer a potential customer' END AS state,
       a.last_at AS basis_at
  FROM unnest($1::uuid[]) AS k(id) LEFT JOIN customer c ON c.id = k.id
  LEFT JOIN LATERAL (SELECT {LAST_ACTIVITY} AS last_at) a ON c.id IS NOT NULL""",
    moved="there was activity on {day}",
)

_COMMUNICATIONS = RuleQuery(
    subjects=f"""
SELECT 'communication' AS record_type, m.id AS record_id, m.customer_id, c.owner_id,
       m.occurred_at AS basis_at,
       'communication of ' || {_DAY.format(value="m.occurred_at")} AS reason
  FROM communication m JOIN customer c ON c.id = m.customer_id
 WHERE m.occurred_at <= {_CUTOFF}
   AND {_RESTRICT.format(column="m.id")}
   AND NOT {_HELD.format(column="m.customer_id")}""",
    state=f"""
SELECT k.id AS record_id, m.id IS NOT NULL AS present,
       {_HELD.format(column="m.customer_id")} AS held, NULL::text AS state,
       m.occurred_at AS basis_at
  FROM unnest($1::uuid[]) AS k(id) LEFT JOIN communication m ON m.id = k.id""",
    moved="its date is now {day}",
)

_SHARES = RuleQuery(
    subjects=f"""
SELECT 'share_request' AS record_type, r.id AS record_id, NULL::uuid AS customer_id,
       r.requested_by AS owner_id, r.valid_until AS basis_at,
       'share request (' || r.status || ') ended ' || {_DAY.format(value="r.valid_until")}
           AS reason
  FROM share_request r
 WHERE r.valid_until <= {_CUTOFF}
   AND {_RESTRICT.format(column="r.id")}
   AND NOT {_SHARE_HELD}""",
    state=f"""
SELECT k.id AS record_id, r.id IS NOT NULL AS present, {_SHARE_HELD} AS held,
       NULL::text AS state, r.valid_until AS basis_at
  FROM unnest($1::uuid[]) AS k(id) LEFT JOIN share_request r ON r.id = k.id""",
    moved="its end date is now {day}",
)

RULE_QUERIES: dict[str, RuleQuery] = {
    "invalid_customers": _INVALID,
    "inactive_potential_customers": _INACTIVE_POTENTIAL,
    "communication_records": _COMMUNICATIONS,
    "expired_share_grants": _SHARES,
}
