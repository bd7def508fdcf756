"""Live mode logic: follow a node's head, detect reorgs, back off, track pending transactions.

Everything here is pure (no Bytewax, no sockets): the shells in ``pipeline.sources.node`` and
``pipeline.sources.mempool`` do the I/O and call into these modules.
"""
