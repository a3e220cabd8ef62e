DROP TRIGGER kept_api_keys ON api_keys;
CREATE TRIGGER kept_api_keys AFTER INSERT OR DELETE OR UPDATE OF
        org_id, id, name, principal_kind, principal_id, prefix, hash, created_at,
        expires_at, revoked_at
    ON api_keys FOR EACH ROW EXECUTE FUNCTION tenantry_bump('org_id');
ALTER TABLE api_keys DROP COLUMN breakglass_approved_at;
ALTER TABLE api_keys DROP COLUMN breakglass_approved_by;
ALTER TABLE api_keys DROP COLUMN breakglass_pending;
