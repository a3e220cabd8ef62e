-- Back to RLS mode "shadow".
DROP POLICY IF EXISTS key_delegation ON api_keys;
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['org_keys','users','agents','api_keys','installs','secrets','bindings','kv','usage_events','audit'] LOOP
        EXECUTE format('DROP POLICY IF EXISTS tenant_isolation ON %I', t);
        EXECUTE format(
            'CREATE POLICY tenant_shadow ON %I FOR ALL '
            'USING (org_id = tenantry_org_lenient() OR tenantry_rls_violation(%L, %L, org_id)) '
            'WITH CHECK (org_id = tenantry_org_lenient() OR tenantry_rls_violation(%L, %L, org_id))',
            t, t, 'read', t, 'write');
    END LOOP;
END $$;
UPDATE rls_mode SET mode = 'shadow';
