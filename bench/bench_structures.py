#!/usr/bin/env python3
"""Cost of the structural detectors alone: CPU time per transfer over a replay input.

Decodes the input once (not timed), then feeds every block to a fresh
``StructureDetector`` and reports process CPU time per transfer, alerts per 1,000 transfers
and the state held at the end. Prints numbers; never part of the test suite.

    python bench/bench_structures.py data/sim            # the main job's chain
    python bench/bench_structures.py data/suite/tuning-1-*
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.offline import iter_blocks  # noqa: E402
from pipeline.operators.structures import StructureDetector  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", nargs="+", help="replay files or directories (as run --input)")
    args = parser.parse_args(argv)
    blocks = [b.transfers for b in iter_blocks(args.input)]
    n = sum(len(t) for t in blocks)
    if not n:
        print("no transfers in the input", file=sys.stderr)
        return 2
    detector = StructureDetector()
    t0 = time.process_time()
    alerts = sum(len(detector.process(transfers)) for transfers in blocks) + len(detector.flush())
    cpu = time.process_time() - t0
    print(f"{n:,} transfers in {len(blocks):,} blocks: {cpu * 1e6 / n:.1f} µs CPU per transfer, "
          f"{alerts:,} alert rows emitted ({alerts * 1000 / n:.2f} per 1,000 transfers, before the budget)")
    print("state at the end:", ", ".join(f"{k} {v:,}" for k, v in detector.stats().items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
