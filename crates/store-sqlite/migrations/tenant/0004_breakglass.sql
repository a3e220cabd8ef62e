-- An operator's break-glass token is an api_keys row of principal_kind 'operator'
-- with its ticket, reason and access ('read' or 'write'); all three or none.
ALTER TABLE api_keys ADD COLUMN breakglass_ticket TEXT;
ALTER TABLE api_keys ADD COLUMN breakglass_reason TEXT;
ALTER TABLE api_keys ADD COLUMN breakglass_access TEXT;
