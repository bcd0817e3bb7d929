-- Chat events: what happened in a thread, appended in the same transaction as the change (an outbox), so that
-- every node tails one log by seq and delivers the events to its own subscribers. Purged after a while.

CREATE TABLE chat_events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    thread_id    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    message_id   INTEGER,
    identity_id  TEXT,
    display_name TEXT,
    created_at   INTEGER NOT NULL
);
CREATE INDEX chat_events_created ON chat_events (created_at);
