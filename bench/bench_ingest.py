"""Decode + store throughput on a large replay file made from the real mainnet blocks.

The two real blocks are repeated with renumbered heights, chained parent hashes, 3 s timestamps
and fresh transaction ids, to ``--tx`` transactions (default 250k). The same file is then read
three ways in one run, so the figures compare on the same machine state:

- parse only: read and JSON-decode every block (the ceiling for any Python pipeline here);
- decode only: parse + decode into records, no Bytewax, no storage;
- full replay: the Bytewax flow with analytics off (decode, minute aggregates, storage) into a
  fresh embedded ClickHouse: the decode + store path of the product.

Usage: python bench/bench_ingest.py [--tx 250000] [--out bench/out] [--json FILE]
"""

from __future__ import annotations

import argparse
import copy
import gzip
import hashlib
import json
import resource
import shutil
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.config import load_settings  # noqa: E402
from pipeline.gc_tuning import tune_for_streaming  # noqa: E402
from pipeline.operators.decode import decode_block  # noqa: E402
from pipeline.runner import replay  # noqa: E402
from pipeline.sources.files import iter_replay, resolve_inputs  # noqa: E402
from pipeline.storage.clickhouse import connect  # noqa: E402
from pipeline.tron.tokens import TokenRegistry  # noqa: E402

SAMPLES = ROOT / "pipeline" / "samples" / "mainnet"


def make_file(path: Path, target_tx: int) -> int:
    """Write the repeated blocks; returns the number of transactions written."""
    templates = [orjson.loads(p.read_bytes()) for p in sorted(SAMPLES.glob("*.json"))]
    height, ts, parent, written = 70_000_000, 1_750_000_000_000, "00" * 32, 0
    with gzip.open(path, "wb", compresslevel=1) as out:
        i = 0
        while written < target_tx:
            block = copy.deepcopy(templates[i % len(templates)])
            block_id = f"{height:016x}" + hashlib.sha256(f"b{height}".encode()).hexdigest()[16:]
            raw = block["block_header"]["raw_data"]
            raw.update(number=height, timestamp=ts, parentHash=parent)
            block["blockID"] = block_id
            for j, tx in enumerate(block["transactions"]):
                tx["txID"] = hashlib.sha256(f"{height}:{j}".encode()).hexdigest()
            out.write(orjson.dumps(block) + b"\n")
            written += len(block["transactions"])
            parent, height, ts, i = block_id, height + 1, ts + 3000, i + 1
    return written


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tx", type=int, default=250_000, help="transactions to generate (default 250000)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out"), help="work directory")
    ap.add_argument("--json", help="also write the figures as JSON to this file")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = out / f"ingest_{args.tx}.jsonl.gz"
    if not data.exists():
        make_file(data, args.tx)
    files = resolve_inputs([str(data)])
    tune_for_streaming()  # as run_pipeline.py does for every command

    t0 = time.perf_counter()
    n_tx = sum(len(item.payload.get("transactions", ())) for item in iter_replay(files))
    parse_s = time.perf_counter() - t0

    tokens = TokenRegistry.build()
    t0 = time.perf_counter()
    records = sum(len(decode_block(i.payload, "b", i.where, tokens).transfers) for i in iter_replay(files))
    decode_s = time.perf_counter() - t0

    chdb = out / "chdb_ingest"
    shutil.rmtree(chdb, ignore_errors=True)
    settings = load_settings(env={}, overrides={"clickhouse.dsn": f"chdb://{chdb}", "analytics.enabled": False})
    result = replay([str(data)], settings, progress=False)
    stored = connect(f"chdb://{chdb}").query("SELECT count() FROM transfers FINAL").result_rows[0][0]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    figures = {
        "transactions": n_tx, "records": records, "stored_transfers": stored,
        "parse_only_tx_s": round(n_tx / parse_s), "decode_only_tx_s": round(n_tx / decode_s),
        "replay_tx_s": round(n_tx / result.seconds), "replay_seconds": round(result.seconds, 2),
        "replay_to_parse_ratio": round((n_tx / result.seconds) / (n_tx / parse_s), 3),
        "peak_rss_mb": round(peak_mb),
    }
    print(f"{'transactions':<28}{n_tx:>12,}")
    print(f"{'parse only':<28}{figures['parse_only_tx_s']:>12,} tx/s")
    print(f"{'parse + decode':<28}{figures['decode_only_tx_s']:>12,} tx/s")
    print(f"{'full replay into chDB':<28}{figures['replay_tx_s']:>12,} tx/s  ({result.seconds:.1f} s)")
    print(f"{'replay / parse ratio':<28}{figures['replay_to_parse_ratio']:>12}")
    print(f"{'stored transfers (FINAL)':<28}{stored:>12,}")
    print(f"{'peak RSS':<28}{figures['peak_rss_mb']:>12,} MB")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0 if stored == records else 1


if __name__ == "__main__":
    sys.exit(main())
