DROP FUNCTION tenantry_erase_org(uuid);
CREATE OR REPLACE FUNCTION tenantry_audit_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit entries are append-only';
END $$;
DROP TABLE deleted_orgs;
