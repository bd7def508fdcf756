"""Benchmark harness: throughput, stage costs, memory and latency of the full pipeline, side by side.

Figures from different days on a shared 2-core machine do not compare; ratios taken in one
invocation do. So one ``run_pipeline.py bench`` measures everything on the same simulated chain:
the end-to-end replay, a parse-only baseline, the cost of each pure stage, RSS over the run,
block-to-alert latency at mainnet pace, and the same workload on two Bytewax processes.

chDB binds one data directory per process, so every measured run is its own subprocess
(:mod:`pipeline.bench.worker`) with a fresh directory: that also isolates its RSS.
"""
