-- A resuming subscriber replays only the events of its own threads (tessera_store::chat::EVENTS_FOR): an index
-- finds a thread's events.
CREATE INDEX chat_events_thread ON chat_events (thread_id, seq);
