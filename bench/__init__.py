"""Benchmark scripts that print tables (never timed tests); run them from the repo root.

``python -m bench.store_bench``: raftstore against etcd, same client, same workload.
"""
