"""Benchmarks: every hot path measured against its raw asyncpg floor in the same run.

``make bench`` (``python -m bench``) starts one real stack, seeds the demo and runs each
module listed in :data:`bench.__main__.BENCHMARKS`; each prints one line per figure,
e.g. ``customers_list: 3.87x floor (28.1 ms vs 7.3 ms)``. Nothing here asserts on time:
machines are noisy, so both sides are measured interleaved and reported as medians.
"""
