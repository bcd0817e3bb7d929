-- When a token was last issued is in the audit log; keeping it on the identity cost every issuance a write.

ALTER TABLE identities DROP COLUMN last_token_issued_at;
