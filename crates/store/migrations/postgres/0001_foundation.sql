-- Accounts, their hashed subscription keys, signing keys, settings and the append-only audit chain.

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE accounts (
    id             TEXT PRIMARY KEY,
    resource_id    TEXT COLLATE "C" NOT NULL UNIQUE,
    kind           TEXT NOT NULL CHECK (kind IN ('face', 'communication')),
    approved_flags TEXT NOT NULL DEFAULT '',
    isv_flags      TEXT,
    isv_cut_off_at BIGINT,
    disabled       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

CREATE TABLE account_keys (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    slot       TEXT NOT NULL CHECK (slot IN ('key1', 'key2')),
    key_hash   TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, slot)
);

CREATE TABLE signing_keys (
    kid            TEXT COLLATE "C" PRIMARY KEY,
    state          TEXT NOT NULL CHECK (state IN ('pending', 'active', 'retired')),
    created_at     BIGINT NOT NULL,
    activated_at   BIGINT,
    retired_at     BIGINT,
    public_key     BYTEA NOT NULL,
    sealed_private BYTEA NOT NULL
);

CREATE TABLE audit_events (
    seq       BIGINT PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    details   TEXT NOT NULL,
    isv       TEXT,
    prev_hash BYTEA NOT NULL,
    hash      BYTEA NOT NULL
);
CREATE INDEX audit_events_isv ON audit_events (isv, seq) WHERE isv IS NOT NULL;
CREATE INDEX audit_events_action ON audit_events (action, seq);
CREATE INDEX audit_events_subject ON audit_events (subject, seq);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
