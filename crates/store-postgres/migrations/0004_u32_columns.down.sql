ALTER TABLE installs ALTER COLUMN rate_limit_per_minute TYPE integer;
ALTER TABLE org_keys ALTER COLUMN version TYPE integer;
ALTER TABLE secrets ALTER COLUMN key_version TYPE integer;
