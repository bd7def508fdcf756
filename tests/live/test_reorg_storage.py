"""Finding 4: a reorg over busy blocks is applied on real chDB, retried, and idempotent.

The orphaned transaction ids used to be written into the SQL text; with a few thousand of them the
engine refused the statement ("Max query size exceeded"), nothing retried it, and the same reorg was
found again at every restart. Here two orphaned blocks carry 5,000 transactions each: the new branch
keeps 4,500 of the first and none of the second.
"""

from __future__ import annotations

from typing import Any

from pipeline.live.follower import Reorg
from pipeline.live.reorg import apply_reorg
from pipeline.records import Alert
from pipeline.storage.clickhouse import open_storage

H = 70_000_000
N = 5_000


def _txid(height: int, i: int) -> str:
    return f"{height:016x}{i:048x}"


def _block_id(height: int, branch: str) -> str:
    return f"{height:016x}" + branch * 48


def _alert(tx_id: str, height: int) -> Alert:
    return Alert(f"a-{tx_id[-12:]}-{height}", 1_714_000_000_000, 1_714_000_000_000, height, tx_id, "TAddr",
                 "r1", "v1", "high", 75.0, "confirmed", "block", "t", ("x",), "{}")


def _store(client: Any, db: str) -> None:
    cols = ("number", "block_id", "parent_hash", "ts", "witness", "tx_count", "source")
    client.insert(f"{db}.blocks", [(h, _block_id(h, "a"), _block_id(h - 1, "a"), 0, "", N, "node")
                                   for h in (H - 1, H, H + 1)], column_names=cols)
    transfers = [(f"{_txid(h, i)}:{k}", _txid(h, i), k, h, "trx")
                 for h in (H, H + 1) for i in range(N) for k in range(2 if i < 50 else 1)]
    transfers += [(f"{_txid(H - 1, 0)}:0", _txid(H - 1, 0), 0, H - 1, "trx")]  # the ancestor's: untouched
    client.insert(f"{db}.transfers", transfers, column_names=("id", "tx_id", "idx", "block_number", "kind"))
    alerts = [_alert(_txid(H, 0), H), _alert(_txid(H, 4_600), H), _alert(_txid(H + 1, 7), H + 1),
              _alert(_txid(H - 1, 0), H - 1)]
    client.insert(f"{db}.alerts", alerts, column_names=Alert._fields)


def _q(client: Any, sql: str) -> list[tuple]:
    return client.query(sql).result_rows


class FlakyCommands:
    """A real client whose first ``command`` fails the way a stopped server does."""

    def __init__(self, client: Any) -> None:
        self.client, self.failed = client, 0

    def insert(self, *args: Any, **kwargs: Any) -> Any:
        return self.client.insert(*args, **kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        if not self.failed:
            self.failed += 1
            raise ConnectionRefusedError("[Errno 111] Connection refused")
        return self.client.command(*args, **kwargs)


def test_a_reorg_over_5000_transaction_blocks_is_applied_retried_and_idempotent(chdb_dsn: str) -> None:
    client, dsn = open_storage(chdb_dsn)
    db = dsn.database
    _store(client, db)
    kept = tuple(_txid(H, i) for i in range(4_500))
    # the attack: the kept ids alone are longer than the statement size the engine accepts
    limit = int(_q(client, "SELECT value FROM system.settings WHERE name = 'max_query_size'")[0][0])
    assert sum(len(t) + 4 for t in kept) > limit
    reorg = Reorg("node", H - 1, ((H, _block_id(H, "a")), (H + 1, _block_id(H + 1, "a"))),
                  (_block_id(H, "b"), _block_id(H + 1, "b")), (kept, ()), 1_714_000_000_000)

    flaky = FlakyCommands(client)
    apply_reorg(flaky, db, reorg, retry_budget_s=30)
    assert flaky.failed == 1  # the first statement failed once and was retried

    for _ in range(2):  # the same reorg found again after a restart changes nothing
        by_height = dict(_q(client, f"SELECT block_number, uniqExact(tx_id) FROM {db}.transfers FINAL "
                                    "GROUP BY block_number"))
        assert by_height == {H - 1: 1, H: 4_500}
        assert _q(client, f"SELECT count() FROM {db}.transfers FINAL WHERE block_number = {H}") == [(4_550,)]
        stored = _q(client, f"SELECT tx_id, 1 FROM {db}.transfers FINAL WHERE block_number = {H}")
        assert set(dict(stored)) == set(kept)
        status = dict(_q(client, f"SELECT tx_id, status FROM {db}.alerts FINAL"))
        assert status == {_txid(H, 0): "confirmed", _txid(H, 4_600): "dropped", _txid(H + 1, 7): "dropped",
                          _txid(H - 1, 0): "confirmed"}
        blocks = _q(client, f"SELECT number, block_id, orphaned FROM {db}.blocks FINAL "
                            "ORDER BY number, orphaned")
        assert blocks == [(H - 1, _block_id(H - 1, "a"), False), (H, _block_id(H, "a"), True),
                          (H + 1, _block_id(H + 1, "a"), True)]
        rows = _q(client, f"SELECT number, new_block_id, length(kept_tx_ids) FROM {db}.orphaned_blocks FINAL "
                          "ORDER BY number")
        assert rows == [(H, _block_id(H, "b"), 4_500), (H + 1, _block_id(H + 1, "b"), 0)]
        apply_reorg(client, db, reorg)
