-- A resuming subscriber replays only the events of its own threads (tessera_store::chat::EVENTS_FOR): the log's
-- thread ids compare with the participants' under the same collation, and an index finds a thread's events.
ALTER TABLE chat_events ALTER COLUMN thread_id TYPE TEXT COLLATE "C";
ALTER TABLE chat_events ALTER COLUMN identity_id TYPE TEXT COLLATE "C";
CREATE INDEX chat_events_thread ON chat_events (thread_id, seq);
