"""Tortoise models: ``platform`` (schema ``public``) and ``archive`` (each tenant schema)."""

MODEL_MODULES = ["dangan.models.platform", "dangan.models.archive"]
