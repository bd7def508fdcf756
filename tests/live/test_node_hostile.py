"""The node source against a node that answers too much or nonsense (real HTTP on 127.0.0.1).

Every answer is size-capped and validated: a range over the cap is asked again in halves, a block
over it becomes a gap (tries, a dead letter, the next height), an unusable head is retried, and
nothing the node says can raise out of the source. The node sits behind a gateway-style URL with
a key in its path, which must not reach dead letters, health rows or log lines.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from pipeline.live.health import SourceHealth
from pipeline.records import DeadLetter, RawBlock
from pipeline.sources.node import NodeSource
from tests.live.conftest import drive, first_number
from tests.live.httpd import Server

PATH_KEY = "f00dfeed0123456789GATEWAY"
CAP = 64 * 1024


def _node(chain: list[dict[str, Any]], huge: int, head_junk: list[int]):
    """A minimal TRON node over ``chain``; block ``huge`` is padded over the cap, and the first
    ``head_junk[0]`` head reads answer junk."""
    by_number = {b["block_header"]["raw_data"]["number"]: b for b in chain}
    padded = {**by_number[huge], "pad": "x" * (2 * CAP)}
    blocks = {**by_number, huge: padded}

    def route(path: str, headers: dict[str, str], body: bytes):
        assert path.startswith(f"/{PATH_KEY}/")
        params = orjson.loads(body or b"{}")
        method = path.rsplit("/", 1)[1]
        if method == "getnowblock":
            if head_junk[0] > 0:
                head_junk[0] -= 1
                return 200, {}, b'{"block_header": [1, 2, 3]}'
            return 200, {}, orjson.dumps(chain[-1])
        if method == "getblockbylimitnext":
            got = [blocks[n] for n in range(params["startNum"], params["endNum"]) if n in blocks]
            return 200, {}, orjson.dumps({"block": got})
        if method == "getblockbynum":
            return 200, {}, orjson.dumps(blocks.get(params["num"], {}))
        if method == "gettransactioninfobyblocknum":
            return 200, {}, orjson.dumps([{"id": t["txID"]} for t in blocks[params["num"]]["transactions"]])
        return 404, {}, b"no such method"

    return route


def test_oversized_and_junk_answers_become_dead_letters_and_following_goes_on(
        live_chain: list[dict], caplog: Any) -> None:
    chain = live_chain[:12]
    first = first_number(chain)
    huge = first + 5
    with Server(_node(chain, huge, head_junk=[2])) as node:
        src = NodeSource(f"{node.url}/{PATH_KEY}/", confirmations=0, start=first, end=first + 11,
                         batch_blocks=8, poll_s=0.02, base_backoff_s=0.01, max_backoff_s=0.05, gap_attempts=3,
                         health_every_s=0, max_answer_bytes=CAP)
        part = src.build_part("in", "node", None)
        with caplog.at_level(logging.INFO):
            try:
                items = drive(part, lambda it: False)  # runs until the source ends at first + 11
            finally:
                part.close()
    heights = [int(b.position) for b in items if isinstance(b, RawBlock)]
    assert heights == [n for n in range(first, first + 12) if n != huge]  # only the oversized one is skipped
    letters = [d for d in items if isinstance(d, DeadLetter)]
    assert len(letters) == 1 and letters[0].position == str(huge)
    assert letters[0].reason.startswith(f"gap: block {huge} unavailable from {node.url}/***")
    assert "answer over the 65,536-byte cap" in letters[0].reason
    assert part._batch < 8  # ranges that held the big block were asked again in halves
    health = [h for h in items if isinstance(h, SourceHealth)]
    assert health[-1].gaps_total == 1 and health[-1].errors_total >= 2  # the junk heads were retried
    text = " ".join([*(d.reason for d in letters), *(h.last_error for h in health),
                     *(r.getMessage() for r in caplog.records)])
    assert "unusable head block" in text and PATH_KEY not in text
