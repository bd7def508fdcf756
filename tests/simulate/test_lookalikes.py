"""The shipped lookalike pool really is a pool of lookalikes, and the generator reproduces it."""

from __future__ import annotations

import random

from pipeline.simulate import lookalikes
from pipeline.tron.address import base58_to_hex, encode_raw, validate_base58


def test_shipped_pairs_share_four_leading_and_trailing_chars() -> None:
    pool = lookalikes.load_pool()
    assert len(pool) >= 6
    for address, look in pool:
        validate_base58(address)
        validate_base58(look)
        assert address != look and address[:4] == look[:4] and address[-4:] == look[-4:]


def test_pool_pairs_are_reproducible_from_seed_and_index() -> None:
    """Pair k's address is drawn from Random(f"lookalike:{seed}:{k}"); check the first one."""
    first, _ = lookalikes.load_pool()[0]
    rng = random.Random("lookalike:7:0")
    assert base58_to_hex(first) == "41" + rng.randbytes(20).hex()


def test_find_lookalike_with_fewer_chars_is_fast_and_correct() -> None:
    rng = random.Random(3)
    raw = bytes([0x41]) + rng.randbytes(20)
    target = encode_raw(raw)
    look = lookalikes.find_lookalike(raw, rng, match=2, max_tries=2_000_000)
    assert lookalikes.shares_ends(target, look, 2)
