"""Ed25519 keys that sign the audit chain's heads, and the signed head files kept beside them.

Why: a hash chain alone proves nothing against someone who can write the database — they edit a
record, recompute every later hash and the recorded heads, and the chain is consistent again. A
head signed with a private key that is *not* in ClickHouse cannot be recomputed that way: the
verifier checks each head's signature with the public key, so a rewritten record either breaks a
signed head or sits in an unsigned tail, which ``audit verify`` refuses beyond a set length.

Where the private key comes from (``[audit]`` settings): ``signing_key`` (the key itself, PEM or
base64 of its 32 bytes; ``TRONRISK_AUDIT_SIGNING_KEY``), else ``signing_key_file``, else the demo
default ``<data dir>/audit/signing.key``, generated on first use with mode 0600 and a log line
saying where. The verifier uses ``verify_key_file`` (the public key an auditor was given), else the
public half of the signing key. ``audit keygen --out DIR`` makes a pair for production.

Signed heads are written twice: to ``audit_heads`` (next to the chain, for dashboards) and as JSON
lines in ``heads_dir/<database>/heads-YYYY-MM-DD.jsonl`` outside the database, so deleting heads
from ClickHouse does not delete the evidence that the chain once had them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from pipeline.errors import ConfigError

log = logging.getLogger(__name__)

PRIVATE_NAME = "signing.key"
PUBLIC_NAME = "signing.pub"
HEADS_NAME = "heads"


class SignedHead(NamedTuple):
    """A chain head (seq, hash) with who signed it when; ``signature`` empty = unsigned."""

    seq: int
    hash: str
    recorded_at: int  # ms since epoch UTC
    key_id: str
    signature: str  # base64 Ed25519 signature over head_message(...)


def head_message(database: str, seq: int, hash_: str, recorded_at: int) -> bytes:
    """The bytes a head signature covers: the chain's name too, so a head of one database cannot
    be replayed as a head of another."""
    return orjson.dumps({"chain": database, "hash": hash_, "recorded_at": int(recorded_at), "seq": int(seq),
                         "v": 1}, option=orjson.OPT_SORT_KEYS)


def _raw_public(public_key: Any) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(public_key: Any) -> str:
    """A short, stable name for a public key (first 16 hex digits of SHA-256 of its raw bytes)."""
    return hashlib.sha256(_raw_public(public_key)).hexdigest()[:16]


class HeadSigner:
    """Signs heads with an Ed25519 private key (about 50 µs per head: one per committed batch)."""

    def __init__(self, private_key: Any, source: str) -> None:
        self._key = private_key
        self.source = source  # where the key came from, for messages (never the key itself)
        self.key_id = key_id(private_key.public_key())

    def __repr__(self) -> str:
        return f"HeadSigner(key_id={self.key_id}, source={self.source})"

    def __reduce__(self):  # never pickled into a snapshot or shipped to another process
        raise TypeError("HeadSigner holds a private key and is not picklable")

    def sign(self, database: str, seq: int, hash_: str, recorded_at: int) -> SignedHead:
        sig = self._key.sign(head_message(database, seq, hash_, recorded_at))
        return SignedHead(seq, hash_, recorded_at, self.key_id, base64.b64encode(sig).decode())

    def verifier(self) -> HeadVerifier:
        return HeadVerifier(self._key.public_key(), f"public half of {self.source}")


class HeadVerifier:
    """Checks head signatures with a public key."""

    def __init__(self, public_key: Any, source: str) -> None:
        self._key = public_key
        self.source = source
        self.key_id = key_id(public_key)

    def __repr__(self) -> str:
        return f"HeadVerifier(key_id={self.key_id}, source={self.source})"

    def verify(self, database: str, head: SignedHead) -> bool:
        from cryptography.exceptions import InvalidSignature

        try:
            sig = base64.b64decode(head.signature, validate=True)
            self._key.verify(sig, head_message(database, head.seq, head.hash, head.recorded_at))
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True


@dataclass(frozen=True)
class Signing:
    """What a writer of the chain needs to sign its heads: the signer and where head files go."""

    signer: HeadSigner
    heads_dir: Path | None


# --- keys on disk and in settings ------------------------------------------------------------

def data_dir(dsn: str) -> Path:
    """The data directory the demo defaults live under: the parent of a chDB directory
    (``chdb://./data/chdb`` -> ``./data``), else ``./data``."""
    from pipeline.storage.clickhouse import parse_dsn

    d = parse_dsn(dsn)
    return Path(d.path).parent if d.embedded else Path("data")


def default_key_file(dsn: str) -> Path:
    return data_dir(dsn) / "audit" / PRIVATE_NAME


def default_heads_dir(dsn: str) -> Path:
    return data_dir(dsn) / "audit" / HEADS_NAME


def _load_private(data: bytes, where: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    text = data.strip()
    try:
        if text.startswith(b"-----BEGIN"):
            key = load_pem_private_key(text, password=None)
        else:
            raw = base64.b64decode(text, validate=True)
            if len(raw) != 32:
                raise ValueError(f"{len(raw)} bytes, an Ed25519 private key has 32")
            key = Ed25519PrivateKey.from_private_bytes(raw)
    except (ValueError, TypeError, binascii.Error) as err:
        raise ConfigError(f"{where}: not an Ed25519 private key (PEM, or base64 of 32 bytes): "
                          f"{str(err).splitlines()[0][:120]}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{where}: the audit signing key must be Ed25519, got {type(key).__name__}")
    return key


def load_public(path: Path) -> HeadVerifier:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        text = path.read_bytes().strip()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the audit public key ({err.strerror})") from None
    try:
        if text.startswith(b"-----BEGIN"):
            key = load_pem_public_key(text)
        else:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (ValueError, TypeError, binascii.Error) as err:
        raise ConfigError(f"{path}: not an Ed25519 public key: {str(err).splitlines()[0][:120]}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path}: the audit public key must be Ed25519, got {type(key).__name__}")
    return HeadVerifier(key, str(path))


def _write_private(path: Path, pem: bytes) -> None:
    """Create ``path`` with mode 0600 from the start (never readable by others, not even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def generate_keypair(out_dir: Path) -> tuple[Path, Path, str]:
    """Write a new ``signing.key`` (PKCS#8 PEM, 0600) and ``signing.pub`` in ``out_dir``; returns
    (private path, public path, key id). Refuses to overwrite an existing key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        PublicFormat,
    )

    private, public = out_dir / PRIVATE_NAME, out_dir / PUBLIC_NAME
    for p in (private, public):
        if p.exists():
            raise ConfigError(f"{p}: already exists; keys are never overwritten (move it away first)")
    key = Ed25519PrivateKey.generate()
    _write_private(private, key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    return private, public, key_id(key.public_key())


def _check_mode(path: Path) -> None:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning("audit signing key %s is readable by others (mode %o): chmod 600 it", path, mode)


def load_signer(settings: Any, dsn: str, create: bool = True) -> HeadSigner | None:
    """The signer the ``[audit]`` settings name; with nothing configured, the demo default key
    (generated here on first use when ``create``). None only when nothing exists and not ``create``."""
    if settings.signing_key:
        where = "audit.signing_key (TRONRISK_AUDIT_SIGNING_KEY)"
        return HeadSigner(_load_private(settings.signing_key.encode(), where), "audit.signing_key")
    path = Path(settings.signing_key_file) if settings.signing_key_file else default_key_file(dsn)
    if not path.exists():
        if settings.signing_key_file:
            raise ConfigError(f"audit.signing_key_file {path}: not found (make one with "
                              f"`run_pipeline.py audit keygen --out {path.parent}`)")
        if not create:
            return None
        try:
            _, public, kid = generate_keypair(path.parent)
        except FileExistsError:  # another process made it a moment ago
            pass
        else:
            log.warning("audit: generated a signing key at %s (key id %s, public key %s); keep it out of "
                     "ClickHouse's reach and give auditors the public key", path, kid, public)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"audit signing key {path}: cannot read it ({err.strerror})") from None
    _check_mode(path)
    return HeadSigner(_load_private(data, str(path)), str(path))


def load_verifier(settings: Any, dsn: str) -> HeadVerifier:
    """The public key ``audit verify`` checks signatures with; one clear error when there is none."""
    if settings.verify_key_file:
        return load_public(Path(settings.verify_key_file))
    if settings.signing_key or settings.signing_key_file:
        signer = load_signer(settings, dsn, create=False)
        assert signer is not None
        return signer.verifier()
    default = default_key_file(dsn)
    if default.with_name(PUBLIC_NAME).exists():
        return load_public(default.with_name(PUBLIC_NAME))
    raise ConfigError("audit verify needs the audit public key: set [audit] verify_key_file (or "
                      f"--public-key FILE); no key was found at the default {default.with_name(PUBLIC_NAME)}")


def heads_dir_for(settings: Any, dsn: str) -> Path:
    return Path(settings.heads_dir) if settings.heads_dir else default_heads_dir(dsn)


def signing_for(settings: Any, dsn: str) -> Signing:
    """Signer + head directory for a writer of the chain (pipeline, analyst CLI, export, tickets)."""
    signer = load_signer(settings, dsn)
    assert signer is not None
    return Signing(signer, heads_dir_for(settings, dsn))


# --- head files ------------------------------------------------------------------------------

def write_head_file(heads_dir: Path, database: str, head: SignedHead) -> Path:
    """Append one signed head as a JSON line to today's file (flushed and fsynced: it is evidence)."""
    folder = heads_dir / database
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"heads-{time.strftime('%Y-%m-%d', time.gmtime(head.recorded_at / 1000))}.jsonl"
    line = orjson.dumps(head._asdict()) + b"\n"
    with open(path, "ab") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())
    return path


def read_head_files(heads_dir: Path, database: str) -> Iterator[tuple[SignedHead, str]]:
    """Heads from the files, one file at a time (bounded memory), each with where it was read
    (``file:line``); an unreadable line is yielded as a head with seq -1 so the verifier reports it."""
    folder = heads_dir / database
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("heads-*.jsonl")):
        with open(path, "rb") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    d = orjson.loads(line)
                    head = SignedHead(int(d["seq"]), str(d["hash"]), int(d["recorded_at"]), str(d["key_id"]),
                                      str(d["signature"]))
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    head = SignedHead(-1, "", 0, "", "")
                yield head, f"{path}:{n}"


def retire_head_files(heads_dir: Path, database: str) -> Path | None:
    """Move the head files of ``database`` aside (``<database>.dropped-<UTC time>``) when the database
    itself is dropped on purpose (the demo starts from an empty one): they belong to a chain that no
    longer exists, and would otherwise fail the new chain's verification. Kept, not deleted."""
    folder = heads_dir / database
    if not folder.is_dir():
        return None
    target = folder.with_name(f"{database}.dropped-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}")
    folder.rename(target)
    return target
