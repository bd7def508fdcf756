"""A local TRON devnet: replayed blocks over the full-node HTTP API plus a pending-tx websocket.

Lets live mode be demonstrated without a node and tested against faults (rate limits, reorgs,
restarts, dropped websockets, transactions that never land). See :mod:`pipeline.devnet.server`.
"""

from pipeline.devnet.chain import Chain
from pipeline.devnet.server import Devnet, DevnetConfig

__all__ = ["Chain", "Devnet", "DevnetConfig"]
