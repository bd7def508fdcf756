"""Compliance audit trail: a hash-chained, append-only log of what the system saw and decided.

``chain`` (pure: encoding, hashes, ``AuditChain``), ``facts`` (records per kind of fact),
``store`` (``AuditAppender``: resume, dedup, write), ``evidence`` (per-alert bundles),
``dispositions`` (analyst actions), ``export``/``formats`` (streaming exports), ``verify``/``check``
(recompute a chain and name the first record touched), ``hook`` (the post-commit wiring).
"""
