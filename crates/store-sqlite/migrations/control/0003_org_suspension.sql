-- An org suspended by the operator: every key of it is refused (ORG_SUSPENDED).
ALTER TABLE orgs ADD COLUMN suspended_at TEXT;
