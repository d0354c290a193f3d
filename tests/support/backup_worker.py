"""A worker process for crash tests: ``python -m tests.support.backup_worker``.

It runs the product's backup worker and alarm worker (:mod:`dangan.workers.settings`)
against the stack the ``DANGAN_*`` variables name, until SIGTERM — or until a test kills
it. The main worker is left out: its crons (audit checkpoints every ten minutes …) would
act on every tenant of the test run's database from a process the test may point at an
S3 of its own. The alarm worker runs without its sweep for the same reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

from dangan import database
from dangan.devstack.endpoints import endpoints_for
from dangan.logs import configure_logging
from dangan.settings import Settings
from dangan.workers.settings import build_alarm_worker, build_backup_worker


async def main() -> None:
    settings = Settings()
    configure_logging(settings)
    endpoints = endpoints_for(settings, None, None, None)
    await database.connect(endpoints.database_url, pool_size=4)
    workers = [
        build_backup_worker(settings, endpoints, connect_database=False, poll_delay=0.05),
        build_alarm_worker(
            settings, endpoints, connect_database=False, cron_jobs=[], poll_delay=0.05
        ),
    ]
    running = asyncio.ensure_future(asyncio.gather(*(w.async_run() for w in workers)))
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, running.cancel)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await running
    finally:
        for worker in workers:
            await worker.close()
        await database.disconnect()


if __name__ == "__main__":
    asyncio.run(main())
