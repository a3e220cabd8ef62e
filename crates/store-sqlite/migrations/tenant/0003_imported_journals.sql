-- Journals of invocation records already imported (see src/journal.rs): an import
-- records its journal's id in the same transaction as the records, so a journal left
-- behind by a crash after the commit is never imported twice.
CREATE TABLE imported_journals (
    org_id      TEXT NOT NULL,
    id          TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    PRIMARY KEY (org_id, id)
);
