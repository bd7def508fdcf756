"""Address-level figures of a supervised model on labelled chains (for the model card).

An address counts as *flagged* when any of its rows (one per block it was touched in) scores at or
above the model's threshold: that is what an analyst sees, one alert per address per hour. Per
typology: recall = flagged labelled addresses of that typology / labelled addresses of that
typology that the replay touched. Overall: precision = flagged labelled / all flagged addresses,
recall, and the number of flagged unlabelled (benign) addresses.

Only run this on the validation split, after training is final: nothing here feeds back into the
model (threshold and calibration come from the tuning hold-out).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pipeline.anomaly.supervised import SupervisedModel
from pipeline.anomaly.supervised_data import LabelledRows


def address_figures(model: SupervisedModel, data: LabelledRows,
                    typologies: dict[str, dict[str, str]]) -> dict[str, Any]:
    """``typologies``: chain name -> (address -> typology). Returns overall and per-typology figures."""
    p = model.score_batch(data.X)
    hit = p >= model.threshold
    seen: set[tuple[str, str]] = set()
    flagged: set[tuple[str, str]] = set()
    for i, key in enumerate(zip(data.chains, data.addresses)):
        seen.add(key)
        if hit[i]:
            flagged.add(key)
    per_total: Counter[str] = Counter()
    per_hit: Counter[str] = Counter()
    for chain, addr in seen:
        typ = typologies.get(chain, {}).get(addr)
        if typ is not None:
            per_total[typ] += 1
            per_hit[typ] += (chain, addr) in flagged
    tp = sum(per_hit.values())
    positives = sum(per_total.values())
    fp = len(flagged) - tp
    return {
        "threshold": model.threshold,
        "chains": sorted(set(data.chains)),
        "addresses": len(seen), "labelled_addresses": positives, "flagged_addresses": len(flagged),
        "precision": round(tp / len(flagged), 4) if flagged else None,
        "recall": round(tp / positives, 4) if positives else None,
        "flagged_benign": fp,
        "rows": int(len(p)), "rows_flagged": int(hit.sum()),
        "by_typology": {t: {"addresses": per_total[t], "flagged": per_hit[t],
                            "recall": round(per_hit[t] / per_total[t], 4)} for t in sorted(per_total)},
    }


def format_figures(fig: dict[str, Any]) -> str:
    """A readable table of :func:`address_figures`."""
    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f}%"

    lines = [f"validation ({', '.join(fig['chains'])}), threshold p >= {fig['threshold']:.3f}: "
             f"precision {pct(fig['precision'])}, recall {pct(fig['recall'])}, "
             f"{fig['flagged_addresses']} addresses flagged ({fig['flagged_benign']} unlabelled) "
             f"of {fig['addresses']}",
             f"  {'typology':<22} {'addresses':>9} {'flagged':>8} {'recall':>7}"]
    for t, f in fig["by_typology"].items():
        lines.append(f"  {t:<22} {f['addresses']:>9} {f['flagged']:>8} {pct(f['recall']):>7}")
    return "\n".join(lines)

