"""A precomputed pool of (address, lookalike) pairs for address-poisoning episodes.

A poisoner's lookalike shares the first and last four base58 characters with the address a
victim pays regularly, because wallets shorten addresses to ``TXyz…abcd``. The leading
characters are cheap to match (keep the high bytes), but the trailing ones depend on the
double-SHA256 checksum, so matching four of them takes about 58**4 (11 M) hash tries, ~15 s
in Python: far too slow at simulation time. The pool is therefore made once, reproducibly::

    nice -n 19 python -m pipeline.simulate.lookalikes --count 24

and shipped as ``lookalikes.json`` next to this module; the simulator uses pool addresses as
victims' regular counterparties.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import time
from pathlib import Path

from pipeline.errors import InputError
from pipeline.tron.address import encode_raw

log = logging.getLogger(__name__)

POOL_PATH = Path(__file__).with_name("lookalikes.json")
MATCH = 4  # characters matched at each end


def shares_ends(a: str, b: str, n: int = MATCH) -> bool:
    """True when two distinct addresses share ``n`` leading and ``n`` trailing characters."""
    return a != b and a[:n] == b[:n] and a[-n:] == b[-n:]


def find_lookalike(target_raw21: bytes, rng: random.Random, match: int = MATCH,
                   max_tries: int = 200_000_000) -> str:
    """Brute-force an address sharing ``match`` leading and trailing chars with ``target``.

    The first 5 bytes (0x41 + 4 body bytes, ~40 bits) fix the first four base58 characters;
    the other 16 bytes are a counter, so each try is two SHA-256 calls and one modulo.
    """
    target = encode_raw(target_raw21)
    mod = 58**match
    want_tail = int.from_bytes(target_raw21 + _sha2(target_raw21)[:4], "big") % mod
    head = target_raw21[:5]
    base = rng.getrandbits(128)
    sha256 = hashlib.sha256
    for i in range(max_tries):
        body = head + ((base + i) & ((1 << 128) - 1)).to_bytes(16, "big")
        chk = sha256(sha256(body).digest()).digest()[:4]
        if (int.from_bytes(body, "big") * 4294967296 + int.from_bytes(chk, "big")) % mod == want_tail:
            candidate = encode_raw(body)
            if shares_ends(candidate, target, match):
                return candidate
    raise RuntimeError(f"no lookalike for {target} in {max_tries} tries")


def _sha2(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def make_pool(count: int, seed: int, out: Path, existing: list[dict[str, str]] | None = None) -> list[dict]:
    """Make ``count`` pairs deterministically from ``seed``, writing the file after each pair.

    Pair ``k`` depends only on ``(seed, k)``, so an interrupted run resumes where it stopped and
    a longer run extends a shorter one with the same first pairs.
    """
    pairs = list(existing or [])
    for k in range(len(pairs), count):
        rng = random.Random(f"lookalike:{seed}:{k}")
        raw = bytes([0x41]) + rng.randbytes(20)
        t0 = time.monotonic()
        look = find_lookalike(raw, rng)
        pairs.append({"address": encode_raw(raw), "lookalike": look})
        log.info("pair %d: %s ~ %s (%.1f s)", k, pairs[-1]["address"], look, time.monotonic() - t0)
        out.write_text(json.dumps({"seed": seed, "match": MATCH, "pairs": pairs}, indent=1) + "\n")
    return pairs


def load_pool(path: Path = POOL_PATH) -> list[tuple[str, str]]:
    """The shipped pairs as ``(address, lookalike)`` base58 tuples."""
    try:
        doc = json.loads(path.read_text())
        return [(p["address"], p["lookalike"]) for p in doc["pairs"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(f"{path}: cannot read lookalike pool ({err}); regenerate it with "
                         "`python -m pipeline.simulate.lookalikes --count 24`") from err


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Precompute (address, lookalike) pairs for the simulator.")
    parser.add_argument("--count", type=int, default=24, help="pairs wanted in the pool (default 24)")
    parser.add_argument("--seed", type=int, default=7, help="pool seed (default 7)")
    parser.add_argument("--out", type=Path, default=POOL_PATH, help=f"output file (default {POOL_PATH})")
    parser.add_argument("--fresh", action="store_true", help="ignore pairs already in the file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    existing: list[dict[str, str]] = []
    if args.out.exists() and not args.fresh:
        doc = json.loads(args.out.read_text())
        if doc.get("seed") == args.seed:
            existing = doc["pairs"]
    pairs = make_pool(args.count, args.seed, args.out, existing)
    print(f"{len(pairs)} lookalike pairs in {args.out}")
    return 0



if __name__ == "__main__":
    raise SystemExit(main())
