-- An org suspended by the operator: every key of it is refused (ORG_SUSPENDED).
-- Writing it moves the org's generation (the orgs trigger of migration 0005), so
-- every node applies a suspension to its next request.
ALTER TABLE orgs ADD COLUMN suspended_at timestamptz;
