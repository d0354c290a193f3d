"""Platform tables in ``public``: the tenant registry, people, memberships, partner apps.

The DDL lives in :mod:`dangan.tenants.versions`; these models map it. They are
schema-qualified (``Meta.schema = "public"``) so that a tenant's schema path never
changes where they point. Inside a tenant transaction the tenant role cannot read them:
look the caller up before entering it.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.contrib.postgres.fields import ArrayField
from tortoise.models import Model


class Tenant(Model):
    id = fields.IntField(primary_key=True)
    slug = fields.CharField(max_length=41, unique=True)
    name = fields.TextField()
    schema_name = fields.TextField()
    role_name = fields.TextField()
    status = fields.TextField(default="active")
    schema_version = fields.IntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "tenant"
        schema = "public"


class Identity(Model):
    id = fields.IntField(primary_key=True)
    email = fields.TextField()
    display_name = fields.TextField()
    password_hash = fields.TextField(null=True)
    status = fields.TextField(default="active")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "identity"
        schema = "public"


class Membership(Model):
    id = fields.IntField(primary_key=True)
    identity: fields.ForeignKeyRelation[Identity] = fields.ForeignKeyField(
        "models.Identity", related_name="memberships"
    )
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="memberships"
    )
    roles = ArrayField(element_type="text")
    department_id = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "membership"
        schema = "public"


class ApiClient(Model):
    id = fields.IntField(primary_key=True)
    tenant: fields.ForeignKeyRelation[Tenant] = fields.ForeignKeyField(
        "models.Tenant", related_name="api_clients"
    )
    name = fields.TextField()
    key_id = fields.TextField()
    key_hash = fields.TextField()
    scopes = ArrayField(element_type="text")
    status = fields.TextField(default="active")
    created_at = fields.DatetimeField(auto_now_add=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "api_client"
        schema = "public"
