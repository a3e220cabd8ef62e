ALTER TABLE api_keys DROP COLUMN breakglass_access;
ALTER TABLE api_keys DROP COLUMN breakglass_reason;
ALTER TABLE api_keys DROP COLUMN breakglass_ticket;
