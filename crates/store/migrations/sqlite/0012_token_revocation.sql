-- Revocations that a re-enable or re-grant does not undo (milliseconds since the epoch): tokens naming the account
-- issued at or before the second of its latest disable, and limited access tokens it issued as an ISV at or
-- before the second of its latest cut-off, stay dead.
ALTER TABLE accounts ADD COLUMN tokens_revoked_at INTEGER;
ALTER TABLE accounts ADD COLUMN isv_tokens_revoked_at INTEGER;
