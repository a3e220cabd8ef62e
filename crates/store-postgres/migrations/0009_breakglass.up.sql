-- An operator's break-glass token is an api_keys row of principal_kind 'operator'
-- with its ticket, reason and access ('read' or 'write'); all three or none. Writing
-- it (open, close) moves the org's generation like any api_keys write (migration
-- 0005), so every node applies a close at once.
ALTER TABLE api_keys ADD COLUMN breakglass_ticket text;
ALTER TABLE api_keys ADD COLUMN breakglass_reason text;
ALTER TABLE api_keys ADD COLUMN breakglass_access text
    CHECK (breakglass_access IN ('read', 'write'));
