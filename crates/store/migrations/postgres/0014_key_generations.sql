-- Each key slot counts how often it was set, so that an STS token naming the slot and generation that minted it
-- dies when the slot is regenerated; and the operator may revoke every user token of an account at once
-- (milliseconds since the epoch; tokens issued at or before that second stay dead).
ALTER TABLE accounts ADD COLUMN key1_generation BIGINT NOT NULL DEFAULT 1;
ALTER TABLE accounts ADD COLUMN key2_generation BIGINT NOT NULL DEFAULT 1;
ALTER TABLE accounts ADD COLUMN user_tokens_revoked_at BIGINT;
