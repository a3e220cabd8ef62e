-- A break-glass grant can wait for a second operator's approval: while
-- breakglass_pending, its token is refused like an unknown key. Who approved it and
-- when are kept with it. Grants opened before this migration need no approval.
ALTER TABLE api_keys ADD COLUMN breakglass_pending INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN breakglass_approved_by TEXT;
ALTER TABLE api_keys ADD COLUMN breakglass_approved_at TEXT;
