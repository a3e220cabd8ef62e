-- Operator-set per-org changes to the tier's limits (JSON object).
ALTER TABLE orgs ADD COLUMN overrides TEXT NOT NULL DEFAULT '{}';
