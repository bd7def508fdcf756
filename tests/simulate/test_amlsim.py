"""The AMLSim sample converts into replay input the decoder reads, with its fraud labels."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from pipeline.errors import InputError
from pipeline.operators.decode import decode_block
from pipeline.records import DeadLetter, Kind
from pipeline.simulate.amlsim import account_address, import_amlsim
from pipeline.simulate.output import read_blocks
from pipeline.tron.address import hex_to_base58
from pipeline.tron.tokens import USDT, TokenRegistry
from tests.conftest import SHARED

SAMPLE = SHARED / "amlsim" / "20K_fanin200"


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("amlsim")
    import_amlsim(SAMPLE, out)
    return out


def test_counts_match_the_sample(imported: Path) -> None:
    meta = json.loads((imported / "meta.json").read_text())
    assert meta["tx_count"] == 118_250 and meta["accounts"] == 20_000 and meta["fraud_accounts"] == 954
    with open(imported / "labels.csv") as fh:
        labels = list(csv.DictReader(fh))
    assert len(labels) == 954 and {r["typology"] for r in labels} == {"fan_in"}
    with open(imported / "labelled_txs.csv") as fh:
        assert sum(1 for _ in csv.DictReader(fh)) == meta["labelled_txs"] > 0


def test_blocks_decode_to_usdt_transfers_in_step_order(imported: Path) -> None:
    tokens = TokenRegistry.build()
    n, last_ts, first = 0, 0, None
    for i, block in enumerate(read_blocks(imported / "blocks.jsonl.gz")):
        assert 0 < len(block["transactions"]) <= 300
        n += len(block["transactions"])
        if i % 10:
            continue  # decoding every 10th block keeps the test fast; all share one code path
        decoded = decode_block(block, "amlsim", str(i), tokens)
        assert not isinstance(decoded, DeadLetter) and not decoded.dead_letters
        assert decoded.block.ts > last_ts and len(decoded.transfers) == len(block["transactions"])
        last_ts = decoded.block.ts
        kinds = Counter((t.kind, t.token) for t in decoded.transfers)
        assert kinds == Counter({(Kind.TRC20_TRANSFER, USDT): len(block["transactions"])})
        first = first or decoded.transfers[0]
    assert n == 118_250
    # the first row of transactions.csv: 360 -> 18984, 103.55 at step 1
    assert first.from_address == hex_to_base58(account_address("360"))
    assert first.to_address == hex_to_base58(account_address("18984")) and first.amount_raw == 103_550_000


def test_missing_folder_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nodes.csv"):
        import_amlsim(tmp_path / "nope", tmp_path / "out")
