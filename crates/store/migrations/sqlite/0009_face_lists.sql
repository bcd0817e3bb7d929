-- Face: large face lists and their faces, per account. A list's training is only its time (find-similar needs one
-- training); deleting a list deletes its faces. Templates are stored as for persisted faces.

CREATE TABLE large_face_lists (
    account_id        TEXT NOT NULL REFERENCES accounts (id),
    list_id           TEXT NOT NULL,
    name              TEXT NOT NULL,
    user_data         TEXT,
    recognition_model TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    trained_at        INTEGER,
    PRIMARY KEY (account_id, list_id)
);

CREATE TABLE large_face_list_faces (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    list_id    TEXT NOT NULL,
    template   BLOB NOT NULL,
    user_data  TEXT,
    created_at INTEGER NOT NULL,
    FOREIGN KEY (account_id, list_id) REFERENCES large_face_lists (account_id, list_id) ON DELETE CASCADE
);
CREATE INDEX large_face_list_faces_list ON large_face_list_faces (account_id, list_id, id);
