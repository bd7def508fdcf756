"""One formula for every alert's ``risk_score`` (0-100): rule severity combined with anomaly score.

Why this shape: a calibrated anomaly score is a *percentile*, not a probability of wrongdoing.
Every anomaly alert already sits above the threshold (say 99), so using the percentile directly
would rank any unusual address above a sanctions hit. The score is therefore first turned into
*evidence* on the severity scale, by how rare it is::

    evidence(p) = clip(20 * -log10(1 - p/100), 0, 80)
    p = 90 -> 20,  99 -> 40,  99.9 -> 60,  99.99 and above -> 80 (the cap)

so an anomaly alone reads between "low" and "high" and never as "critical". Severities map to
:data:`SEVERITY_POINTS` (info 10, low 25, medium 50, high 75, critical 95). The two are combined
so the stronger signal dominates and the weaker one adds up to half of the remaining headroom::

    M = max(severity_points, evidence);  m = min(severity_points, evidence)
    risk = M + (100 - M) * m / 200

Properties (tested): a missing side contributes 0, so ``risk_score("high", None) == 75`` and
``risk_score(None, 99.9) == 60``; non-decreasing in both inputs; never above 100; a high rule on
an address at the 99.9th percentile scores 75 + 25 * 60 / 200 = 82.5.

Examples:

>>> risk_score("high", None)
75.0
>>> risk_score(None, 99.9)
60.0
>>> risk_score("high", 99.9)
82.5
"""

from __future__ import annotations

import math

SEVERITY_POINTS: dict[str, float] = {"info": 10.0, "low": 25.0, "medium": 50.0, "high": 75.0,
                                     "critical": 95.0}
EVIDENCE_CAP = 80.0


def anomaly_evidence(anomaly_score: float | None) -> float:
    """Calibrated 0-100 anomaly score -> 0-80 evidence points (log of its rarity)."""
    if anomaly_score is None or math.isnan(anomaly_score):
        return 0.0
    tail = max(1.0 - min(max(anomaly_score, 0.0), 100.0) / 100.0, 1e-12)
    return min(EVIDENCE_CAP, max(0.0, -20.0 * math.log10(tail)))


def risk_score(severity: str | None, anomaly_score: float | None) -> float:
    """Risk 0-100 of an alert from its severity and/or the subject's calibrated anomaly score.

    ``severity`` is one of :data:`pipeline.records.SEVERITIES` or None (anomaly-only alert);
    ``anomaly_score`` is the calibrated 0-100 score or None when no model scored the address.
    """
    if severity is None:
        sev = 0.0
    else:
        try:
            sev = SEVERITY_POINTS[severity]
        except KeyError:
            raise ValueError(f"unknown severity {severity!r}; expected one of "
                             f"{', '.join(SEVERITY_POINTS)}") from None
    ev = anomaly_evidence(anomaly_score)
    hi, lo = max(sev, ev), min(sev, ev)
    return round(hi + (100.0 - hi) * lo / 200.0, 2)
