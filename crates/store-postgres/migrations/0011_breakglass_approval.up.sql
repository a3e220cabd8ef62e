-- A break-glass grant can wait for a second operator's approval: while
-- breakglass_pending, its token is refused like an unknown key. Who approved it and
-- when are kept with it. Grants opened before this migration need no approval.
ALTER TABLE api_keys ADD COLUMN breakglass_pending boolean NOT NULL DEFAULT false;
ALTER TABLE api_keys ADD COLUMN breakglass_approved_by uuid;
ALTER TABLE api_keys ADD COLUMN breakglass_approved_at timestamptz;

-- An approval changes what a kept credential says: it moves the org's generation
-- (migration 0005's trigger, now over the break-glass columns too).
DROP TRIGGER kept_api_keys ON api_keys;
CREATE TRIGGER kept_api_keys AFTER INSERT OR DELETE OR UPDATE OF
        org_id, id, name, principal_kind, principal_id, prefix, hash, created_at,
        expires_at, revoked_at, breakglass_ticket, breakglass_reason, breakglass_access,
        breakglass_pending, breakglass_approved_by, breakglass_approved_at
    ON api_keys FOR EACH ROW EXECUTE FUNCTION tenantry_bump('org_id');
