"""What a policy change would change: per role, how many customers each caller sees and
how many of their values of each class are full, masked or hidden — before and after,
counted on the tenant's real data in SQL (one query per member of staff or app)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from dangan.authz.engine import PolicyEngine
from dangan.authz.predicates import Numbered, Predicate, all_of
from dangan.authz.subjects import Actor, PartnerApp, User
from dangan.models.archive import SENSITIVITY_CLASSES
from dangan.tenants.scope import raw_connection

Counts = dict[str, int]


async def _actors() -> list[tuple[str, Actor]]:
    members = await raw_connection().fetch(
        "SELECT identity_id, roles, department_id FROM member WHERE active"
    )
    apps = await raw_connection().fetch("SELECT id, scopes FROM partner_app WHERE active")
    actors: list[tuple[str, Actor]] = [
        (
            "+".join(sorted(row["roles"])),
            User(
                id=row["identity_id"],
                roles=tuple(sorted(row["roles"])),
                department_id=row["department_id"],
            ),
        )
        for row in members
    ]
    actors += [
        ("partner app", PartnerApp(id=row["id"], scopes=tuple(sorted(row["scopes"]))))
        for row in apps
    ]
    return actors


def _measures(engine: PolicyEngine, actor: Actor) -> dict[str, Predicate]:
    rows = engine.predicate(actor, "read")
    measures = {"customers": rows}
    for cls in SENSITIVITY_CLASSES:
        full = engine.predicate(actor, f"full:{cls}")
        masked = engine.predicate(actor, f"masked:{cls}")
        measures[f"{cls}.full"] = all_of([rows, full])
        not_full = Predicate(f"NOT COALESCE(({full.sql}), FALSE)", full.params)
        measures[f"{cls}.masked"] = all_of([rows, masked, not_full])
    return measures


async def _count(measures: dict[str, Predicate]) -> Counts:
    sql = Numbered()
    items = [
        f'count(*) FILTER (WHERE COALESCE({sql.add(p)}, FALSE)) AS "{name}"'
        for name, p in measures.items()
    ]
    row: Any = await raw_connection().fetchrow(
        f"SELECT {', '.join(items)} FROM customer c", *sql.params
    )
    return {name: int(row[name]) for name in measures}


async def impact_report(before: PolicyEngine, after: PolicyEngine) -> dict[str, Any]:
    """{"roles": {role: {"actors": n, "customers": [before, after],
    "classes": {class: {"full": [b, a], "masked": [b, a], "hidden": [b, a]}},
    "auditReaders": [b, a]}}, "changed": bool} — ``auditReaders``: how many of the role's
    callers may read the audit trail."""
    totals: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    actors_per_role: dict[str, int] = defaultdict(int)
    for role, actor in await _actors():
        actors_per_role[role] += 1
        for side, engine in enumerate((before, after)):
            for name, value in (await _count(_measures(engine, actor))).items():
                totals[role][name][side] += value
            totals[role]["auditReaders"][side] += int(engine.may_read_audit(actor))
    report: dict[str, Any] = {"roles": {}, "changed": False}
    for role, measured in sorted(totals.items()):
        customers = measured["customers"]
        classes = {}
        for cls in SENSITIVITY_CLASSES:
            full, masked = measured[f"{cls}.full"], measured[f"{cls}.masked"]
            hidden = [customers[i] - full[i] - masked[i] for i in (0, 1)]
            classes[cls] = {"full": full, "masked": masked, "hidden": hidden}
        readers = measured["auditReaders"]
        report["roles"][role] = {
            "actors": actors_per_role[role],
            "customers": customers,
            "classes": classes,
            "auditReaders": readers,
        }
        changed = (
            customers[0] != customers[1]
            or readers[0] != readers[1]
            or any(v[0] != v[1] for c in classes.values() for v in c.values())
        )
        report["changed"] = report["changed"] or changed
    return report
