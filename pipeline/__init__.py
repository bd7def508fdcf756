"""TRON risk monitor: a Bytewax dataflow that decodes TRON blocks and scores their risk.

Dependency direction (see STYLE): records <- tron/operators/rules/anomaly <- sources/sinks
<- flow <- run_pipeline.py. Nothing below ``flow`` imports Bytewax.
"""

__version__ = "0.1.0"
