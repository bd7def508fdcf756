"""What input validation costs decode: this tree's ``decode_block`` against another git ref's.

Both versions decode the two real mainnet blocks in the same process, interleaved, and the best
of ``--rounds`` is kept, timed in thread CPU time: on a shared machine wall-clock figures move by
tens of percent between runs, CPU time by a few. Prints tx/s for each and the relative slowdown.

Usage: python bench/bench_decode_guard.py [--against main] [--rounds 30]
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "pipeline" / "samples" / "mainnet"


def _load_ref(ref: str):
    """``pipeline/operators/decode.py`` as it is at ``ref``, imported as a separate module."""
    source = subprocess.run(["git", "show", f"{ref}:pipeline/operators/decode.py"], cwd=ROOT, check=True,
                            capture_output=True).stdout
    path = Path(tempfile.mkdtemp()) / "decode_ref.py"
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("decode_ref", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", default="main", help="git ref to compare with (default main)")
    parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds; the best is kept")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # this tree's package, whatever the working directory
    from pipeline.operators import decode as this
    from pipeline.tron.tokens import TokenRegistry

    ref = _load_ref(args.against)
    tokens = TokenRegistry.build()
    blocks = [orjson.loads(p.read_bytes()) for p in sorted(SAMPLES.glob("*.json"))]
    n_tx = sum(len(b["transactions"]) for b in blocks)
    reps = 20
    best = {args.against: float("inf"), "this tree": float("inf")}
    for _ in range(args.rounds):
        for name, module in ((args.against, ref), ("this tree", this)):
            started = time.thread_time()
            for _ in range(reps):
                for b in blocks:
                    module.decode_block(b, "bench", "p", tokens)
            best[name] = min(best[name], time.thread_time() - started)
    for name, seconds in best.items():
        print(f"{name:<12} {reps * n_tx / seconds:>10,.0f} tx/s  ({seconds / reps / n_tx * 1e6:.2f} µs/tx)")
    print(f"{'slowdown':<12} {best['this tree'] / best[args.against] - 1:>+10.1%}")


if __name__ == "__main__":
    main()
