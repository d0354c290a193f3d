"""Tenant tables: unqualified, so they resolve to the schema of the tenant transaction.

Only use these inside :func:`dangan.tenants.scope.tenant_transaction`; outside it the
names resolve to nothing (``public`` has no such tables) and the query fails.
"""

from __future__ import annotations

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

    class Meta:
        table = "customer"
