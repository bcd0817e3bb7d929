-- Face: large person groups and their persons, per account. Deleting a group deletes its persons.

CREATE TABLE large_person_groups (
    account_id        TEXT NOT NULL REFERENCES accounts (id),
    group_id          TEXT NOT NULL,
    name              TEXT NOT NULL,
    user_data         TEXT,
    recognition_model TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    PRIMARY KEY (account_id, group_id)
);

CREATE TABLE face_persons (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    group_id   TEXT NOT NULL,
    name       TEXT NOT NULL,
    user_data  TEXT,
    created_at INTEGER NOT NULL,
    FOREIGN KEY (account_id, group_id) REFERENCES large_person_groups (account_id, group_id) ON DELETE CASCADE
);
CREATE INDEX face_persons_group ON face_persons (account_id, group_id, id);
