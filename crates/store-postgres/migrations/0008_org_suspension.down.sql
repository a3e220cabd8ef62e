ALTER TABLE orgs DROP COLUMN suspended_at;
