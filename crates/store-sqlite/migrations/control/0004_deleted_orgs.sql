-- A deleted org's tombstone: its id is never reused, and the deletion stays on
-- record beside the operator's audit trail.
CREATE TABLE deleted_orgs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    deleted_at  TEXT NOT NULL
);
