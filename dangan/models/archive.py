"""Tenant tables: unqualified, so they resolve to the schema of the tenant transaction.

Only use these inside :func:`dangan.tenants.scope.tenant_transaction`; outside it the
names resolve to nothing (``public`` has no such tables) and the query fails.
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise import fields
from tortoise.contrib.postgres.fields import ArrayField
from tortoise.models import Model


class Department(Model):
    id = fields.IntField(primary_key=True)
    name = fields.TextField()
    parent_id = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "department"


class Member(Model):
    """A person working in this tenant (mirror of ``public.membership``)."""

    identity_id = fields.IntField(primary_key=True)
    email = fields.TextField()
    display_name = fields.TextField()
    roles = ArrayField(element_type="text")
    department_id = fields.IntField(null=True)
    active = fields.BooleanField(default=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "member"


class Customer(Model):
    id = fields.UUIDField(primary_key=True)
    kind = fields.TextField()
    name = fields.TextField()
    phone = fields.TextField(null=True)
    email = fields.TextField(null=True)
    id_number = fields.TextField(null=True)
    uscc = fields.TextField(null=True)
    address = fields.TextField(null=True)
    region = fields.TextField(null=True)
    tier = fields.TextField(default="ORDINARY")
    owner_id = fields.IntField(null=True)
    department_id = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    version = fields.IntField(default=1)
    created_by = fields.IntField(null=True)
    updated_by = fields.IntField(null=True)
    wechat = fields.TextField(null=True)
    birthday = fields.DateField(null=True)
    gender = fields.TextField(null=True)
    credit_rating = fields.TextField(null=True)
    payment_capacity = fields.DecimalField(max_digits=18, decimal_places=2, null=True)
    annual_revenue = fields.DecimalField(max_digits=18, decimal_places=2, null=True)
    remarks = fields.TextField(null=True)
    tags = ArrayField(element_type="text", default=list)
    consents_to_sharing = fields.BooleanField(default=False)
    category = fields.TextField(null=True)
    industry = fields.TextField(null=True)
    building = fields.TextField(null=True)
    city = fields.TextField(null=True)
    legal_representative = fields.TextField(null=True)
    scale = fields.TextField(null=True)
    registered_capital = fields.DecimalField(max_digits=18, decimal_places=2, null=True)
    potential = fields.SmallIntField(null=True)
    competition_risk = fields.TextField(null=True)
    rating_grade = fields.TextField(null=True)
    rating_score = fields.DecimalField(max_digits=5, decimal_places=2, null=True)
    rated_at = fields.DatetimeField(null=True)
    status = fields.TextField(default="ACTIVE")
    status_changed_at = fields.DatetimeField(null=True)
    merged_into = fields.UUIDField(null=True)

    class Meta:
        table = "customer"


# Sensitivity classes (DESIGN.md, Authorization): policies grant access per class, or per
# single field. A column missing from CUSTOMER_FIELDS is hidden from everyone, and
# `dangan policy check` fails on it (fail closed).
SENSITIVITY_CLASSES = ("basic", "contact", "identity", "financial", "business", "notes")


@dataclass(frozen=True)
class FieldSpec:
    """A customer column's sensitivity class and how its masked form is made
    (see dangan.authz.masking); ``mask=None``: no masked form, so masked means hidden."""

    sensitivity: str
    mask: str | None = None


# Columns that are not customer facts: the row key (every caller who may see a customer
# sees its id) and bookkeeping the API never returns.
NOT_CUSTOMER_FACTS = frozenset({"id", "created_by", "updated_by", "merged_into"})


def unclassified_customer_columns() -> list[str]:
    """Columns of the customer model with no sensitivity class (hidden from everyone;
    `dangan policy check` fails until they get one)."""
    columns = set(Customer._meta.fields_map) - NOT_CUSTOMER_FACTS
    return sorted(columns - set(CUSTOMER_FIELDS))


# The row key ``id`` is not listed: every caller who may see a customer sees its id.
CUSTOMER_FIELDS: dict[str, FieldSpec] = {
    "kind": FieldSpec("basic"),
    "name": FieldSpec("basic", "person_name"),
    "region": FieldSpec("basic"),
    "tier": FieldSpec("basic"),
    "tags": FieldSpec("basic"),
    "owner_id": FieldSpec("basic"),
    "department_id": FieldSpec("basic"),
    "created_at": FieldSpec("basic"),
    "updated_at": FieldSpec("basic"),
    "version": FieldSpec("basic"),
    "consents_to_sharing": FieldSpec("basic"),
    "category": FieldSpec("basic"),
    "industry": FieldSpec("basic"),
    "building": FieldSpec("basic"),
    "city": FieldSpec("basic"),
    "scale": FieldSpec("basic"),
    "status": FieldSpec("basic"),
    "status_changed_at": FieldSpec("basic"),
    # Public business-registration facts of an enterprise (工商登记).
    "legal_representative": FieldSpec("basic"),
    "registered_capital": FieldSpec("basic"),
    "phone": FieldSpec("contact", "mobile"),
    "email": FieldSpec("contact", "email"),
    "address": FieldSpec("contact", "address"),
    "wechat": FieldSpec("contact", "wechat"),
    "id_number": FieldSpec("identity", "id_number"),
    "uscc": FieldSpec("identity", "uscc"),
    "birthday": FieldSpec("identity", "birthday"),
    "gender": FieldSpec("identity"),
    "credit_rating": FieldSpec("financial", "rating"),
    "payment_capacity": FieldSpec("financial", "amount"),
    "annual_revenue": FieldSpec("financial", "amount"),
    "remarks": FieldSpec("notes", "text"),
    # Rating inputs and outcome (客户评级): the salesperson's assessment and the grade.
    "potential": FieldSpec("business"),
    "competition_risk": FieldSpec("business"),
    "rating_grade": FieldSpec("business"),
    "rating_score": FieldSpec("business"),
    "rated_at": FieldSpec("business"),
}
