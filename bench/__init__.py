"""Benchmarks of stepped_temporal against hand-written Temporal workflows.

Each workload runs on one Temporal dev server (the pip-installed binary) and
one database, once with Stepped actions and once with a raw Temporal baseline
that does the same database writes, each variant in a fresh worker process.
Run ``python -m bench.all`` for every workload and the target check; see
``bench/README.md``.
"""
