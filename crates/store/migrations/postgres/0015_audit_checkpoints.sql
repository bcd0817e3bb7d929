-- Signed checkpoints of the audit chain's head (tessera_core::claims::CheckpointClaims): `tessera audit verify`
-- checks the latest, so that events deleted after it are detected. Written by any node; one per head.
CREATE TABLE audit_checkpoints (
    seq        BIGINT PRIMARY KEY,
    head       TEXT NOT NULL,
    token      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
