-- Chat: threads of an account, their participants, messages and read receipts. A thread keeps the last message id
-- and sequence id it gave, so that the next message's are computed under the thread's row lock; message ids are
-- milliseconds (see tessera_core::chat). A message's content and metadata are JSON. Deleting a thread marks it
-- (deleted_at) and nothing of it is served afterwards.

CREATE TABLE chat_threads (
    id               TEXT PRIMARY KEY,
    account_id       TEXT NOT NULL REFERENCES accounts (id),
    topic            TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    deleted_at       INTEGER,
    last_message_id  INTEGER NOT NULL DEFAULT 0,
    last_sequence_id INTEGER NOT NULL DEFAULT 0,
    last_message_at  INTEGER,
    repeatability_id TEXT,
    UNIQUE (account_id, created_by, repeatability_id)
);

CREATE TABLE chat_participants (
    thread_id          TEXT NOT NULL REFERENCES chat_threads (id) ON DELETE CASCADE,
    identity_id        TEXT NOT NULL,
    display_name       TEXT,
    share_history_from INTEGER,
    added_at           INTEGER NOT NULL,
    PRIMARY KEY (thread_id, identity_id)
);
CREATE INDEX chat_participants_identity ON chat_participants (identity_id, thread_id);

CREATE TABLE chat_messages (
    thread_id           TEXT NOT NULL REFERENCES chat_threads (id) ON DELETE CASCADE,
    id                  INTEGER NOT NULL,
    sequence_id         INTEGER NOT NULL,
    version             INTEGER NOT NULL,
    kind                TEXT NOT NULL,
    sender_id           TEXT,
    sender_display_name TEXT,
    content             TEXT NOT NULL,
    metadata            TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    edited_at           INTEGER,
    deleted_at          INTEGER,
    PRIMARY KEY (thread_id, id)
);

CREATE TABLE chat_read_receipts (
    thread_id   TEXT NOT NULL REFERENCES chat_threads (id) ON DELETE CASCADE,
    identity_id TEXT NOT NULL,
    message_id  INTEGER NOT NULL,
    read_at     INTEGER NOT NULL,
    PRIMARY KEY (thread_id, identity_id)
);
