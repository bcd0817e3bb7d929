-- Face training: a group's training generation (0: never trained) and time, and a count of removed faces and
-- persons. A persisted face records the generation current when it was enrolled; the index of generation G holds
-- the faces enrolled before G (enrolled_generation < G) that still exist. Nodes cache indexes by
-- (generation, removals) and rebuild one when either moves.

ALTER TABLE large_person_groups ADD COLUMN training_generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE large_person_groups ADD COLUMN trained_at INTEGER;
ALTER TABLE large_person_groups ADD COLUMN removals INTEGER NOT NULL DEFAULT 0;
ALTER TABLE persisted_faces ADD COLUMN enrolled_generation INTEGER NOT NULL DEFAULT 0;
