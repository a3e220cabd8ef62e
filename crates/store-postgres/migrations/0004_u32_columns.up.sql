-- Columns holding a Rust u32 (install rate limits, org key and secret key versions)
-- were `integer` (i32): values above 2147483647 could not be stored, and were clamped
-- or refused while the embedded store kept them. `bigint` holds every u32.
-- (Versions 2 and 3 are left unused: they were once the RLS modes.)
ALTER TABLE installs ALTER COLUMN rate_limit_per_minute TYPE bigint;
ALTER TABLE org_keys ALTER COLUMN version TYPE bigint;
ALTER TABLE secrets ALTER COLUMN key_version TYPE bigint;
