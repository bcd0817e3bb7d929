-- Device refresh sessions and their single-use refresh secrets (stored as SHA-256 hashes). Every secret ever
-- issued stays, with the generation it was issued at, so that presenting a spent one is recognised as reuse.

CREATE TABLE refresh_sessions (
    id                     TEXT PRIMARY KEY,
    identity_id            TEXT NOT NULL REFERENCES identities (id),
    created_at             INTEGER NOT NULL,
    expires_at             INTEGER NOT NULL,
    token_lifetime_minutes INTEGER NOT NULL,
    generation             INTEGER NOT NULL DEFAULT 0,
    ended_at               INTEGER,
    end_reason             TEXT CHECK (end_reason IN ('secretReused', 'signedOut'))
);

CREATE TABLE refresh_secrets (
    secret_hash TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES refresh_sessions (id),
    generation  INTEGER NOT NULL
);
