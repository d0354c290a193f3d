"""The embedded S3: moto's ThreadedMotoServer, in memory, in a thread of this process."""

from __future__ import annotations

import logging
from typing import Any


def moto_server() -> Any:
    """A moto ThreadedMotoServer for 127.0.0.1 on a free port, not yet started (moto is
    imported only when S3 is embedded)."""
    from moto.server import ThreadedMotoServer

    werkzeug = logging.getLogger("werkzeug")  # one INFO line per S3 request otherwise
    if werkzeug.level == logging.NOTSET:
        werkzeug.setLevel(logging.WARNING)
    return ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
