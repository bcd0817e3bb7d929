-- Face templates: detected faces under a face id for 24 hours, and the faces enrolled for persons. A template is
-- the recognition network's embedding, 128 little-endian f32 values.

CREATE TABLE face_detections (
    id                TEXT PRIMARY KEY,
    account_id        TEXT NOT NULL REFERENCES accounts (id),
    recognition_model TEXT NOT NULL,
    template          BLOB NOT NULL,
    created_at        INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL
);
CREATE INDEX face_detections_expiry ON face_detections (expires_at);

CREATE TABLE persisted_faces (
    id         TEXT PRIMARY KEY,
    person_id  TEXT NOT NULL REFERENCES face_persons (id) ON DELETE CASCADE,
    account_id TEXT NOT NULL,
    group_id   TEXT NOT NULL,
    template   BLOB NOT NULL,
    user_data  TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX persisted_faces_person ON persisted_faces (person_id, id);
CREATE INDEX persisted_faces_group ON persisted_faces (account_id, group_id);
