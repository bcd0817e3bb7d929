-- Chat: threads of an account, their participants, messages and read receipts. A thread keeps the last message id
-- and sequence id it gave, so that the next message's are computed under the thread's row lock; message ids are
-- milliseconds (see tessera_core::chat). A message's content and metadata are JSON. Deleting a thread marks it
-- (deleted_at) and nothing of it is served afterwards.

CREATE TABLE chat_threads (
    id               TEXT COLLATE "C" PRIMARY KEY,
    account_id       TEXT NOT NULL REFERENCES accounts (id),
    topic            TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    deleted_at       BIGINT,
    last_message_id  BIGINT NOT NULL DEFAULT 0,
    last_sequence_id BIGINT NOT NULL DEFAULT 0,
    last_message_at  BIGINT,
    repeatability_id TEXT,
    UNIQUE (account_id, created_by, repeatability_id)
);

CREATE TABLE chat_participants (
    thread_id          TEXT COLLATE "C" NOT NULL REFERENCES chat_threads (id) ON DELETE CASCADE,
    identity_id        TEXT COLLATE "C" NOT NULL,
    display_name       TEXT,
    share_history_from BIGINT,
    added_at           BIGINT NOT NULL,
    PRIMARY KEY (thread_id, identity_id)
);
CREATE INDEX chat_participants_identity ON chat_participants (identity_id, thread_id);

CREATE TABLE chat_messages (
    thread_id           TEXT COLLATE "C" NOT NULL REFERENCES chat_threads (id) ON DELETE CASCADE,
    id                  BIGINT NOT NULL,
    sequence_id         BIGINT NOT NULL,
    version             BIGINT NOT NULL,
    kind                TEXT NOT NULL,
    sender_id           TEXT,
    sender_display_name TEXT,
    content             TEXT NOT NULL,
    metadata            TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    edited_at           BIGINT,
    deleted_at          BIGINT,
    PRIMARY KEY (thread_id, id)
);

CREATE TABLE chat_read_receipts (
    thread_id   TEXT COLLATE "C" NOT NULL REFERENCES chat_threads (id) ON DELETE CASCADE,
    identity_id TEXT COLLATE "C" NOT NULL,
    message_id  BIGINT NOT NULL,
    read_at     BIGINT NOT NULL,
    PRIMARY KEY (thread_id, identity_id)
);
