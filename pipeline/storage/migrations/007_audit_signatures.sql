-- 007: audit heads are signed with an Ed25519 key kept outside ClickHouse (pipeline/audit/keys.py):
-- a database writer who rewrites records and recomputes the hashes cannot sign the new heads.
-- key_id names the public key that verifies `signature` (base64); both are empty on heads recorded
-- before this migration, which `audit verify` treats as unsigned.

ALTER TABLE {db}.audit_heads ADD COLUMN IF NOT EXISTS key_id String DEFAULT '';
ALTER TABLE {db}.audit_heads ADD COLUMN IF NOT EXISTS signature String DEFAULT '';
