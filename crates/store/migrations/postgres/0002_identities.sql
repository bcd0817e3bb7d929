-- Communication identities. A name is unique among an account's live identities; deleted ones free it.

CREATE TABLE identities (
    id                   TEXT COLLATE "C" PRIMARY KEY,
    account_id           TEXT NOT NULL REFERENCES accounts (id),
    name                 TEXT,
    kind                 TEXT NOT NULL CHECK (kind IN ('human', 'bot', 'phoneNumber')),
    created_at           BIGINT NOT NULL,
    last_token_issued_at BIGINT,
    revocation           BIGINT NOT NULL DEFAULT 0,
    deleted_at           BIGINT
);
CREATE UNIQUE INDEX identities_live_name ON identities (account_id, name)
    WHERE name IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX identities_account ON identities (account_id, id);
