-- Face: large person groups and their persons, per account. Deleting a group deletes its persons.

CREATE TABLE large_person_groups (
    account_id        TEXT NOT NULL REFERENCES accounts (id),
    group_id          TEXT COLLATE "C" NOT NULL,
    name              TEXT NOT NULL,
    user_data         TEXT,
    recognition_model TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    PRIMARY KEY (account_id, group_id)
);

CREATE TABLE face_persons (
    id         TEXT COLLATE "C" PRIMARY KEY,
    account_id TEXT NOT NULL,
    group_id   TEXT COLLATE "C" NOT NULL,
    name       TEXT NOT NULL,
    user_data  TEXT,
    created_at BIGINT NOT NULL,
    FOREIGN KEY (account_id, group_id) REFERENCES large_person_groups (account_id, group_id) ON DELETE CASCADE
);
CREATE INDEX face_persons_group ON face_persons (account_id, group_id, id);
