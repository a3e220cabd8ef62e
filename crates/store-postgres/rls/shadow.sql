-- RLS mode "shadow" (after rls/clear.sql): row security is enabled and forced on
-- every tenant table, but a row outside the transaction's tenant context stays
-- visible and writable; each such row is recorded in rls_violations for the operator
-- to read. Switch to it, watch rls_violations stay empty under real traffic, then
-- switch to strict.
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['org_keys','users','agents','api_keys','installs','secrets','bindings','kv','usage_events','audit'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_shadow ON %I FOR ALL '
            'USING (org_id = tenantry_org_lenient() OR tenantry_rls_violation(%L, %L, org_id)) '
            'WITH CHECK (org_id = tenantry_org_lenient() OR tenantry_rls_violation(%L, %L, org_id))',
            t, t, 'read', t, 'write');
    END LOOP;
END $$;
UPDATE rls_mode SET mode = 'shadow';
