"""structlog set-up: JSON lines in production, readable lines in development."""

from __future__ import annotations

import logging

import structlog

from dangan.settings import Settings


def configure_logging(settings: Settings) -> None:
    renderer = (
        structlog.dev.ConsoleRenderer()
        if settings.env == "dev"
        else structlog.processors.JSONRenderer()
    )
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
