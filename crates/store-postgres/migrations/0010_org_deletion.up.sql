-- Deleting an org. Its directory row goes and leaves a tombstone (the id is never
-- reused; the deletion stays on record beside the operator's audit trail), and its
-- rows are erased by tenantry_erase_org: SECURITY DEFINER, because the application
-- role may not delete audit entries, and only for an org the operator suspended
-- first. The append-only trigger lets a DELETE through only for the org being
-- erased in that transaction (app.erasing_org, set by the function; the application
-- role has no DELETE privilege on audit, so it cannot use the setting itself).
CREATE TABLE deleted_orgs (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    deleted_at  timestamptz NOT NULL
);

CREATE OR REPLACE FUNCTION tenantry_audit_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND OLD.org_id::text = current_setting('app.erasing_org', true) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit entries are append-only';
END $$;

CREATE FUNCTION tenantry_erase_org(o uuid) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM orgs WHERE id = o AND suspended_at IS NOT NULL) THEN
        RAISE EXCEPTION 'org % is not suspended: only a suspended org is erased', o;
    END IF;
    -- The tenant context (row-level security is forced on the owner too) and the
    -- org's write lock, as for any write of the org.
    PERFORM set_config('app.org_id', o::text, true);
    PERFORM set_config('app.principals', '{}', true);
    PERFORM set_config('app.keys_scope', 'org', true);
    PERFORM set_config('app.erasing_org', o::text, true);
    PERFORM pg_advisory_xact_lock(hashtextextended(o::text, 0));
    DELETE FROM bindings WHERE org_id = o;
    DELETE FROM kv WHERE org_id = o;
    DELETE FROM secrets WHERE org_id = o;
    DELETE FROM installs WHERE org_id = o;
    DELETE FROM api_keys WHERE org_id = o;
    DELETE FROM agents WHERE org_id = o;
    DELETE FROM users WHERE org_id = o;
    DELETE FROM org_keys WHERE org_id = o;
    DELETE FROM usage_events WHERE org_id = o;
    DELETE FROM audit WHERE org_id = o;
    PERFORM set_config('app.erasing_org', '', true);
END $$;
REVOKE ALL ON FUNCTION tenantry_erase_org(uuid) FROM PUBLIC;
