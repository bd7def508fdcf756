"""Anomaly scoring: detectors behind one small API, calibrated, explained, versioned, watched for drift.

Modules: :mod:`.transform` (log1p + robust scaling), :mod:`.detectors` (IsolationForest and pyod
adapters), :mod:`.calibration` (raw score -> 0..100), :mod:`.model` (``AnomalyModel``, ``Ensemble``),
:mod:`.persistence` (``save``/``load`` + model card), :mod:`.scorer` (micro-batch ``AnomalyScorer``),
:mod:`.risk` (``risk_score``), :mod:`.drift` (PSI, ``DriftMonitor``), :mod:`.training` (data for the
``train`` command). Heavy libraries (scikit-learn, pyod) are imported only when a detector is built.
"""
