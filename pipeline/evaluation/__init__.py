"""Evaluation of alerts against ground-truth labels (simulator, AMLSim): precision, recall, F1.

The computation is pure (:func:`evaluate` over plain rows); ClickHouse access lives in
:mod:`pipeline.evaluation.store` and the CLI, so the metric itself is tested in milliseconds.
"""

from pipeline.evaluation.labels import load_labels
from pipeline.evaluation.metrics import TYPOLOGIES, AlertRow, Labels, Report, Score, evaluate
from pipeline.evaluation.report import format_report

__all__ = ["TYPOLOGIES", "AlertRow", "Labels", "Report", "Score", "evaluate", "format_report", "load_labels"]
