"""``python -m bench [name ...] [--warmup N] [--rounds N]``: run the benchmarks.

Every module in :data:`BENCHMARKS` is a ``bench.<name>`` module with
``async def run(h: Harness) -> None`` that prints its figures (see
:func:`bench.harness.report`). One stack serves them all, in this order. A benchmark that
raises is reported and the rest still run; the exit status is then 1. Named benchmarks
run in :data:`BENCHMARKS` order too, whatever order they are given in: a benchmark may
change the demo for its own measurement (customers_list_masked hands every east customer
to one salesperson, and puts them back), so the ones that read it as seeded come first.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
import traceback

from bench.harness import ROUNDS, WARMUP, log, open_harness

BENCHMARKS: tuple[str, ...] = (
    "customers_list",
    "customers_list_masked",
    "import_customers",
    "duplicate_check",
    "backup_throughput",
    "backup_many_tenants",
)


async def run_all(names: list[str], *, warmup: int, rounds: int) -> int:
    failed: list[str] = []
    async with open_harness(warmup=warmup, rounds=rounds) as harness:
        for name in names:
            log(f"{name}: {warmup} warm-up + {rounds} measured rounds")
            try:
                module = importlib.import_module(f"bench.{name}")
                await module.run(harness)
            except Exception:
                traceback.print_exc()
                print(f"{name}: FAILED", flush=True)
                failed.append(name)
    if failed:
        log(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="name", help="benchmarks to run (all)")
    parser.add_argument("--warmup", type=int, default=WARMUP, help=f"default {WARMUP}")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"default {ROUNDS}")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; known: {', '.join(BENCHMARKS)}")
    if args.rounds < 1 or args.warmup < 0:
        parser.error("--rounds must be at least 1 and --warmup at least 0")
    names = [name for name in BENCHMARKS if not args.names or name in args.names]
    return asyncio.run(run_all(names, warmup=args.warmup, rounds=args.rounds))


if __name__ == "__main__":
    sys.exit(main())
